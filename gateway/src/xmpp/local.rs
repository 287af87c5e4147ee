//! Stanzas for the server itself and for local users: roster (minimal), ping, disco of the
//! server, version, vCard placeholder, presence broadcast, and routing of messages, directed
//! presence and IQs between local users' sessions.

use super::dispatch::reply_error;
use super::session::Session;
use super::stanza_error::result_for;
use bytes::Bytes;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::jid::Jid;
use palaver_dialects::xmpp::ns;

/// An empty `<iq type='result'/>` answering `el` (from its addressee, to the client).
pub fn iq_result(session: &Session, el: &Element) -> Element {
    result_for(el, &session.svc.domain, &session.jid_str)
}

/// The single payload child of an IQ.
pub fn payload(el: &Element) -> Option<&Element> {
    el.children().next()
}

/// Stanzas to the server's domain (or with no `to`).
pub async fn handle_server(session: &mut Session, el: Element, _to: Option<Jid>) {
    match el.name.as_str() {
        "iq" => server_iq(session, &el),
        "presence" if el.attr("to").is_none() => broadcast_presence(session, &el).await,
        _ => {}
    }
}

fn server_iq(session: &mut Session, el: &Element) {
    let kind = el.attr("type").unwrap_or("");
    if kind == "result" || kind == "error" {
        return;
    }
    let Some(q) = payload(el) else {
        return reply_error(session, el, "modify", "bad-request", None);
    };
    let get = kind == "get";
    let reply = match (q.ns.as_str(), q.name.as_str(), get) {
        (ns::ROSTER, "query", true) => {
            let mut query = Element::new("query", ns::ROSTER);
            if q.attr("ver").is_some() {
                query.set_attr("ver", "1");
            }
            Some(iq_result(session, el).with_child(query))
        }
        (ns::ROSTER, "query", false) => Some(iq_result(session, el)),
        (ns::PING, "ping", true) => Some(iq_result(session, el)),
        (ns::SESSION, "session", false) => Some(iq_result(session, el)),
        (ns::DISCO_INFO, "query", true) if q.attr("node").is_none() => {
            let mut query = Element::new("query", ns::DISCO_INFO).with_child(
                Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", "server")
                    .with_attr("type", "im")
                    .with_attr("name", "palaver"),
            );
            for f in [
                ns::DISCO_INFO,
                ns::DISCO_ITEMS,
                ns::PING,
                ns::VERSION,
                ns::VCARD,
            ] {
                query.append_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", f));
            }
            Some(iq_result(session, el).with_child(query))
        }
        (ns::DISCO_ITEMS, "query", true) if q.attr("node").is_none() => {
            let item = Element::new("item", ns::DISCO_ITEMS)
                .with_attr("jid", session.svc.muc_domain.as_str())
                .with_attr("name", "Chat rooms");
            let mut query = Element::new("query", ns::DISCO_ITEMS).with_child(item);
            if session.svc.ctx.files.is_some() {
                query.append_child(
                    Element::new("item", ns::DISCO_ITEMS)
                        .with_attr("jid", session.svc.upload_domain.as_str())
                        .with_attr("name", "HTTP File Upload"),
                );
            }
            Some(iq_result(session, el).with_child(query))
        }
        (ns::VERSION, "query", true) => {
            let query = Element::new("query", ns::VERSION)
                .with_child(Element::new("name", ns::VERSION).with_text("palaver"))
                .with_child(
                    Element::new("version", ns::VERSION).with_text(env!("CARGO_PKG_VERSION")),
                );
            Some(iq_result(session, el).with_child(query))
        }
        (ns::VCARD, "vCard", true) => {
            Some(iq_result(session, el).with_child(Element::new("vCard", ns::VCARD)))
        }
        _ => None,
    };
    match reply {
        Some(r) => session.send_el(&r),
        None => reply_error(session, el, "cancel", "service-unavailable", None),
    }
}

/// Presence without `to`: availability of this session (RFC 6121 §4.2, §4.5).
async fn broadcast_presence(session: &mut Session, el: &Element) {
    let bare = session.user.to_string();
    match el.attr("type") {
        None => {
            session.available = true;
            session
                .svc
                .router
                .set_available(&bare, session.client_id, true);
            // Echo to the user's own available sessions (this one included).
            let mut echo = el.clone();
            echo.remove_attr("to");
            session
                .svc
                .router
                .deliver(&bare, None, Bytes::from(echo.to_bytes(ns::CLIENT)));
        }
        Some("unavailable") => {
            session.available = false;
            session
                .svc
                .router
                .set_available(&bare, session.client_id, false);
            session.leave_all_rooms().await;
        }
        _ => {}
    }
}

/// Stanzas to a local user's JID (our own bare JID included).
pub async fn handle_user(session: &mut Session, el: Element, to: Jid) {
    let own_bare = to.bare() == session.user.as_str();
    if el.name == "iq" && to.is_bare() {
        if own_bare {
            return server_iq(session, &el);
        }
        return reply_error(session, &el, "cancel", "service-unavailable", None);
    }
    if el.name == "presence"
        && el
            .attr("type")
            .is_some_and(|t| t.starts_with("subscri") || t.starts_with("unsubscri"))
    {
        // No roster subscriptions yet: accepted and dropped.
        return;
    }
    let mut routed = el.clone();
    routed.remove_attr("to");
    let stanza = Bytes::from(routed.to_bytes(ns::CLIENT));
    let resource = (!to.is_bare()).then_some(to.resource.as_str());
    let delivered = session.svc.router.deliver(&to.bare(), resource, stanza);
    if delivered == 0 && el.name != "presence" {
        reply_error(
            session,
            &el,
            "cancel",
            "service-unavailable",
            Some("the recipient is not online"),
        );
    }
}
