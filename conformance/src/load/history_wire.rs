//! The XMPP side of history mode: the join of an existing room (a join that creates the room is
//! an error — it has no history), the archive discovery (newest and oldest message, the middle
//! time between them), the XEP-0313 MAM queries the sessions send (`<iq type='set'>`
//! to the room with a `queryid`, RSM `<max/>`/`<before/>` and the `start` form field), and the
//! readers of what comes back: `<result/>` messages with their forwarded `<delay stamp/>`, and
//! the `<fin/>` iq with its RSM `<count/>`. Everything read is server input: a missing or
//! malformed part is `None`, never a panic.

use crate::client::{error_condition, Client, ClientError, ErrorKind};
use palaver_dialects::xmpp::datetime::{format_millis, parse_millis};
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::escape::escape_attr;
use std::time::Duration;
use tokio::time::Instant;

pub const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_DELAY: &str = "urn:xmpp:delay";

/// What the archive discovery found.
#[derive(Debug, Clone)]
pub struct Archive {
    pub oldest_ms: i64,
    pub newest_ms: i64,
    /// `start` of the middle pages, XEP-0082.
    pub middle: String,
    pub middle_ms: i64,
    /// The RSM `<count/>` the server gave, if any.
    pub count: Option<u64>,
}

/// Discovers `room`'s archive: its newest and oldest messages (queries `QID-newest` and
/// `QID-oldest`, each bounded by `step`) and the time halfway between them.
pub async fn find_archive(
    client: &mut Client,
    room: &str,
    qid: &str,
    step: Duration,
    hard_deadline: Instant,
) -> Result<Archive, ClientError> {
    let deadline = || (Instant::now() + step).min(hard_deadline);
    let (newest_ms, count) = probe(client, room, qid, "newest", deadline()).await?;
    let (oldest_ms, _) = probe(client, room, qid, "oldest", deadline()).await?;
    let (oldest_ms, newest_ms) = (oldest_ms.min(newest_ms), oldest_ms.max(newest_ms));
    let middle_ms = oldest_ms + (newest_ms - oldest_ms) / 2;
    Ok(Archive {
        oldest_ms,
        newest_ms,
        middle: format_millis(middle_ms),
        middle_ms,
        count,
    })
}

/// Asks for one message — the `newest` (`<before/>`), else the oldest — and returns its stamp
/// and the RSM count the server gave.
async fn probe(
    client: &mut Client,
    room: &str,
    qid: &str,
    which: &str,
    deadline: Instant,
) -> Result<(i64, Option<u64>), ClientError> {
    let qid = format!("{qid}-{which}");
    let mut out = Vec::with_capacity(300);
    write_query(&mut out, room, &qid, &rsm(1, which == "newest"));
    client.send(&out).await?;
    let step = format!("the MAM query for the {which} message of {room}");
    let mut stamp = None;
    let mut results = 0u32;
    loop {
        let el = client
            .next_stanza(deadline, &step, |e| {
                result_query_id(e) == Some(qid.as_str())
                    || (e.name == "iq" && e.attr("id") == Some(qid.as_str()))
            })
            .await?;
        if el.name == "message" {
            results += 1;
            stamp = stamp.or(result_stamp(&el));
            continue;
        }
        return match answer(&el) {
            Answer::Refused(why) => Err(ClientError::new(
                ErrorKind::MamError,
                format!("{room} refused the MAM query for its {which} message: {why}"),
            )),
            Answer::Fin { .. } if results == 0 => Err(ClientError::new(
                ErrorKind::HistoryShort,
                format!("the archive of {room} is empty: room has no history"),
            )),
            Answer::Fin { count } => match stamp {
                Some(ms) => Ok((ms, count)),
                None => Err(ClientError::new(
                    ErrorKind::Protocol,
                    format!("the {which} MAM result of {room} has no <delay stamp/>"),
                )),
            },
        };
    }
}

/// Joins `room` (which must exist) as `nick` asking for no history, and waits for our own
/// presence. When the join created the room (status 201) it leaves again and fails with
/// [`ErrorKind::Join`]: a new room has no history to query.
pub async fn join_existing(
    client: &mut Client,
    room: &str,
    nick: &str,
    deadline: Instant,
) -> Result<(), ClientError> {
    if client.enter(room, nick, deadline).await? {
        let mut out = Vec::with_capacity(100);
        out.extend_from_slice(b"<presence type='unavailable' to='");
        escape_attr(&format!("{room}/{nick}"), &mut out);
        out.extend_from_slice(b"'/>");
        client.send(&out).await?;
        return Err(ClientError::new(
            ErrorKind::Join,
            format!("{room} did not exist (the join created it): room has no history"),
        ));
    }
    Ok(())
}

/// Writes `<iq type='set' to='ROOM' id='QID'><query xmlns='urn:xmpp:mam:2' queryid='QID'>`,
/// `body`, and the closing tags into `out`.
pub fn write_query(out: &mut Vec<u8>, room: &str, qid: &str, body: &[u8]) {
    out.extend_from_slice(b"<iq type='set' to='");
    escape_attr(room, out);
    out.extend_from_slice(b"' id='");
    escape_attr(qid, out);
    out.extend_from_slice(b"'><query xmlns='");
    out.extend_from_slice(NS_MAM.as_bytes());
    out.extend_from_slice(b"' queryid='");
    escape_attr(qid, out);
    out.extend_from_slice(b"'>");
    out.extend_from_slice(body);
    out.extend_from_slice(b"</query></iq>");
}

/// The RSM part of a query: at most `max` results, the last ones with `before`.
pub fn rsm(max: u32, before: bool) -> Vec<u8> {
    let before = if before { "<before/>" } else { "" };
    format!("<set xmlns='{NS_RSM}'><max>{max}</max>{before}</set>").into_bytes()
}

