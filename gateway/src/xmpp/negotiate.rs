//! Stream negotiation of a c2s connection (RFC 6120 §4–§7): stream headers, STARTTLS (or
//! direct TLS, XEP-0368), SASL (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN only under TLS) with per-IP
//! back-off, and resource binding. Hands the bound session to `session::run`.

use super::conn::{condition_for, Conn, ConnError};
use super::service::XmppService;
use super::session;
use palaver_core::credentials::{verify_password, ScramHash};
use palaver_core::{UserId, UserRecord};
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::ns;
use palaver_dialects::xmpp::reader::StreamEvent;
use palaver_dialects::xmpp::sasl::{
    decode_payload, encode_payload, parse_plain, random_nonce, Mechanism, SaslError, ScramKeys,
    ScramServer, ScramStep,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Most SASL attempts on one connection before it is closed.
const MAX_AUTH_ATTEMPTS: u32 = 5;

/// Entry point for an accepted TCP connection.
pub async fn handle_connection(
    svc: Arc<XmppService>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
) {
    let _ = tcp.set_nodelay(true);
    let acceptor = tokio_rustls::TlsAcceptor::from(svc.ctx.tls.clone());
    if direct_tls {
        match tokio::time::timeout(svc.login_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                let conn = Conn::new(tls, svc.limits.clone(), &svc.domain);
                secure_stream(svc, conn, peer, true).await
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
        return;
    }
    let mut conn = Conn::new(tcp, svc.limits.clone(), &svc.domain);
    match plain_phase(&svc, &mut conn).await {
        Ok(PlainOutcome::StartTls) => {
            let Conn { io, .. } = conn;
            match tokio::time::timeout(svc.login_timeout, acceptor.accept(io)).await {
                Ok(Ok(tls)) => {
                    let conn = Conn::new(tls, svc.limits.clone(), &svc.domain);
                    secure_stream(svc, conn, peer, true).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "STARTTLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "STARTTLS handshake timed out"),
            }
        }
        Ok(PlainOutcome::Unencrypted(first)) => {
            secure_stream_after_header(svc, conn, peer, false, Some(first)).await
        }
        Err(e) => report_and_close(&mut conn, e, peer).await,
    }
}

enum PlainOutcome {
    StartTls,
    /// Encryption not required and the client went on without it: its first `<auth/>`.
    Unencrypted(Element),
}

async fn report_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    err: ConnError,
    peer: SocketAddr,
) {
    match &err {
        ConnError::Stream(e) => {
            tracing::info!(%peer, error = %e, "closing stream: bad input");
            conn.stream_error(condition_for(e), Some(&e.to_string()))
                .await;
        }
        ConnError::Timeout => conn.stream_error("connection-timeout", None).await,
        ConnError::Closed | ConnError::Io(_) => {}
    }
}

/// Opens the stream on the plain socket and waits for `<starttls/>`.
async fn plain_phase(
    svc: &XmppService,
    conn: &mut Conn<TcpStream>,
) -> Result<PlainOutcome, ConnError> {
    open_stream(svc, conn).await?;
    let mut features =
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>".to_vec();
    if svc.require_encryption {
        features.extend_from_slice(b"<required/>");
    }
    features.extend_from_slice(b"</starttls>");
    if !svc.require_encryption {
        features.extend_from_slice(&mechanisms(false));
    }
    features.extend_from_slice(b"</stream:features>");
    conn.send(&features).await?;
    match conn.next_event(svc.login_timeout).await? {
        StreamEvent::Stanza(el) if el.is("starttls", ns::TLS) => {
            if conn.reader.buffered() > 0 {
                conn.stream_error("policy-violation", Some("data after <starttls/>"))
                    .await;
                return Err(ConnError::Closed);
            }
            conn.send(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .await?;
            Ok(PlainOutcome::StartTls)
        }
        StreamEvent::Stanza(el) if !svc.require_encryption && el.is("auth", ns::SASL) => {
            Ok(PlainOutcome::Unencrypted(el))
        }
        StreamEvent::Close => Err(ConnError::Closed),
        _ => {
            conn.stream_error("policy-violation", Some("encryption is required"))
                .await;
            Err(ConnError::Closed)
        }
    }
}

/// Waits for the client's stream header and answers with ours.
async fn open_stream<S: AsyncRead + AsyncWrite + Unpin>(
    svc: &XmppService,
    conn: &mut Conn<S>,
) -> Result<(), ConnError> {
    let StreamEvent::Open { attrs, default_ns } = conn.next_event(svc.login_timeout).await? else {
        conn.stream_error("bad-format", Some("expected a stream header"))
            .await;
        return Err(ConnError::Closed);
    };
    conn.send_header().await?;
    if default_ns != ns::CLIENT {
        conn.stream_error("invalid-namespace", None).await;
        return Err(ConnError::Closed);
    }
    let to = attrs
        .iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.to_lowercase());
    if to.is_some_and(|to| to != svc.domain) {
        conn.stream_error("host-unknown", None).await;
        return Err(ConnError::Closed);
    }
    Ok(())
}

fn mechanisms(plain_allowed: bool) -> Vec<u8> {
    let mut m = b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
        .to_vec();
    if plain_allowed {
        m.extend_from_slice(b"<mechanism>PLAIN</mechanism>");
    }
    m.extend_from_slice(b"</mechanisms>");
    m
}

/// TLS is up (or not required): new stream, SASL, new stream, bind, then the session.
async fn secure_stream<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    svc: Arc<XmppService>,
    mut conn: Conn<S>,
    peer: SocketAddr,
    secure: bool,
) {
    if let Err(e) = open_stream(&svc, &mut conn).await {
        return report_and_close(&mut conn, e, peer).await;
    }
    let mut features = b"<stream:features>".to_vec();
    features.extend_from_slice(&mechanisms(secure));
    features.extend_from_slice(b"</stream:features>");
    if let Err(e) = conn.send(&features).await {
        return report_and_close(&mut conn, e.into(), peer).await;
    }
    secure_stream_after_header(svc, conn, peer, secure, None).await
}

async fn secure_stream_after_header<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    svc: Arc<XmppService>,
    mut conn: Conn<S>,
    peer: SocketAddr,
    secure: bool,
    first: Option<Element>,
) {
    let user = match authenticate(&svc, &mut conn, peer, secure, first).await {
        Ok(Some(user)) => user,
        Ok(None) => return,
        Err(e) => return report_and_close(&mut conn, e, peer).await,
    };
    conn.restart_stream();
    if let Err(e) = open_stream(&svc, &mut conn).await {
        return report_and_close(&mut conn, e, peer).await;
    }
    let features = b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>\
<ver xmlns='urn:xmpp:features:rosterver'/></stream:features>";
    if let Err(e) = conn.send(features).await {
        return report_and_close(&mut conn, e.into(), peer).await;
    }
    session::run(svc, conn, peer, user, secure).await
}

