//! Self-test of the SIP test client ([`palaver_e2e::sip_client`]) without palaver: its digest
//! answers are checked by the codec's own `DigestServer::verify` (MD5 and SHA-256), and a tiny
//! registrar built on `palaver_dialects::sip` (UDP, TCP, and TLS with a development CA) drives
//! the client through REGISTER, MESSAGE both ways, 407 on an unregistered flow, SUBSCRIBE
//! dialogs with NOTIFYs, UDP retransmission and request dedupe, the auto-reply modes, and a
//! raw malformed request answered with 400.
//!
//! So when an end-to-end SIP test fails, the client is not the first suspect.

use palaver_dialects::sip::digest::{ha1_hex, DigestAlgo, DigestError, DigestServer};
use palaver_dialects::sip::request::new_tag;
use palaver_dialects::sip::{
    bad_request_response, parse, response_to, FrameEvent, Method, RequestBuilder, SipMessage,
    StreamFramer,
};
use palaver_e2e::sip_client::digest::{authorization, pick_challenge, DigestAnswer};
use palaver_e2e::sip_client::{AutoReply, Response};
use palaver_e2e::{must, SipClient, SipTransport};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

const REALM: &str = "localhost";
const PASSWORD: &str = "s3cret";
const ROOM: &str = "sip:lobby@conference.localhost";
const WAIT: Duration = Duration::from_secs(10);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn lookup(user: &str, algo: DigestAlgo) -> Option<String> {
    (user == "alice" || user == "bob").then(|| ha1_hex(algo, user, REALM, PASSWORD))
}

#[test]
fn digest_answers_verify_with_md5_and_sha256() {
    for algo in [DigestAlgo::Md5, DigestAlgo::Sha256] {
        let mut server = DigestServer::new([7; 32], REALM, 300);
        let offered = server.challenge(now(), false);
        let challenge = pick_challenge(offered.iter().map(String::as_str), Some(algo))
            .expect("the server offers both algorithms");
        assert_eq!(challenge.algo, Some(algo));
        let answer = |password: &'static str, nc: u32| DigestAnswer {
            username: "alice",
            password,
            method: "REGISTER",
            uri: "sip:localhost",
            cnonce: "f00dcafe",
            nc,
        };
        let good = authorization(&challenge, &answer(PASSWORD, 1));
        let ok = server
            .verify("REGISTER", Some(&good), now(), lookup)
            .expect("the client's answer verifies");
        assert_eq!((ok.user.as_str(), ok.algo), ("alice", algo));
        // The same nc again is a replay; the next one is fine.
        assert_eq!(
            server.verify("REGISTER", Some(&good), now(), lookup),
            Err(DigestError::Replay)
        );
        let next = authorization(&challenge, &answer(PASSWORD, 2));
        assert!(server
            .verify("REGISTER", Some(&next), now(), lookup)
            .is_ok());
        // A wrong password, or the answer for another method, does not verify.
        let wrong = authorization(&challenge, &answer("guess", 3));
        assert_eq!(
            server.verify("REGISTER", Some(&wrong), now(), lookup),
            Err(DigestError::WrongResponse)
        );
        let other = authorization(&challenge, &answer(PASSWORD, 4));
        assert_eq!(
            server.verify("MESSAGE", Some(&other), now(), lookup),
            Err(DigestError::WrongResponse)
        );
    }
    // No preference: the first offered (SHA-256).
    let server = DigestServer::new([1; 32], REALM, 300);
    let offered = server.challenge(now(), false);
    let first = pick_challenge(offered.iter().map(String::as_str), None).expect("a challenge");
    assert_eq!(first.algo, Some(DigestAlgo::Sha256));
}

// ----- a tiny registrar / room on the codec -----

/// The mock server's state, shared by its sockets.
struct Mock {
    digest: DigestServer,
    /// Flow → (AOR, Contact) of a current registration.
    registered: HashMap<String, (String, String)>,
    /// Branches of MESSAGEs whose first copy was dropped on purpose.
    dropped: HashSet<String>,
    /// What happened, for the test to check.
    events: mpsc::UnboundedSender<String>,
    self_uri: String,
    transport: &'static str,
    cseq: u32,
}

