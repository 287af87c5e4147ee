//! Replies to a client's stanza: `<iq type='result'/>` and stanza errors (RFC 6120 §8.3), and
//! the mapping of the room engine's `RoomError` to XMPP error types and conditions (XEP-0045
//! §7.2 and §17).

use palaver_core::engine::RoomError;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::ns;

/// The error reply to `original` as an element: same stanza kind and id, `from` the original
/// addressee (or `default_from`), `to` the client (`to`, empty = omitted).
pub fn error_element(
    original: &Element,
    default_from: &str,
    to: &str,
    err_type: &str,
    condition: &str,
    text: Option<&str>,
) -> Element {
    let mut reply = Element::new(original.name.clone(), ns::CLIENT).with_attr("type", "error");
    if let Some(id) = original.attr("id") {
        reply.set_attr("id", id);
    }
    reply.set_attr("from", original.attr("to").unwrap_or(default_from));
    if !to.is_empty() {
        reply.set_attr("to", to);
    }
    let mut error = Element::new("error", ns::CLIENT)
        .with_attr("type", err_type)
        .with_child(Element::new(condition, ns::STANZA_ERRORS));
    if let Some(t) = text {
        error.append_child(
            Element::new("text", ns::STANZA_ERRORS)
                .with_attr("xml:lang", "en")
                .with_text(t),
        );
    }
    reply.append_child(error);
    reply
}

/// `error_element` serialized for the client stream.
pub fn iq_error(
    original: &Element,
    default_from: &str,
    to: &str,
    err_type: &str,
    condition: &str,
    text: Option<&str>,
) -> Vec<u8> {
    error_element(original, default_from, to, err_type, condition, text).to_bytes(ns::CLIENT)
}

/// XMPP error type and condition for a room refusal.
pub fn room_error(e: &RoomError) -> (&'static str, &'static str) {
    match e {
        RoomError::ItemNotFound | RoomError::Locked => ("cancel", "item-not-found"),
        RoomError::Forbidden => ("auth", "forbidden"),
        RoomError::RegistrationRequired => ("auth", "registration-required"),
        RoomError::NotAuthorized => ("auth", "not-authorized"),
        RoomError::Conflict => ("cancel", "conflict"),
        RoomError::ServiceUnavailable => ("wait", "service-unavailable"),
        RoomError::NotAllowed(_) => ("cancel", "not-allowed"),
        RoomError::NotAcceptable => ("cancel", "not-acceptable"),
        RoomError::BadRequest(_) => ("modify", "bad-request"),
        RoomError::ResourceConstraint => ("wait", "resource-constraint"),
        RoomError::Internal => ("wait", "internal-server-error"),
        RoomError::RecipientUnavailable => ("cancel", "item-not-found"),
    }
}

/// Error reply for a room refusal, with the engine's explanation as text.
pub fn room_error_element(
    original: &Element,
    default_from: &str,
    to: &str,
    e: &RoomError,
) -> Element {
    let (t, c) = room_error(e);
    error_element(original, default_from, to, t, c, Some(&e.to_string()))
}

/// `<iq type='result'/>` to `to`, from the original addressee.
pub fn result_for(el: &Element, default_from: &str, to: &str) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "result")
        .with_attr("id", el.attr("id").unwrap_or(""))
        .with_attr("from", el.attr("to").unwrap_or(default_from))
        .with_attr("to", to)
}
