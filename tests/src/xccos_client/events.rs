//! Reading what the server sends in its INFOs, as pidgin-sipe reads it: every `<rpl>`, `<ntc>`
//! and `<grpchat>` of an `<xccos>` envelope becomes an [`XccosEvent`]; the data of replies is
//! read into room lists ([`RoomInfo`], `rpl:chansrch`), joined rooms ([`Room`], `rpl:join` /
//! `rpl:bjoin`) and history ([`ChatMessage`], `rpl:bccontext`). Elements are matched by local
//! name only; missing attributes are read as sipe reads them (a reply without `<resp>` is 500).

use crate::sip_client::InboundRequest;
use palaver_dialects::xmpp::element::Element;

/// aib key of a room's members.
pub const AIB_USERS: &str = "3984";
/// aib key of a room's channel operators.
pub const AIB_CHANOP: &str = "12276";

/// One thing the server told us.
#[derive(Debug, Clone)]
pub enum XccosEvent {
    /// `<rpl id="rpl:…">`.
    Reply(Reply),
    /// One user of `ntc:join` / `ntc:bjoin`, for each room (`aib`) listed.
    NoticeJoin {
        room: String,
        user: String,
        chanop: bool,
    },
    /// One user of `ntc:part`.
    NoticePart { room: String, user: String },
    /// A room message.
    Grpchat(ChatMessage),
    /// A request other than INFO (BYE, OPTIONS…), already answered.
    Request(Box<InboundRequest>),
    /// Anything else: an unknown notice or element, or an unparsable body (as received).
    Other(String),
}

/// A reply (`<rpl>`) to a command.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `rpl:join`…
    pub id: String,
    /// `resp/@code`; 500 when `resp` or its code is missing (as sipe).
    pub code: u16,
    /// The text of `resp` (`SUCCESS_OK`…).
    pub message: String,
    /// `commandid/@envid`: the envelope of the command answered, when given.
    pub envid: Option<u32>,
    /// The `<data>` element.
    pub data: Option<Element>,
}

impl Reply {
    /// The `<data>` element as XML text (empty without one).
    pub fn data_xml(&self) -> String {
        self.data.as_ref().map_or_else(String::new, |d| {
            String::from_utf8_lossy(&d.to_bytes(&d.ns)).into_owned()
        })
    }
}

/// A room message (`grpchat`, live or from history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `chanUri`.
    pub room: String,
    pub author: String,
    /// `ts` as sent.
    pub ts: String,
    /// The text of `<chat>`, entities decoded.
    pub text: String,
}

/// One room of `rpl:chansrch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomInfo {
    pub uri: String,
    pub name: String,
    pub description: String,
    pub topic: Option<String>,
    /// `urn:parlano:ma:info:ucnt`.
    pub users: u32,
    /// `urn:parlano:ma:info:visibilty` is `private`.
    pub private: bool,
    pub filepost: bool,
    pub invite: bool,
    pub logged: bool,
}

/// A member of a joined room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub uri: String,
    /// Listed under aib key 12276.
    pub chanop: bool,
}

/// A room of `rpl:join` / `rpl:bjoin`, with its history once `rpl:bccontext` arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    pub uri: String,
    pub name: String,
    pub topic: Option<String>,
    pub members: Vec<Member>,
    pub history: Vec<ChatMessage>,
}

impl Room {
    pub fn member(&self, uri: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.uri == uri)
    }
}

/// Element children of `el` named `name` (any namespace).
fn kids<'a>(el: &'a Element, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
    el.children().filter(move |c| c.name == name)
}

fn kid<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children().find(|c| c.name == name)
}

fn show(el: &Element) -> String {
    String::from_utf8_lossy(&el.to_bytes(&el.ns)).into_owned()
}

