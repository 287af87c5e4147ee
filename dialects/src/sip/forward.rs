//! Proxying (RFC 3261 §16): re-serializing a parsed request for its next hop, and a received
//! response for the previous one. [`forward_request`] writes the request with a new
//! Request-URI, a route set, an optional Via of our own on top (fresh branch) and
//! Max-Forwards decremented, keeping every other header and the body as received;
//! [`strip_top_via`] writes a response without its top Via (ours). Header values come from
//! the parser (validated, unfolded) and are sanitized again, so nothing can inject lines.

use crate::sip::error::SipError;
use crate::sip::headers::{same_name, HeaderField};
use crate::sip::message::SipMessage;
use crate::sip::request::{new_branch, OutgoingRequest};
use crate::sip::response::sanitize;
use crate::sip::uri::SipUri;
use crate::sip::via::Via;

/// What changes when a request is forwarded.
#[derive(Debug, Clone, Default)]
pub struct Forward<'a> {
    /// The new Request-URI (`None`: keep the request's).
    pub request_uri: Option<&'a str>,
    /// `Route` values put before the request's own (kept) ones, in order.
    pub route: &'a [String],
    /// Our Via: transport (`UDP`, `TCP`, `TLS`) and sent-by; pushed on top with a fresh
    /// branch. `None`: the Via list is written as received (with `received`/`rport` stamped).
    pub via: Option<(&'a str, &'a str)>,
    /// Decrement Max-Forwards (70 is written when it was absent).
    pub decrement_max_forwards: bool,
}

fn push(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(&sanitize(value));
    out.push_str("\r\n");
}

/// Re-serializes `request` (a parsed request) as changed by `change`. Headers for which
/// `keep` is false are left out (Via, Max-Forwards and Content-Length are always rewritten
/// and never passed to `keep`). The result's branch is our Via's, or the request's top
/// branch when no Via is pushed.
pub fn forward_request(
    request: &SipMessage,
    change: &Forward<'_>,
    keep: impl Fn(&HeaderField) -> bool,
) -> Result<OutgoingRequest, SipError> {
    let method = request
        .method()
        .ok_or_else(|| SipError::malformed("not a request"))?;
    let uri = match change.request_uri {
        Some(uri) => SipUri::parse(uri)?,
        None => request
            .request_uri()
            .cloned()
            .ok_or_else(|| SipError::malformed("not a request"))?,
    };
    let mut out = format!("{method} {uri} SIP/2.0\r\n");
    let branch = match change.via {
        Some((transport, sent_by)) => {
            let branch = new_branch();
            push(
                &mut out,
                "Via",
                &Via::new(transport, sent_by, &branch)?.to_string(),
            );
            branch
        }
        None => request.branch().unwrap_or_default().to_string(),
    };
    for via in request.vias() {
        push(&mut out, "Via", &via.to_string());
    }
    let hops = match (request.max_forwards(), change.decrement_max_forwards) {
        (Some(n), true) => n.saturating_sub(1),
        (Some(n), false) => n,
        (None, _) => 70,
    };
    push(&mut out, "Max-Forwards", &hops.to_string());
    for hop in change.route {
        push(&mut out, "Route", hop);
    }
    let fixed = ["Via", "Max-Forwards", "Content-Length"];
    for field in request.headers() {
        if fixed.iter().any(|n| same_name(n, &field.name)) || !keep(field) {
            continue;
        }
        push(&mut out, &field.name, &field.value);
    }
    Ok(OutgoingRequest {
        bytes: crate::sip::request::with_body(out, request.body()),
        branch,
        call_id: request.call_id().to_string(),
        cseq: request.cseq(),
    })
}

