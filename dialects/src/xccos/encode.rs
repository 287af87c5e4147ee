//! Building what the server sends: envelopes ([`envelope`]), replies to commands ([`reply`]
//! with a `<commandid>` echoing the command's seqid and envid, a `<resp>` and the `<data>`
//! built by the `*_data` functions), notices (`ntc:join`, `ntc:part`) and room messages
//! ([`grpchat`]). The shapes are those pidgin-sipe reads (see reference/xccos.md): rooms are
//! `<chanib>` with `<info>`/`<prop>` children, members `<uib id uri>` referenced from the
//! room's `<aib key="3984"|"12276" value="ids">` (users | channel operators).

use super::resp::Resp;
use super::NS;
use crate::xmpp::datetime::format_millis;
use crate::xmpp::element::Element;

/// `aib` key of a room's ordinary members.
pub const AIB_USERS: &str = "3984";
/// `aib` key of a room's channel operators (managers, moderators).
pub const AIB_CHANOPS: &str = "12276";

/// Wraps already encoded items in an envelope with the sender's counter `envid`.
pub fn envelope(envid: u64, items: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() + 80);
    out.extend_from_slice(b"<xccos ver=\"1\" envid=\"");
    out.extend_from_slice(envid.to_string().as_bytes());
    out.extend_from_slice(b"\" xmlns=\"");
    out.extend_from_slice(NS.as_bytes());
    out.extend_from_slice(b"\">");
    out.extend_from_slice(items);
    out.extend_from_slice(b"</xccos>");
    out
}

/// An element's bytes as an envelope child (no `xmlns`: the envelope's is inherited).
pub fn item_bytes(e: &Element) -> Vec<u8> {
    e.to_bytes(NS)
}

fn el(name: &str) -> Element {
    Element::new(name, NS)
}

/// Which command a reply answers.
#[derive(Debug, Clone, Copy)]
pub struct ReplyTo<'a> {
    /// The command name without `cmd:` (`join`).
    pub name: &'a str,
    pub seqid: &'a str,
    /// The envid of the envelope the command came in.
    pub envid: Option<u64>,
}

/// `<rpl id="rpl:NAME" seqid><commandid seqid envid/><resp code>TEXT</resp>DATA</rpl>`.
pub fn reply(to: &ReplyTo<'_>, resp: Resp, data: Element) -> Element {
    let mut commandid = el("commandid").with_attr("seqid", to.seqid);
    if let Some(envid) = to.envid {
        commandid.set_attr("envid", envid.to_string());
    }
    el("rpl")
        .with_attr("id", format!("rpl:{}", to.name))
        .with_attr("seqid", to.seqid)
        .with_child(commandid)
        .with_child(
            el("resp")
                .with_attr("code", resp.code.to_string())
                .with_text(resp.text),
        )
        .with_child(data)
}

/// An empty `<data/>`.
pub fn empty_data() -> Element {
    el("data")
}

/// `rpl:requri` data: the chat server's URI.
pub fn requri_data(uri: &str) -> Element {
    el("data").with_child(el("uib").with_attr("uri", uri))
}

/// What `rpl:getserverinfo` tells.
#[derive(Debug, Clone)]
pub struct ServerInfo<'a> {
    pub domain: &'a str,
    pub now_millis: i64,
    /// Most rooms one search returns.
    pub search_limit: u32,
    /// Largest message text (characters).
    pub message_size_limit: u32,
    /// Largest "story" (long post) text.
    pub story_size_limit: u32,
    /// `ma-cat://domain/id` of the category tree's root.
    pub root_uri: &'a str,
    pub db_version: &'a str,
}

/// `rpl:getserverinfo` data.
pub fn server_info_data(info: &ServerInfo<'_>) -> Element {
    el("data").with_child(
        el("sib")
            .with_attr("domain", info.domain)
            .with_attr("infoType", "123")
            .with_attr("serverTime", format_millis(info.now_millis))
            .with_attr("searchLimit", info.search_limit.to_string())
            .with_attr("messageSizeLimit", info.message_size_limit.to_string())
            .with_attr("storySizeLimit", info.story_size_limit.to_string())
            .with_attr("rootUri", info.root_uri)
            .with_attr("dbVersion", info.db_version),
    )
}

