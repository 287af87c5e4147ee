//! Opening a session ([`Client::login`]): TCP connect (from a chosen source address when
//! given), direct TLS or STARTTLS (or neither), SASL with the strongest mechanism the server
//! offers (or the one asked for), stream restarts, resource binding and — for servers that
//! still require it — the legacy session. Each step has a deadline; failures are classified
//! by [`ErrorKind`].

use super::io::{connect_tcp, Io};
use super::sasl::{choose, plain_initial, Mechanism, Scram};
use super::{error_condition, Client, ClientError, ErrorKind, NS_STREAMS};
use base64::Engine as _;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::escape::escape_attr;
use palaver_dialects::xmpp::reader::{Limits, StreamReader};
use rustls_pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS (PLAIN is then never used).
    Off,
    /// Plain TCP, then STARTTLS (RFC 6120 §5); fails when the server does not offer it.
    StartTls,
    /// TLS from the first byte (XEP-0368, port 5223).
    Direct,
}

/// Where and how to connect; shared by every session of a load run.
#[derive(Clone)]
pub struct ConnectOptions {
    pub addr: SocketAddr,
    /// The XMPP domain (`to` of the stream header).
    pub domain: String,
    pub tls_mode: TlsMode,
    /// Required unless `tls_mode` is [`TlsMode::Off`].
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name the certificate must carry (usually the domain).
    pub tls_name: ServerName<'static>,
    /// `None`: the strongest mechanism the server offers.
    pub mechanism: Option<Mechanism>,
    /// Resource to ask for; `None` lets the server pick.
    pub resource: Option<String>,
    /// Bound of each step (connect, handshake, each answer).
    pub step_timeout: Duration,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ClientError {
    ClientError::new(kind, message)
}

impl Client {
    /// Opens a session for `user` (local part) from `source` (any local address when `None`).
    pub async fn login(
        opts: &ConnectOptions,
        source: Option<IpAddr>,
        user: &str,
        password: &str,
    ) -> Result<Client, ClientError> {
        let step = opts.step_timeout;
        let tcp = tokio::time::timeout(step, connect_tcp(opts.addr, source))
            .await
            .map_err(|_| err(ErrorKind::Timeout, format!("connecting to {}", opts.addr)))?
            .map_err(|e| err(ErrorKind::Connect, format!("{}: {e}", opts.addr)))?;
        let limits = Limits::default();
        let io = match opts.tls_mode {
            TlsMode::Direct => Io::Tls(Box::new(handshake(opts, tcp).await?)),
            _ => Io::Plain(tcp),
        };
        let mut c = Client::from_io(io, StreamReader::new(limits.clone()));
        let mut features = c.open_stream(opts).await?;
        if opts.tls_mode == TlsMode::StartTls {
            if features.get_child("starttls", NS_TLS).is_none() {
                return Err(err(ErrorKind::Tls, "the server offers no STARTTLS"));
            }
            c.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .await?;
            let answer = c
                .next_stanza(Instant::now() + step, "<starttls/>", |e| e.ns == NS_TLS)
                .await?;
            if answer.name != "proceed" {
                return Err(err(ErrorKind::Tls, "the server refused STARTTLS"));
            }
            let Client { io, buf, .. } = c;
            let Io::Plain(tcp) = io else {
                return Err(err(ErrorKind::Tls, "STARTTLS on an encrypted stream"));
            };
            let tls = handshake(opts, tcp).await?;
            c = Client {
                io: Io::Tls(Box::new(tls)),
                reader: StreamReader::new(limits),
                buf,
                jid: String::new(),
            };
            features = c.open_stream(opts).await?;
        }
        c.authenticate(opts, &features, user, password).await?;
        c.reader.reset();
        let features = c.open_stream(opts).await?;
        c.bind(opts, &features).await?;
        Ok(c)
    }