impl Mock {
    /// Handles one message from `flow`; returns what to send back on the same flow.
    fn handle(&mut self, bytes: &[u8], source: SocketAddr, flow: &str) -> Vec<Vec<u8>> {
        let mut msg = match parse(bytes, 65536) {
            Ok(m) => m,
            Err(e) => {
                self.event(format!("bad request: {e}"));
                return bad_request_response(bytes).into_iter().collect();
            }
        };
        if !msg.is_request() {
            let code = msg.status().unwrap_or_default();
            self.event(format!("client answered {code} to {}", msg.cseq().method));
            return Vec::new();
        }
        msg.stamp_source(source);
        let tag = new_tag();
        let reply = |code: u16, reason: &str| response_to(&msg, code, reason, Some(&tag));
        match msg.method() {
            Some(Method::Register) => {
                match self
                    .digest
                    .verify("REGISTER", msg.authorization(), now(), lookup)
                {
                    Ok(ok) => {
                        let expires = msg.expires().unwrap_or(3600);
                        let contact = msg.contact().map(|c| c.uri.to_string());
                        if expires == 0 {
                            self.registered.remove(flow);
                        } else if let Some(contact) = &contact {
                            self.registered
                                .insert(flow.to_string(), (msg.from().uri.aor(), contact.clone()));
                        }
                        self.event(format!(
                            "registered {} {} {expires}",
                            ok.user,
                            ok.algo.name()
                        ));
                        let mut r = reply(200, "OK");
                        if let (Some(contact), true) = (contact, expires > 0) {
                            r = r.with_header("Contact", &format!("<{contact}>;expires={expires}"));
                        }
                        vec![r.to_bytes()]
                    }
                    Err(DigestError::Missing | DigestError::StaleNonce) => {
                        let mut r = reply(401, "Unauthorized");
                        for c in self.digest.challenge(now(), false) {
                            r = r.with_header("WWW-Authenticate", &c);
                        }
                        vec![r.to_bytes()]
                    }
                    Err(e) => vec![reply(403, &format!("Forbidden ({e})")).to_bytes()],
                }
            }
            Some(Method::Message) => self.message(&msg, flow, reply(200, "OK").to_bytes()),
            Some(Method::Subscribe) => self.subscribe(&msg, flow, &tag),
            Some(Method::Options) => vec![reply(200, "OK").to_bytes()],
            _ => vec![reply(405, "Method Not Allowed")
                .with_header("Allow", "REGISTER, MESSAGE, SUBSCRIBE, OPTIONS")
                .to_bytes()],
        }
    }

    fn event(&self, e: String) {
        let _ = self.events.send(e);
    }

    fn message(&mut self, msg: &SipMessage, flow: &str, ok: Vec<u8>) -> Vec<Vec<u8>> {
        let body = String::from_utf8_lossy(msg.body()).into_owned();
        let branch = msg.branch().unwrap_or_default().to_string();
        if body.contains("drop-first") && self.dropped.insert(branch) {
            self.event("dropped one MESSAGE".into());
            return Vec::new();
        }
        let registered = self.registered.get(flow).cloned();
        let authorized = registered.is_some()
            || self
                .digest
                .verify("MESSAGE", msg.proxy_authorization(), now(), lookup)
                .is_ok();
        if !authorized {
            let tag = new_tag();
            let mut r = response_to(msg, 407, "Proxy Authentication Required", Some(&tag));
            for c in self.digest.challenge(now(), false) {
                r = r.with_header("Proxy-Authenticate", &c);
            }
            return vec![r.to_bytes()];
        }
        self.event(format!("MESSAGE {body}"));
        let mut out = vec![ok];
        if let Some((aor, contact)) = registered {
            let echo = self
                .request(Method::Message, &contact, &aor, None)
                .body("text/plain;charset=UTF-8", format!("echo: {body}"))
                .build()
                .expect("a valid MESSAGE");
            out.push(echo.bytes.clone());
            if body.contains("twice") {
                out.push(echo.bytes);
            }
        }
        out
    }