/// Runs SASL until success (the user), the client giving up (None) or an error.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    svc: &XmppService,
    conn: &mut Conn<S>,
    peer: SocketAddr,
    secure: bool,
    mut first: Option<Element>,
) -> Result<Option<UserId>, ConnError> {
    let mut attempts = 0;
    loop {
        let next = match first.take() {
            Some(el) => StreamEvent::Stanza(el),
            None => conn.next_event(svc.login_timeout).await?,
        };
        let el = match next {
            StreamEvent::Stanza(el) => el,
            StreamEvent::Close => return Ok(None),
            StreamEvent::Open { .. } => {
                conn.stream_error("bad-format", None).await;
                return Ok(None);
            }
        };
        if !el.is("auth", ns::SASL) {
            conn.stream_error("not-authorized", Some("authenticate first"))
                .await;
            return Ok(None);
        }
        attempts += 1;
        if let Some(wait) = svc.backoff.blocked_for(peer.ip()) {
            let text = format!(
                "too many failed logins; try again in {} s",
                wait.as_secs() + 1
            );
            conn.send(&sasl_failure("temporary-auth-failure", Some(&text)))
                .await?;
        } else {
            match run_mechanism(svc, conn, &el, secure).await? {
                Ok((user, success)) => {
                    svc.backoff.success(peer.ip());
                    conn.send(&success).await?;
                    tracing::info!(%peer, %user, "authenticated");
                    return Ok(Some(user));
                }
                Err(err) => {
                    if err == SaslError::NotAuthorized {
                        metrics::counter!("palaver_auth_failures_total").increment(1);
                        if let Some(block) = svc.backoff.failure(peer.ip()) {
                            tracing::warn!(%peer, secs = block.as_secs(), "login back-off");
                        }
                    }
                    conn.send(&sasl_failure(err.condition(), None)).await?;
                }
            }
        }
        if attempts >= MAX_AUTH_ATTEMPTS {
            conn.stream_error("policy-violation", Some("too many authentication attempts"))
                .await;
            return Ok(None);
        }
    }
}

