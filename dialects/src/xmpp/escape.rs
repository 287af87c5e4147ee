//! XML escaping for output (`escape_text`, `escape_attr`) and the matching input side used by
//! the stream reader: entity/char-reference resolution (only the five predefined entities and
//! numeric references; anything else is restricted XML), XML character checks, and XML 1.0
//! newline / attribute-value normalization.

use crate::xmpp::reader::StreamError;

/// Appends `s` to `out` escaped for element content: `&` `<` `>` `"` `'` become entity
/// references and `\r` becomes `&#xD;` (so it survives newline normalization). Characters that
/// XML 1.0 forbids (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF) are replaced by U+FFFD so
/// the output is always well-formed. Copies unescaped runs in one go; nothing is allocated
/// beyond growing `out`.
pub fn escape_text(s: &str, out: &mut Vec<u8>) {
    escape(s, out, false);
}

/// Like [`escape_text`], for attribute values: additionally writes tab, LF and CR as character
/// references so attribute-value normalization on the receiving side keeps them.
pub fn escape_attr(s: &str, out: &mut Vec<u8>) {
    escape(s, out, true);
}

fn escape(s: &str, out: &mut Vec<u8>, attr: bool) {
    let bytes = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (replacement, len): (&[u8], usize) = match b {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            b'"' => (b"&quot;", 1),
            b'\'' => (b"&apos;", 1),
            b'\r' => (b"&#xD;", 1),
            b'\n' if attr => (b"&#xA;", 1),
            b'\t' if attr => (b"&#x9;", 1),
            b'\n' | b'\t' => {
                i += 1;
                continue;
            }
            0..=0x1f => ("\u{FFFD}".as_bytes(), 1),
            // U+FFFE / U+FFFF are EF BF BE / EF BF BF.
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE) | Some(0xBF)) =>
            {
                ("\u{FFFD}".as_bytes(), 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.extend_from_slice(replacement);
        i += len;
        run_start = i;
    }
    out.extend_from_slice(&bytes[run_start..]);
}

/// Is `c` a character XML 1.0 allows in a document?
pub(crate) fn is_xml_char(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => true,
        '\u{0}'..='\u{1f}' => false,
        '\u{FFFE}' | '\u{FFFF}' => false,
        _ => true, // `char` already excludes surrogates
    }
}

/// Resolves the body of a reference (`amp`, `#38`, `#x26`): the five predefined entities and
/// numeric character references only.
pub(crate) fn resolve_ref(name: &str) -> Result<char, StreamError> {
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            if let Some(num) = name.strip_prefix('#') {
                let value = if let Some(hex) = num.strip_prefix('x') {
                    parse_digits(hex, 16)
                } else {
                    parse_digits(num, 10)
                };
                return value
                    .and_then(char::from_u32)
                    .filter(|c| is_xml_char(*c))
                    .ok_or_else(|| {
                        StreamError::NotWellFormed(format!("invalid character reference &{name};"))
                    });
            }
            if crate::xmpp::parse::is_name(name) {
                return Err(StreamError::RestrictedXml(format!(
                    "entity reference &{name};"
                )));
            }
            return Err(StreamError::NotWellFormed(format!(
                "malformed reference &{name};"
            )));
        }
    };
    Ok(c)
}

fn parse_digits(s: &str, radix: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(s, radix).ok()
}

/// Appends raw character data (already-decoded UTF-8 text without references) to `out`,
/// checking XML characters and normalizing `\r\n` and lone `\r` to `\n`.
pub(crate) fn push_char_data(raw: &str, out: &mut String) -> Result<(), StreamError> {
    if raw.contains("]]>") {
        return Err(StreamError::NotWellFormed("']]>' in text".into()));
    }
    push_normalized(raw, out, false)
}

/// Appends the text of a CDATA section (no `]]>` check: the framer already cut it there).
pub(crate) fn push_cdata(raw: &str, out: &mut String) -> Result<(), StreamError> {
    push_normalized(raw, out, false)
}

