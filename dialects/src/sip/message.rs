//! Parsing one SIP message (a UDP datagram, or a message cut out of a stream by
//! [`crate::sip::framing`]) into a [`SipMessage`]: rsip's `Request`/`Response` plus the typed
//! views palaver needs, all validated up front so accessors never fail.
//!
//! The header section is lexed here (folding, compact names, control bytes, size and count
//! limits) and the values that matter are parsed by this module's own small grammar, because
//! rsip 0.4's typed parsers reject or silently mangle common real-world shapes (see `uri.rs`,
//! `addr.rs`, `via.rs`). rsip then receives only already-validated pieces; the conversion is
//! still wrapped in `catch_unwind` since rsip is unmaintained.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::sip::addr::{parse_delta_seconds, NameAddr};
use crate::sip::error::SipError;
use crate::sip::headers::{canonical_name, skip_leading_crlf, split_message, HeaderField};
use crate::sip::syntax::split_list;
use crate::sip::typed::{parse_method, CSeq, Event, MediaType, Method, SubscriptionState};
use crate::sip::uri::SipUri;
use crate::sip::via::Via;

/// Whether a datagram is only a keep-alive (CRLFs, RFC 5626 §4.4.1 / RFC 3261 §7.5): drop it
/// silently (over UDP no answer is expected).
pub fn is_keepalive(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|b| *b == b'\r' || *b == b'\n')
}

/// Fallback for [`SipMessage::top_via`] (unreachable: parsing requires a Via).
static NO_VIA: Via = Via::EMPTY;

/// What the start line said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    Request { method: Method, uri: SipUri },
    Response { code: u16, reason: String },
}

/// A parsed, validated SIP request or response.
///
/// Guaranteed present and well-formed: at least one Via, From, To, Call-ID, CSeq (whose method
/// matches a request's method). Optional headers that palaver reads (Max-Forwards, Contact,
/// Expires, Content-Type, Event, Subscription-State, Content-Length) were validated too.
#[derive(Debug, Clone)]
pub struct SipMessage {
    inner: rsip::SipMessage,
    start: Start,
    fields: Vec<HeaderField>,
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: CSeq,
    max_forwards: Option<u32>,
    contacts: Vec<NameAddr>,
    contact_wildcard: bool,
    expires: Option<u32>,
    content_type: Option<MediaType>,
    event: Option<Event>,
    subscription_state: Option<SubscriptionState>,
}

/// Parses one message of at most `max_size` bytes.
///
/// Errors map to responses through [`SipError::status`]: 513 over `max_size`, 505 for a version
/// other than SIP/2.0, 405 for an unknown method, 400 for everything else. Without
/// Content-Length the body is the rest of the input (fine for UDP); with it, extra bytes are
/// dropped (RFC 3261 §18.3) and missing ones are an error.
pub fn parse(bytes: &[u8], max_size: usize) -> Result<SipMessage, SipError> {
    if bytes.len() > max_size {
        return Err(SipError::TooLarge {
            size: bytes.len(),
            limit: max_size,
        });
    }
    let bytes = skip_leading_crlf(bytes);
    if bytes.is_empty() {
        return Err(SipError::malformed("empty message"));
    }
    let split = split_message(bytes)?;
    let start = parse_start_line(split.start_line)?;
    let fields = split.fields;

    let mut vias = Vec::new();
    for value in values(&fields, "Via") {
        for element in split_list(value)? {
            vias.push(Via::parse(element)?);
        }
    }
    if vias.is_empty() {
        return Err(SipError::MissingHeader("Via"));
    }
    let from = NameAddr::parse(required(&fields, "From")?)?;
    let to = NameAddr::parse(required(&fields, "To")?)?;
    let call_id = required(&fields, "Call-ID")?.to_string();
    if call_id.is_empty() || call_id.contains([' ', '\t']) {
        return Err(SipError::malformed("bad Call-ID"));
    }
    let cseq = CSeq::parse(required(&fields, "CSeq")?)?;
    if let Start::Request { method, .. } = &start {
        if *method != cseq.method {
            return Err(SipError::malformed(
                "CSeq method differs from the request method",
            ));
        }
    }
    let max_forwards = optional(&fields, "Max-Forwards")?
        .map(|v| parse_u32(v).ok_or_else(|| SipError::malformed("bad Max-Forwards")))
        .transpose()?;
    let (contacts, contact_wildcard) = parse_contacts(&fields)?;
    let expires = optional(&fields, "Expires")?
        .map(|v| parse_delta_seconds(v).ok_or_else(|| SipError::malformed("bad Expires")))
        .transpose()?;
    let content_type = optional(&fields, "Content-Type")?
        .map(MediaType::parse)
        .transpose()?;
    let event = optional(&fields, "Event")?.map(Event::parse).transpose()?;
    let subscription_state = optional(&fields, "Subscription-State")?
        .map(SubscriptionState::parse)
        .transpose()?;
    let body = match content_length(&fields)? {
        Some(len) => split
            .body
            .get(..len)
            .ok_or_else(|| SipError::malformed("body shorter than Content-Length"))?,
        None => split.body,
    };
    let inner = to_rsip(&start, &fields, body)?;
    Ok(SipMessage {
        inner,
        start,
        fields,
        vias,
        from,
        to,
        call_id,
        cseq,
        max_forwards,
        contacts,
        contact_wildcard,
        expires,
        content_type,
        event,
        subscription_state,
    })
}

