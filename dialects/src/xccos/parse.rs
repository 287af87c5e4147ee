//! Reading a client's `<xccos>` envelope: the root's `envid`, then each child as a typed
//! [`Command`] (`<cmd id="cmd:NAME" seqid="S"><data>…</data></cmd>`) or [`Grpchat`] (a room
//! message). The XML goes through the XMPP element parser, so the same limits hold: bounded
//! size, depth and attributes, no DTD, no entity other than the five predefined ones.
//! Commands palaver does not know parse as [`CommandKind::Unknown`] (answered with an error
//! code, the session kept); a malformed envelope is an [`XccosError`] (400 to the INFO).

use super::addr::{parse_channel_uri, ChanId};
use super::NS;
use crate::xmpp::element::Element;
use crate::xmpp::reader::Limits;

/// Deepest nesting of an envelope (xccos/cmd/data/chanib/bcq/last is 6).
const MAX_DEPTH: usize = 12;
/// Most commands or messages in one envelope.
const MAX_ITEMS: usize = 32;
/// Most channels in one (b)join.
const MAX_CHANNELS: usize = 256;
/// Largest history asked for by one bccontext.
pub const MAX_CONTEXT: u32 = 500;

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XccosError {
    #[error("not well-formed XCCOS: {0}")]
    Malformed(String),
    #[error("the root element is not <xccos xmlns='urn:parlano:xml:ns:xccos'>")]
    NotXccos,
    #[error("too many items in one envelope")]
    TooManyItems,
}

/// One envelope from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sender's envelope counter (echoed in replies' `<commandid envid>`); `None` when
    /// absent or not a number.
    pub envid: Option<u64>,
    pub items: Vec<Item>,
}

/// A child of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Command(Command),
    Grpchat(Grpchat),
    /// A `<rpl>`/`<ntc>` or anything else a client has no business sending: ignored.
    Ignored(String),
}

/// A request (`<cmd>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The name after `cmd:` (`join`, `bccontext`, …), lower-cased.
    pub name: String,
    pub seqid: String,
    pub kind: CommandKind,
}

/// What a command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    /// `cmd:requri`: which URI the chat server (pool) has.
    RequestUri,
    /// `cmd:getserverinfo`: limits and the category root.
    ServerInfo,
    /// `cmd:join` (one channel) or `cmd:bjoin` (the rooms a client had open).
    Join { channels: Vec<ChanId>, batch: bool },
    /// `cmd:bccontext`: the last `last` messages of a channel.
    Context { channel: String, last: u32 },
    /// `cmd:part`.
    Part { channel: String },
    /// `cmd:chansrch`: rooms by name (`criteria` a substring; empty lists all) or by
    /// category (`criteria` a `ma-cat://` URI).
    Search {
        by_category: bool,
        criteria: String,
        extended: bool,
    },
    /// `cmd:getinv`: pending invitations.
    Invitations,
    /// A command that is missing what it needs (answered 400).
    Invalid(String),
    /// A command palaver does not implement (answered 501).
    Unknown,
}

/// A room message (`<grpchat>`), either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grpchat {
    pub seqid: String,
    /// `ma-chan://…` of the room.
    pub channel: String,
    /// `sip:…` of the author as the client claims it (the server uses the dialog's user).
    pub author: String,
    /// `ts` as sent (ISO-8601 UTC), if any.
    pub ts: Option<String>,
    /// The `<chat>` text (line breaks LF: XML normalises the CRLF clients send).
    pub text: String,
}

