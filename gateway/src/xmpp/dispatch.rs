//! Routing of each stanza a bound client sends: stamp its `from`, parse `to`, and hand it to the
//! server's own handlers, another local user, or the MUC service; anything else gets an error.

use super::session::Session;
use super::stanza_error::iq_error;
use super::{local, muc, upload};
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::jid::Jid;
use palaver_dialects::xmpp::ns;
use palaver_dialects::xmpp::reader::StreamEvent;

/// Handles one stream event of an established session.
pub async fn handle_event(session: &mut Session, ev: StreamEvent) {
    match ev {
        StreamEvent::Close => {
            session.wbuf.extend_from_slice(b"</stream:stream>");
            session.closing = true;
        }
        StreamEvent::Open { .. } => {
            session
                .wbuf
                .extend_from_slice(&super::conn::stream_error_bytes(
                    "bad-format",
                    Some("stream already open"),
                ));
            session.closing = true;
        }
        StreamEvent::Stanza(el) => handle_stanza(session, el).await,
    }
}

/// Replies with an error unless the stanza is itself an error or result (RFC 6120 §8.3.1).
pub fn reply_error(
    session: &mut Session,
    el: &Element,
    err_type: &str,
    condition: &str,
    text: Option<&str>,
) {
    if matches!(el.attr("type"), Some("error") | Some("result")) {
        return;
    }
    let domain = session.svc.domain.clone();
    let jid = session.jid_str.clone();
    let bytes = iq_error(el, &domain, &jid, err_type, condition, text);
    session.wbuf.extend_from_slice(&bytes);
}

async fn handle_stanza(session: &mut Session, mut el: Element) {
    let is_stanza =
        el.ns == ns::CLIENT && matches!(el.name.as_str(), "iq" | "message" | "presence");
    if !is_stanza {
        session
            .wbuf
            .extend_from_slice(&super::conn::stream_error_bytes(
                "unsupported-stanza-type",
                Some("only iq, message and presence are allowed here"),
            ));
        session.closing = true;
        return;
    }
    metrics::counter!("palaver_stanzas_in_total", "protocol" => "xmpp").increment(1);
    el.set_attr("from", session.jid_str.clone());
    let to = match el.attr("to").map(Jid::parse) {
        None => None,
        Some(Ok(j)) => Some(j),
        Some(Err(e)) => {
            let text = e.to_string();
            reply_error(session, &el, "modify", "jid-malformed", Some(&text));
            return;
        }
    };
    if el.name == "iq" && !valid_iq(&el) {
        reply_error(
            session,
            &el,
            "modify",
            "bad-request",
            Some("an iq needs an id, a type and one child"),
        );
        return;
    }
    let svc = session.svc.clone();
    match to {
        None => local::handle_server(session, el, None).await,
        Some(to) if to.domain == svc.domain && to.local.is_empty() => {
            local::handle_server(session, el, Some(to)).await
        }
        Some(to) if to.domain == svc.domain => local::handle_user(session, el, to).await,
        Some(to) if to.domain == svc.muc_domain && upload::is_slot_request(&el) => {
            upload::handle_muc(session, el, to).await
        }
        Some(to) if to.domain == svc.muc_domain => muc::handle(session, el, to).await,
        Some(to) if to.domain == svc.upload_domain && to.local.is_empty() => {
            upload::handle(session, el).await
        }
        Some(_) => reply_error(
            session,
            &el,
            "cancel",
            "remote-server-not-found",
            Some("this server does not federate yet"),
        ),
    }
}

fn valid_iq(el: &Element) -> bool {
    let has_id = el.attr("id").is_some_and(|i| !i.is_empty());
    match el.attr("type") {
        Some("get") | Some("set") => has_id && el.children().count() == 1,
        Some("result") | Some("error") => has_id,
        _ => false,
    }
}