/// A room as listed and joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelInfo {
    /// `ma-chan://…`.
    pub uri: String,
    pub name: String,
    pub description: String,
    pub topic: String,
    /// `ma-cat://…` of its category.
    pub category: Option<String>,
    pub users: u32,
    /// Members only (invitation or membership needed).
    pub private: bool,
    /// Hidden from listings of non-members.
    pub hidden: bool,
    pub filepost: bool,
    pub invite: bool,
    pub logged: bool,
}

/// `<chanib>` of one room with its facts.
pub fn channel_element(c: &ChannelInfo) -> Element {
    let mut e = el("chanib")
        .with_attr("uri", &c.uri)
        .with_attr("name", &c.name)
        .with_attr("description", &c.description)
        .with_attr("topic", &c.topic);
    if let Some(cat) = &c.category {
        e.set_attr("parent", cat);
    }
    let visibility = if c.private { "private" } else { "public" };
    e.append_child(
        el("info")
            .with_attr("id", "urn:parlano:ma:info:ucnt")
            .with_text(c.users.to_string()),
    );
    // The misspelling is MS-XCCOSIP's, and what clients look for.
    e.append_child(
        el("info")
            .with_attr("id", "urn:parlano:ma:info:visibilty")
            .with_text(visibility),
    );
    for (id, on) in [
        ("urn:parlano:ma:prop:filepost", c.filepost),
        ("urn:parlano:ma:prop:invite", c.invite),
        ("urn:parlano:ma:prop:logged", c.logged),
        ("urn:parlano:ma:prop:hidden", c.hidden),
    ] {
        e.append_child(
            el("prop")
                .with_attr("id", id)
                .with_text(if on { "true" } else { "false" }),
        );
    }
    e
}

/// `rpl:chansrch` data.
pub fn search_data(channels: &[ChannelInfo]) -> Element {
    let mut data = el("data");
    for c in channels {
        data.append_child(channel_element(c));
    }
    data
}

/// One occupant of a joined room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `sip:…` as the recipient may see it.
    pub uri: String,
    pub chanop: bool,
}

/// `rpl:join`/`rpl:bjoin` data: each member once as `<uib id uri>`, then each room's
/// `<chanib>` with `<aib>` lists of member ids (users, channel operators).
pub fn join_data(rooms: &[(ChannelInfo, Vec<Member>)]) -> Element {
    let mut data = el("data");
    let mut ids: Vec<&str> = Vec::new();
    let mut chanibs = Vec::new();
    for (room, members) in rooms {
        let mut users = Vec::new();
        let mut ops = Vec::new();
        for m in members {
            let id = member_id(&mut ids, &m.uri, &mut data);
            if m.chanop {
                ops.push(id.to_string());
            } else {
                users.push(id.to_string());
            }
        }
        let mut chanib = channel_element(room);
        for (key, list) in [(AIB_USERS, users), (AIB_CHANOPS, ops)] {
            if !list.is_empty() {
                chanib.append_child(
                    el("aib")
                        .with_attr("key", key)
                        .with_attr("value", list.join(",")),
                );
            }
        }
        chanibs.push(chanib);
    }
    for c in chanibs {
        data.append_child(c);
    }
    data
}

/// The `<uib>` id of `uri`, adding the `<uib>` the first time.
fn member_id<'a>(ids: &mut Vec<&'a str>, uri: &'a str, data: &mut Element) -> usize {
    if let Some(i) = ids.iter().position(|u| *u == uri) {
        return i;
    }
    data.append_child(
        el("uib")
            .with_attr("id", ids.len().to_string())
            .with_attr("uri", uri),
    );
    ids.push(uri);
    ids.len() - 1
}

/// A room message as sent to clients.
#[derive(Debug, Clone, Copy)]
pub struct ChatMessage<'a> {
    pub channel: &'a str,
    /// `sip:…` of the author as the recipient may see it.
    pub author: &'a str,
    pub ts_millis: i64,
    pub text: &'a str,
    /// The message's sequence number in its room.
    pub seq: i64,
}

/// Text with every line break as CRLF (the XCCOS convention).
pub fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev = '\0';
    for c in text.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Text as stored: CRLF and lone CR become LF.