fn parse_start_line(line: &str) -> Result<Start, SipError> {
    if line.len() >= 4
        && line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let (version, rest) = line
            .split_once(' ')
            .ok_or_else(|| SipError::malformed("bad status line"))?;
        check_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let valid = code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit());
        let code = code
            .parse::<u16>()
            .ok()
            .filter(|c| valid && (100..700).contains(c));
        let code = code.ok_or_else(|| SipError::malformed("bad status code"))?;
        return Ok(Start::Response {
            code,
            reason: reason.to_string(),
        });
    }
    let mut parts = line.splitn(3, ' ');
    let (method, uri, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), Some(v)) => (m, u, v),
        _ => return Err(SipError::malformed("bad request line")),
    };
    check_version(version)?;
    let uri = SipUri::parse(uri)?;
    let method = parse_method(method)?;
    Ok(Start::Request { method, uri })
}

fn check_version(version: &str) -> Result<(), SipError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        Ok(())
    } else if version.len() >= 4
        && version
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        Err(SipError::Version(version.chars().take(16).collect()))
    } else {
        Err(SipError::malformed("bad SIP version"))
    }
}

/// The values of header `name` (compact forms and case ignored), in order.
fn values<'a>(fields: &'a [HeaderField], name: &str) -> impl Iterator<Item = &'a str> + 'a {
    let name = canonical_name(name);
    fields
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(&name))
        .map(|f| f.value.as_str())
}

/// A header that may appear at most once.
fn optional<'a>(
    fields: &'a [HeaderField],
    name: &'static str,
) -> Result<Option<&'a str>, SipError> {
    let mut it = values(fields, name);
    match (it.next(), it.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) => Err(SipError::malformed(format!("more than one {name} header"))),
        (None, Some(_)) => Ok(None),
    }
}

/// A header that must appear exactly once.
fn required<'a>(fields: &'a [HeaderField], name: &'static str) -> Result<&'a str, SipError> {
    optional(fields, name)?.ok_or(SipError::MissingHeader(name))
}

/// Strict decimal `u32`: 1–10 digits, no sign, no overflow.
fn parse_u32(v: &str) -> Option<u32> {
    let ok = !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit());
    v.parse::<u32>().ok().filter(|_| ok)
}

fn content_length(fields: &[HeaderField]) -> Result<Option<usize>, SipError> {
    optional(fields, "Content-Length")?
        .map(|v| {
            parse_u32(v)
                .map(|n| n as usize)
                .ok_or_else(|| SipError::malformed("bad Content-Length"))
        })
        .transpose()
}

fn parse_contacts(fields: &[HeaderField]) -> Result<(Vec<NameAddr>, bool), SipError> {
    let (mut contacts, mut wildcard) = (Vec::new(), false);
    for value in values(fields, "Contact") {
        if value == "*" {
            wildcard = true;
            continue;
        }
        for element in split_list(value)? {
            contacts.push(NameAddr::parse(element)?);
        }
    }
    if wildcard && !contacts.is_empty() {
        return Err(SipError::malformed("Contact: * with other contacts"));
    }
    Ok((contacts, wildcard))
}

/// Builds rsip's view from validated pieces (never panics in practice; guarded anyway).
fn to_rsip(
    start: &Start,
    fields: &[HeaderField],
    body: &[u8],
) -> Result<rsip::SipMessage, SipError> {
    let build = || -> Result<rsip::SipMessage, rsip::Error> {
        let mut headers = Vec::with_capacity(fields.len());
        for f in fields {
            let tokenizer =
                rsip::headers::header::Tokenizer::from((f.name.as_bytes(), f.value.as_bytes()));
            let header: rsip::Header = tokenizer.try_into()?;
            headers.push(header);
        }
        Ok(match start {
            Start::Request { method, uri } => rsip::SipMessage::Request(rsip::Request {
                method: *method,
                uri: uri.to_rsip(),
                version: rsip::Version::V2,
                headers: headers.into(),
                body: body.to_vec(),
            }),
            Start::Response { code, reason } => rsip::SipMessage::Response(rsip::Response {
                status_code: match rsip::StatusCode::from(*code) {
                    rsip::StatusCode::Other(code, _) => {
                        rsip::StatusCode::Other(code, reason.clone())
                    }
                    known => known,
                },
                version: rsip::Version::V2,
                headers: headers.into(),
                body: body.to_vec(),
            }),
        })
    };
    match catch_unwind(AssertUnwindSafe(build)) {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(_)) => Err(SipError::malformed("rejected by rsip")),
        Err(_) => Err(SipError::malformed("rsip panicked")),
    }
}

