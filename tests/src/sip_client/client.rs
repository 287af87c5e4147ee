//! [`SipClient`] itself: connecting, settings, REGISTER, and out-of-dialog requests such as
//! MESSAGE. Transactions are in `transaction.rs`, SUBSCRIBE dialogs in `dialog.rs`, the
//! inbox and raw frames in `inbox.rs`, the sockets and the reader task in `io.rs`.

use super::io::{self, RawFrame, Shared};
use super::{sip_uri, AutoReply, DigestAlgo, InboundRequest, Response, SipTransport};
use crate::server::TestServer;
use anyhow::{anyhow, bail, Context as _, Result};
use palaver_dialects::sip::request::{new_call_id, new_tag};
use palaver_dialects::sip::{Method, RequestBuilder};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A SIP user agent connected to one server address.
pub struct SipClient {
    pub(super) transport: SipTransport,
    pub(super) server: SocketAddr,
    pub(super) local: SocketAddr,
    /// The user part of the address of record (also the digest username).
    pub(super) user: String,
    pub(super) domain: String,
    pub(super) password: String,
    /// Bound of one request's transaction, and the default for waits.
    pub timeout: Duration,
    /// `None`: answer the first challenge whose algorithm is supported (the server offers
    /// SHA-256 first).
    pub(super) digest_algo: Option<DigestAlgo>,
    pub(super) shared: Arc<Shared>,
    pub(super) inbox: mpsc::UnboundedReceiver<InboundRequest>,
    /// Requests received while waiting for something else, oldest first.
    pub(super) unread: VecDeque<InboundRequest>,
    pub(super) raw: mpsc::UnboundedReceiver<RawFrame>,
    pub(super) closed: watch::Receiver<Option<String>>,
    pub(super) reader: JoinHandle<()>,
    pub(super) reg_call_id: String,
    pub(super) reg_from_tag: String,
    pub(super) reg_cseq: u32,
    /// Nonce → the last `nc` used with it.
    pub(super) nonce_counts: HashMap<String, u32>,
    /// Room URI → subscription dialog.
    pub(super) subscriptions: HashMap<String, Dialog>,
}

/// One SUBSCRIBE dialog (RFC 6665 as a subscriber).
#[derive(Debug, Clone)]
pub(super) struct Dialog {
    pub(super) call_id: String,
    pub(super) local_tag: String,
    pub(super) remote_tag: Option<String>,
    /// The remote target (the 2xx's Contact), the Request-URI of refreshes.
    pub(super) target: String,
    /// Route headers for in-dialog requests (Record-Route of the 2xx, reversed).
    pub(super) route: Vec<String>,
    pub(super) cseq: u32,
}

/// One request to send, kept so a challenge can be answered by sending it again.
pub(super) struct Spec {
    pub(super) method: Method,
    pub(super) request_uri: String,
    pub(super) to_uri: String,
    pub(super) to_tag: Option<String>,
    pub(super) from_tag: String,
    pub(super) call_id: String,
    pub(super) cseq: u32,
    pub(super) contact: bool,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Option<(String, Vec<u8>)>,
}

impl Spec {
    /// `method` to `uri` outside any dialog: `uri` as Request-URI and To (without tag), a
    /// fresh Call-ID and From tag, CSeq 1; our Contact when `contact`.
    pub(super) fn out_of_dialog(
        method: Method,
        uri: &str,
        contact: bool,
        headers: Vec<(String, String)>,
        body: Option<(String, Vec<u8>)>,
    ) -> Spec {
        Spec {
            method,
            request_uri: uri.to_string(),
            to_uri: uri.to_string(),
            to_tag: None,
            from_tag: new_tag(),
            call_id: new_call_id(),
            cseq: 1,
            contact,
            headers,
            body,
        }
    }
}