/// The events of one INFO body.
pub fn parse_body(body: &str) -> Vec<XccosEvent> {
    let root = match Element::parse(body.as_bytes()) {
        Ok(root) if root.name == "xccos" => root,
        _ => return vec![XccosEvent::Other(body.to_string())],
    };
    let mut events = Vec::new();
    for child in root.children() {
        match child.name.as_str() {
            "rpl" => events.push(XccosEvent::Reply(parse_reply(child))),
            "ntc" => parse_notice(child, &mut events),
            "grpchat" => events.push(match parse_chat(child) {
                Some(m) => XccosEvent::Grpchat(m),
                None => XccosEvent::Other(show(child)),
            }),
            _ => events.push(XccosEvent::Other(show(child))),
        }
    }
    if events.is_empty() {
        events.push(XccosEvent::Other(body.to_string()));
    }
    events
}

pub fn parse_reply(rpl: &Element) -> Reply {
    let resp = kid(rpl, "resp");
    Reply {
        id: rpl.attr("id").unwrap_or_default().to_string(),
        code: resp
            .and_then(|r| r.attr("code"))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(500),
        message: resp.map(Element::text).unwrap_or_default(),
        envid: kid(rpl, "commandid")
            .and_then(|c| c.attr("envid"))
            .and_then(|e| e.trim().parse().ok()),
        data: kid(rpl, "data").cloned(),
    }
}

fn parse_notice(ntc: &Element, events: &mut Vec<XccosEvent>) {
    let id = ntc.attr("id").unwrap_or_default().to_ascii_lowercase();
    // sipe hands the notice's <data> to its handlers; accept the items directly too.
    let data = kid(ntc, "data").unwrap_or(ntc);
    let before = events.len();
    match id.as_str() {
        "ntc:join" | "ntc:bjoin" => {
            for uib in kids(data, "uib") {
                let Some(user) = uib.attr("uri") else {
                    continue;
                };
                for aib in kids(uib, "aib") {
                    if let (Some(domain), Some(value)) = (aib.attr("domain"), aib.attr("value")) {
                        events.push(XccosEvent::NoticeJoin {
                            room: format!("ma-chan://{domain}/{value}"),
                            user: user.to_string(),
                            chanop: aib.attr("key") == Some(AIB_CHANOP),
                        });
                    }
                }
            }
        }
        "ntc:part" => {
            for chanib in kids(data, "chanib") {
                let Some(room) = chanib.attr("uri") else {
                    continue;
                };
                for uib in kids(chanib, "uib") {
                    if let Some(user) = uib.attr("uri") {
                        events.push(XccosEvent::NoticePart {
                            room: room.to_string(),
                            user: user.to_string(),
                        });
                    }
                }
            }
        }
        _ => {}
    }
    if events.len() == before {
        events.push(XccosEvent::Other(show(ntc)));
    }
}

/// A `grpchat` / history `msg` element; `None` without room or author (sipe drops those).
pub fn parse_chat(el: &Element) -> Option<ChatMessage> {
    Some(ChatMessage {
        room: el.attr("chanUri")?.to_string(),
        author: el.attr("author")?.to_string(),
        ts: el.attr("ts").unwrap_or_default().to_string(),
        text: kid(el, "chat").map(Element::text).unwrap_or_default(),
    })
}

/// The rooms of a `rpl:chansrch` data element.
pub fn parse_rooms(data: &Element) -> Vec<RoomInfo> {
    let mut rooms = Vec::new();
    for chanib in kids(data, "chanib") {
        let mut room = RoomInfo {
            uri: chanib.attr("uri").unwrap_or_default().to_string(),
            name: chanib.attr("name").unwrap_or_default().to_string(),
            description: chanib.attr("description").unwrap_or_default().to_string(),
            topic: chanib.attr("topic").map(str::to_string),
            ..RoomInfo::default()
        };
        for info in kids(chanib, "info") {
            let id = info.attr("id").unwrap_or_default().to_ascii_lowercase();
            let text = info.text();
            match id.as_str() {
                "urn:parlano:ma:info:ucnt" => room.users = leading_number(&text),
                "urn:parlano:ma:info:visibilty" => {
                    room.private = text.trim().eq_ignore_ascii_case("private")
                }
                _ => {}
            }
        }
        for prop in kids(chanib, "prop") {
            let on = prop.text().trim().eq_ignore_ascii_case("true");
            match prop
                .attr("id")
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str()
            {
                "urn:parlano:ma:prop:filepost" => room.filepost |= on,
                "urn:parlano:ma:prop:invite" => room.invite |= on,
                "urn:parlano:ma:prop:logged" => room.logged |= on,
                _ => {}
            }
        }
        rooms.push(room);
    }
    rooms
}

