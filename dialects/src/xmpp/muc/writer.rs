//! A small append-only XML writer used on the hot path: it writes escaped markup straight into
//! a byte buffer without building an element tree.

use crate::xmpp::escape::{escape_attr, escape_text};

/// Writes XML into a `Vec<u8>`. Callers pair `open`/`end` themselves.
pub struct XmlWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> XmlWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        XmlWriter { out }
    }
    /// `<name` (attributes follow).
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self
    }
    /// ` key='value'` with escaping.
    pub fn attr(&mut self, key: &str, value: &str) -> &mut Self {
        self.out.push(b' ');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"='");
        escape_attr(value, self.out);
        self.out.push(b'\'');
        self
    }
    /// `>`
    pub fn close_start(&mut self) -> &mut Self {
        self.out.push(b'>');
        self
    }
    /// `/>`
    pub fn close_empty(&mut self) -> &mut Self {
        self.out.extend_from_slice(b"/>");
        self
    }
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_text(text, self.out);
        self
    }
    /// Already-serialized, trusted markup (produced by our own serializer).
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.extend_from_slice(xml.as_bytes());
        self
    }
    /// `</name>`
    pub fn end(&mut self, name: &str) -> &mut Self {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
        self
    }
    /// `<name>text</name>`
    pub fn text_element(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name).close_start().text(text).end(name)
    }
}
