//! Turns framed bytes (one stanza, or the stream header) into [`Element`]s with quick-xml:
//! namespace resolution against a scope seeded from the stream header, attribute and text
//! decoding without entity expansion (predefined and numeric references only), XML name and
//! character checks.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::xmpp::element::{Element, Node};
use crate::xmpp::escape::{push_cdata, push_char_data, resolve_ref, unescape_attr};
use crate::xmpp::reader::{Limits, StreamError};

pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// In-scope namespace bindings; `None` is the default namespace. Later entries shadow earlier.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    bindings: Vec<(Option<String>, String)>,
}

impl Scope {
    /// The innermost binding of `prefix` (`None`: the default namespace) in this scope alone.
    fn find(&self, prefix: Option<&str>) -> Option<&str> {
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p.as_deref() == prefix)
            .map(|(_, ns)| ns.as_str())
    }

    pub(crate) fn default_ns(&self) -> &str {
        self.find(None).unwrap_or_default()
    }
}

/// Namespace bound to `prefix` by `local` (declarations inside the element being parsed) or
/// else by `base` (the stream header); the default namespace is "" when undeclared.
fn resolve<'a>(base: &'a Scope, local: &'a Scope, prefix: Option<&str>) -> Option<&'a str> {
    if prefix == Some("xml") {
        return Some(XML_NS);
    }
    let found = local.find(prefix).or_else(|| base.find(prefix));
    match (found, prefix) {
        (None, None) => Some(""),
        (found, _) => found,
    }
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// XML 1.0 `Name`.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

fn is_ncname(s: &str) -> bool {
    !s.contains(':') && is_name(s)
}

/// Splits a QName into (prefix, local), checking both parts are NCNames.
fn split_qname(qname: &str) -> Result<(Option<&str>, &str), StreamError> {
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname),
    };
    if !is_ncname(local) || !prefix.is_none_or(is_ncname) {
        return Err(StreamError::NotWellFormed(format!(
            "invalid name {qname:?}"
        )));
    }
    Ok((prefix, local))
}

fn nwf(msg: impl std::fmt::Display) -> StreamError {
    StreamError::NotWellFormed(msg.to_string())
}