/// The rooms of a `rpl:join` / `rpl:bjoin` data element: `uib` ids mapped to URIs, members
/// from every `aib` of each `chanib` (comma-separated ids), chanop for key 12276.
pub fn parse_join(data: &Element) -> Vec<Room> {
    let ids: Vec<(&str, &str)> = kids(data, "uib")
        .filter_map(|u| Some((u.attr("id")?, u.attr("uri")?)))
        .collect();
    let mut rooms = Vec::new();
    for chanib in kids(data, "chanib") {
        let Some(uri) = chanib.attr("uri") else {
            continue;
        };
        let mut room = Room {
            uri: uri.to_string(),
            name: chanib.attr("name").unwrap_or_default().to_string(),
            topic: chanib.attr("topic").map(str::to_string),
            ..Room::default()
        };
        for aib in kids(chanib, "aib") {
            let chanop = aib.attr("key") == Some(AIB_CHANOP);
            for id in aib.attr("value").unwrap_or_default().split(',') {
                let Some((_, user)) = ids.iter().find(|(i, _)| *i == id.trim()) else {
                    continue;
                };
                match room.members.iter_mut().find(|m| m.uri == *user) {
                    Some(m) => m.chanop |= chanop,
                    None => room.members.push(Member {
                        uri: user.to_string(),
                        chanop,
                    }),
                }
            }
        }
        rooms.push(room);
    }
    rooms
}

/// The messages of a `rpl:bccontext` data element (`chanib/msg[@id="grpchat"]`).
pub fn parse_history(data: &Element) -> Vec<ChatMessage> {
    kids(data, "chanib")
        .flat_map(|c| kids(c, "msg"))
        .filter(|m| m.attr("id") == Some("grpchat"))
        .filter_map(parse_chat)
        .collect()
}

