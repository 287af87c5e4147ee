//! The SIP side of one XCCOS session: the INVITE dialog palaver accepted as UAS (RFC 3261
//! §12.1.1) — Call-ID, tags, the client's target and the route set from Record-Route, which
//! make server INFOs travel back through any proxy in front of palaver — plus building those
//! in-dialog INFO/BYE requests and the SDP answer of the 200.

use crate::sip::bindings::split_list;
use crate::sip::transport::{Flow, Transport};
use palaver_dialects::sip::{Method, OutgoingRequest, RequestBuilder, SipMessage};
use std::sync::atomic::{AtomicU32, Ordering};

/// One accepted INVITE dialog.
pub struct Dialog {
    /// The flow the INVITE came on: server requests go back over it (the client, or the proxy
    /// that forwarded it).
    pub flow: Flow,
    pub call_id: String,
    /// Our tag (random: with the Call-ID it is what authorises in-dialog requests).
    pub local_tag: String,
    pub remote_tag: String,
    /// The URI the client invited (`sip:ocschat@…`): our From in server requests.
    pub local_uri: String,
    /// The client's From URI.
    pub remote_uri: String,
    /// The client's Contact: the Request-URI of server requests.
    pub remote_target: String,
    /// Record-Route of the INVITE, in order (RFC 3261 §12.1.1: the UAS keeps the order).
    pub route: Vec<String>,
    cseq: AtomicU32,
}

impl Dialog {
    /// The dialog an INVITE creates, with our `local_tag`; `None` without a Contact.
    pub fn accept(invite: &SipMessage, flow: &Flow, local_tag: String) -> Option<Dialog> {
        let contact = invite.contact()?;
        let local_uri = invite
            .request_uri()
            .map(|u| format!("sip:{}@{}", u.user_unescaped().unwrap_or_default(), u.host))
            .unwrap_or_else(|| invite.to().uri.to_string());
        Some(Dialog {
            flow: flow.clone(),
            call_id: invite.call_id().to_string(),
            local_tag,
            remote_tag: invite.from().tag().unwrap_or_default().to_string(),
            local_uri,
            remote_uri: invite.from().uri.to_string(),
            remote_target: contact.uri.to_string(),
            route: split_list(invite.header_values("Record-Route")),
            cseq: AtomicU32::new(0),
        })
    }

    /// Whether `req` belongs to this dialog (Call-ID and both tags).
    pub fn matches(&self, req: &SipMessage) -> bool {
        req.call_id() == self.call_id
            && req.to().tag() == Some(self.local_tag.as_str())
            && req.from().tag().unwrap_or_default() == self.remote_tag
    }

    /// An in-dialog request of ours (INFO with an envelope, BYE).
    pub fn request(&self, method: Method, body: Option<&[u8]>) -> Option<OutgoingRequest> {
        let cseq = self.cseq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut b = RequestBuilder::new(method, &self.remote_target)
            .via(self.flow.transport.via_name(), &self.flow.local)
            .from(&self.local_uri, None, &self.local_tag)
            .to(&self.remote_uri, None, Some(&self.remote_tag))
            .call_id(&self.call_id)
            .cseq(cseq)
            .contact(&self.contact());
        for hop in &self.route {
            b = b.header("Route", hop);
        }
        if let Some(body) = body {
            b = b.body(palaver_dialects::xccos::CONTENT_TYPE, body);
        }
        match b.build() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, call_id = %self.call_id, "cannot build an XCCOS request");
                None
            }
        }
    }

    /// Our Contact: the invited user part at the address the flow reaches us on.
    pub fn contact(&self) -> String {
        contact_for(&self.local_uri, &self.flow)
    }
}

/// `sip[s]:user@our-address;transport=…` for `local_uri` over `flow` (no angle brackets).
pub fn contact_for(local_uri: &str, flow: &Flow) -> String {
    let user = local_uri
        .strip_prefix("sip:")
        .and_then(|s| s.split('@').next())
        .unwrap_or("ocschat");
    let (scheme, transport) = match flow.transport {
        Transport::Udp => ("sip", ""),
        Transport::Tcp => ("sip", ";transport=tcp"),
        Transport::Tls => ("sips", ";transport=tls"),
    };
    format!("{scheme}:{user}@{}{transport}", flow.local)
}

/// The SDP answer to an offer of an `m=message` session (what Lync answers): the same
/// media line at our address, accepting plain text.
pub fn sdp_answer(flow: &Flow, local_uri: &str) -> String {
    let host = flow
        .local
        .rsplit_once(':')
        .map_or(&*flow.local, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = flow.local.rsplit_once(':').map_or("5060", |(_, p)| p);
    let family = if host.contains(':') { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=- 0 0 IN {family} {host}\r\ns=session\r\nc=IN {family} {host}\r\nt=0 0\r\n\
         m=message {port} sip {local_uri}\r\na=accept-types:text/plain\r\n"
    )
}
