//! Self-test of [`XccosClient`] and the INVITE dialogs under it, without palaver: a tiny mock
//! group-chat server (UDP, TCP, or TLS with a development CA) built on `palaver_dialects::sip` challenges INVITEs with 407,
//! answers 200 with Contact, Record-Route and Session-Expires, checks the ACKs and the Route
//! sets of in-dialog requests, and answers each XCCOS command with its reply in an INFO of
//! its own. It drives the client through the whole sipe session: lookup, `rpl:requri`, pool
//! INVITE, room list, join with history, messages both ways, UPDATE, part, an abandoned
//! dialog whose INFOs get 487, a crash with rejoin by `cmd:bjoin`, and BYE.

use super::{XccosClient, XccosEvent, LOOKUP_URI};
use crate::sip_client::SipTransport;
use palaver_dialects::sip::digest::{ha1_hex, DigestAlgo, DigestServer};
use palaver_dialects::sip::request::new_tag;
use palaver_dialects::sip::{parse, response_to, FrameEvent, Method, RequestBuilder, StreamFramer};
use palaver_dialects::xmpp::element::Element;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

const POOL: &str = "sip:ocschat@conference.localhost";
const WAIT: Duration = Duration::from_secs(10);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn lookup(user: &str, algo: DigestAlgo) -> Option<String> {
    (user == "alice").then(|| ha1_hex(algo, user, "localhost", "pw"))
}

/// One INVITE dialog as the mock (UAS) sees it.
struct Dlg {
    invited: String,
    client_uri: String,
    client_tag: String,
    server_tag: String,
    contact: String,
    cseq: u32,
}

#[derive(Default)]
struct Log {
    /// `METHOD request-uri cseq branch` of every request, in order.
    requests: Vec<String>,
    /// Route header values of each in-dialog request other than ACK.
    routes: Vec<Vec<String>>,
    /// (Call-ID, status) of the client's answers to our INFOs.
    answers: Vec<(String, u16)>,
    /// (room, author, text) of stored messages.
    stored: Vec<(String, String, String)>,
    /// Stream connections the client closed.
    closed: usize,
}

struct Mock {
    digest: DigestServer,
    via: &'static str,
    local: SocketAddr,
    dialogs: HashMap<String, Dlg>,
    log: Log,
}

impl Mock {
    fn handle(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let Ok(msg) = parse(bytes, 1 << 20) else {
            return Vec::new();
        };
        if let Some(code) = msg.status() {
            self.log.answers.push((msg.call_id().to_string(), code));
            return Vec::new();
        }
        let method = msg.method().unwrap_or(Method::Options);
        let uri = msg.request_uri().map(|u| u.to_string()).unwrap_or_default();
        self.log.requests.push(format!(
            "{method} {uri} {} {}",
            msg.cseq().seq,
            msg.branch().unwrap_or_default()
        ));
        if method == Method::Ack {
            return Vec::new();
        }
        if msg.to().tag().is_some() {
            self.log
                .routes
                .push(msg.header_values("Route").map(str::to_string).collect());
        }
        let tag = new_tag();
        let reply = |code: u16, reason: &str| response_to(&msg, code, reason, Some(&tag));
        match method {
            Method::Register => vec![reply(200, "OK").to_bytes()],
            Method::Invite => {
                let auth = msg.proxy_authorization();
                if self.digest.verify("INVITE", auth, now(), lookup).is_err() {
                    let mut r = reply(407, "Proxy Authentication Required");
                    for c in self.digest.challenge(now(), false) {
                        r = r.with_header("Proxy-Authenticate", &c);
                    }
                    return vec![r.to_bytes()];
                }
                let contact = msg.contact().map(|c| c.uri.to_string()).unwrap_or_default();
                self.dialogs.insert(
                    msg.call_id().to_string(),
                    Dlg {
                        invited: uri.clone(),
                        client_uri: msg.from().uri.to_string(),
                        client_tag: msg.from().tag().unwrap_or_default().to_string(),
                        server_tag: tag.clone(),
                        contact,
                        cseq: 0,
                    },
                );
                let transport = self.via.to_ascii_lowercase();
                let r = reply(200, "OK")
                    .with_header(
                        "Contact",
                        &format!("<sip:chat@{};transport={transport}>", self.local),
                    )
                    .with_header("Record-Route", &format!("<sip:rr1@{};lr>", self.local))
                    .with_header("Record-Route", &format!("<sip:rr2@{};lr>", self.local))
                    .with_header("Session-Expires", "600;refresher=uac")
                    .with_header("Supported", "timer");
                vec![r.to_bytes()]
            }
            Method::Update => vec![reply(200, "OK")
                .with_header("Session-Expires", "600;refresher=uac")
                .to_bytes()],
            Method::Bye => {
                self.dialogs.remove(msg.call_id());
                vec![reply(200, "OK").to_bytes()]
            }
            Method::Info => {
                let body = String::from_utf8_lossy(msg.body()).into_owned();
                let mut out = vec![reply(200, "OK").to_bytes()];
                if let Some(rpl) = self.xccos(&body) {
                    out.extend(self.info(msg.call_id(), &rpl));
                }
                out
            }
            _ => vec![reply(405, "Method Not Allowed").to_bytes()],
        }
    }

