//! The owned XML element tree ([`Element`], [`Node`]) that stanzas are parsed into: builders,
//! namespace-aware accessors, and serialization that only writes `xmlns` where the namespace
//! changes.

use std::fmt;

use crate::xmpp::escape::{escape_attr, escape_text};
use crate::xmpp::framer::{Frame, Framer, Mode};
use crate::xmpp::parse::{parse_element, Scope};
use crate::xmpp::reader::{Limits, StreamError};

/// An XML element with its namespace resolved.
///
/// `attrs` holds attributes as written (without namespace declarations); `xml:lang` and other
/// prefixed attributes keep their prefix. When a parsed element carries an attribute with a
/// prefix other than `xml`, the parser also keeps an `xmlns:prefix` declaration for it among
/// the attributes so that the element still serializes to namespace-well-formed XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Local name (no prefix).
    pub name: String,
    /// Resolved namespace URI ("" for no namespace).
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// A child of an [`Element`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets an attribute, replacing an existing one of the same name.
    pub fn set_attr(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let idx = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(idx).1)
    }

    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Element {
        self.set_attr(name, value);
        self
    }

    pub fn with_child(mut self, child: Element) -> Element {
        self.append_child(child);
        self
    }

    pub fn append_child(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.append_text(text);
        self
    }

    /// Appends text, merging with a trailing text node; empty text is ignored.
    pub fn append_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        match self.children.last_mut() {
            Some(Node::Text(last)) => last.push_str(&text),
            _ => self.children.push(Node::Text(text)),
        }
    }

    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }

    /// Element children only.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn children_named<'a>(
        &'a self,
        name: &'a str,
        ns: &'a str,
    ) -> impl Iterator<Item = &'a Element> {
        self.children().filter(move |c| c.is(name, ns))
    }

    pub fn remove_children(&mut self, name: &str, ns: &str) {
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if e.is(name, ns)));
    }

    /// Concatenation of the direct text children.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    pub fn child_text(&self, name: &str, ns: &str) -> Option<String> {
        self.get_child(name, ns).map(Element::text)
    }

    /// Serialize. `parent_ns` is the default namespace in scope: `xmlns` is written only when
    /// `self.ns` differs (children inherit). A stanza written inside a `jabber:client` stream is
    /// written with `parent_ns` "jabber:client" and gets no `xmlns` attribute. An attribute
    /// literally named `xmlns` in `attrs` is ignored (`ns` is authoritative).
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        out.push(b'<');
        out.extend_from_slice(self.name.as_bytes());
        if self.ns != parent_ns {
            out.extend_from_slice(b" xmlns='");
            escape_attr(&self.ns, out);
            out.push(b'\'');
        }
        for (k, v) in &self.attrs {
            if k == "xmlns" {
                continue;
            }
            out.push(b' ');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(v, out);
            out.push(b'\'');
        }
        if self.children.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for child in &self.children {
            match child {
                Node::Element(e) => e.write_to(out, &self.ns),
                Node::Text(t) => escape_text(t, out),
            }
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'>');
    }

    pub fn to_bytes(&self, parent_ns: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out, parent_ns);
        out
    }

    /// Parse one complete standalone element from bytes (for tests, config, stored payloads),
    /// with the default [`Limits`]. Same safety rules as the stream reader. An optional leading
    /// XML declaration and surrounding whitespace are allowed; no namespace is in scope except
    /// the `xml` prefix.
    pub fn parse(bytes: &[u8]) -> Result<Element, StreamError> {
        Element::parse_with_limits(bytes, &Limits::default())
    }

    /// [`Element::parse`] with explicit limits (`max_stanza_bytes` bounds the whole input).
    pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Element, StreamError> {
        let mut framer = Framer::new(Mode::Fragment, limits);
        let mut frames = std::collections::VecDeque::new();
        framer.scan(bytes, 0, &mut frames)?;
        let mut root = None;
        for frame in frames {
            match frame {
                Frame::Stanza { start, end } if root.is_none() => {
                    let slice = bytes
                        .get(start..end)
                        .ok_or_else(|| StreamError::NotWellFormed("bad frame".into()))?;
                    root = Some(parse_element(slice, &Scope::default(), limits)?);
                }
                Frame::Error(e) => return Err(e),
                _ => {
                    return Err(StreamError::NotWellFormed(
                        "more than one root element".into(),
                    ))
                }
            }
        }
        if !framer.at_rest() {
            return Err(StreamError::NotWellFormed("unexpected end of input".into()));
        }
        root.ok_or_else(|| StreamError::NotWellFormed("no element".into()))
    }
}