/// Re-serializes the response `response` without its top Via (RFC 3261 §16.7 step 3), every
/// other header and the body as received; `None` for a request.
pub fn strip_top_via(response: &SipMessage) -> Option<Vec<u8>> {
    let code = response.status()?;
    let reason = sanitize(response.reason().unwrap_or_default());
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in response.vias().iter().skip(1) {
        push(&mut out, "Via", &via.to_string());
    }
    for field in response.headers() {
        if same_name("Via", &field.name) || same_name("Content-Length", &field.name) {
            continue;
        }
        push(&mut out, &field.name, &field.value);
    }
    let body = response.body();
    push(&mut out, "Content-Length", &body.len().to_string());
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse;

    const REQUEST: &str = "MESSAGE sip:bob@example.org SIP/2.0\r\n\
        v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc, SIP/2.0/TCP p.example;branch=z9hG4bKp\r\n\
        Max-Forwards: 5\r\n\
        Route: <sip:us.example;lr>\r\n\
        f: <sip:alice@example.org>;tag=1\r\n\
        t: <sip:bob@example.org>\r\n\
        i: call-1\r\n\
        CSeq: 7 MESSAGE\r\n\
        Proxy-Authorization: Digest username=\"alice\"\r\n\
        c: text/plain\r\n\
        l: 5\r\n\r\nhello";

    #[test]
    fn forwarding_rewrites_the_request_line_via_route_and_max_forwards() {
        let mut req = parse(REQUEST.as_bytes(), 65_535).expect("parses");
        req.stamp_source("10.9.9.9:4000".parse().expect("addr"));
        let route = vec!["<sip:proxy.example;lr>".to_string()];
        let change = Forward {
            request_uri: Some("sip:bob@10.0.0.2:5062;transport=tcp"),
            route: &route,
            via: Some(("TCP", "10.0.0.3:5060")),
            decrement_max_forwards: true,
        };
        let out = forward_request(&req, &change, |f| {
            !same_name(&f.name, "Route") && !same_name(&f.name, "Proxy-Authorization")
        })
        .expect("forwards");
        let text = String::from_utf8(out.bytes.clone()).expect("utf-8");
        let fwd = parse(&out.bytes, 65_535).expect("the forwarded request parses");
        assert_eq!(
            fwd.request_uri().map(ToString::to_string).as_deref(),
            Some("sip:bob@10.0.0.2:5062;transport=tcp")
        );
        assert_eq!(fwd.vias().len(), 3, "{text}");
        assert_eq!(fwd.branch(), Some(out.branch.as_str()));
        assert_eq!(fwd.vias()[0].sent_by(), "10.0.0.3:5060");
        assert_eq!(fwd.vias()[1].received(), Some("10.9.9.9"));
        assert_eq!(fwd.vias()[2].branch(), Some("z9hG4bKp"));
        assert_eq!(fwd.max_forwards(), Some(4));
        assert_eq!(
            fwd.header_values("Route").collect::<Vec<_>>(),
            vec!["<sip:proxy.example;lr>"]
        );
        assert!(fwd.proxy_authorization().is_none());
        assert_eq!(fwd.from().tag(), Some("1"));
        assert_eq!(fwd.call_id(), "call-1");
        assert_eq!(fwd.cseq(), req.cseq());
        assert_eq!(fwd.body(), b"hello");
        assert_eq!(fwd.header("Content-Type"), Some("text/plain"));
        assert_eq!(out.call_id, "call-1");
    }

    #[test]
    fn forwarding_without_changes_keeps_the_request() {
        let req = parse(REQUEST.as_bytes(), 65_535).expect("parses");
        let out = forward_request(&req, &Forward::default(), |_| true).expect("forwards");
        let fwd = parse(&out.bytes, 65_535).expect("parses");
        assert_eq!(fwd.request_uri(), req.request_uri());
        assert_eq!(fwd.vias(), req.vias());
        assert_eq!(fwd.max_forwards(), Some(5));
        assert_eq!(out.branch, "z9hG4bKabc");
        assert_eq!(fwd.header("Route"), Some("<sip:us.example;lr>"));
        assert!(forward_request(
            &req,
            &Forward {
                request_uri: Some("not a uri"),
                ..Forward::default()
            },
            |_| true
        )
        .is_err());
    }

    #[test]
    fn responses_lose_their_top_via_only() {
        let resp = "SIP/2.0 486 Busy Here\r\n\
            Via: SIP/2.0/TCP 10.0.0.3:5060;branch=z9hG4bKours;rport\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;received=10.9.9.9\r\n\
            From: <sip:alice@example.org>;tag=1\r\n\
            To: <sip:bob@example.org>;tag=2\r\n\
            Call-ID: call-1\r\n\
            CSeq: 7 MESSAGE\r\n\
            Server: phone\r\n\
            Content-Type: text/plain\r\n\
            Content-Length: 4\r\n\r\nbusy";
        let msg = parse(resp.as_bytes(), 65_535).expect("parses");
        let out = strip_top_via(&msg).expect("a response");
        let back = parse(&out, 65_535).expect("parses");
        assert_eq!(back.status(), Some(486));
        assert_eq!(back.reason(), Some("Busy Here"));
        assert_eq!(back.vias().len(), 1);
        assert_eq!(back.branch(), Some("z9hG4bKabc"));
        assert_eq!(back.to().tag(), Some("2"));
        assert_eq!(back.header("Server"), Some("phone"));
        assert_eq!(back.body(), b"busy");
        let req = parse(REQUEST.as_bytes(), 65_535).expect("parses");
        assert!(strip_top_via(&req).is_none());
    }
}