    /// Sends the stream header and waits for `<stream:features/>`.
    async fn open_stream(&mut self, opts: &ConnectOptions) -> Result<Element, ClientError> {
        let mut header = Vec::with_capacity(160);
        header.extend_from_slice(b"<?xml version='1.0'?><stream:stream to='");
        escape_attr(&opts.domain, &mut header);
        header.extend_from_slice(
            b"' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        self.send(&header).await?;
        self.next_stanza(
            Instant::now() + opts.step_timeout,
            "the stream header",
            |e| e.is("features", NS_STREAMS),
        )
        .await
    }

    async fn authenticate(
        &mut self,
        opts: &ConnectOptions,
        features: &Element,
        user: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        let offered: Vec<String> = features
            .get_child("mechanisms", NS_SASL)
            .map(|m| {
                m.children_named("mechanism", NS_SASL)
                    .map(|e| e.text().trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if offered.is_empty() && features.get_child("starttls", NS_TLS).is_some() {
            return Err(err(
                ErrorKind::Tls,
                "the server offers no SASL mechanism before STARTTLS (use TLS)",
            ));
        }
        let mech = choose(&offered, opts.mechanism, self.is_tls()).ok_or_else(|| {
            err(
                ErrorKind::Auth,
                format!(
                    "no usable SASL mechanism (offered: {}; wanted: {})",
                    offered.join(" "),
                    opts.mechanism.map_or("any", Mechanism::name)
                ),
            )
        })?;
        let deadline = Instant::now() + opts.step_timeout;
        let sasl_answer = |e: &Element| e.ns == NS_SASL;
        if mech == Mechanism::Plain {
            self.send_sasl("auth", Some(mech), &plain_initial(user, password))
                .await?;
            let answer = self.next_stanza(deadline, "<auth/>", sasl_answer).await?;
            return match answer.name.as_str() {
                "success" => Ok(()),
                _ => Err(sasl_failure(&answer)),
            };
        }
        let mut scram = Scram::new(mech, user, password);
        self.send_sasl("auth", Some(mech), &B64.encode(scram.client_first()))
            .await?;
        let challenge = self.next_stanza(deadline, "<auth/>", sasl_answer).await?;
        if challenge.name != "challenge" {
            return Err(sasl_failure(&challenge));
        }
        let reply = scram
            .client_final(&decode(&challenge)?)
            .map_err(|e| err(ErrorKind::Auth, e))?;
        self.send_sasl("response", None, &B64.encode(reply)).await?;
        let mut answer = self
            .next_stanza(deadline, "<response/>", sasl_answer)
            .await?;
        if answer.name == "challenge" {
            // Some servers send server-final in a challenge and want an empty response.
            scram
                .verify_server_final(&decode(&answer)?)
                .map_err(|e| err(ErrorKind::Auth, e))?;
            self.send_sasl("response", None, "").await?;
            answer = self
                .next_stanza(deadline, "<response/>", sasl_answer)
                .await?;
            if answer.name != "success" {
                return Err(sasl_failure(&answer));
            }
            return Ok(());
        }
        if answer.name != "success" {
            return Err(sasl_failure(&answer));
        }
        scram
            .verify_server_final(&decode(&answer)?)
            .map_err(|e| err(ErrorKind::Auth, e))
    }

    async fn send_sasl(
        &mut self,
        element: &str,
        mech: Option<Mechanism>,
        payload: &str,
    ) -> Result<(), ClientError> {
        let mechanism = mech.map_or(String::new(), |m| format!(" mechanism='{}'", m.name()));
        // An empty initial response is written "=" (RFC 6120 §6.4.2); an empty response is
        // just an empty element.
        let payload = if payload.is_empty() && element == "auth" {
            "="
        } else {
            payload
        };
        self.send(
            format!("<{element} xmlns='{NS_SASL}'{mechanism}>{payload}</{element}>").as_bytes(),
        )
        .await
    }

    async fn bind(&mut self, opts: &ConnectOptions, features: &Element) -> Result<(), ClientError> {
        if features.get_child("bind", NS_BIND).is_none() {
            return Err(err(
                ErrorKind::Bind,
                "the server offers no resource binding",
            ));
        }
        let deadline = Instant::now() + opts.step_timeout;
        let mut iq = Vec::with_capacity(160);
        iq.extend_from_slice(b"<iq type='set' id='bind'><bind xmlns='");
        iq.extend_from_slice(NS_BIND.as_bytes());
        match &opts.resource {
            Some(r) => {
                iq.extend_from_slice(b"'><resource>");
                palaver_dialects::xmpp::escape::escape_text(r, &mut iq);
                iq.extend_from_slice(b"</resource></bind></iq>");
            }
            None => iq.extend_from_slice(b"'/></iq>"),
        }
        self.send(&iq).await?;
        let bound = self
            .next_stanza(deadline, "the bind request", |e| {
                e.name == "iq" && e.attr("id") == Some("bind")
            })
            .await?;
        self.jid = bound
            .get_child("bind", NS_BIND)
            .and_then(|b| b.child_text("jid", NS_BIND))
            .filter(|_| bound.attr("type") == Some("result"))
            .ok_or_else(|| {
                err(
                    ErrorKind::Bind,
                    format!("binding refused: {}", error_condition(&bound)),
                )
            })?;
        // RFC 3921 sessions: only when the server says they are not optional.
        let session = features.get_child("session", NS_SESSION);
        if session.is_some_and(|s| s.get_child("optional", NS_SESSION).is_none()) {
            self.send(
                format!("<iq type='set' id='sess'><session xmlns='{NS_SESSION}'/></iq>").as_bytes(),
            )
            .await?;
            let answer = self
                .next_stanza(deadline, "the session request", |e| {
                    e.name == "iq" && e.attr("id") == Some("sess")
                })
                .await?;
            if answer.attr("type") != Some("result") {
                return Err(err(ErrorKind::Bind, "session establishment refused"));
            }
        }
        Ok(())
    }
}

async fn handshake(
    opts: &ConnectOptions,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ClientError> {
    let config = opts
        .tls
        .clone()
        .ok_or_else(|| err(ErrorKind::Tls, "TLS without a client configuration"))?;
    tokio::time::timeout(
        opts.step_timeout,
        tokio_rustls::TlsConnector::from(config).connect(opts.tls_name.clone(), tcp),
    )
    .await
    .map_err(|_| err(ErrorKind::Timeout, "the TLS handshake"))?
    .map_err(|e| err(ErrorKind::Tls, format!("handshake: {e}")))
}

fn decode(el: &Element) -> Result<Vec<u8>, ClientError> {
    let text = el.text();
    let text = text.trim();
    if text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text).map_err(|_| {
        err(
            ErrorKind::Auth,
            format!("<{}/> payload is not base64", el.name),
        )
    })
}

fn sasl_failure(answer: &Element) -> ClientError {
    let condition = answer
        .children()
        .find(|c| c.name != "text")
        .map_or("(no condition)", |c| c.name.as_str());
    err(ErrorKind::Auth, format!("<{}/> {condition}", answer.name))
}
