//! Small pieces of the RFC 3261 §25 grammar shared by the header parsers: tokens, quoted
//! strings, comma-separated lists that respect quotes and angle brackets, and `;name=value`
//! parameter lists (header and URI flavours). Everything works on `&str` already checked to be
//! free of CR/LF by the message parser, and never panics: all slicing is at ASCII boundaries.

use std::fmt;

use crate::sip::error::SipError;

/// RFC 3261 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A non-empty run of token characters.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Linear white space inside one (already unfolded) header value.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Reads a quoted string at the start of `s` (which must begin with `"`): returns the unescaped
/// content and the rest after the closing quote.
pub(crate) fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, s.get(i + 1..)?)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// Length of the quoted string at the start of `s` including both quotes, if it is closed.
fn quoted_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// ASCII control characters other than HTAB: never allowed in a header line (the parser
/// rejects them; writers drop or replace them). Other Unicode, C1 controls included, is text.
pub(crate) fn is_ascii_ctl(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\x7f'
}

/// Quotes `s` as an RFC 3261 quoted-string (escaping `"` and `\`, dropping ASCII controls).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if is_ascii_ctl(c) => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Splits a header value on commas that are outside quoted strings and `<…>`, trimming each
/// element and skipping empty ones. Unbalanced quotes or brackets are an error.
pub(crate) fn split_list(value: &str) -> Result<Vec<&str>, SipError> {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i, mut angle) = (0usize, 0usize, false);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += quoted_len(&bytes[i..])
                    .ok_or_else(|| SipError::malformed("unterminated quoted string"))?;
                continue;
            }
            b'<' if !angle => angle = true,
            b'>' if angle => angle = false,
            b',' if !angle => {
                push_trimmed(&mut out, value.get(start..i));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if angle {
        return Err(SipError::malformed("unbalanced '<'"));
    }
    push_trimmed(&mut out, value.get(start..));
    Ok(out)
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, part: Option<&'a str>) {
    if let Some(part) = part.map(str::trim) {
        if !part.is_empty() {
            out.push(part);
        }
    }
}

/// Which grammar a parameter list follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamMode {
    /// Header parameters (`generic-param`): token names, token/host/quoted-string values,
    /// optional white space around `;` and `=`.
    Header,
    /// SIP URI parameters: no white space, no quotes.
    Uri,
}

/// An ordered list of `;name[=value]` parameters. Values are kept as they were on the wire
/// (quoted strings keep their quotes) so a message re-serializes faithfully; names compare
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// An empty list.
    pub const fn new() -> Self {
        Params(Vec::new())
    }

    /// Parses `;a=b;c` (leading white space allowed in header mode). An empty string is an
    /// empty list.
    pub(crate) fn parse(s: &str, mode: ParamMode) -> Result<Params, SipError> {
        let bytes = s.as_bytes();
        let mut params = Vec::new();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while mode == ParamMode::Header && *i < bytes.len() && is_ws(bytes[*i]) {
                *i += 1;
            }
        };
        loop {
            skip_ws(&mut i);
            if i >= bytes.len() {
                return Ok(Params(params));
            }
            if bytes[i] != b';' {
                return Err(SipError::malformed("expected ';' before a parameter"));
            }
            i += 1;
            skip_ws(&mut i);
            let name_start = i;
            while i < bytes.len() && param_name_byte(bytes[i], mode) {
                i += 1;
            }
            let name = s.get(name_start..i).unwrap_or_default();
            if name.is_empty() {
                return Err(SipError::malformed("empty parameter name"));
            }
            skip_ws(&mut i);
            let mut value = None;
            if i < bytes.len() && bytes[i] == b'=' {
                i += 1;
                skip_ws(&mut i);
                let value_start = i;
                if mode == ParamMode::Header && i < bytes.len() && bytes[i] == b'"' {
                    i += quoted_len(&bytes[i..])
                        .ok_or_else(|| SipError::malformed("unterminated quoted parameter"))?;
                } else {
                    while i < bytes.len() && param_value_byte(bytes[i], mode) {
                        i += 1;
                    }
                }
                let v = s.get(value_start..i).unwrap_or_default();
                if v.is_empty() {
                    return Err(SipError::malformed("empty parameter value"));
                }
                value = Some(v.to_string());
            }
            params.push((name.to_string(), value));
        }
    }

    /// The raw value of `name` (`Some(None)` for a flag parameter such as `;lr`).
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of `name` with surrounding quotes removed (escapes are left as they are);
    /// `None` if absent or a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        let v = self.get(name)??;
        Some(
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v),
        )
    }

    /// Whether `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing an existing one in place, else appending). The value must be a
    /// token, host or quoted string; CR/LF are removed.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(strip_crlf);
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((strip_crlf(name), value)),
        }
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The parameters in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

fn strip_crlf(s: &str) -> String {
    s.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

fn param_name_byte(b: u8, mode: ParamMode) -> bool {
    match mode {
        ParamMode::Header => is_token_byte(b),
        ParamMode::Uri => uri_param_byte(b),
    }
}

fn param_value_byte(b: u8, mode: ParamMode) -> bool {
    match mode {
        // token / host values, leniently: anything visible but separators and quotes.
        ParamMode::Header => b > 0x20 && b != 0x7f && !b";,\"<>".contains(&b),
        ParamMode::Uri => uri_param_byte(b),
    }
}

/// `paramchar` of RFC 3261 (unreserved, escaped, param-unreserved).
pub(crate) fn uri_param_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()%[]/:&+$".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings() {
        assert_eq!(
            parse_quoted(r#""a \"b\" c" rest"#),
            Some(("a \"b\" c".to_string(), " rest"))
        );
        assert_eq!(parse_quoted("\"open"), None);
        assert_eq!(parse_quoted("\"\\"), None);
        assert_eq!(quote("a\"b\\c\r\n"), r#""a\"b\\c""#);
    }

    #[test]
    fn lists() {
        let v = split_list(r#"<sip:a@b;x=1,2>;q=1 , "x, y" <sip:c@d>,,sip:e@f"#)
            .expect("should succeed");
        assert_eq!(
            v,
            vec!["<sip:a@b;x=1,2>;q=1", r#""x, y" <sip:c@d>"#, "sip:e@f"]
        );
        assert!(split_list("\"open, x").is_err());
        assert!(split_list("<sip:a@b").is_err());
    }

    #[test]
    fn params() {
        let p = Params::parse(
            r#" ;tag=abc ; lr;+sip.instance="<urn:uuid:1>";received=[::1]"#,
            ParamMode::Header,
        )
        .expect("should succeed");
        assert_eq!(p.value("TAG"), Some("abc"));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.value("+sip.instance"), Some("<urn:uuid:1>"));
        assert_eq!(p.value("received"), Some("[::1]"));
        assert_eq!(
            p.to_string(),
            r#";tag=abc;lr;+sip.instance="<urn:uuid:1>";received=[::1]"#
        );
        assert!(Params::parse(";a=", ParamMode::Header).is_err());
        assert!(Params::parse(";=b", ParamMode::Header).is_err());
        assert!(Params::parse("x", ParamMode::Header).is_err());
        assert!(Params::parse(" ;a", ParamMode::Uri).is_err());
        let mut p = Params::parse(";transport=tcp;lr", ParamMode::Uri).expect("should succeed");
        p.set("Transport", Some("udp"));
        p.set("rport", Some("5060\r\n"));
        p.remove("lr");
        assert_eq!(p.to_string(), ";transport=udp;rport=5060");
    }
}