pub fn lf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn chat_element(name: &str, m: &ChatMessage<'_>) -> Element {
    el(name)
        .with_attr("id", "grpchat")
        .with_attr("seqid", m.seq.to_string())
        .with_attr("chanUri", m.channel)
        .with_attr("author", m.author)
        .with_attr("ts", format_millis(m.ts_millis))
        .with_child(el("chat").with_text(crlf(m.text)))
}

/// A live room message: `<grpchat id="grpchat" seqid chanUri author ts><chat>…</chat></grpchat>`.
pub fn grpchat(m: &ChatMessage<'_>) -> Element {
    chat_element("grpchat", m)
}

/// `rpl:bccontext` data: the room's history as `<chanib uri><msg id="grpchat" …/>…</chanib>`.
pub fn context_data(channel: &str, messages: &[ChatMessage<'_>]) -> Element {
    let mut chanib = el("chanib").with_attr("uri", channel);
    for m in messages {
        chanib.append_child(chat_element("msg", m));
    }
    el("data").with_child(chanib)
}

/// `rpl:part` data.
pub fn part_data(channel: &str) -> Element {
    el("data").with_child(el("chanib").with_attr("uri", channel))
}

/// `<ntc id="ntc:join">`: `user` entered the room `domain`/`value`.
pub fn notice_join(domain: &str, value: &str, user: &str, chanop: bool) -> Element {
    let key = if chanop { AIB_CHANOPS } else { AIB_USERS };
    el("ntc").with_attr("id", "ntc:join").with_child(
        el("data").with_child(
            el("uib").with_attr("uri", user).with_child(
                el("aib")
                    .with_attr("key", key)
                    .with_attr("domain", domain)
                    .with_attr("value", value),
            ),
        ),
    )
}

/// `<ntc id="ntc:part">`: `user` left `channel`.
pub fn notice_part(channel: &str, user: &str) -> Element {
    el("ntc").with_attr("id", "ntc:part").with_child(
        el("data").with_child(
            el("chanib")
                .with_attr("uri", channel)
                .with_child(el("uib").with_attr("uri", user)),
        ),
    )
}

/// A pending invitation as `rpl:getinv` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub channel: String,
    pub name: String,
    pub inviter: String,
}

