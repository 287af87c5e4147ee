//! The XCCOS payloads the client sends, built as pidgin-sipe builds them: the `<xccos>`
//! envelope around one `<cmd>` or `<grpchat>`, the `<chanid>` of a `ma-chan://` URI, and the
//! ISO-8601 UTC timestamps of messages.

use std::time::{SystemTime, UNIX_EPOCH};

/// The XCCOS namespace.
pub const XCCOS_NS: &str = "urn:parlano:xml:ns:xccos";

/// `<xccos ver="1" envid="N" xmlns="urn:parlano:xml:ns:xccos">inner</xccos>`.
pub fn envelope(envid: u32, inner: &str) -> String {
    format!("<xccos ver=\"1\" envid=\"{envid}\" xmlns=\"{XCCOS_NS}\">{inner}</xccos>")
}

/// `<cmd id="cmd:NAME" seqid="1"><data>inner</data></cmd>` (`<data/>` when `inner` is empty).
pub fn cmd(name: &str, inner: &str) -> String {
    let data = if inner.is_empty() {
        "<data/>".to_string()
    } else {
        format!("<data>{inner}</data>")
    };
    format!("<cmd id=\"cmd:{name}\" seqid=\"1\">{data}</cmd>")
}

/// `<chanid key="KEY" domain="D" value="V"/>` for `ma-chan://D/V` (split on `/` into at most
/// four parts, as sipe does); `None` for a URI without both parts.
pub fn chanid(uri: &str, key: usize) -> Option<String> {
    let mut parts = uri.splitn(4, '/');
    let (_scheme, _empty) = (parts.next()?, parts.next()?);
    let (domain, value) = (parts.next()?, parts.next()?);
    Some(format!(
        "<chanid key=\"{key}\" domain=\"{}\" value=\"{}\"/>",
        escape(domain),
        escape(value)
    ))
}

pub fn requri() -> String {
    cmd("requri", "")
}

pub fn getserverinfo() -> String {
    cmd("getserverinfo", "")
}

pub fn join(uri: &str) -> Option<String> {
    Some(cmd("join", &chanid(uri, 0)?))
}

/// `cmd:bjoin` of `uris` (keys 0, 1, …), `None` if one is malformed.
pub fn bjoin(uris: &[String]) -> Option<String> {
    let mut inner = String::new();
    for (i, uri) in uris.iter().enumerate() {
        inner.push_str(&chanid(uri, i)?);
    }
    Some(cmd("bjoin", &inner))
}

/// `cmd:bccontext` asking for the last 25 messages of `uri`.
pub fn bccontext(uri: &str) -> String {
    cmd(
        "bccontext",
        &format!(
            "<chanib uri=\"{}\"/><bcq><last cnt=\"25\"/></bcq>",
            escape(uri)
        ),
    )
}

pub fn part(uri: &str) -> String {
    cmd("part", &format!("<chanib uri=\"{}\"/>", escape(uri)))
}

/// `cmd:chansrch` by name (`""`: every room).
pub fn chansrch(criteria: &str) -> String {
    cmd(
        "chansrch",
        &format!(
            "<qib qtype=\"BYNAME\" criteria=\"{}\" extended=\"false\"/>",
            escape(criteria)
        ),
    )
}

pub fn getinv(domain: &str) -> String {
    cmd(
        "getinv",
        &format!("<inv inviteId=\"1\" domain=\"{}\"/>", escape(domain)),
    )
}

/// A room message as sipe sends it: lines (split on `<br>`, CRLF or LF) escaped and joined
/// with CRLF.
pub fn grpchat(uri: &str, author: &str, ts: &str, text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace("<br>", "\n");
    let lines: Vec<String> = normalized.split('\n').map(escape).collect();
    format!(
        "<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"{}\" author=\"{}\" ts=\"{}\"><chat>{}</chat></grpchat>",
        escape(uri),
        escape(author),
        escape(ts),
        lines.join("\r\n")
    )
}

/// XML escaping of text and attribute values as `g_markup_escape_text` does it (`'` as
/// `&#39;`).
pub fn escape(s: &str) -> String {
    crate::xml::esc_with(s, "&#39;")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of `t` (UTC, whole seconds).
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn envelope_and_commands() {
        assert_eq!(
            envelope(7, &requri()),
            "<xccos ver=\"1\" envid=\"7\" xmlns=\"urn:parlano:xml:ns:xccos\">\
             <cmd id=\"cmd:requri\" seqid=\"1\"><data/></cmd></xccos>"
        );
        assert_eq!(
            join("ma-chan://localhost/lobby").as_deref(),
            Some(
                "<cmd id=\"cmd:join\" seqid=\"1\"><data>\
                 <chanid key=\"0\" domain=\"localhost\" value=\"lobby\"/></data></cmd>"
            )
        );
        assert_eq!(
            bjoin(&["ma-chan://d/v0".into(), "ma-chan://d/v1".into()]).as_deref(),
            Some(
                "<cmd id=\"cmd:bjoin\" seqid=\"1\"><data>\
                 <chanid key=\"0\" domain=\"d\" value=\"v0\"/>\
                 <chanid key=\"1\" domain=\"d\" value=\"v1\"/></data></cmd>"
            )
        );
        assert_eq!(
            bccontext("ma-chan://d/x"),
            "<cmd id=\"cmd:bccontext\" seqid=\"1\"><data><chanib uri=\"ma-chan://d/x\"/>\
             <bcq><last cnt=\"25\"/></bcq></data></cmd>"
        );
        assert_eq!(
            part("ma-chan://d/x"),
            "<cmd id=\"cmd:part\" seqid=\"1\"><data><chanib uri=\"ma-chan://d/x\"/></data></cmd>"
        );
        assert_eq!(
            chansrch(""),
            "<cmd id=\"cmd:chansrch\" seqid=\"1\"><data>\
             <qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/></data></cmd>"
        );
        assert_eq!(
            getinv("localhost"),
            "<cmd id=\"cmd:getinv\" seqid=\"1\"><data>\
             <inv inviteId=\"1\" domain=\"localhost\"/></data></cmd>"
        );
    }

    #[test]
    fn chanid_splits_like_sipe() {
        assert_eq!(
            chanid("ma-chan://example.org/abcd-1234", 3).as_deref(),
            Some("<chanid key=\"3\" domain=\"example.org\" value=\"abcd-1234\"/>")
        );
        // Everything after the domain is the value, slashes included.
        assert_eq!(
            chanid("ma-chan://d/a/b", 0).as_deref(),
            Some("<chanid key=\"0\" domain=\"d\" value=\"a/b\"/>")
        );
        assert_eq!(chanid("ma-chan://d", 0), None);
        assert_eq!(join("lobby"), None);
    }

    #[test]
    fn grpchat_escapes_and_joins_lines() {
        assert_eq!(
            grpchat(
                "ma-chan://localhost/lobby",
                "sip:alice@localhost",
                "2026-11-23T19:30:00Z",
                "a < b & \"c\"<br>line 2\nline 3"
            ),
            "<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"ma-chan://localhost/lobby\" \
             author=\"sip:alice@localhost\" ts=\"2026-11-23T19:30:00Z\">\
             <chat>a &lt; b &amp; &quot;c&quot;\r\nline 2\r\nline 3</chat></grpchat>"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_462_245);
        assert_eq!(timestamp(t), "2026-11-23T19:30:45Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00Z");
    }
}