/// Parses an envelope of at most `max_bytes`.
pub fn parse_envelope(body: &[u8], max_bytes: usize) -> Result<Envelope, XccosError> {
    let limits = Limits {
        max_stanza_bytes: max_bytes,
        max_depth: MAX_DEPTH,
        max_attrs: 16,
        ..Limits::default()
    };
    let root = Element::parse_with_limits(body, &limits)
        .map_err(|e| XccosError::Malformed(e.to_string()))?;
    if root.name != "xccos" || root.ns != NS {
        return Err(XccosError::NotXccos);
    }
    let envid = root.attr("envid").and_then(|v| v.trim().parse().ok());
    let mut items = Vec::new();
    for child in root.children() {
        if items.len() == MAX_ITEMS {
            return Err(XccosError::TooManyItems);
        }
        items.push(match child.name.as_str() {
            "cmd" if child.ns == NS => Item::Command(command(child)),
            "grpchat" if child.ns == NS => Item::Grpchat(grpchat(child)?),
            other => Item::Ignored(other.to_string()),
        });
    }
    Ok(Envelope { envid, items })
}

fn command(cmd: &Element) -> Command {
    let id = cmd.attr("id").unwrap_or_default();
    let name = id
        .strip_prefix("cmd:")
        .unwrap_or(id)
        .trim()
        .to_ascii_lowercase();
    let seqid = cmd.attr("seqid").unwrap_or("1").to_string();
    let data = cmd.get_child("data", NS);
    let kind = match name.as_str() {
        "requri" => CommandKind::RequestUri,
        "getserverinfo" => CommandKind::ServerInfo,
        "join" | "bjoin" => join(data, name == "bjoin"),
        "bccontext" => context(data),
        "part" => match channel_of(data) {
            Some(channel) => CommandKind::Part { channel },
            None => CommandKind::Invalid("part names no channel".into()),
        },
        "chansrch" => search(data),
        "getinv" => CommandKind::Invitations,
        _ => CommandKind::Unknown,
    };
    Command { name, seqid, kind }
}

fn join(data: Option<&Element>, batch: bool) -> CommandKind {
    let mut channels = Vec::new();
    for e in data
        .into_iter()
        .flat_map(|d| d.children_named("chanid", NS))
    {
        if channels.len() == MAX_CHANNELS {
            return CommandKind::Invalid("too many channels".into());
        }
        match ChanId::from_element(e) {
            Some(c) => channels.push(c),
            None => return CommandKind::Invalid("chanid without domain or value".into()),
        }
    }
    // Lync also names channels by URI (`<chanib uri>`).
    for e in data
        .into_iter()
        .flat_map(|d| d.children_named("chanib", NS))
    {
        let Some((domain, value)) = e.attr("uri").and_then(parse_channel_uri) else {
            return CommandKind::Invalid("chanib without a ma-chan uri".into());
        };
        if channels.len() == MAX_CHANNELS {
            return CommandKind::Invalid("too many channels".into());
        }
        channels.push(ChanId {
            key: channels.len().to_string(),
            domain: domain.to_string(),
            value: value.to_string(),
        });
    }
    if channels.is_empty() {
        return CommandKind::Invalid("join names no channel".into());
    }
    CommandKind::Join { channels, batch }
}

/// The `ma-chan` URI of the command's `<chanib uri>` (or `<chanid>`).
fn channel_of(data: Option<&Element>) -> Option<String> {
    let data = data?;
    if let Some(uri) = data
        .get_child("chanib", NS)
        .and_then(|c| c.attr("uri"))
        .filter(|u| parse_channel_uri(u).is_some())
    {
        return Some(uri.to_string());
    }
    data.get_child("chanid", NS)
        .and_then(ChanId::from_element)
        .map(|c| c.uri())
}

fn context(data: Option<&Element>) -> CommandKind {
    let Some(channel) = channel_of(data) else {
        return CommandKind::Invalid("bccontext names no channel".into());
    };
    let last = data
        .and_then(|d| d.get_child("bcq", NS))
        .and_then(|q| q.get_child("last", NS))
        .and_then(|l| l.attr("cnt"))
        .and_then(|c| c.trim().parse::<u32>().ok())
        .unwrap_or(25)
        .min(MAX_CONTEXT);
    CommandKind::Context { channel, last }
}