    fn subscribe(&mut self, msg: &SipMessage, flow: &str, tag: &str) -> Vec<Vec<u8>> {
        let expires = msg.expires().unwrap_or(3600);
        let Some(contact) = msg.contact().map(|c| c.uri.to_string()) else {
            return vec![response_to(msg, 400, "Missing Contact", Some(tag)).to_bytes()];
        };
        // A refresh must carry our tag (we always answer with a fresh one otherwise).
        let dialog_tag = msg.to().tag().map(str::to_string);
        let known = dialog_tag.as_deref().is_none_or(|t| t.starts_with("dlg"));
        if !known {
            return vec![response_to(msg, 481, "No Such Subscription", None).to_bytes()];
        }
        let local_tag = dialog_tag.unwrap_or_else(|| format!("dlg{}", new_tag()));
        self.event(format!(
            "SUBSCRIBE cseq {} expires {expires} on {flow}",
            msg.cseq().seq
        ));
        let ok = response_to(msg, 200, "OK", Some(&local_tag))
            .with_header("Contact", &format!("<{}>", self.self_uri))
            .with_header("Expires", &expires.to_string())
            .to_bytes();
        let state = if expires == 0 {
            "terminated;reason=timeout".to_string()
        } else {
            format!("active;expires={expires}")
        };
        let notify = self
            .request(
                Method::Notify,
                &contact,
                &msg.from().uri.to_string(),
                msg.from().tag(),
            )
            .from(ROOM, None, &local_tag)
            .call_id(msg.call_id())
            .header("Event", "conference")
            .header("Subscription-State", &state)
            .body("application/conference-info+xml", "<conference-info/>")
            .build()
            .expect("a valid NOTIFY");
        vec![ok, notify.bytes]
    }

    fn request(
        &mut self,
        method: Method,
        target: &str,
        to: &str,
        to_tag: Option<&str>,
    ) -> RequestBuilder {
        self.cseq += 1;
        RequestBuilder::new(method, target)
            .from(ROOM, Some("lobby"), &new_tag())
            .to(to, None, to_tag)
            .cseq(self.cseq)
            .via(self.transport, "127.0.0.1:5999")
    }
}

/// A running mock server.
struct MockServer {
    addr: SocketAddr,
    ca: PathBuf,
    events: mpsc::UnboundedReceiver<String>,
    _certs: Option<tempfile::TempDir>,
}

impl MockServer {
    async fn start(transport: SipTransport) -> MockServer {
        let (tx, events) = mpsc::unbounded_channel();
        let mock = |addr: SocketAddr| {
            Arc::new(Mutex::new(Mock {
                digest: DigestServer::new([9; 32], REALM, 300),
                registered: HashMap::new(),
                dropped: HashSet::new(),
                events: tx.clone(),
                self_uri: format!("sip:lobby@{addr}"),
                transport: transport.via_token(),
                cseq: 0,
            }))
        };
        match transport {
            SipTransport::Udp => {
                let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
                let addr = socket.local_addr().expect("addr");
                let mock = mock(addr);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok((n, src)) = socket.recv_from(&mut buf).await {
                        let out = lock(&mock).handle(&buf[..n], src, &format!("udp:{src}"));
                        for bytes in out {
                            let _ = socket.send_to(&bytes, src).await;
                        }
                    }
                });
                MockServer {
                    addr,
                    ca: PathBuf::new(),
                    events,
                    _certs: None,
                }
            }
            SipTransport::Tcp | SipTransport::Tls => {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = listener.local_addr().expect("addr");
                let mock = mock(addr);
                let (certs, ca, acceptor) = if transport == SipTransport::Tls {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let (paths, _) =
                        palaver_certs::ensure_dev_certs(&dir.path().join("certs"), &[REALM.into()])
                            .expect("dev certs");
                    let config = palaver_certs::server_config(&paths.cert, &paths.key, &[])
                        .expect("TLS server config");
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    (Some(dir), paths.ca_cert, Some(acceptor))
                } else {
                    (None, PathBuf::new(), None)
                };
                tokio::spawn(async move {
                    while let Ok((tcp, peer)) = listener.accept().await {
                        let mock = mock.clone();
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            match acceptor {
                                Some(a) => {
                                    if let Ok(tls) = a.accept(tcp).await {
                                        serve_stream(tls, peer, mock).await;
                                    }
                                }
                                None => serve_stream(tcp, peer, mock).await,
                            }
                        });
                    }
                });
                MockServer {
                    addr,
                    ca,
                    events,
                    _certs: certs,
                }
            }
        }
    }

    /// Waits for an event starting with `prefix`; returns it.
    async fn expect(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if e.starts_with(prefix) => return e,
                Ok(Some(e)) => seen.push(e),
                _ => panic!("no mock event {prefix:?}; saw {seen:?}"),
            }
        }
    }
}