/// `headers` as owned pairs, for a [`Spec`].
pub(super) fn owned_headers(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

impl SipClient {
    /// Connects `user` (`alice` or `alice@localhost`; the domain defaults to
    /// [`crate::DOMAIN`]) to `server` over `transport`. UDP binds a loopback port; TLS trusts
    /// only the CA in `ca` (unused otherwise) and checks the name [`crate::DOMAIN`].
    pub async fn connect(
        transport: SipTransport,
        server: SocketAddr,
        user: &str,
        password: &str,
        ca: &Path,
    ) -> Result<SipClient> {
        SipClient::connect_from(None, transport, server, user, password, ca).await
    }

    /// [`SipClient::connect`] from a chosen local address (`Some(127.0.0.2)`: another source
    /// IP for per-address limits; port 0), or loopback for `None`.
    pub async fn connect_from(
        local_ip: Option<IpAddr>,
        transport: SipTransport,
        server: SocketAddr,
        user: &str,
        password: &str,
        ca: &Path,
    ) -> Result<SipClient> {
        let (user, domain) = match user.split_once('@') {
            Some((u, d)) => (u.to_string(), d.to_string()),
            None => (user.to_string(), crate::DOMAIN.to_string()),
        };
        let opened = io::open(transport, server, ca, local_ip)
            .await
            .with_context(|| format!("SIP {transport} client {user}@{domain} → {server}"))?;
        Ok(SipClient {
            transport,
            server,
            local: opened.local,
            user,
            domain,
            password: password.to_string(),
            timeout: crate::STEP_TIMEOUT,
            digest_algo: None,
            shared: opened.shared,
            inbox: opened.inbox,
            unread: VecDeque::new(),
            raw: opened.raw,
            closed: opened.closed,
            reader: opened.reader,
            reg_call_id: new_call_id(),
            reg_from_tag: new_tag(),
            reg_cseq: 0,
            nonce_counts: HashMap::new(),
            subscriptions: HashMap::new(),
        })
    }

    /// [`SipClient::connect`] to `server`'s listener for `transport`, trusting its CA.
    pub async fn connect_to(
        server: &TestServer,
        transport: SipTransport,
        user: &str,
        password: &str,
    ) -> Result<SipClient> {
        let addr = server.sip_addr(transport);
        SipClient::connect(transport, addr, user, password, &server.ca_path()).await
    }

    pub fn transport(&self) -> SipTransport {
        self.transport
    }

    /// Our end of the flow (the UDP socket, or the connection's local address).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn server_addr(&self) -> SocketAddr {
        self.server
    }

    /// `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// The Contact URI we register: `sip:user@LOCAL;transport=udp|tcp|tls`.
    pub fn contact(&self) -> String {
        format!(
            "sip:{}@{};transport={}",
            self.user,
            self.local,
            self.transport.via_token().to_ascii_lowercase()
        )
    }

    /// Chooses the digest algorithm to answer with (`None`: the first one offered). Forcing one
    /// the server does not offer makes the challenge unanswerable (an error).
    pub fn set_digest_algo(&mut self, algo: Option<DigestAlgo>) {
        self.digest_algo = algo;
    }

    /// How requests from the server are answered from now on: `set_auto_reply(481)`,
    /// `set_auto_reply(AutoReply::Ignore)`; 200 by default.
    pub fn set_auto_reply(&self, reply: impl Into<AutoReply>) {
        self.shared.set_auto_reply(reply.into());
    }

    /// How many retransmitted requests from the server were recognized (and not queued again).
    pub fn retransmits_seen(&self) -> usize {
        self.shared.retransmits()
    }

    /// How many keep-alive pongs (CRLF) the server sent (TCP/TLS).
    pub fn pongs_seen(&self) -> usize {
        self.shared.pongs()
    }

    /// A [`RequestBuilder`] with our From (fresh tag), To = `uri`, Via and a fresh Call-ID: for
    /// tests that tweak a request and send it with [`SipClient::send_raw`].
    pub fn request_builder(&self, method: Method, uri: &str) -> RequestBuilder {
        let uri = sip_uri(uri);
        RequestBuilder::new(method, &uri)
            .from(&self.aor(), None, &new_tag())
            .to(&uri, None, None)
            .via(self.transport.via_token(), &self.local.to_string())
    }

    // ----- registration -----

    /// REGISTER our Contact for `expires` seconds, answering the 401; returns the final status.
    pub async fn register(&mut self, expires: u32) -> Result<u16> {
        Ok(self.register_response(expires).await?.code)
    }

    /// [`SipClient::register`] returning the whole final response.
    pub async fn register_response(&mut self, expires: u32) -> Result<Response> {
        let mut spec = Spec {
            method: Method::Register,
            request_uri: format!("sip:{}", self.domain),
            to_uri: self.aor(),
            to_tag: None,
            from_tag: self.reg_from_tag.clone(),
            call_id: self.reg_call_id.clone(),
            cseq: self.reg_cseq + 1,
            contact: true,
            headers: vec![("Expires".into(), expires.to_string())],
            body: None,
        };
        let result = self.send_spec(&mut spec, true).await;
        self.reg_cseq = spec.cseq;
        result.with_context(|| format!("REGISTER {} (expires {expires})", self.aor()))
    }

    /// REGISTER with `Expires: 0` (removes our Contact); returns the final status.
    pub async fn unregister(&mut self) -> Result<u16> {
        self.register(0).await
    }

    // ----- requests -----

    /// Sends one non-INVITE request to `uri` (out of dialog: fresh Call-ID and From tag, To
    /// without tag) and returns the final response, answering one 401/407 challenge. A body
    /// needs a Content-Type. SUBSCRIBE gets our Contact.
    pub async fn request(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response> {
        self.request_inner(method, uri, headers, content_type, body, true)
            .await
    }

    /// Like [`SipClient::request`] but returns a 401/407 as it is.
    pub async fn request_raw(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response> {
        self.request_inner(method, uri, headers, content_type, body, false)
            .await
    }

    async fn request_inner(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: &[u8],
        answer_challenge: bool,
    ) -> Result<Response> {
        let uri = sip_uri(uri);
        let body = match (content_type, body.is_empty()) {
            (Some(ct), _) => Some((ct.to_string(), body.to_vec())),
            (None, true) => None,
            (None, false) => {
                bail!("a body needs a Content-Type (send_raw sends malformed requests)")
            }
        };
        let mut spec = Spec::out_of_dialog(
            method,
            &uri,
            matches!(method, Method::Subscribe | Method::Register),
            owned_headers(headers),
            body,
        );
        self.send_spec(&mut spec, answer_challenge)
            .await
            .with_context(|| format!("{method} {uri}"))
    }

    /// MESSAGE `text` (text/plain) to `room` (`lobby@conference.localhost` or a full URI);
    /// returns the final status.
    pub async fn message(&mut self, room: &str, text: &str) -> Result<u16> {
        let response = self
            .request(
                Method::Message,
                room,
                &[],
                Some("text/plain;charset=UTF-8"),
                text.as_bytes(),
            )
            .await?;
        Ok(response.code)
    }

    /// Closes the connection (TLS with close_notify) and stops the reader.
    pub async fn close(self) -> Result<()> {
        let result = tokio::time::timeout(Duration::from_secs(5), self.shared.writer.shutdown())
            .await
            .map_err(|_| anyhow!("closing the connection timed out"))
            .and_then(|r| r.context("closing the connection"));
        self.reader.abort();
        result
    }
}

impl Drop for SipClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl std::fmt::Debug for SipClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipClient")
            .field("transport", &self.transport)
            .field("aor", &self.aor())
            .field("local", &self.local)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}