impl SipMessage {
    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request { .. })
    }

    /// The method of a request; `None` for a response (see [`SipMessage::cseq`]).
    pub fn method(&self) -> Option<Method> {
        match &self.start {
            Start::Request { method, .. } => Some(*method),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&SipUri> {
        match &self.start {
            Start::Request { uri, .. } => Some(uri),
            Start::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            Start::Response { code, .. } => Some(*code),
            Start::Request { .. } => None,
        }
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            Start::Response { reason, .. } => Some(reason),
            Start::Request { .. } => None,
        }
    }

    /// The From header.
    pub fn from(&self) -> &NameAddr {
        &self.from
    }

    /// The To header.
    pub fn to(&self) -> &NameAddr {
        &self.to
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The CSeq header.
    pub fn cseq(&self) -> CSeq {
        self.cseq
    }

    /// Every Via value, top first (comma-separated values are split).
    pub fn vias(&self) -> &[Via] {
        &self.vias
    }

    /// The top Via (always present).
    pub fn top_via(&self) -> &Via {
        // `parse` guarantees at least one Via; the fallback only keeps this panic-free.
        self.vias.first().unwrap_or(&NO_VIA)
    }

    /// The top Via's branch.
    pub fn branch(&self) -> Option<&str> {
        self.vias.first().and_then(Via::branch)
    }

    /// Records the packet's source address on the top Via (`received`, `rport`); call it on
    /// every received request before building responses (see [`Via::stamp_source`]).
    /// [`SipMessage::as_rsip`] keeps the message as received.
    pub fn stamp_source(&mut self, source: SocketAddr) {
        if let Some(top) = self.vias.first_mut() {
            top.stamp_source(source);
        }
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Option<u32> {
        self.max_forwards
    }

    /// Every Contact value in order (comma-separated values are split).
    pub fn contacts(&self) -> &[NameAddr] {
        &self.contacts
    }

    /// The first Contact.
    pub fn contact(&self) -> Option<&NameAddr> {
        self.contacts.first()
    }

    /// Whether the message carries `Contact: *` (REGISTER: remove all bindings).
    pub fn is_contact_wildcard(&self) -> bool {
        self.contact_wildcard
    }

    /// The Expires header in seconds.
    pub fn expires(&self) -> Option<u32> {
        self.expires
    }

    /// The Content-Type header.
    pub fn content_type(&self) -> Option<&MediaType> {
        self.content_type.as_ref()
    }

    /// The body (exactly Content-Length bytes when that header was present).
    pub fn body(&self) -> &[u8] {
        self.inner.body()
    }

    /// The Event header.
    pub fn event(&self) -> Option<&Event> {
        self.event.as_ref()
    }

    /// The Subscription-State header.
    pub fn subscription_state(&self) -> Option<&SubscriptionState> {
        self.subscription_state.as_ref()
    }

    /// The raw Authorization value (see [`crate::sip::digest`]).
    pub fn authorization(&self) -> Option<&str> {
        self.header("Authorization")
    }

    /// The raw Proxy-Authorization value.
    pub fn proxy_authorization(&self) -> Option<&str> {
        self.header("Proxy-Authorization")
    }

    /// The first raw WWW-Authenticate value.
    pub fn www_authenticate(&self) -> Option<&str> {
        self.header("WWW-Authenticate")
    }

    /// Every raw WWW-Authenticate value (a 401 may offer SHA-256 and MD5).
    pub fn www_authenticates(&self) -> impl Iterator<Item = &str> {
        self.header_values("WWW-Authenticate")
    }

    /// The methods listed in Allow headers.
    pub fn allow(&self) -> Vec<&str> {
        self.header_values("Allow")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect()
    }

    /// The first value of header `name` (case-insensitive; compact forms match their long
    /// names), as received minus folding.
    pub fn header(&self, name: &str) -> Option<&str> {
        values(&self.fields, name).next()
    }

    /// Every value of header `name`, one per header line.
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        values(&self.fields, name)
    }

    /// All header fields in order, with canonical names.
    pub fn headers(&self) -> &[HeaderField] {
        &self.fields
    }

    /// rsip's view of the message as received.
    pub fn as_rsip(&self) -> &rsip::SipMessage {
        &self.inner
    }

    /// Consumes the wrapper, returning rsip's message.
    pub fn into_rsip(self) -> rsip::SipMessage {
        self.inner
    }
}
