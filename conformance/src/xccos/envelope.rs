//! XCCOS payloads: building the envelopes, commands and room messages a client sends, and
//! reading what the server sends (the items of an `<xccos>` envelope; a reply's code, data and
//! `commandid`; room messages).

use anyhow::{bail, Result};
use palaver_dialects::xmpp::element::Element;

/// The envelope namespace.
pub const XCCOS_NS: &str = "urn:parlano:xml:ns:xccos";

/// Escapes text for an attribute or element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<xccos ver="1" envid=…>` around `inner`.
pub fn envelope(envid: u32, inner: &str) -> String {
    format!("<xccos ver=\"1\" envid=\"{envid}\" xmlns=\"{XCCOS_NS}\">{inner}</xccos>")
}

/// `<cmd id="cmd:NAME" seqid="1"><data>…</data></cmd>`.
pub fn cmd(name: &str, data: &str) -> String {
    if data.is_empty() {
        format!("<cmd id=\"cmd:{name}\" seqid=\"1\"><data/></cmd>")
    } else {
        format!("<cmd id=\"cmd:{name}\" seqid=\"1\"><data>{data}</data></cmd>")
    }
}

/// `<chanid key domain value/>`.
pub fn chanid(key: u32, domain: &str, value: &str) -> String {
    format!(
        "<chanid key=\"{key}\" domain=\"{}\" value=\"{}\"/>",
        escape(domain),
        escape(value)
    )
}

/// `<chanib uri/>`.
pub fn chanib(uri: &str) -> String {
    format!("<chanib uri=\"{}\"/>", escape(uri))
}

/// A room message from `author` to `chan`.
pub fn grpchat(chan: &str, author: &str, text: &str) -> String {
    format!(
        "<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"{}\" author=\"{}\" ts=\"{}\"><chat>{}</chat></grpchat>",
        escape(chan),
        escape(author),
        timestamp(),
        escape(text)
    )
}

/// Now as ISO-8601 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Whether `ts` looks like an ISO-8601 UTC date-time (`YYYY-MM-DDThh:mm:ss[.fff]Z`).
pub fn is_utc_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19)
        && ts.ends_with(['Z', 'z'])
}

/// The items (`rpl`, `ntc`, `grpchat` …) of an `<xccos>` envelope.
pub fn parse_items(body: &[u8]) -> Result<Vec<Element>> {
    let root = Element::parse(body).map_err(|e| anyhow::anyhow!("{e}"))?;
    if root.name != "xccos" || root.ns != XCCOS_NS {
        bail!("not an xccos envelope: <{} xmlns='{}'>", root.name, root.ns);
    }
    Ok(root.children().cloned().collect())
}

/// The `resp/@code` of a reply (500 when missing, as pidgin-sipe reads it).
pub fn resp_code(rpl: &Element) -> u16 {
    rpl.children()
        .find(|c| c.name == "resp")
        .and_then(|r| r.attr("code"))
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(500)
}

/// The `commandid/@envid` of a reply.
pub fn commandid_envid(rpl: &Element) -> Option<u32> {
    rpl.children()
        .find(|c| c.name == "commandid")
        .and_then(|c| c.attr("envid"))
        .and_then(|e| e.trim().parse().ok())
}

/// The `<data/>` of a reply or notice.
pub fn data(item: &Element) -> Option<&Element> {
    item.children().find(|c| c.name == "data")
}

/// Children of `data` named `name`.
pub fn data_children<'a>(item: &'a Element, name: &'a str) -> Vec<&'a Element> {
    data(item)
        .map(|d| d.children().filter(|c| c.name == name).collect())
        .unwrap_or_default()
}

/// An item for a failure message (bounded).
pub fn show(item: &Element) -> String {
    item.to_string().chars().take(600).collect()
}

/// The text of a room message's `<chat/>` with CRLF normalised to LF.
pub fn chat_text(m: &Element) -> Option<String> {
    m.children()
        .find(|c| c.name == "chat")
        .map(|c| c.text().replace("\r\n", "\n"))
}

/// Whether `e` is a room message (`grpchat`, or a `msg id="grpchat"` of a history) in
/// `chan` with `text`.
pub fn is_chat(e: &Element, chan: &str, text: &str) -> bool {
    (e.name == "grpchat" || (e.name == "msg" && e.attr("id") == Some("grpchat")))
        && e.attr("chanUri")
            .is_some_and(|u| u.eq_ignore_ascii_case(chan))
        && chat_text(e).as_deref() == Some(text)
}

/// Whether `e` is the reply `rpl:NAME`.
pub fn is_reply(e: &Element, name: &str) -> bool {
    e.name == "rpl"
        && e.attr("id")
            .is_some_and(|x| x.eq_ignore_ascii_case(&format!("rpl:{name}")))
}

/// Whether `e` is the notice `ntc:NAME`.
pub fn is_notice(e: &Element, name: &str) -> bool {
    e.name == "ntc"
        && e.attr("id")
            .is_some_and(|x| x.eq_ignore_ascii_case(&format!("ntc:{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_utc() {
        let ts = timestamp();
        assert!(is_utc_timestamp(&ts), "{ts}");
        assert!(is_utc_timestamp("2024-02-29T23:59:59Z"));
        assert!(!is_utc_timestamp("2024-02-29 23:59:59"));
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
    }

    #[test]
    fn replies_parse() {
        let body = envelope(
            7,
            "<rpl id=\"rpl:requri\" seqid=\"1\"><commandid seqid=\"1\" envid=\"6\"/><resp code=\"200\">SUCCESS_OK</resp><data><uib uri=\"sip:x@y\"/></data></rpl>",
        );
        let items = parse_items(body.as_bytes()).expect("parses");
        assert_eq!(items.len(), 1);
        assert!(is_reply(&items[0], "requri"));
        assert_eq!(resp_code(&items[0]), 200);
        assert_eq!(commandid_envid(&items[0]), Some(6));
        assert_eq!(data_children(&items[0], "uib").len(), 1);
        assert!(parse_items(b"<xccos/>").is_err());
    }
}
