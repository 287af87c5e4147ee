//! Byte-level framing of an XMPP stream, before any XML parser sees the bytes: finds the end of
//! the (never closed) `<stream:stream>` header, of each depth-1 stanza and of the stream's
//! closing tag, while enforcing the size, depth and attribute-count limits and refusing
//! comments, DTDs and processing instructions. The scan is resumable at any byte, so feeding a
//! stream one byte at a time costs O(n) overall. All positions are absolute stream offsets.

use std::collections::VecDeque;

use crate::xmpp::reader::{Limits, StreamError};

/// A unit found by the framer; ranges are absolute byte offsets `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The stream header start tag.
    Header { start: usize, end: usize },
    /// A complete depth-1 element.
    Stanza { start: usize, end: usize },
    /// The stream's closing tag.
    Close,
    /// The framer found an error here; everything before it was framed fine.
    Error(StreamError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// An XMPP stream: header, stanzas, optional close.
    Stream,
    /// One standalone element (`Element::parse`).
    Fragment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the stream header (or, in fragment mode, before the root element).
    Prolog,
    Body,
    /// Stream closed or error found: nothing more is scanned.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Character data (or whitespace between stanzas).
    Text,
    /// Just after `<`.
    Lt,
    /// Inside a start tag; `quote` is the open quote byte of an attribute value, or 0.
    StartTag { quote: u8 },
    /// Saw `/` in a start tag outside quotes: `>` must follow.
    Slash,
    /// Inside an end tag.
    EndTag,
    /// Inside a processing instruction (only the XML declaration gets here).
    Pi { question: bool },
    /// After `<!`; `matched` bytes of `[CDATA[` seen.
    Bang { matched: u8 },
    /// Inside a CDATA section; `brackets` is the run of `]` just seen (capped at 2).
    CData { brackets: u8 },
}

const CDATA_OPEN: &[u8] = b"[CDATA[";