    /// An INFO from us in dialog `call_id` carrying `inner` in an envelope.
    fn info(&mut self, call_id: &str, inner: &str) -> Option<Vec<u8>> {
        let d = self.dialogs.get_mut(call_id)?;
        d.cseq += 1;
        let body = format!(
            "<xccos ver=\"1\" envid=\"{}\" xmlns=\"urn:parlano:xml:ns:xccos\">{inner}</xccos>",
            d.cseq
        );
        RequestBuilder::new(Method::Info, &d.contact)
            .from(&d.invited, None, &d.server_tag)
            .to(&d.client_uri, None, Some(&d.client_tag))
            .call_id(call_id)
            .cseq(d.cseq)
            .via(self.via, &self.local.to_string())
            .body("text/plain", body.into_bytes())
            .build()
            .ok()
            .map(|r| r.bytes)
    }

    /// The reply (or message) the mock sends for one client envelope.
    fn xccos(&mut self, body: &str) -> Option<String> {
        let root = Element::parse(body.as_bytes()).ok()?;
        let envid = root.attr("envid")?.to_string();
        let cmd = root.children().next()?;
        let ok = |id: &str, data: &str| {
            format!(
                "<rpl id=\"rpl:{id}\" seqid=\"1\"><commandid seqid=\"1\" envid=\"{envid}\"/>\
                 <resp code=\"200\">SUCCESS_OK</resp><data>{data}</data></rpl>"
            )
        };
        let data = cmd.children().find(|c| c.name == "data");
        let rooms_of = |data: Option<&Element>| -> Vec<String> {
            data.into_iter()
                .flat_map(|d| d.children())
                .filter(|c| c.name == "chanid")
                .map(|c| {
                    format!(
                        "ma-chan://{}/{}",
                        c.attr("domain").unwrap_or_default(),
                        c.attr("value").unwrap_or_default()
                    )
                })
                .collect()
        };
        let chanib = |uri: &str| {
            format!(
                "<chanib uri=\"{uri}\" name=\"{}\" topic=\"Welcome\">\
                 <aib key=\"3984\" value=\"1,2\"/><aib key=\"12276\" value=\"2\"/></chanib>",
                uri.rsplit('/').next().unwrap_or_default()
            )
        };
        let users =
            "<uib id=\"1\" uri=\"sip:alice@localhost\"/><uib id=\"2\" uri=\"sip:bob@localhost\"/>";
        if cmd.name == "grpchat" {
            let room = cmd.attr("chanUri").unwrap_or_default().to_string();
            let text = cmd.children().next().map(Element::text).unwrap_or_default();
            self.log.stored.push((
                room.clone(),
                cmd.attr("author").unwrap_or_default().into(),
                text.clone(),
            ));
            return Some(format!(
                "<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"{room}\" author=\"sip:bob@localhost\" \
                 ts=\"2026-11-23T19:00:00Z\"><chat>re: {}</chat></grpchat>",
                super::escape(&text)
            ));
        }
        Some(match cmd.attr("id")? {
            "cmd:requri" => ok("requri", &format!("<uib uri=\"{POOL}\"/>")),
            "cmd:getinv" => ok("getinv", ""),
            "cmd:chansrch" => ok(
                "chansrch",
                "<chanib uri=\"ma-chan://localhost/lobby\" name=\"lobby\" description=\"Lobby\">\
                 <info id=\"urn:parlano:ma:info:ucnt\">2</info></chanib>\
                 <chanib uri=\"ma-chan://localhost/ops\" name=\"ops\" description=\"\">\
                 <info id=\"urn:parlano:ma:info:visibilty\">private</info></chanib>",
            ),
            "cmd:join" | "cmd:bjoin" => {
                let rooms: String = rooms_of(data).iter().map(|r| chanib(r)).collect();
                let id = &cmd.attr("id")?[4..];
                ok(id, &format!("{users}{rooms}"))
            }
            "cmd:bccontext" => {
                let uri = data?.children().find(|c| c.name == "chanib")?.attr("uri")?;
                let msgs: String = self
                    .log
                    .stored
                    .iter()
                    .filter(|(r, _, _)| r == uri)
                    .map(|(r, a, t)| {
                        format!(
                            "<msg id=\"grpchat\" chanUri=\"{r}\" author=\"{a}\" \
                             ts=\"2026-11-23T18:00:00Z\"><chat>{}</chat></msg>",
                            super::escape(t)
                        )
                    })
                    .collect();
                ok(
                    "bccontext",
                    &format!("<chanib uri=\"{uri}\">{msgs}</chanib>"),
                )
            }
            "cmd:part" => {
                let uri = data?.children().find(|c| c.name == "chanib")?.attr("uri")?;
                ok("part", &format!("<chanib uri=\"{uri}\"/>"))
            }
            other => format!("<rpl id=\"rpl:{}\" seqid=\"1\"/>", &other[4..]),
        })
    }
}