/// A query body for `max` results from `start` (an XEP-0082 date-time) on.
pub fn from_start(start: &str, max: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(300);
    out.extend_from_slice(
        b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>",
    );
    out.extend_from_slice(NS_MAM.as_bytes());
    out.extend_from_slice(b"</value></field><field var='start'><value>");
    escape_attr(start, &mut out);
    out.extend_from_slice(b"</value></field></x>");
    out.extend_from_slice(&rsm(max, false));
    out
}

/// For a `<message><result xmlns='urn:xmpp:mam:2' queryid='..'/></message>`: the query id.
pub fn result_query_id(el: &Element) -> Option<&str> {
    if el.name != "message" {
        return None;
    }
    el.get_child("result", NS_MAM)?.attr("queryid")
}

/// The stamp (Unix ms) of a result message's forwarded `<delay/>`.
pub fn result_stamp(el: &Element) -> Option<i64> {
    let stamp = el
        .get_child("result", NS_MAM)?
        .get_child("forwarded", NS_FORWARD)?
        .get_child("delay", NS_DELAY)?
        .attr("stamp")?;
    parse_millis(stamp)
}

/// How the server answered a query's iq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A result carrying `<fin/>`, with the RSM `<count/>` if there is one.
    Fin { count: Option<u64> },
    /// An error (its condition), or a result without `<fin/>`.
    Refused(String),
}

/// Reads the iq answer to a query.
pub fn answer(iq: &Element) -> Answer {
    match iq.attr("type") {
        Some("result") => match iq.get_child("fin", NS_MAM) {
            Some(fin) => Answer::Fin {
                count: fin
                    .get_child("set", NS_RSM)
                    .and_then(|s| s.child_text("count", NS_RSM))
                    .and_then(|c| c.trim().parse().ok()),
            },
            None => Answer::Refused("a result without <fin/>".into()),
        },
        Some("error") => Answer::Refused(error_condition(iq)),
        other => Answer::Refused(format!("an iq of type {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).expect("test XML parses")
    }

    #[test]
    fn queries_are_well_formed() {
        let mut out = Vec::new();
        write_query(&mut out, "big@conf.x", "h1-2", &rsm(50, true));
        let iq = parse(std::str::from_utf8(&out).expect("utf-8"));
        let q = iq.get_child("query", NS_MAM).expect("query");
        assert_eq!(q.attr("queryid"), Some("h1-2"));
        assert_eq!(iq.attr("id"), Some("h1-2"));
        let set = q.get_child("set", NS_RSM).expect("set");
        assert_eq!(set.child_text("max", NS_RSM).as_deref(), Some("50"));
        assert!(set.get_child("before", NS_RSM).is_some());

        out.clear();
        write_query(
            &mut out,
            "big@conf.x",
            "h1-3",
            &from_start("2026-01-02T03:04:05.678Z", 50),
        );
        let iq = parse(std::str::from_utf8(&out).expect("utf-8"));
        let q = iq.get_child("query", NS_MAM).expect("query");
        let x = q.get_child("x", "jabber:x:data").expect("form");
        let start = x
            .children()
            .find(|f| f.attr("var") == Some("start"))
            .and_then(|f| f.child_text("value", "jabber:x:data"));
        assert_eq!(start.as_deref(), Some("2026-01-02T03:04:05.678Z"));
        assert!(q
            .get_child("set", NS_RSM)
            .expect("set")
            .get_child("before", NS_RSM)
            .is_none());
    }

    #[test]
    fn results_and_answers_are_read_defensively() {
        let m = parse(
            "<message xmlns='jabber:client' from='r@c'><result xmlns='urn:xmpp:mam:2' \
             queryid='q1' id='s1'><forwarded xmlns='urn:xmpp:forward:0'><delay \
             xmlns='urn:xmpp:delay' stamp='1970-01-01T00:00:01.500Z'/><message \
             xmlns='jabber:client' type='groupchat'><body>hi</body></message></forwarded>\
             </result></message>",
        );
        assert_eq!(result_query_id(&m), Some("q1"));
        assert_eq!(result_stamp(&m), Some(1500));
        let bare =
            parse("<message xmlns='jabber:client'><result xmlns='urn:xmpp:mam:2'/></message>");
        assert_eq!(result_query_id(&bare), None);
        assert_eq!(result_stamp(&bare), None);
        let post = parse("<message xmlns='jabber:client'><body>x</body></message>");
        assert_eq!(result_query_id(&post), None);

        let fin = parse(
            "<iq xmlns='jabber:client' type='result' id='q1'><fin xmlns='urn:xmpp:mam:2'>\
             <set xmlns='http://jabber.org/protocol/rsm'><count>10000000</count></set></fin></iq>",
        );
        assert_eq!(
            answer(&fin),
            Answer::Fin {
                count: Some(10_000_000)
            }
        );
        let bad_count = parse(
            "<iq xmlns='jabber:client' type='result' id='q1'><fin xmlns='urn:xmpp:mam:2'>\
             <set xmlns='http://jabber.org/protocol/rsm'><count>lots</count></set></fin></iq>",
        );
        assert_eq!(answer(&bad_count), Answer::Fin { count: None });
        let empty = parse("<iq xmlns='jabber:client' type='result' id='q1'/>");
        assert!(matches!(answer(&empty), Answer::Refused(_)));
        let err = parse(
            "<iq xmlns='jabber:client' type='error' id='q1'><error type='cancel'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        );
        assert_eq!(answer(&err), Answer::Refused("item-not-found".into()));
    }
}
