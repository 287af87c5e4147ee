//! Reading `message/cpim` bodies (RFC 3862): message headers, a blank line, the encapsulated
//! MIME headers, a blank line, then the content.

/// Parses a `message/cpim` body into the inner content type and content. Lines may end in
/// CRLF or LF. Both header blocks must consist of `Name: value` lines (continuation lines
/// starting with a space or tab are accepted); the message header block must not be empty.
/// The content type is the value of the inner `Content-Type` header (matched
/// case-insensitively, trimmed, first line only), or `text/plain` when the MIME block has
/// none. The content is returned exactly as it follows the second blank line. Returns `None`
/// for anything that is not shaped like CPIM.
pub fn parse_cpim(body: &str) -> Option<(&str, &str)> {
    let (message_headers, rest) = header_block(body)?;
    if message_headers.is_empty() {
        return None;
    }
    let (mime_headers, content) = header_block(rest)?;
    let content_type = mime_headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("Content-Type"))
        .map_or("text/plain", |(_, value)| *value);
    if content_type.is_empty() {
        return None;
    }
    Some((content_type, content))
}

/// Reads header lines up to and including the blank line that ends them. Returns the
/// `(name, value)` pairs and the text after the blank line, or `None` when a line is not a
/// header or no blank line comes.
fn header_block(text: &str) -> Option<(Vec<(&str, &str)>, &str)> {
    let mut headers = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => return None,
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Some((headers, after));
        }
        if line.starts_with([' ', '\t']) {
            // A folded continuation of the previous header; its value keeps the first line.
            if headers.is_empty() {
                return None;
            }
        } else {
            let (name, value) = line.split_once(':')?;
            let token = |b: u8| b.is_ascii_graphic() && b != b':';
            if name.is_empty() || !name.bytes().all(token) {
                return None;
            }
            headers.push((name, value.trim()));
        }
        rest = after;
    }
}