/// Reads a start tag: declares its namespaces in `scope` and returns the element (no
/// children) with its namespace resolved.
fn open_element(
    start: &BytesStart<'_>,
    base: &Scope,
    scope: &mut Scope,
    limits: &Limits,
    header: bool,
) -> Result<Element, StreamError> {
    let qname =
        std::str::from_utf8(start.name().into_inner()).map_err(|_| StreamError::InvalidUtf8)?;
    let (prefix, local) = split_qname(qname)?;
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut count = 0;
    for attr in start.attributes().with_checks(true) {
        let attr = attr.map_err(nwf)?;
        count += 1;
        if count > limits.max_attrs {
            return Err(StreamError::PolicyViolation(format!(
                "more than {} attributes",
                limits.max_attrs
            )));
        }
        let key =
            std::str::from_utf8(attr.key.into_inner()).map_err(|_| StreamError::InvalidUtf8)?;
        let raw = std::str::from_utf8(&attr.value).map_err(|_| StreamError::InvalidUtf8)?;
        let value = unescape_attr(raw)?;
        if key == "xmlns" {
            if value == XML_NS || value == XMLNS_NS {
                return Err(nwf("reserved namespace as default namespace"));
            }
            scope.bindings.push((None, value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            let bad = !is_ncname(p)
                || p == "xmlns"
                || value.is_empty()
                || value == XMLNS_NS
                || (p == "xml") != (value == XML_NS);
            if bad {
                return Err(nwf(format!("invalid namespace declaration {key}")));
            }
            scope.bindings.push((Some(p.to_string()), value));
        } else {
            split_qname(key)?;
            attrs.push((key.to_string(), value));
        }
    }
    let ns = match resolve(base, scope, prefix) {
        Some(ns) => ns.to_string(),
        None if header => {
            return Err(StreamError::InvalidNamespace(format!(
                "unbound prefix in {qname}"
            )))
        }
        None => return Err(nwf(format!("unbound prefix in {qname}"))),
    };
    // Resolve attribute prefixes; keep a declaration for each non-`xml` prefix so that the
    // element serializes to namespace-well-formed XML.
    let mut expanded: Vec<(&str, &str)> = Vec::with_capacity(attrs.len());
    let mut redeclare: Vec<(String, String)> = Vec::new();
    for (key, _) in &attrs {
        let (attr_prefix, attr_local) = split_qname(key)?;
        let attr_ns = match attr_prefix {
            None => "",
            Some(p) => {
                let uri = resolve(base, scope, Some(p))
                    .ok_or_else(|| nwf(format!("unbound prefix in attribute {key}")))?;
                let decl = format!("xmlns:{p}");
                if p != "xml" && !redeclare.iter().any(|(k, _)| *k == decl) {
                    redeclare.push((decl, uri.to_string()));
                }
                uri
            }
        };
        if expanded.contains(&(attr_ns, attr_local)) {
            return Err(nwf(format!("duplicate attribute {key}")));
        }
        expanded.push((attr_ns, attr_local));
    }
    attrs.extend(redeclare);
    Ok(Element {
        name: local.to_string(),
        ns,
        attrs,
        children: Vec::new(),
    })
}

fn push_text(
    stack: &mut [(Element, usize)],
    f: impl FnOnce(&mut String) -> Result<(), StreamError>,
) -> Result<(), StreamError> {
    let Some((top, _)) = stack.last_mut() else {
        return Err(nwf("text outside the root element"));
    };
    if !matches!(top.children.last(), Some(Node::Text(_))) {
        top.children.push(Node::Text(String::new()));
    }
    if let Some(Node::Text(t)) = top.children.last_mut() {
        f(t)?;
    }
    if matches!(top.children.last(), Some(Node::Text(t)) if t.is_empty()) {
        top.children.pop();
    }
    Ok(())
}

fn reader(text: &str) -> Reader<&[u8]> {
    let mut reader = Reader::from_reader(text.as_bytes());
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.allow_dangling_amp = false;
    config.allow_unmatched_ends = false;
    reader
}

/// Parses one complete element (as framed) with the namespaces of `scope` in effect.
pub(crate) fn parse_element(
    bytes: &[u8],
    scope: &Scope,
    limits: &Limits,
) -> Result<Element, StreamError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StreamError::InvalidUtf8)?;
    let mut reader = reader(text);
    let base = scope;
    // Declarations made inside the stanza.
    let mut scope = Scope::default();
    // Open elements with the scope length to restore when they close.
    let mut stack: Vec<(Element, usize)> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(nwf)?;
        let finished = match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(nwf("content after the root element"));
            }
            Event::Start(start) => {
                if stack.len() + 1 > limits.max_depth {
                    return Err(StreamError::DepthExceeded);
                }
                let mark = scope.bindings.len();
                let el = open_element(&start, base, &mut scope, limits, false)?;
                stack.push((el, mark));
                None
            }
            Event::Empty(start) => {
                if stack.len() + 1 > limits.max_depth {
                    return Err(StreamError::DepthExceeded);
                }
                let mark = scope.bindings.len();
                let el = open_element(&start, base, &mut scope, limits, false)?;
                scope.bindings.truncate(mark);
                Some(el)
            }
            Event::End(_) => {
                let (el, mark) = stack.pop().ok_or_else(|| nwf("unexpected end tag"))?;
                scope.bindings.truncate(mark);
                Some(el)
            }
            Event::Text(t) => {
                let raw = std::str::from_utf8(&t).map_err(|_| StreamError::InvalidUtf8)?;
                if !raw.is_empty() {
                    push_text(&mut stack, |s| push_char_data(raw, s))?;
                }
                None
            }
            Event::GeneralRef(r) => {
                let name = std::str::from_utf8(&r).map_err(|_| StreamError::InvalidUtf8)?;
                let c = resolve_ref(name)?;
                push_text(&mut stack, |s| {
                    s.push(c);
                    Ok(())
                })?;
                None
            }
            Event::CData(c) => {
                let raw = std::str::from_utf8(&c).map_err(|_| StreamError::InvalidUtf8)?;
                push_text(&mut stack, |s| push_cdata(raw, s))?;
                None
            }
            Event::Comment(_) => return Err(StreamError::RestrictedXml("comment".into())),
            Event::PI(_) | Event::Decl(_) => {
                return Err(StreamError::RestrictedXml("processing instruction".into()))
            }
            Event::DocType(_) => return Err(StreamError::RestrictedXml("DOCTYPE".into())),
            Event::Eof => break,
        };
        if let Some(el) = finished {
            match stack.last_mut() {
                Some((parent, _)) => parent.children.push(Node::Element(el)),
                None => root = Some(el),
            }
        }
    }
    if !stack.is_empty() {
        return Err(nwf("unexpected end of element"));
    }
    root.ok_or_else(|| nwf("no element"))
}

/// Parses the stream header start tag: returns the header element (no children) and the
/// scope its declarations establish for the stanzas.
pub(crate) fn parse_header(bytes: &[u8], limits: &Limits) -> Result<(Element, Scope), StreamError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StreamError::InvalidUtf8)?;
    let mut reader = reader(text);
    let mut scope = Scope::default();
    match reader.read_event().map_err(nwf)? {
        Event::Start(start) | Event::Empty(start) => {
            let el = open_element(&start, &Scope::default(), &mut scope, limits, true)?;
            Ok((el, scope))
        }
        _ => Err(nwf("expected the stream header")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Element, StreamError> {
        parse_element(s.as_bytes(), &Scope::default(), &Limits::default())
    }

    #[test]
    fn names() {
        assert!(is_name("a:b-c.d_1"));
        assert!(is_name("été"));
        assert!(!is_name("1a"));
        assert!(!is_name(""));
        assert!(!is_name("a b"));
        assert!(split_qname("a:b:c").is_err());
        assert!(split_qname(":a").is_err());
    }

    #[test]
    fn namespaces() {
        let Ok(e) = parse("<a xmlns='u1' xmlns:p='u2'><p:b/><c xmlns=''/><d/></a>") else {
            panic!("parse failed");
        };
        let ns: Vec<&str> = e.children().map(|c| c.ns.as_str()).collect();
        assert_eq!(ns, ["u2", "", "u1"]);
        assert!(e.attrs.is_empty());
        assert!(parse("<a xmlns:p=''/>").is_err());
        assert!(parse("<a xmlns:xml='u'/>").is_err());
        assert!(parse("<a xmlns:x='http://www.w3.org/XML/1998/namespace'/>").is_err());
        assert!(parse("<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>").is_err());
        assert!(parse("<a x='1' x='2'/>").is_err());
        assert!(parse("<a p:x='1'/>").is_err());
        assert!(parse("<a b/>").is_err());
        assert!(parse("<a xml:lang='en'/>").is_ok());
    }
}