fn sasl_failure(condition: &str, text: Option<&str>) -> Vec<u8> {
    let mut out =
        format!("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{condition}/>").into_bytes();
    if let Some(t) = text {
        out.extend_from_slice(b"<text>");
        palaver_dialects::xmpp::escape::escape_text(t, &mut out);
        out.extend_from_slice(b"</text>");
    }
    out.extend_from_slice(b"</failure>");
    out
}

type MechResult = Result<(UserId, Vec<u8>), SaslError>;

async fn run_mechanism<S: AsyncRead + AsyncWrite + Unpin>(
    svc: &XmppService,
    conn: &mut Conn<S>,
    auth: &Element,
    secure: bool,
) -> Result<MechResult, ConnError> {
    let Some(mech) = auth.attr("mechanism").and_then(Mechanism::from_name) else {
        return Ok(Err(SaslError::InvalidMechanism));
    };
    let payload = match decode_payload(&auth.text()) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    match mech {
        Mechanism::Plain => {
            if !secure {
                return Ok(Err(SaslError::EncryptionRequired));
            }
            Ok(plain(svc, &payload).await)
        }
        Mechanism::ScramSha1 | Mechanism::ScramSha256 => scram(svc, conn, mech, &payload).await,
    }
}

fn user_id(svc: &XmppService, username: &str) -> Option<UserId> {
    if username.contains('@') {
        return None;
    }
    UserId::parse(&format!("{username}@{}", svc.domain))
}

async fn load_user(svc: &XmppService, username: &str) -> Result<Option<UserRecord>, SaslError> {
    let Some(id) = user_id(svc, username) else {
        return Ok(None);
    };
    svc.ctx.store.get_user(&id).await.map_err(|e| {
        tracing::error!(error = %e, "user lookup failed");
        SaslError::Aborted
    })
}

fn check_authzid(authzid: Option<&str>, user: &UserId) -> Result<(), SaslError> {
    match authzid {
        None | Some("") => Ok(()),
        Some(z) if z.eq_ignore_ascii_case(user.as_str()) || z == user.local() => Ok(()),
        Some(_) => Err(SaslError::InvalidAuthzid),
    }
}

async fn plain(svc: &XmppService, payload: &[u8]) -> MechResult {
    let creds = parse_plain(payload)?;
    let record = load_user(svc, &creds.authcid)
        .await?
        .ok_or(SaslError::NotAuthorized)?;
    if !verify_password(&record.scram_sha256, ScramHash::Sha256, &creds.password) {
        return Err(SaslError::NotAuthorized);
    }
    check_authzid(creds.authzid.as_deref(), &record.user)?;
    Ok((
        record.user,
        b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_vec(),
    ))
}

async fn scram<S: AsyncRead + AsyncWrite + Unpin>(
    svc: &XmppService,
    conn: &mut Conn<S>,
    mech: Mechanism,
    payload: &[u8],
) -> Result<MechResult, ConnError> {
    let mut server = ScramServer::new(mech, random_nonce());
    let (username, authzid) = match server.client_first(payload) {
        Ok(ScramStep::NeedKeys { username, authzid }) => (username, authzid),
        Err(e) => return Ok(Err(e)),
    };
    let record = match load_user(svc, &username).await {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let challenge = {
        let keys = record.as_ref().map(|r| {
            let c = if mech == Mechanism::ScramSha1 {
                &r.scram_sha1
            } else {
                &r.scram_sha256
            };
            ScramKeys {
                salt: &c.salt,
                iterations: c.iterations,
                stored_key: &c.stored_key,
                server_key: &c.server_key,
            }
        });
        server.server_first(keys)
    };
    let mut out = b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>".to_vec();
    out.extend_from_slice(encode_payload(&challenge).as_bytes());
    out.extend_from_slice(b"</challenge>");
    conn.send(&out).await?;
    let response = match conn.next_event(svc.login_timeout).await? {
        StreamEvent::Stanza(el) if el.is("response", ns::SASL) => el,
        StreamEvent::Stanza(el) if el.is("abort", ns::SASL) => return Ok(Err(SaslError::Aborted)),
        _ => {
            return Ok(Err(SaslError::MalformedRequest(
                "expected <response/>".into(),
            )))
        }
    };
    let data = match decode_payload(&response.text()) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let server_final = match server.client_final(&data) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let Some(record) = record else {
        return Ok(Err(SaslError::NotAuthorized));
    };
    if let Err(e) = check_authzid(authzid.as_deref(), &record.user) {
        return Ok(Err(e));
    }
    let mut success = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>".to_vec();
    success.extend_from_slice(encode_payload(&server_final).as_bytes());
    success.extend_from_slice(b"</success>");
    Ok(Ok((record.user, success)))
}