/// `rpl:getinv` data.
pub fn invitations_data(invitations: &[Invitation]) -> Element {
    let mut data = el("data");
    for (i, inv) in invitations.iter().enumerate() {
        data.append_child(
            el("inv")
                .with_attr("inviteId", (i + 1).to_string())
                .with_attr("chanUri", &inv.channel)
                .with_attr("name", &inv.name)
                .with_attr("inviter", &inv.inviter),
        );
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xccos::parse::{parse_envelope, Item};

    fn reparse(e: &Element) -> Element {
        let bytes = envelope(5, &item_bytes(e));
        let root = Element::parse(&bytes).expect("well-formed");
        assert_eq!((root.name.as_str(), root.ns.as_str()), ("xccos", NS));
        assert_eq!(root.attr("envid"), Some("5"));
        let first = root.children().next().cloned();
        first.expect("one item")
    }

    #[test]
    fn replies_echo_the_command_and_carry_a_code() {
        let to = ReplyTo {
            name: "requri",
            seqid: "3",
            envid: Some(99),
        };
        let r = reparse(&reply(&to, Resp::OK, requri_data("sip:ocschat@c.d")));
        assert_eq!(r.attr("id"), Some("rpl:requri"));
        let cid = r.get_child("commandid", NS).expect("commandid");
        assert_eq!(
            (cid.attr("seqid"), cid.attr("envid")),
            (Some("3"), Some("99"))
        );
        let resp = r.get_child("resp", NS).expect("resp");
        assert_eq!(resp.attr("code"), Some("200"));
        assert_eq!(resp.text(), "SUCCESS_OK");
        let uib = r
            .get_child("data", NS)
            .and_then(|d| d.get_child("uib", NS))
            .expect("uib");
        assert_eq!(uib.attr("uri"), Some("sip:ocschat@c.d"));
    }

    #[test]
    fn join_data_lists_members_once_and_splits_chanops() {
        let room = ChannelInfo {
            uri: "ma-chan://d/a".into(),
            name: "a".into(),
            ..ChannelInfo::default()
        };
        let members = vec![
            Member {
                uri: "sip:al@d".into(),
                chanop: false,
            },
            Member {
                uri: "sip:bo@d".into(),
                chanop: true,
            },
        ];
        let other = ChannelInfo {
            uri: "ma-chan://d/b".into(),
            ..room.clone()
        };
        let data = join_data(&[(room, members.clone()), (other, vec![members[0].clone()])]);
        let uibs: Vec<_> = data.children_named("uib", NS).collect();
        assert_eq!(uibs.len(), 2, "each member once");
        let chanibs: Vec<_> = data.children_named("chanib", NS).collect();
        assert_eq!(chanibs.len(), 2);
        let aib = |c: &Element, key: &str| {
            c.children_named("aib", NS)
                .find(|a| a.attr("key") == Some(key))
                .and_then(|a| a.attr("value"))
                .map(str::to_string)
        };
        assert_eq!(aib(chanibs[0], AIB_USERS).as_deref(), Some("0"));
        assert_eq!(aib(chanibs[0], AIB_CHANOPS).as_deref(), Some("1"));
        assert_eq!(aib(chanibs[1], AIB_USERS).as_deref(), Some("0"));
        assert_eq!(aib(chanibs[1], AIB_CHANOPS), None);
    }

    #[test]
    fn room_messages_round_trip_with_crlf_and_escaping() {
        let m = ChatMessage {
            channel: "ma-chan://d/a",
            author: "sip:al@d",
            ts_millis: 1_700_000_000_000,
            text: "a <b> & \"c\"\nnext",
            seq: 42,
        };
        let bytes = envelope(1, &item_bytes(&grpchat(&m)));
        let env = parse_envelope(&bytes, 4096).expect("parses");
        let Some(Item::Grpchat(g)) = env.items.first() else {
            panic!("no grpchat")
        };
        // The CR goes out as a character reference, so it survives XML end-of-line rules.
        assert_eq!(g.text, "a <b> & \"c\"\r\nnext");
        assert_eq!(lf(&g.text), m.text);
        assert_eq!(g.author, "sip:al@d");
        assert_eq!(g.ts.as_deref(), Some("2023-11-14T22:13:20.000Z"));
    }

    #[test]
    fn line_breaks_convert_both_ways_without_doubling() {
        assert_eq!(crlf("a\nb\r\nc"), "a\r\nb\r\nc");
        assert_eq!(lf("a\r\nb\rc\nd"), "a\nb\nc\nd");
    }

    #[test]
    fn notices_have_the_shapes_clients_read() {
        let j = reparse(&notice_join("d", "a", "sip:al@d", true));
        let aib = j
            .get_child("data", NS)
            .and_then(|d| d.get_child("uib", NS))
            .and_then(|u| u.get_child("aib", NS))
            .expect("data/uib/aib");
        assert_eq!(
            (aib.attr("key"), aib.attr("domain"), aib.attr("value")),
            (Some(AIB_CHANOPS), Some("d"), Some("a"))
        );
        let p = reparse(&notice_part("ma-chan://d/a", "sip:al@d"));
        let uib = p
            .get_child("data", NS)
            .and_then(|d| d.get_child("chanib", NS))
            .and_then(|c| c.get_child("uib", NS))
            .expect("data/chanib/uib");
        assert_eq!(uib.attr("uri"), Some("sip:al@d"));
    }

    #[test]
    fn channel_info_spells_visibility_as_clients_expect() {
        let c = channel_element(&ChannelInfo {
            private: true,
            users: 3,
            logged: true,
            ..ChannelInfo::default()
        });
        let info = |id: &str| {
            c.children_named("info", NS)
                .chain(c.children_named("prop", NS))
                .find(|i| i.attr("id") == Some(id))
                .map(Element::text)
        };
        assert_eq!(
            info("urn:parlano:ma:info:visibilty").as_deref(),
            Some("private")
        );
        assert_eq!(info("urn:parlano:ma:info:ucnt").as_deref(), Some("3"));
        assert_eq!(info("urn:parlano:ma:prop:logged").as_deref(), Some("true"));
        assert_eq!(
            info("urn:parlano:ma:prop:filepost").as_deref(),
            Some("false")
        );
    }
}