fn push_normalized(raw: &str, out: &mut String, attr: bool) -> Result<(), StreamError> {
    let clean = raw
        .bytes()
        .all(|b| b >= 0x20 || (!attr && (b == b'\n' || b == b'\t')));
    let nonchars =
        raw.as_bytes().contains(&0xEF) && (raw.contains('\u{FFFE}') || raw.contains('\u{FFFF}'));
    if clean && !nonchars {
        out.push_str(raw);
        return Ok(());
    }
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if !is_xml_char(c) {
            return Err(StreamError::NotWellFormed(format!(
                "character U+{:04X} not allowed in XML",
                c as u32
            )));
        }
        let c = match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                '\n'
            }
            c => c,
        };
        out.push(if attr && matches!(c, '\n' | '\t') {
            ' '
        } else {
            c
        });
    }
    Ok(())
}

/// Decodes a raw attribute value (between the quotes): resolves references, checks characters
/// and applies attribute-value normalization (literal tab/CR/LF become spaces).
pub(crate) fn unescape_attr(raw: &str) -> Result<String, StreamError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        let (before, after) = rest.split_at(amp);
        push_attr_run(before, &mut out)?;
        let Some(semi) = after.find(';') else {
            return Err(StreamError::NotWellFormed("unterminated reference".into()));
        };
        out.push(resolve_ref(&after[1..semi])?);
        rest = &after[semi + 1..];
    }
    push_attr_run(rest, &mut out)?;
    Ok(out)
}

fn push_attr_run(run: &str, out: &mut String) -> Result<(), StreamError> {
    if run.contains('<') {
        return Err(StreamError::NotWellFormed("'<' in attribute value".into()));
    }
    push_normalized(run, out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut v = Vec::new();
        escape_text(s, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }
    fn attr(s: &str) -> String {
        let mut v = Vec::new();
        escape_attr(s, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }

    #[test]
    fn escapes_markup_characters() {
        assert_eq!(text("plain text"), "plain text");
        assert_eq!(text("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(text("x\ty\nz\r"), "x\ty\nz&#xD;");
        assert_eq!(attr("x\ty\nz\r'"), "x&#x9;y&#xA;z&#xD;&apos;");
        assert_eq!(text("héllo ☃ 𝄞"), "héllo ☃ 𝄞");
    }

    #[test]
    fn replaces_forbidden_characters() {
        assert_eq!(text("a\u{0}b\u{1b}c"), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(attr("\u{FFFE}\u{FFFF}\u{FFFD}"), "\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(text("\u{EFBF}"), "\u{EFBF}");
    }

    #[test]
    fn resolves_only_predefined_and_numeric_references() {
        assert_eq!(resolve_ref("amp"), Ok('&'));
        assert_eq!(resolve_ref("#x1F600"), Ok('😀'));
        assert_eq!(resolve_ref("#65"), Ok('A'));
        assert!(matches!(
            resolve_ref("foo"),
            Err(StreamError::RestrictedXml(_))
        ));
        assert!(matches!(
            resolve_ref("#0"),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            resolve_ref("#xD800"),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            resolve_ref("#x110000"),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            resolve_ref(""),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            resolve_ref("#x"),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            resolve_ref("a b"),
            Err(StreamError::NotWellFormed(_))
        ));
    }

    #[test]
    fn normalizes_attributes_and_text() {
        assert_eq!(
            unescape_attr("a\tb\r\nc&#xA;d&lt;").as_deref(),
            Ok("a b c\nd<")
        );
        assert!(unescape_attr("a&b").is_err());
        assert!(unescape_attr("a<b").is_err());
        let mut s = String::new();
        push_char_data("a\r\nb\rc\n", &mut s).unwrap_or_default();
        assert_eq!(s, "a\nb\nc\n");
        assert!(push_char_data("a]]>b", &mut String::new()).is_err());
        assert!(push_char_data("a\u{1}", &mut String::new()).is_err());
        assert!(push_char_data("a\u{FFFF}", &mut String::new()).is_err());
    }
}
