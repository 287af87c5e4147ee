//! Fuzzes the SIP pager dialect's text inputs: arbitrary bytes (UTF-8-lossy) as a MESSAGE body
//! into the `#command` parser and the `message/cpim` reader (and the command parser again on
//! the CPIM content), and the body splitter on the result. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_dialects::pager::command::parse_command;
use palaver_dialects::pager::text::{parse_cpim, split_body};

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let _ = parse_command(&body);
    if let Some((_content_type, text)) = parse_cpim(&body) {
        let _ = parse_command(text);
    }
    let max = usize::from(data.first().copied().unwrap_or(0));
    let parts = split_body(&body, max);
    assert!(parts.iter().all(|p| p.len() <= max.max(4)));
    assert_eq!(parts.concat(), body);
});
