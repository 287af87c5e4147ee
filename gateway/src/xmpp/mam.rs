//! XEP-0313 (MAM v2) on rooms: the query form, queries by time (`start`/`end`), by sender
//! (`with`), and XEP-0059 RSM paging (`max`, `after`, `before`, `before-id`/`after-id`), each
//! result forwarded with its delay and stanza-id, then `<fin/>` with `first`/`last`/`count`.

use super::session::{Completion, Session};
use super::stanza_error::{error_element, result_for, room_error_element};
use palaver_core::engine::RoomCommand;
use palaver_core::{HistoryQuery, UserId};
use palaver_dialects::xmpp::datetime::parse_millis;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::jid::Jid;
use palaver_dialects::xmpp::muc::encode::archived_message;
use palaver_dialects::xmpp::muc::forms::{mam_query_form, submitted_values};
use palaver_dialects::xmpp::muc::writer::XmlWriter;
use palaver_dialects::xmpp::ns;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Default and largest page.
const DEFAULT_MAX: u32 = 50;
const LIMIT_MAX: u32 = 250;

struct Parsed {
    query: HistoryQuery,
    after: Option<String>,
    before: Option<String>,
}

fn parse(q: &Element) -> Result<Parsed, String> {
    let mut query = HistoryQuery {
        limit: DEFAULT_MAX,
        ..Default::default()
    };
    let mut after = None;
    let mut before = None;
    if let Some(x) = q.get_child("x", ns::DATA_FORMS) {
        for (var, values) in submitted_values(x) {
            let Some(v) = values.into_iter().next().filter(|v| !v.is_empty()) else {
                continue;
            };
            match var.as_str() {
                "start" => query.start = Some(parse_millis(&v).ok_or("bad start")?),
                "end" => query.end = Some(parse_millis(&v).ok_or("bad end")?),
                "with" => {
                    let jid = Jid::parse(&v).map_err(|_| "bad with")?;
                    query.sender = Some(UserId::parse(&jid.bare()).ok_or("bad with")?);
                }
                "after-id" => after = Some(v),
                "before-id" => {
                    before = Some(v);
                    query.from_end = true;
                }
                "FORM_TYPE" if v != ns::MAM => return Err("unknown FORM_TYPE".into()),
                _ => {}
            }
        }
    }
    if let Some(set) = q.get_child("set", ns::RSM) {
        if let Some(max) = set.child_text("max", ns::RSM) {
            query.limit = max
                .trim()
                .parse::<u32>()
                .map_err(|_| "bad max")?
                .min(LIMIT_MAX);
        }
        if let Some(a) = set.child_text("after", ns::RSM).filter(|a| !a.is_empty()) {
            after = Some(a);
        }
        if let Some(b) = set.get_child("before", ns::RSM) {
            query.from_end = true;
            let id = b.text();
            if !id.is_empty() {
                before = Some(id);
            }
        }
    }
    Ok(Parsed {
        query,
        after,
        before,
    })
}

/// An IQ carrying `<query xmlns='urn:xmpp:mam:2'/>` to a room.
pub async fn query(session: &mut Session, el: &Element, to: &Jid) {
    let Some(q) = el.get_child("query", ns::MAM) else {
        return;
    };
    let muc = session.svc.muc_domain.clone();
    let me = session.jid_str.clone();
    let reply = result_for(el, &muc, &me);
    if el.attr("type") == Some("get") {
        let query = Element::new("query", ns::MAM).with_child(mam_query_form());
        return session.send_el(&reply.with_child(query));
    }
    if el.attr("type") != Some("set") {
        return;
    }
    let parsed = match parse(q) {
        Ok(p) => p,
        Err(text) => {
            let err = error_element(el, &muc, &me, "modify", "bad-request", Some(&text));
            return session.send_el(&err);
        }
    };
    let query_id = q.attr("queryid").map(str::to_string);
    let room: Arc<str> = Arc::from(to.local.as_str());
    let room_jid = format!("{room}@{muc}");
    let (tx, rx) = oneshot::channel();
    let cmd = RoomCommand::QueryArchive {
        actor_user: session.user.clone(),
        query: parsed.query,
        after_id: parsed.after,
        before_id: parsed.before,
        reply: tx,
    };
    session.svc.ctx.engine.send(&room, cmd).await;
    let original = el.clone();
    session.pending.push(Box::pin(async move {
        let page = match rx.await {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => {
                return Completion::Send(
                    room_error_element(&original, &muc, &me, &e).to_bytes(ns::CLIENT),
                )
            }
            Err(_) => return Completion::Nothing,
        };
        let mut out = Vec::with_capacity(512 * (page.messages.len() + 1));
        for m in &page.messages {
            let mut w = XmlWriter::new(&mut out);
            w.open("message")
                .attr("to", &me)
                .attr("from", &room_jid)
                .close_start();
            w.open("result").attr("xmlns", ns::MAM);
            if let Some(qid) = &query_id {
                w.attr("queryid", qid);
            }
            w.attr("id", &m.stanza_id).close_start();
            archived_message(&mut out, &room_jid, m);
            XmlWriter::new(&mut out).end("result").end("message");
        }
        let mut set = Element::new("set", ns::RSM);
        if let (Some(first), Some(last)) = (page.messages.first(), page.messages.last()) {
            set.append_child(Element::new("first", ns::RSM).with_text(first.stanza_id.as_str()));
            set.append_child(Element::new("last", ns::RSM).with_text(last.stanza_id.as_str()));
        }
        set.append_child(Element::new("count", ns::RSM).with_text(page.count.to_string()));
        let mut fin = Element::new("fin", ns::MAM).with_child(set);
        if page.complete {
            fin.set_attr("complete", "true");
        }
        reply.with_child(fin).write_to(&mut out, ns::CLIENT);
        Completion::Send(out)
    }));
}
