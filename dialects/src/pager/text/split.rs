//! Splitting a long text body into several MESSAGE bodies that each fit a byte limit.

/// The smallest limit [`split_body`] honours: one UTF-8 character always fits.
pub const MIN_SPLIT_BYTES: usize = 4;

/// Splits `text` into parts of at most `max_bytes` bytes each (limits below
/// [`MIN_SPLIT_BYTES`] are raised to it), cutting only on character boundaries. Concatenating
/// the parts gives back `text` exactly. A part ends after a line break when one lies in the
/// second half of the window, else after a space there, else after any earlier line break or
/// space, else at the last character boundary that fits (never between `\r` and `\n` when
/// avoidable). Text that fits is returned as one part; empty text gives no parts.
pub fn split_body(text: &str, max_bytes: usize) -> Vec<String> {
    let max = max_bytes.max(MIN_SPLIT_BYTES);
    let mut parts = Vec::with_capacity(text.len() / max + 1);
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= max {
            parts.push(rest.to_string());
            break;
        }
        let cut = cut_point(rest, max);
        let (head, tail) = rest.split_at(cut);
        parts.push(head.to_string());
        rest = tail;
    }
    parts
}

/// Where to end the next part of `s` (which is longer than `max`): a char boundary in
/// `1..=max`.
fn cut_point(s: &str, max: usize) -> usize {
    // Largest char boundary <= max; > 0 because a char is at most 4 bytes and max >= 4.
    let mut limit = max.min(s.len());
    while limit > 0 && !s.is_char_boundary(limit) {
        limit -= 1;
    }
    if limit == 0 {
        // Unreachable with max >= 4; cut after the first char to always make progress.
        return s.chars().next().map_or(s.len(), char::len_utf8);
    }
    let window = &s[..limit];
    let half = limit / 2;
    let newline = window.rfind('\n').map(|i| i + 1);
    let space = window.rfind([' ', '\t']).map(|i| i + 1);
    for candidate in [newline, space] {
        if let Some(cut) = candidate.filter(|&c| c > half) {
            return cut;
        }
    }
    if let Some(cut) = newline.or(space) {
        return cut;
    }
    if limit >= 2 && window.ends_with('\r') && s[limit..].starts_with('\n') {
        return limit - 1;
    }
    limit
}