/// Writes the element with no namespace in scope (so the top element carries its `xmlns`).
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes("");
        f.write_str(&String::from_utf8_lossy(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "jabber:client";

    fn msg() -> Element {
        Element::new("message", C)
            .with_attr("to", "room@muc.example")
            .with_attr("type", "groupchat")
            .with_child(Element::new("body", C).with_text("a < b & 'c'"))
            .with_child(Element::new("x", "urn:x").with_child(Element::new("y", "urn:x")))
    }

    #[test]
    fn accessors() {
        let mut m = msg();
        assert_eq!(m.attr("type"), Some("groupchat"));
        m.set_attr("type", "chat");
        assert_eq!(m.attr("type"), Some("chat"));
        assert_eq!(m.attrs.len(), 2);
        assert_eq!(m.remove_attr("to").as_deref(), Some("room@muc.example"));
        assert_eq!(m.remove_attr("to"), None);
        assert!(m.is("message", C));
        assert!(!m.is("message", "jabber:server"));
        assert_eq!(m.child_text("body", C).as_deref(), Some("a < b & 'c'"));
        assert_eq!(m.child_text("body", "other"), None);
        assert_eq!(m.children().count(), 2);
        assert_eq!(m.children_named("x", "urn:x").count(), 1);
        if let Some(x) = m.get_child_mut("x", "urn:x") {
            x.append_text("hi");
            x.append_text("");
            x.append_text(" there");
        }
        let x = m
            .get_child("x", "urn:x")
            .cloned()
            .unwrap_or_else(|| Element::new("", ""));
        assert_eq!(x.text(), "hi there");
        assert_eq!(x.children.len(), 2, "adjacent text merged");
        m.remove_children("body", C);
        assert!(m.get_child("body", C).is_none());
    }

    #[test]
    fn writes_xmlns_only_on_namespace_change() {
        let out = String::from_utf8(msg().to_bytes(C)).unwrap_or_default();
        assert_eq!(
            out,
            "<message to='room@muc.example' type='groupchat'><body>a &lt; b &amp; &apos;c&apos;\
             </body><x xmlns='urn:x'><y/></x></message>"
        );
        let shown = msg().to_string();
        assert!(shown.starts_with("<message xmlns='jabber:client' to="));
        let bare = Element::new("a", "").with_child(Element::new("b", "urn:b"));
        assert_eq!(bare.to_string(), "<a><b xmlns='urn:b'/></a>");
        let back_to_none = Element::new("a", "urn:a").with_child(Element::new("b", ""));
        assert_eq!(
            back_to_none.to_string(),
            "<a xmlns='urn:a'><b xmlns=''/></a>"
        );
        let bogus = Element::new("a", "urn:a").with_attr("xmlns", "urn:evil");
        assert_eq!(bogus.to_string(), "<a xmlns='urn:a'/>");
    }

    #[test]
    fn parse_round_trip() {
        let m = msg();
        assert_eq!(Element::parse(&m.to_bytes("")), Ok(m));
        let parsed = Element::parse(
            b"<?xml version='1.0'?>\n<a xmlns='urn:a' xmlns:p='urn:p' xml:lang='en'>\
              <p:b p:attr='1'>t&#x41;<![CDATA[<raw>]]></p:b></a> ",
        );
        let Ok(a) = parsed else {
            panic!("parse failed: {parsed:?}");
        };
        assert_eq!(a.attrs, vec![("xml:lang".to_string(), "en".to_string())]);
        let b = a
            .get_child("b", "urn:p")
            .cloned()
            .unwrap_or_else(|| Element::new("", ""));
        assert_eq!(b.text(), "tA<raw>");
        assert_eq!(b.attr("p:attr"), Some("1"));
        assert_eq!(b.attr("xmlns:p"), Some("urn:p"));
        assert_eq!(Element::parse(&a.to_bytes("")), Ok(a));
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert!(matches!(
            Element::parse(b""),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            Element::parse(b"<a>"),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            Element::parse(b"<a/><b/>"),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            Element::parse(b"<a></b>"),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            Element::parse(b"<p:a/>"),
            Err(StreamError::NotWellFormed(_))
        ));
        assert!(matches!(
            Element::parse(b"<a>&foo;</a>"),
            Err(StreamError::RestrictedXml(_))
        ));
        assert!(matches!(
            Element::parse(b"<a><!--c--></a>"),
            Err(StreamError::RestrictedXml(_))
        ));
        assert!(matches!(
            Element::parse(b"text"),
            Err(StreamError::BadFormat(_))
        ));
        assert!(matches!(
            Element::parse(b"<a>\xff</a>"),
            Err(StreamError::InvalidUtf8)
        ));
        let tiny = Limits {
            max_stanza_bytes: 8,
            ..Limits::default()
        };
        assert!(matches!(
            Element::parse_with_limits(b"<abcdefgh/>", &tiny),
            Err(StreamError::PolicyViolation(_))
        ));
    }
}