#[derive(Debug, Clone)]
pub(crate) struct Framer {
    mode: Mode,
    max_stanza_bytes: usize,
    max_header_bytes: usize,
    max_depth: usize,
    max_attrs: usize,
    phase: Phase,
    state: State,
    /// Open elements below the stream (the stanza itself is depth 1).
    depth: usize,
    /// Next byte to scan.
    pos: usize,
    /// Start of the unit being scanned (for the size limit and for buffer compaction).
    unit_start: usize,
    /// Position of the current `<`.
    tag_start: usize,
    /// Start of the current depth-1 element.
    elem_start: usize,
    attrs: usize,
    decl_seen: bool,
    root_done: bool,
    header_name: Vec<u8>,
    /// Absolute (offset, length) of the names of the open elements, to match end tags.
    open_names: Vec<(usize, usize)>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `buf[from..to]` for absolute offsets (empty if out of range; never panics).
fn slice(buf: &[u8], base: usize, from: usize, to: usize) -> &[u8] {
    match (from.checked_sub(base), to.checked_sub(base)) {
        (Some(f), Some(t)) => buf.get(f..t).unwrap_or_default(),
        _ => &[],
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

impl Framer {
    pub(crate) fn new(mode: Mode, limits: &Limits) -> Framer {
        Framer {
            mode,
            max_stanza_bytes: limits.max_stanza_bytes,
            max_header_bytes: limits.max_stream_header_bytes,
            max_depth: limits.max_depth,
            max_attrs: limits.max_attrs,
            phase: Phase::Prolog,
            state: State::Text,
            depth: 0,
            pos: 0,
            unit_start: 0,
            tag_start: 0,
            elem_start: 0,
            attrs: 0,
            decl_seen: false,
            root_done: false,
            header_name: Vec::new(),
            open_names: Vec::new(),
        }
    }

    /// The earliest absolute offset the framer may still need.
    pub(crate) fn unit_start(&self) -> usize {
        self.unit_start
    }

    /// Size limit for the unit being scanned.
    pub(crate) fn unit_limit(&self) -> usize {
        if self.mode == Mode::Stream && self.phase == Phase::Prolog {
            self.max_header_bytes
        } else {
            self.max_stanza_bytes
        }
    }

    /// True once the stream closed or an error was framed: further input is ignored.
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// True when no unit is partially scanned (outside any markup at depth 0).
    pub(crate) fn at_rest(&self) -> bool {
        self.state == State::Text && self.depth == 0
    }

    /// Scans `buf` (which starts at absolute offset `base`) from where the last scan stopped,
    /// appending complete frames to `out`. A violation of the size limit is returned at once
    /// (`Err`); any other problem is appended as [`Frame::Error`] after the frames before it.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        base: usize,
        out: &mut VecDeque<Frame>,
    ) -> Result<(), StreamError> {
        while self.phase != Phase::Done {
            let Some(i) = self.pos.checked_sub(base).filter(|i| *i < buf.len()) else {
                break;
            };
            let limit = self.unit_limit();
            if self.state == State::Text && self.depth > 0 {
                // Character data inside a stanza: nothing happens until the next `<`, so jump
                // there (but never past the size limit, which the byte loop then reports).
                let room = (self.unit_start + limit).saturating_sub(self.pos);
                let rest = buf.get(i..).unwrap_or_default();
                let window = rest.get(..room.min(rest.len())).unwrap_or_default();
                let skip = memchr::memchr(b'<', window).unwrap_or(window.len());
                if skip > 0 {
                    self.pos += skip;
                    continue;
                }
            }
            let Some(&b) = buf.get(i) else {
                break;
            };
            if self.pos + 1 - self.unit_start > limit {
                let what = if self.phase == Phase::Prolog && self.mode == Mode::Stream {
                    "stream header"
                } else {
                    "stanza"
                };
                self.phase = Phase::Done;
                return Err(StreamError::PolicyViolation(format!(
                    "{what} larger than {limit} bytes"
                )));
            }
            if let Err(e) = self.step(b, buf, base, out) {
                self.phase = Phase::Done;
                out.push_back(Frame::Error(e));
                break;
            }
            self.pos += 1;
            if self.depth == 0 && self.state == State::Text && self.phase == Phase::Body {
                self.unit_start = self.pos;
            }
        }
        Ok(())
    }

    fn step(
        &mut self,
        b: u8,
        buf: &[u8],
        base: usize,
        out: &mut VecDeque<Frame>,
    ) -> Result<(), StreamError> {
        match self.state {
            State::Text => {
                if b == b'<' {
                    self.tag_start = self.pos;
                    self.state = State::Lt;
                } else if self.depth == 0 && !is_ws(b) {
                    let msg = match self.phase {
                        Phase::Prolog if self.mode == Mode::Stream => "text before stream header",
                        _ => "text outside a stanza",
                    };
                    return Err(StreamError::BadFormat(msg.into()));
                }
            }
            State::Lt => match b {
                b'/' => {
                    if self.depth == 0
                        && (self.phase == Phase::Prolog || self.mode == Mode::Fragment)
                    {
                        return Err(StreamError::NotWellFormed("unexpected end tag".into()));
                    }
                    self.state = State::EndTag;
                }
                b'?' => {
                    if self.phase == Phase::Prolog && !self.decl_seen {
                        self.state = State::Pi { question: false };
                    } else {
                        return Err(StreamError::RestrictedXml("processing instruction".into()));
                    }
                }
                b'!' => self.state = State::Bang { matched: 0 },
                b if is_name_start(b) => {
                    self.attrs = 0;
                    self.state = State::StartTag { quote: 0 };
                }
                _ => {
                    return Err(StreamError::NotWellFormed(
                        "invalid character after '<'".into(),
                    ))
                }
            },
            State::StartTag { quote } => {
                if quote != 0 {
                    if b == quote {
                        self.state = State::StartTag { quote: 0 };
                    } else if b == b'<' {
                        return Err(StreamError::NotWellFormed("'<' in attribute value".into()));
                    }
                } else {
                    match b {
                        b'\'' | b'"' => {
                            self.attrs += 1;
                            if self.attrs > self.max_attrs {
                                return Err(StreamError::PolicyViolation(format!(
                                    "more than {} attributes",
                                    self.max_attrs
                                )));
                            }
                            self.state = State::StartTag { quote: b };
                        }
                        b'<' => return Err(StreamError::NotWellFormed("'<' in a tag".into())),
                        b'/' => self.state = State::Slash,
                        b'>' => self.open_tag(false, buf, base, out)?,
                        _ => {}
                    }
                }
            }
            State::Slash => {
                if b != b'>' {
                    return Err(StreamError::NotWellFormed("'/' not followed by '>'".into()));
                }
                self.open_tag(true, buf, base, out)?;
            }
            State::EndTag => match b {
                b'>' => self.close_tag(buf, base, out)?,
                b'<' | b'\'' | b'"' => {
                    return Err(StreamError::NotWellFormed("malformed end tag".into()))
                }
                _ => {}
            },
            State::Pi { question } => {
                if question && b == b'>' {
                    self.end_decl(buf, base)?;
                    self.state = State::Text;
                } else {
                    self.state = State::Pi {
                        question: b == b'?',
                    };
                }
            }
            State::Bang { matched } => {
                if self.depth == 0 && b == b'[' {
                    return Err(StreamError::BadFormat("CDATA outside a stanza".into()));
                }
                if CDATA_OPEN.get(usize::from(matched)) == Some(&b) {
                    let matched = matched + 1;
                    self.state = if usize::from(matched) == CDATA_OPEN.len() {
                        State::CData { brackets: 0 }
                    } else {
                        State::Bang { matched }
                    };
                } else if matched == 0 && b == b'-' {
                    return Err(StreamError::RestrictedXml("comment".into()));
                } else if matched == 0 {
                    return Err(StreamError::RestrictedXml(
                        "DTD or markup declaration".into(),
                    ));
                } else {
                    return Err(StreamError::NotWellFormed("malformed CDATA section".into()));
                }
            }
            State::CData { brackets } => {
                self.state = match b {
                    b']' => State::CData {
                        brackets: (brackets + 1).min(2),
                    },
                    b'>' if brackets == 2 => State::Text,
                    _ => State::CData { brackets: 0 },
                };
            }
        }
        Ok(())
    }

    fn open_tag(
        &mut self,
        empty: bool,
        buf: &[u8],
        base: usize,
        out: &mut VecDeque<Frame>,
    ) -> Result<(), StreamError> {
        self.state = State::Text;
        let end = self.pos + 1;
        if self.phase == Phase::Prolog && self.mode == Mode::Stream {
            let tag = slice(buf, base, self.tag_start + 1, end);
            let len = tag
                .iter()
                .position(|&c| is_ws(c) || c == b'/' || c == b'>')
                .unwrap_or(tag.len());
            self.header_name = tag[..len].to_vec();
            out.push_back(Frame::Header {
                start: self.tag_start,
                end,
            });
            self.phase = Phase::Body;
            self.unit_start = end;
            if empty {
                out.push_back(Frame::Close);
                self.phase = Phase::Done;
            }
            return Ok(());
        }
        self.phase = Phase::Body;
        if self.depth == 0 {
            if self.root_done && self.mode == Mode::Fragment {
                return Err(StreamError::NotWellFormed(
                    "more than one root element".into(),
                ));
            }
            self.elem_start = self.tag_start;
        }
        if self.depth + 1 > self.max_depth {
            return Err(StreamError::DepthExceeded);
        }
        if empty {
            if self.depth == 0 {
                self.finish_stanza(end, out);
            }
        } else {
            let tag = slice(buf, base, self.tag_start + 1, end);
            let len = tag
                .iter()
                .position(|&c| is_ws(c) || c == b'/' || c == b'>')
                .unwrap_or(tag.len());
            self.open_names.push((self.tag_start + 1, len));
            self.depth += 1;
        }
        Ok(())
    }

    fn close_tag(
        &mut self,
        buf: &[u8],
        base: usize,
        out: &mut VecDeque<Frame>,
    ) -> Result<(), StreamError> {
        self.state = State::Text;
        let end = self.pos + 1;
        if self.depth == 0 {
            // Only reachable in stream mode after the header: the stream's closing tag.
            let name = slice(buf, base, self.tag_start + 2, end - 1);
            let trimmed_len = name.iter().rposition(|&c| !is_ws(c)).map_or(0, |i| i + 1);
            if name[..trimmed_len] != self.header_name[..] {
                return Err(StreamError::NotWellFormed(
                    "end tag does not match the stream header".into(),
                ));
            }
            out.push_back(Frame::Close);
            self.phase = Phase::Done;
            return Ok(());
        }
        let name = slice(buf, base, self.tag_start + 2, end - 1);
        let name = &name[..name.iter().rposition(|&c| !is_ws(c)).map_or(0, |i| i + 1)];
        let open = self
            .open_names
            .pop()
            .map(|(at, len)| slice(buf, base, at, at + len));
        if open != Some(name) {
            return Err(StreamError::NotWellFormed(
                "end tag does not match the open element".into(),
            ));
        }
        self.depth -= 1;
        if self.depth == 0 {
            self.finish_stanza(end, out);
        }
        Ok(())
    }

    fn finish_stanza(&mut self, end: usize, out: &mut VecDeque<Frame>) {
        out.push_back(Frame::Stanza {
            start: self.elem_start,
            end,
        });
        self.root_done = true;
        self.unit_start = end;
    }

    /// Validates a complete `<?...?>` seen before the header: only the XML declaration is
    /// allowed (once), and it must not name an encoding other than UTF-8.
    fn end_decl(&mut self, buf: &[u8], base: usize) -> Result<(), StreamError> {
        let body = slice(buf, base, self.tag_start + 2, self.pos - 1);
        let target_len = body.iter().position(|&c| is_ws(c)).unwrap_or(body.len());
        if &body[..target_len] != b"xml" {
            return Err(StreamError::RestrictedXml("processing instruction".into()));
        }
        self.decl_seen = true;
        let text =
            std::str::from_utf8(&body[target_len..]).map_err(|_| StreamError::InvalidUtf8)?;
        let mut rest = text.trim_start_matches([' ', '\t', '\r', '\n']);
        let mut saw_version = false;
        while !rest.is_empty() {
            let eq = rest
                .find('=')
                .ok_or_else(|| StreamError::NotWellFormed("malformed XML declaration".into()))?;
            let key = rest[..eq].trim_end();
            let value_part = rest[eq + 1..].trim_start();
            let quote = value_part
                .chars()
                .next()
                .filter(|c| *c == '\'' || *c == '"')
                .ok_or_else(|| StreamError::NotWellFormed("malformed XML declaration".into()))?;
            let inner = &value_part[1..];
            let close = inner
                .find(quote)
                .ok_or_else(|| StreamError::NotWellFormed("malformed XML declaration".into()))?;
            let value = &inner[..close];
            match key {
                "version" if value.starts_with("1.") => saw_version = true,
                "encoding" if value.eq_ignore_ascii_case("utf-8") => {}
                "encoding" => return Err(StreamError::InvalidUtf8),
                "standalone" if saw_version => {}
                _ => {
                    return Err(StreamError::NotWellFormed(format!(
                        "bad XML declaration item {key}"
                    )))
                }
            }
            rest = inner[close + 1..].trim_start();
        }
        if !saw_version {
            return Err(StreamError::NotWellFormed(
                "XML declaration without version".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(mode: Mode, input: &[u8]) -> Vec<Frame> {
        let mut f = Framer::new(mode, &Limits::default());
        let mut out = VecDeque::new();
        if let Err(e) = f.scan(input, 0, &mut out) {
            out.push_back(Frame::Error(e));
        }
        out.into_iter().collect()
    }

    #[test]
    fn frames_header_stanzas_and_close() {
        let s = b"<?xml version='1.0' encoding=\"UTF-8\"?> <s:stream a='>'> <a/>\n<b x=\"/>\"><c>t</c></b></s:stream >";
        let got = frames(Mode::Stream, s);
        let text = |start: usize, end: usize| String::from_utf8_lossy(&s[start..end]).to_string();
        let spans: Vec<String> = got
            .iter()
            .map(|f| match f {
                Frame::Header { start, end } | Frame::Stanza { start, end } => text(*start, *end),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            spans,
            vec![
                "<s:stream a='>'>",
                "<a/>",
                "<b x=\"/>\"><c>t</c></b>",
                "Close"
            ]
        );
    }

    #[test]
    fn refuses_bad_markup() {
        let err = |mode, input: &[u8]| frames(mode, input).pop();
        assert!(matches!(
            err(Mode::Stream, b"<?xml version='1.0' encoding='latin1'?>"),
            Some(Frame::Error(StreamError::InvalidUtf8))
        ));
        assert!(matches!(
            err(Mode::Stream, b"<?xml-stylesheet x?>"),
            Some(Frame::Error(StreamError::RestrictedXml(_)))
        ));
        assert!(matches!(
            err(Mode::Stream, b"<s><a><![CDATA[x]]]></a><![CDATA[y]]>"),
            Some(Frame::Error(StreamError::BadFormat(_)))
        ));
        assert!(matches!(
            err(Mode::Stream, b"<s><a><![CDAT x"),
            Some(Frame::Error(StreamError::NotWellFormed(_)))
        ));
        assert!(matches!(
            err(Mode::Stream, b"<s></t>"),
            Some(Frame::Error(StreamError::NotWellFormed(_)))
        ));
        assert!(matches!(
            err(Mode::Fragment, b"<a/ >"),
            Some(Frame::Error(StreamError::NotWellFormed(_)))
        ));
        assert!(matches!(
            err(Mode::Fragment, b"<a b='<'/>"),
            Some(Frame::Error(StreamError::NotWellFormed(_)))
        ));
    }
}