fn search(data: Option<&Element>) -> CommandKind {
    let Some(qib) = data.and_then(|d| d.get_child("qib", NS)) else {
        return CommandKind::Search {
            by_category: false,
            criteria: String::new(),
            extended: false,
        };
    };
    let qtype = qib.attr("qtype").unwrap_or("BYNAME");
    let by_category = if qtype.eq_ignore_ascii_case("BYNAME") {
        false
    } else if qtype.eq_ignore_ascii_case("BYCATEGORY") || qtype.eq_ignore_ascii_case("BYCAT") {
        true
    } else {
        return CommandKind::Invalid(format!("unknown search type {qtype}"));
    };
    CommandKind::Search {
        by_category,
        criteria: qib.attr("criteria").unwrap_or_default().to_string(),
        extended: qib
            .attr("extended")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    }
}

fn grpchat(e: &Element) -> Result<Grpchat, XccosError> {
    let channel = e
        .attr("chanUri")
        .filter(|u| parse_channel_uri(u).is_some())
        .ok_or_else(|| XccosError::Malformed("grpchat without a ma-chan chanUri".into()))?;
    let text = e
        .get_child("chat", NS)
        .map(Element::text)
        .ok_or_else(|| XccosError::Malformed("grpchat without <chat>".into()))?;
    Ok(Grpchat {
        seqid: e.attr("seqid").unwrap_or("1").to_string(),
        channel: channel.to_string(),
        author: e.attr("author").unwrap_or_default().to_string(),
        ts: e.attr("ts").map(str::to_string),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(inner: &str) -> Envelope {
        let body = format!("<xccos ver=\"1\" envid=\"77\" xmlns=\"{NS}\">{inner}</xccos>");
        parse_envelope(body.as_bytes(), 64 * 1024).expect("parses")
    }

    fn kind(inner: &str) -> CommandKind {
        match env(inner).items.into_iter().next() {
            Some(Item::Command(c)) => c.kind,
            other => panic!("not a command: {other:?}"),
        }
    }

    #[test]
    fn sipe_commands_parse() {
        assert_eq!(
            kind("<cmd id=\"cmd:requri\" seqid=\"1\"><data/></cmd>"),
            CommandKind::RequestUri
        );
        assert_eq!(
            kind("<cmd id=\"cmd:bjoin\" seqid=\"1\"><data><chanid key=\"0\" domain=\"d\" value=\"a\"/><chanid key=\"1\" domain=\"d\" value=\"b\"/></data></cmd>"),
            CommandKind::Join {
                channels: vec![
                    ChanId { key: "0".into(), domain: "d".into(), value: "a".into() },
                    ChanId { key: "1".into(), domain: "d".into(), value: "b".into() },
                ],
                batch: true
            }
        );
        assert_eq!(
            kind("<cmd id=\"cmd:bccontext\" seqid=\"1\"><data><chanib uri=\"ma-chan://d/a\"/><bcq><last cnt=\"25\"/></bcq></data></cmd>"),
            CommandKind::Context { channel: "ma-chan://d/a".into(), last: 25 }
        );
        assert_eq!(
            kind("<cmd id=\"cmd:part\" seqid=\"1\"><data><chanib uri=\"ma-chan://d/a\"/></data></cmd>"),
            CommandKind::Part { channel: "ma-chan://d/a".into() }
        );
        assert_eq!(
            kind("<cmd id=\"cmd:chansrch\" seqid=\"1\"><data><qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/></data></cmd>"),
            CommandKind::Search { by_category: false, criteria: String::new(), extended: false }
        );
        assert_eq!(
            kind("<cmd id=\"cmd:getinv\" seqid=\"1\"><data><inv inviteId=\"1\" domain=\"d\"/></data></cmd>"),
            CommandKind::Invitations
        );
        assert_eq!(
            kind("<cmd id=\"cmd:frobnicate\" seqid=\"4\"/>"),
            CommandKind::Unknown
        );
    }

    #[test]
    fn envid_and_seqid_are_kept() {
        let e = env("<cmd id=\"cmd:getserverinfo\" seqid=\"9\"><data><sib domain=\"d\" infoType=\"123\"/></data></cmd>");
        assert_eq!(e.envid, Some(77));
        let Some(Item::Command(c)) = e.items.first() else {
            panic!("no command")
        };
        assert_eq!((c.name.as_str(), c.seqid.as_str()), ("getserverinfo", "9"));
    }

    #[test]
    fn grpchat_keeps_text_and_line_breaks() {
        let e = env("<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"ma-chan://d/a\" author=\"sip:al@d\" ts=\"2026-11-23T10:00:00Z\"><chat>one &amp; two\r\n&lt;three&gt;</chat></grpchat>");
        let Some(Item::Grpchat(g)) = e.items.first() else {
            panic!("no grpchat")
        };
        // XML line-end normalisation turns the CRLF into LF, as it is stored.
        assert_eq!(g.text, "one & two\n<three>");
        assert_eq!(g.channel, "ma-chan://d/a");
        assert_eq!(g.ts.as_deref(), Some("2026-11-23T10:00:00Z"));
    }

    #[test]
    fn bad_input_is_refused() {
        let ok = |b: &str| parse_envelope(b.as_bytes(), 4096);
        assert!(matches!(ok("<xccos"), Err(XccosError::Malformed(_))));
        assert_eq!(
            ok("<foo xmlns=\"urn:parlano:xml:ns:xccos\"/>"),
            Err(XccosError::NotXccos)
        );
        assert_eq!(ok("<xccos/>"), Err(XccosError::NotXccos));
        let dtd = format!("<!DOCTYPE x [<!ENTITY a \"b\">]><xccos xmlns=\"{NS}\">&a;</xccos>");
        assert!(ok(&dtd).is_err(), "DTDs and entities are refused");
        let deep = format!(
            "<xccos xmlns=\"{NS}\">{}{}</xccos>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        assert!(ok(&deep).is_err(), "depth is bounded");
        let big = format!("<xccos xmlns=\"{NS}\"><grpchat chanUri=\"ma-chan://d/a\"><chat>{}</chat></grpchat></xccos>", "x".repeat(5000));
        assert!(ok(&big).is_err(), "size is bounded");
        let no_channel = format!("<xccos xmlns=\"{NS}\"><grpchat><chat>x</chat></grpchat></xccos>");
        assert!(matches!(ok(&no_channel), Err(XccosError::Malformed(_))));
        let many = format!(
            "<xccos xmlns=\"{NS}\">{}</xccos>",
            "<cmd id=\"cmd:getinv\"/>".repeat(40)
        );
        assert_eq!(ok(&many), Err(XccosError::TooManyItems));
    }

    #[test]
    fn commands_missing_their_channel_are_invalid_not_fatal() {
        assert!(matches!(
            kind("<cmd id=\"cmd:join\" seqid=\"1\"><data/></cmd>"),
            CommandKind::Invalid(_)
        ));
        assert!(matches!(
            kind("<cmd id=\"cmd:part\" seqid=\"1\"/>"),
            CommandKind::Invalid(_)
        ));
        assert!(matches!(
            kind("<cmd id=\"cmd:chansrch\" seqid=\"1\"><data><qib qtype=\"WEIRD\"/></data></cmd>"),
            CommandKind::Invalid(_)
        ));
        assert_eq!(
            kind("<cmd id=\"cmd:bccontext\" seqid=\"1\"><data><chanib uri=\"ma-chan://d/a\"/><bcq><last cnt=\"99999999\"/></bcq></data></cmd>"),
            CommandKind::Context { channel: "ma-chan://d/a".into(), last: MAX_CONTEXT }
        );
    }
}