#[derive(Clone)]
struct MockServer {
    addr: SocketAddr,
    /// The CA to trust (TLS), and the directory holding it.
    ca: PathBuf,
    _certs: Option<Arc<tempfile::TempDir>>,
    mock: Arc<Mutex<Mock>>,
    /// Sends bytes to the latest client flow.
    poke: Arc<Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MockServer {
    async fn start(transport: SipTransport) -> MockServer {
        let (via, addr, tcp, udp) = match transport {
            SipTransport::Udp => {
                let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
                ("UDP", s.local_addr().expect("addr"), None, Some(s))
            }
            _ => {
                let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                (
                    transport.via_token(),
                    l.local_addr().expect("addr"),
                    Some(l),
                    None,
                )
            }
        };
        let (certs, ca, acceptor) = if transport == SipTransport::Tls {
            let dir = tempfile::tempdir().expect("tempdir");
            let (paths, _) =
                palaver_certs::ensure_dev_certs(&dir.path().join("certs"), &["localhost".into()])
                    .expect("dev certs");
            let config =
                palaver_certs::server_config(&paths.cert, &paths.key, &[]).expect("TLS config");
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            (Some(Arc::new(dir)), paths.ca_cert, Some(acceptor))
        } else {
            (None, PathBuf::new(), None)
        };
        let server = MockServer {
            addr,
            ca,
            _certs: certs,
            mock: Arc::new(Mutex::new(Mock {
                digest: DigestServer::new([5; 32], "localhost", 300),
                via,
                local: addr,
                dialogs: HashMap::new(),
                log: Log::default(),
            })),
            poke: Arc::new(Mutex::new(None)),
        };
        let s = server.clone();
        if let Some(listener) = tcp {
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (tx, rx) = mpsc::unbounded_channel();
                    *lock(&s.poke) = Some(tx);
                    let (mock, acceptor) = (s.mock.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        match acceptor {
                            Some(a) => {
                                if let Ok(tls) = a.accept(stream).await {
                                    serve_stream(tls, mock, rx).await;
                                }
                            }
                            None => serve_stream(stream, mock, rx).await,
                        }
                    });
                }
            });
        } else if let Some(socket) = udp {
            tokio::spawn(serve_udp(socket, s));
        }
        server
    }

    /// Sends `inner` in an INFO on `call_id` to the client.
    fn send_info(&self, call_id: &str, inner: &str) {
        let bytes = lock(&self.mock)
            .info(call_id, inner)
            .expect("a known dialog");
        if let Some(tx) = lock(&self.poke).as_ref() {
            let _ = tx.send(bytes);
        }
    }

    fn log<R>(&self, f: impl FnOnce(&Log) -> R) -> R {
        f(&lock(&self.mock).log)
    }
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mock: Arc<Mutex<Mock>>,
    mut poke: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut framer = StreamFramer::new(1 << 20);
    let mut buf = vec![0u8; 65536];
    loop {
        let mut out = Vec::new();
        tokio::select! {
            n = stream.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => {
                        lock(&mock).log.closed += 1;
                        return;
                    }
                    Ok(n) => n,
                };
                framer.feed(&buf[..n]);
                while let Ok(Some(event)) = framer.next_event() {
                    if let FrameEvent::Message(m) = event {
                        out.extend(lock(&mock).handle(&m));
                    }
                }
            }
            Some(bytes) = poke.recv() => out.push(bytes),
        }
        for bytes in out {
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
}