fn leading_number(s: &str) -> u32 {
    let digits: String = s.trim().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_of(body: &str) -> Reply {
        match parse_body(body).into_iter().next() {
            Some(XccosEvent::Reply(r)) => r,
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn requri_reply() {
        let r = reply_of(
            "<xccos ver=\"1\" envid=\"99\" xmlns=\"urn:parlano:xml:ns:xccos\">\
             <rpl id=\"rpl:requri\" seqid=\"1\"><commandid seqid=\"1\" envid=\"1234\"/>\
             <resp code=\"200\">SUCCESS_OK</resp>\
             <data><uib uri=\"sip:ocschat@conference.localhost\"/></data></rpl></xccos>",
        );
        assert_eq!(
            (r.id.as_str(), r.code, r.message.as_str()),
            ("rpl:requri", 200, "SUCCESS_OK")
        );
        assert_eq!(r.envid, Some(1234));
        let data = r.data.as_ref().expect("data");
        let uib = kid(data, "uib").expect("uib");
        assert_eq!(uib.attr("uri"), Some("sip:ocschat@conference.localhost"));
        assert!(r.data_xml().contains("sip:ocschat@conference.localhost"));
    }

    #[test]
    fn missing_resp_is_500() {
        let r =
            reply_of("<xccos xmlns=\"urn:parlano:xml:ns:xccos\"><rpl id=\"rpl:join\"/></xccos>");
        assert_eq!((r.code, r.message.as_str(), r.envid), (500, "", None));
        assert!(r.data.is_none());
    }

    #[test]
    fn join_reply() {
        let r = reply_of(
            "<xccos ver=\"1\" envid=\"5\" xmlns=\"urn:parlano:xml:ns:xccos\">\
             <rpl id=\"rpl:join\" seqid=\"1\"><commandid seqid=\"1\" envid=\"42\"/>\
             <resp code=\"200\">SUCCESS_OK</resp><data>\
             <uib id=\"1\" uri=\"sip:alice@localhost\"/>\
             <uib id=\"2\" uri=\"sip:bob@localhost\"/>\
             <chanib uri=\"ma-chan://localhost/lobby\" name=\"lobby\" topic=\"Hello &amp; welcome\">\
             <aib key=\"3984\" value=\"1,2\"/><aib key=\"12276\" value=\"2\"/></chanib>\
             </data></rpl></xccos>",
        );
        let rooms = parse_join(r.data.as_ref().expect("data"));
        assert_eq!(rooms.len(), 1);
        let room = &rooms[0];
        assert_eq!(room.uri, "ma-chan://localhost/lobby");
        assert_eq!(room.name, "lobby");
        assert_eq!(room.topic.as_deref(), Some("Hello & welcome"));
        assert_eq!(
            room.members,
            vec![
                Member {
                    uri: "sip:alice@localhost".into(),
                    chanop: false
                },
                Member {
                    uri: "sip:bob@localhost".into(),
                    chanop: true
                },
            ]
        );
        assert!(room.member("sip:bob@localhost").is_some_and(|m| m.chanop));
    }

    #[test]
    fn history_reply() {
        let r = reply_of(
            "<xccos ver=\"1\" envid=\"6\" xmlns=\"urn:parlano:xml:ns:xccos\">\
             <rpl id=\"rpl:bccontext\" seqid=\"1\"><commandid seqid=\"1\" envid=\"43\"/>\
             <resp code=\"200\">SUCCESS_OK</resp><data>\
             <chanib uri=\"ma-chan://localhost/lobby\">\
             <msg id=\"grpchat\" chanUri=\"ma-chan://localhost/lobby\" author=\"sip:bob@localhost\" ts=\"2026-11-23T19:00:00Z\"><chat>one &lt;1&gt;</chat></msg>\
             <msg id=\"other\" chanUri=\"ma-chan://localhost/lobby\" author=\"sip:x@localhost\"><chat>no</chat></msg>\
             <msg id=\"grpchat\" chanUri=\"ma-chan://localhost/lobby\" author=\"sip:alice@localhost\" ts=\"2026-11-23T19:01:00Z\"><chat>two</chat></msg>\
             </chanib></data></rpl></xccos>",
        );
        let history = parse_history(r.data.as_ref().expect("data"));
        assert_eq!(
            history,
            vec![
                ChatMessage {
                    room: "ma-chan://localhost/lobby".into(),
                    author: "sip:bob@localhost".into(),
                    ts: "2026-11-23T19:00:00Z".into(),
                    text: "one <1>".into(),
                },
                ChatMessage {
                    room: "ma-chan://localhost/lobby".into(),
                    author: "sip:alice@localhost".into(),
                    ts: "2026-11-23T19:01:00Z".into(),
                    text: "two".into(),
                },
            ]
        );
    }

    #[test]
    fn chansrch_reply() {
        let r = reply_of(
            "<xccos ver=\"1\" envid=\"7\" xmlns=\"urn:parlano:xml:ns:xccos\">\
             <rpl id=\"rpl:chansrch\" seqid=\"1\"><resp code=\"200\">SUCCESS_OK</resp><data>\
             <chanib uri=\"ma-chan://localhost/lobby\" name=\"lobby\" description=\"The lobby\">\
             <info id=\"urn:parlano:ma:info:ucnt\">3</info>\
             <info id=\"urn:parlano:ma:info:visibilty\">public</info>\
             <prop id=\"urn:parlano:ma:prop:logged\">true</prop>\
             <prop id=\"urn:parlano:ma:prop:filepost\">false</prop></chanib>\
             <chanib uri=\"ma-chan://localhost/secret\" name=\"secret\" description=\"\" topic=\"t\">\
             <info id=\"urn:parlano:ma:info:ucnt\">0</info>\
             <info id=\"urn:parlano:ma:info:visibilty\">private</info>\
             <prop id=\"urn:parlano:ma:prop:invite\">true</prop></chanib>\
             </data></rpl></xccos>",
        );
        let rooms = parse_rooms(r.data.as_ref().expect("data"));
        assert_eq!(
            rooms,
            vec![
                RoomInfo {
                    uri: "ma-chan://localhost/lobby".into(),
                    name: "lobby".into(),
                    description: "The lobby".into(),
                    users: 3,
                    logged: true,
                    ..RoomInfo::default()
                },
                RoomInfo {
                    uri: "ma-chan://localhost/secret".into(),
                    name: "secret".into(),
                    topic: Some("t".into()),
                    private: true,
                    invite: true,
                    ..RoomInfo::default()
                },
            ]
        );
    }

    #[test]
    fn notices_and_grpchat() {
        let events = parse_body(
            "<xccos ver=\"1\" envid=\"8\" xmlns=\"urn:parlano:xml:ns:xccos\">\
             <ntc id=\"ntc:join\" seqid=\"1\"><data>\
             <uib uri=\"sip:bob@localhost\"><aib key=\"3984\" domain=\"localhost\" value=\"lobby\"/>\
             <aib key=\"12276\" domain=\"localhost\" value=\"ops\"/></uib></data></ntc></xccos>",
        );
        assert!(matches!(&events[..], [
            XccosEvent::NoticeJoin { room: r1, user: u1, chanop: false },
            XccosEvent::NoticeJoin { room: r2, user: u2, chanop: true },
        ] if r1 == "ma-chan://localhost/lobby" && u1 == "sip:bob@localhost"
            && r2 == "ma-chan://localhost/ops" && u2 == "sip:bob@localhost"));

        let events = parse_body(
            "<xccos ver=\"1\" envid=\"9\" xmlns=\"urn:parlano:xml:ns:xccos\">\
             <ntc id=\"ntc:part\" seqid=\"1\"><data><chanib uri=\"ma-chan://localhost/lobby\">\
             <uib uri=\"sip:bob@localhost\"/></chanib></data></ntc></xccos>",
        );
        assert!(
            matches!(&events[..], [XccosEvent::NoticePart { room, user }]
            if room == "ma-chan://localhost/lobby" && user == "sip:bob@localhost")
        );

        let events = parse_body(
            "<xccos ver=\"1\" envid=\"10\" xmlns=\"urn:parlano:xml:ns:xccos\">\
             <grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"ma-chan://localhost/lobby\" \
             author=\"sip:bob@localhost\" ts=\"2026-11-23T19:30:00Z\"><chat>hi &amp; bye</chat>\
             </grpchat></xccos>",
        );
        assert!(matches!(&events[..], [XccosEvent::Grpchat(m)]
            if m.text == "hi & bye" && m.author == "sip:bob@localhost"
            && m.room == "ma-chan://localhost/lobby" && m.ts == "2026-11-23T19:30:00Z"));

        assert!(matches!(&parse_body("not xml")[..], [XccosEvent::Other(s)] if s == "not xml"));
        assert!(matches!(
            &parse_body("<xccos xmlns=\"urn:parlano:xml:ns:xccos\"><ntc id=\"ntc:x\"/></xccos>")[..],
            [XccosEvent::Other(_)]
        ));
    }

    #[test]
    fn multi_line_text_survives() {
        let events = parse_body(
            "<xccos xmlns=\"urn:parlano:xml:ns:xccos\"><grpchat id=\"grpchat\" \
             chanUri=\"ma-chan://d/r\" author=\"sip:a@d\" ts=\"\"><chat>l1\r\nl2</chat></grpchat></xccos>",
        );
        let [XccosEvent::Grpchat(m)] = &events[..] else {
            panic!("{events:?}")
        };
        assert!(m.text == "l1\r\nl2" || m.text == "l1\nl2", "{:?}", m.text);
    }
}
