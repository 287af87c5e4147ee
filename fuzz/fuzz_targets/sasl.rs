//! Fuzzes the SASL server side: PLAIN parsing and both SCRAM steps with arbitrary messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_dialects::xmpp::sasl::{parse_plain, Mechanism, ScramKeys, ScramServer};

fuzz_target!(|data: &[u8]| {
    let _ = parse_plain(data);
    let mid = data.len() / 2;
    let (first, last) = data.split_at(mid);
    let mut server = ScramServer::new(Mechanism::ScramSha256, "fuzznonce".into());
    if server.client_first(first).is_ok() {
        let keys = ScramKeys { salt: b"salt", iterations: 1, stored_key: &[0u8; 32], server_key: &[0u8; 32] };
        let _ = server.server_first(Some(keys));
        let _ = server.client_final(last);
    }
});