async fn serve_udp(socket: UdpSocket, server: MockServer) {
    let socket = Arc::new(socket);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    *lock(&server.poke) = Some(tx);
    let peer: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    let (s2, p2) = (socket.clone(), peer.clone());
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let to = *lock(&p2);
            if let Some(to) = to {
                let _ = s2.send_to(&bytes, to).await;
            }
        }
    });
    let mut buf = vec![0u8; 65536];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        *lock(&peer) = Some(from);
        let out = lock(&server.mock).handle(&buf[..n]);
        for bytes in out {
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

async fn scenario(transport: SipTransport) {
    let server = MockServer::start(transport).await;
    let mut alice = XccosClient::connect(transport, server.addr, "alice", "pw", &server.ca)
        .await
        .expect("connect");
    alice.timeout = WAIT;
    alice.sip().timeout = WAIT;
    // No REGISTER: the INVITEs are challenged (407), ACKed, and sent again with credentials.
    alice.register_first = false;
    let rejoined = alice.start(LOOKUP_URI).await.expect("start");
    assert!(rejoined.is_empty());
    assert_eq!(alice.pool_uri(), Some(POOL));
    assert_eq!(alice.session_expires(), Some(600));
    let requests = server.log(|l| l.requests.clone());
    let method_of = |r: &String| r.split(' ').next().unwrap_or_default().to_string();
    let methods: Vec<String> = requests.iter().map(method_of).collect();
    assert_eq!(
        methods,
        [
            "INVITE", "ACK", "INVITE", "ACK", "INFO", "BYE", "INVITE", "ACK", "INVITE", "ACK",
            "INFO"
        ],
        "{requests:#?}"
    );
    let field = |i: usize, f: usize| {
        requests[i]
            .split(' ')
            .nth(f)
            .unwrap_or_default()
            .to_string()
    };
    // The ACK of the 407: same branch and CSeq as the challenged INVITE.
    assert_eq!((field(1, 2), field(1, 3)), (field(0, 2), field(0, 3)));
    // The resent INVITE: next CSeq; its 2xx's ACK: new branch, that CSeq, to the Contact.
    assert_eq!(field(2, 2), "2");
    assert_eq!(field(3, 2), "2");
    assert_ne!(field(3, 3), field(2, 3));
    assert!(field(3, 1).starts_with("sip:chat@"), "{requests:#?}");
    // In-dialog requests carry the Record-Route reversed.
    let routes = server.log(|l| l.routes.clone());
    assert!(
        routes
            .iter()
            .all(|r| r.len() == 2 && r[0].contains("rr2") && r[1].contains("rr1")),
        "{routes:?}"
    );

    let rooms = alice.rooms().await.expect("rooms");
    assert_eq!(rooms.len(), 2);
    assert_eq!((rooms[0].name.as_str(), rooms[0].users), ("lobby", 2));
    assert!(rooms[1].private);

    let lobby = "ma-chan://localhost/lobby";
    let room = alice.join(lobby).await.expect("join");
    assert_eq!(
        (room.uri.as_str(), room.topic.as_deref()),
        (lobby, Some("Welcome"))
    );
    assert!(room.member("sip:bob@localhost").is_some_and(|m| m.chanop));
    assert!(room
        .member("sip:alice@localhost")
        .is_some_and(|m| !m.chanop));
    assert!(room.history.is_empty());

    assert_eq!(
        alice
            .send(lobby, "hello <all>\nline 2")
            .await
            .expect("send"),
        200
    );
    let m = alice.wait_grpchat(|_| true, WAIT).await.expect("grpchat");
    assert_eq!(m.author, "sip:bob@localhost");
    assert!(m.text.starts_with("re: hello <all>"), "{:?}", m.text);
    let stored = server.log(|l| l.stored.clone());
    assert_eq!(stored[0].1, "sip:alice@localhost");
    assert!(stored[0].2 == "hello <all>\r\nline 2" || stored[0].2 == "hello <all>\nline 2");
    assert_eq!(alice.history(lobby).await.expect("history").len(), 1);
    assert_eq!(alice.refresh().await.expect("UPDATE"), 200);

    // A second start abandons the dialog: INFOs on its Call-ID get 487, the new one 200.
    let old = alice.call_id().expect("call id").to_string();
    alice.start(LOOKUP_URI).await.expect("restart");
    let new = alice.call_id().expect("call id").to_string();
    assert_ne!(old, new);
    assert!(alice.obsolete_call_ids().contains(&old));
    let notice = "<ntc id=\"ntc:join\" seqid=\"1\"><data><uib uri=\"sip:carol@localhost\">\
                  <aib key=\"3984\" domain=\"localhost\" value=\"lobby\"/></uib></data></ntc>";
    let before = server.log(|l| l.answers.len());
    server.send_info(&old, notice);
    server.send_info(&new, notice);
    let event = alice
        .wait_for(
            "carol",
            |e| matches!(e, XccosEvent::NoticeJoin { .. }),
            WAIT,
        )
        .await
        .expect("ntc:join");
    assert!(
        matches!(event, XccosEvent::NoticeJoin { ref user, ref room, chanop: false }
        if user == "sip:carol@localhost" && room == lobby)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answers = server.log(|l| l.answers[before..].to_vec());
    let on_old: Vec<u16> = answers
        .iter()
        .filter(|(c, _)| *c == old)
        .map(|a| a.1)
        .collect();
    assert_eq!(on_old, [487], "{answers:?}");
    assert!(answers.contains(&(new.clone(), 200)), "{answers:?}");
    let infos = alice.server_infos();
    assert!(infos
        .iter()
        .any(|i| i.message.call_id() == old && i.answered == Some(487)));

    // Rejoin after a crash: the rooms joined are rejoined with cmd:bjoin.
    alice.join(lobby).await.expect("join again");
    let ops = "ma-chan://localhost/ops";
    alice.join(ops).await.expect("join ops");
    alice.crash().await.expect("crash");
    if transport != SipTransport::Udp {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            server.log(|l| l.closed),
            1,
            "the crashed connection is closed"
        );
    }
    alice.register_first = true;
    let rejoined = alice
        .start(LOOKUP_URI)
        .await
        .expect("start after the crash");
    let uris: Vec<&str> = rejoined.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, [lobby, ops]);
    assert_eq!(rejoined[0].history.len(), 1);
    let requests = server.log(|l| l.requests.clone());
    assert!(requests.iter().any(|r| r.starts_with("REGISTER")));
    assert_eq!(alice.joined(), [lobby, ops]);

    let part = alice.part(ops).await.expect("part");
    assert_eq!(part.code, 200);
    assert_eq!(alice.joined(), [lobby]);
    assert_eq!(alice.bye().await.expect("BYE"), 200);
    assert!(alice.call_id().is_none());
}

#[tokio::test]
async fn the_sipe_session_over_tcp() {
    scenario(SipTransport::Tcp).await;
}

#[tokio::test]
async fn the_sipe_session_over_tls() {
    scenario(SipTransport::Tls).await;
}

#[tokio::test]
async fn the_sipe_session_over_udp() {
    scenario(SipTransport::Udp).await;
}