fn lock(m: &Mutex<Mock>) -> std::sync::MutexGuard<'_, Mock> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    mock: Arc<Mutex<Mock>>,
) {
    let mut framer = StreamFramer::new(65536);
    let mut buf = vec![0u8; 65536];
    let flow = format!("stream:{peer}");
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.feed(&buf[..n]);
        loop {
            let out = match framer.next_event() {
                Ok(Some(FrameEvent::Message(m))) => lock(&mock).handle(&m, peer, &flow),
                Ok(Some(FrameEvent::Ping)) => vec![b"\r\n".to_vec()],
                Ok(Some(FrameEvent::Pong)) => Vec::new(),
                Ok(None) => break,
                Err(_) => return,
            };
            for bytes in out {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn client(mock: &MockServer, transport: SipTransport, user: &str) -> SipClient {
    let mut c = SipClient::connect(transport, mock.addr, user, PASSWORD, &mock.ca)
        .await
        .expect("connect to the mock");
    c.timeout = WAIT;
    c
}

async fn full_scenario(transport: SipTransport) {
    let mut mock = MockServer::start(transport).await;
    let mut alice = client(&mock, transport, "alice").await;

    // REGISTER: 401, then SHA-256 (the first offered); then MD5 on request.
    assert_eq!(must(alice.register(600).await), 200);
    assert_eq!(
        mock.expect("registered").await,
        "registered alice SHA-256 600"
    );
    alice.set_digest_algo(Some(DigestAlgo::Md5));
    assert_eq!(must(alice.register(600).await), 200);
    assert_eq!(mock.expect("registered").await, "registered alice MD5 600");

    // MESSAGE on the registered flow: accepted without credentials; the echo comes back to
    // our Contact on the same flow and is answered 200.
    assert_eq!(must(alice.message(ROOM, "hello").await), 200);
    mock.expect("MESSAGE hello").await;
    let echo = must(alice.wait_message(|m| m.body == "echo: hello", WAIT).await);
    assert_eq!(echo.from, ROOM);
    assert_eq!(echo.display_name.as_deref(), Some("lobby"));
    assert_eq!(echo.answered, Some(200));
    mock.expect("client answered 200 to MESSAGE").await;

    // A retransmitted request is answered again but queued once.
    assert_eq!(must(alice.message(ROOM, "twice").await), 200);
    must(alice.wait_message(|m| m.body == "echo: twice", WAIT).await);
    mock.expect("client answered 200 to MESSAGE").await;
    mock.expect("client answered 200 to MESSAGE").await;
    assert_eq!(alice.retransmits_seen(), 1);

    // Other answers on request.
    alice.set_auto_reply(481);
    assert_eq!(must(alice.message(ROOM, "fail").await), 200);
    let failed = must(alice.wait_message(|m| m.body == "echo: fail", WAIT).await);
    assert_eq!(failed.answered, Some(481));
    mock.expect("client answered 481 to MESSAGE").await;
    alice.set_auto_reply(AutoReply::Ignore);
    assert_eq!(must(alice.message(ROOM, "silence").await), 200);
    let ignored = must(
        alice
            .wait_message(|m| m.body == "echo: silence", WAIT)
            .await,
    );
    assert_eq!(ignored.answered, None);
    alice.set_auto_reply(200);

    // SUBSCRIBE dialog: NOTIFY, refresh in the dialog, end.
    let ok = must(alice.subscribe(ROOM, 600).await);
    assert_eq!(ok.code, 200, "{}", String::from_utf8_lossy(&ok.raw));
    let notify = must(alice.wait_notify(WAIT).await);
    assert_eq!(notify.header("Event"), Some("conference"));
    assert_eq!(
        notify.header("Subscription-State"),
        Some("active;expires=600")
    );
    assert_eq!(notify.body, "<conference-info/>");
    mock.expect("SUBSCRIBE cseq 1 expires 600").await;
    assert_eq!(must(alice.resubscribe(ROOM, 300).await).code, 200);
    mock.expect("SUBSCRIBE cseq 2 expires 300").await;
    must(alice.wait_notify(WAIT).await);
    assert_eq!(must(alice.unsubscribe(ROOM).await).code, 200);
    mock.expect("SUBSCRIBE cseq 3 expires 0").await;
    let last = must(alice.wait_notify(WAIT).await);
    assert!(last
        .header("Subscription-State")
        .is_some_and(|s| s.starts_with("terminated")));
    assert!(
        alice.resubscribe(ROOM, 60).await.is_err(),
        "the dialog is over"
    );

    // A request with a broken start line gets a stateless 400 back as a raw frame.
    let request = alice
        .request_builder(Method::Options, "sip:localhost")
        .build()
        .expect("a valid OPTIONS");
    let text = String::from_utf8_lossy(&request.bytes).into_owned();
    let broken = text.replacen("OPTIONS sip:localhost SIP/2.0", "NOT A START LINE", 1);
    must(alice.send_raw(broken.as_bytes()).await);
    let bad: Response = must(alice.recv_raw_response(WAIT).await);
    assert_eq!(bad.code, 400);

    must(alice.expect_no_request(Duration::from_millis(200)).await);
    assert_eq!(must(alice.unregister().await), 200);
    mock.expect("registered alice MD5 0").await;

    // Not registered on this flow: the MESSAGE is challenged (407) and answered.
    let mut bob = client(&mock, transport, "bob@localhost").await;
    let raw = must(
        bob.request_raw(Method::Message, ROOM, &[], Some("text/plain"), b"hi")
            .await,
    );
    assert_eq!(raw.code, 407);
    assert_eq!(must(bob.message(ROOM, "authorized").await), 200);
    mock.expect("MESSAGE authorized").await;
    must(bob.close().await);
}

#[tokio::test]
async fn the_client_works_over_udp() {
    full_scenario(SipTransport::Udp).await;
}

#[tokio::test]
async fn the_client_works_over_tcp() {
    full_scenario(SipTransport::Tcp).await;
}

#[tokio::test]
async fn the_client_works_over_tls() {
    full_scenario(SipTransport::Tls).await;
}

#[tokio::test]
async fn udp_requests_are_retransmitted() {
    let mut mock = MockServer::start(SipTransport::Udp).await;
    let mut alice = client(&mock, SipTransport::Udp, "alice").await;
    assert_eq!(must(alice.register(60).await), 200);
    let started = std::time::Instant::now();
    assert_eq!(must(alice.message(ROOM, "drop-first").await), 200);
    mock.expect("dropped one MESSAGE").await;
    mock.expect("MESSAGE drop-first").await;
    // Timer E: the retransmission goes out T1 (500 ms) after the first copy.
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_one_is_noticed() {
    // UDP: nobody answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let mut c = SipClient::connect(SipTransport::Udp, addr, "alice", PASSWORD, &PathBuf::new())
        .await
        .expect("bind");
    c.timeout = Duration::from_millis(1200);
    let err = c.register(60).await.expect_err("no answer");
    assert!(format!("{err:#}").contains("no final response"), "{err:#}");
    // Over UDP the first copy and at least one retransmission arrived.
    let mut buf = vec![0u8; 65536];
    let mut copies = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(50), silent.recv_from(&mut buf)).await
    {
        copies += 1;
    }
    assert!(copies >= 2, "{copies} copies");

    // TCP: the server closes the connection; waiters end at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"garbage without content length\r\n\r\n").await;
        }
    });
    let mut c = SipClient::connect(SipTransport::Tcp, addr, "alice", PASSWORD, &PathBuf::new())
        .await
        .expect("connect");
    let err = c.register(60).await.expect_err("closed");
    assert!(format!("{err:#}").contains("connection ended"), "{err:#}");
    let why = must(c.wait_closed(WAIT).await);
    assert!(why.contains("not valid SIP"), "{why}");
    assert!(c.is_closed());
}
