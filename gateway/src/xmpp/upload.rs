//! The HTTP File Upload service (XEP-0363, `urn:xmpp:http:upload:0`) at `upload.<domain>`:
//! disco#info with the `max-file-size` form (§3), and slot requests (§4) answered with a signed
//! PUT URL and the file's GET URL, or refused: file too large (§4.1, with the limit), quota
//! exceeded (resource-constraint), a malformed request (bad-request). The MUC service takes slot
//! requests too: sent to `conference.<domain>` they are the same as to the upload service; sent
//! to a room (by an occupant) the file is tied to that room from the start.

use super::dispatch::reply_error;
use super::local::{iq_result, payload};
use super::session::Session;
use super::stanza_error::error_element;
use crate::files::SlotError;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::jid::Jid;
use palaver_dialects::xmpp::ns;

/// XEP-0363's namespace.
pub const NS_UPLOAD: &str = "urn:xmpp:http:upload:0";

/// Stanzas to the upload service.
pub async fn handle(session: &mut Session, el: Element) {
    if el.name != "iq" || matches!(el.attr("type"), Some("result" | "error")) {
        if el.name != "presence" {
            reply_error(session, &el, "cancel", "service-unavailable", None);
        }
        return;
    }
    let Some(files) = session.svc.ctx.files.clone() else {
        return reply_error(session, &el, "cancel", "service-unavailable", None);
    };
    let Some(q) = payload(&el) else {
        return reply_error(session, &el, "modify", "bad-request", None);
    };
    let get = el.attr("type") == Some("get");
    match (q.ns.as_str(), q.name.as_str(), get) {
        (ns::DISCO_INFO, "query", true) if q.attr("node").is_none() => {
            let info = disco_info(files.config.max_file_bytes);
            let reply = iq_result(session, &el).with_child(info);
            session.send_el(&reply);
        }
        (ns::DISCO_ITEMS, "query", true) => {
            let reply = iq_result(session, &el).with_child(Element::new("query", ns::DISCO_ITEMS));
            session.send_el(&reply);
        }
        (NS_UPLOAD, "request", true) => request_slot(session, &el, q.clone(), &files, None).await,
        _ => reply_error(session, &el, "cancel", "service-unavailable", None),
    }
}

/// Whether `el` is a slot request (an IQ get with XEP-0363's `<request/>`).
pub fn is_slot_request(el: &Element) -> bool {
    el.name == "iq"
        && el.attr("type") == Some("get")
        && payload(el).is_some_and(|q| q.ns == NS_UPLOAD && q.name == "request")
}

/// A slot request sent to the MUC service (`to` has no local part) or to a room.
pub async fn handle_muc(session: &mut Session, el: Element, to: Jid) {
    let Some(files) = session.svc.ctx.files.clone() else {
        return reply_error(session, &el, "cancel", "service-unavailable", None);
    };
    let Some(q) = payload(&el).cloned() else {
        return reply_error(session, &el, "modify", "bad-request", None);
    };
    if to.local.is_empty() {
        return request_slot(session, &el, q, &files, None).await;
    }
    if !to.resource.is_empty() {
        return reply_error(session, &el, "cancel", "service-unavailable", None);
    }
    let room = match session.svc.ctx.store.get_room(&to.local).await {
        Ok(Some(room)) => room,
        Ok(None) => {
            return reply_error(
                session,
                &el,
                "cancel",
                "item-not-found",
                Some("no such room"),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "upload slot: room lookup failed");
            return reply_error(session, &el, "wait", "internal-server-error", None);
        }
    };
    if !session.joined.contains_key(to.local.as_str()) {
        return reply_error(
            session,
            &el,
            "auth",
            "forbidden",
            Some("only occupants of the room can upload files to it"),
        );
    }
    request_slot(session, &el, q, &files, Some(room.id)).await
}

/// The XEP-0363 part of the MUC service's disco#info: the feature and the `max-file-size` form.
pub fn muc_service_info(session: &Session, query: &mut Element) {
    if let Some(files) = &session.svc.ctx.files {
        let info = disco_info(files.config.max_file_bytes);
        for child in info.children() {
            if child.name != "identity" && child.attr("var") != Some(ns::DISCO_INFO) {
                query.append_child(child.clone());
            }
        }
    }
}

fn disco_info(max: u64) -> Element {
    let field = |var: &str, value: &str| {
        Element::new("field", ns::DATA_FORMS)
            .with_attr("var", var)
            .with_child(Element::new("value", ns::DATA_FORMS).with_text(value))
    };
    let mut form_type = field("FORM_TYPE", NS_UPLOAD);
    form_type.set_attr("type", "hidden");
    Element::new("query", ns::DISCO_INFO)
        .with_child(
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", "store")
                .with_attr("type", "file")
                .with_attr("name", "HTTP File Upload"),
        )
        .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", NS_UPLOAD))
        .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", ns::DISCO_INFO))
        .with_child(
            Element::new("x", ns::DATA_FORMS)
                .with_attr("type", "result")
                .with_child(form_type)
                .with_child(field("max-file-size", &max.to_string())),
        )
}

async fn request_slot(
    session: &mut Session,
    el: &Element,
    req: Element,
    files: &crate::files::FileService,
    room: Option<palaver_core::RoomId>,
) {
    let name = req.attr("filename").unwrap_or("");
    let size = req.attr("size").and_then(|s| s.parse::<u64>().ok());
    let mime = req
        .attr("content-type")
        .filter(|t| !t.is_empty())
        .unwrap_or("application/octet-stream");
    let Some(size) = size else {
        return reply_error(
            session,
            el,
            "modify",
            "bad-request",
            Some("size is required"),
        );
    };
    let user = session.user.clone();
    match files.slot(&user, name, size, mime, room).await {
        Ok(slot) => {
            let slot = Element::new("slot", NS_UPLOAD)
                .with_child(Element::new("put", NS_UPLOAD).with_attr("url", slot.put_url))
                .with_child(Element::new("get", NS_UPLOAD).with_attr("url", slot.get_url));
            let reply = iq_result(session, el).with_child(slot);
            session.send_el(&reply);
        }
        Err(SlotError::TooLarge { max }) => {
            let text = format!("the largest file accepted has {max} bytes");
            let mut reply = slot_error(session, el, "modify", "not-acceptable", &text);
            if let Some(error) = reply.get_child_mut("error", ns::CLIENT) {
                error.append_child(Element::new("file-too-large", NS_UPLOAD).with_child(
                    Element::new("max-file-size", NS_UPLOAD).with_text(max.to_string()),
                ));
            }
            session.send_el(&reply);
        }
        Err(e @ SlotError::Quota { .. }) => {
            let reply = slot_error(session, el, "wait", "resource-constraint", &e.to_string());
            session.send_el(&reply);
        }
        Err(SlotError::Bad(why)) => reply_error(session, el, "modify", "bad-request", Some(why)),
        Err(SlotError::Store(e)) => {
            tracing::warn!(error = %e, "upload slot: store failed");
            reply_error(session, el, "wait", "internal-server-error", None)
        }
    }
}

fn slot_error(session: &Session, el: &Element, kind: &str, cond: &str, text: &str) -> Element {
    let domain = session.svc.domain.clone();
    error_element(el, &domain, &session.jid_str, kind, cond, Some(text))
}
