//! Shared helpers for palaver's end-to-end tests.
//!
//! Every test starts the real `palaver` binary ([`server::TestServer`]) in its own temporary
//! data directory, on loopback ports chosen by the OS, with SQLite or PostgreSQL
//! ([`server::Store`]), and talks to it only the way users do: the CLI, XMPP over TLS with a
//! small raw client ([`raw_client::RawClient`]) and the real third-party client slixmpp
//! ([`python::PyClient`], scenarios in [`scenario`]), and SIP over UDP, TCP and TLS with a small
//! user agent ([`sip_client::SipClient`]). Nothing here reaches into server internals;
//! `palaver-dialects` is used only as a wire codec (the XML stream parser for the raw client,
//! the SIP message codec for the SIP client). Pools of several servers (TCP 8011) are started
//! by [`pool`], with a pool CA made at test time by `palaver-certs` as an operator's PKI would.

pub mod baresip;
pub mod conformance;
pub mod curl;
pub mod kamailio;
pub mod load_tool;
pub mod pool;
pub mod python;
pub mod raw_client;
pub mod scenario;
pub mod server;
pub mod sip_client;
pub mod tls;
pub mod xccos_client;
pub mod xml;

pub use raw_client::{RawClient, SaslOutcome};
pub use server::{ServerOptions, Store, TestServer};
pub use sip_client::{SipClient, SipTransport};

use std::time::Duration;

/// Default bound for one expected reply from the server.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The XMPP domain every test server serves.
pub const DOMAIN: &str = "localhost";

/// The MUC service of [`DOMAIN`].
pub const MUC_DOMAIN: &str = "conference.localhost";

/// `name@conference.localhost`.
pub fn room_jid(name: &str) -> String {
    format!("{name}@{MUC_DOMAIN}")
}

/// The password [`TestServer::start_with_users`] gives each test user: `<user>-pw`.
pub fn password_of(user: &str) -> String {
    format!("{user}-pw")
}

/// An XMPP session of `user` (password [`password_of`], resource `raw`) that has sent its
/// initial presence and seen it echoed, so messages to the bare JID reach it.
pub async fn xmpp_available(server: &TestServer, user: &str) -> anyhow::Result<RawClient> {
    let mut c = RawClient::login(
        server.starttls_addr(),
        &server.ca_path(),
        user,
        &password_of(user),
        "raw",
    )
    .await?;
    c.send_str("<presence/>").await?;
    let me = format!("{user}@{DOMAIN}/raw");
    c.wait_for(STEP_TIMEOUT, "our presence echo", |el| {
        el.name == "presence" && el.attr("from") == Some(me.as_str())
    })
    .await?;
    Ok(c)
}

/// Reads from a connection the server should have closed at once: passes on EOF or a reset,
/// fails if any byte arrives or the connection stays open for [`STEP_TIMEOUT`].
pub async fn expect_closed_silently(mut tcp: tokio::net::TcpStream) -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(STEP_TIMEOUT, tcp.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Ok(()),
        Ok(Ok(n)) => anyhow::bail!("a refused connection got {n} bytes"),
        Err(_) => anyhow::bail!("the connection was left open"),
    }
}

/// A short random lowercase hex string (for unique names).
pub fn random_hex(len: usize) -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(len.min(32));
    s
}

/// Panics with the whole error chain if `result` is an error. Tests call this while their
/// [`TestServer`] is still alive, so the server's log is printed with the failure.
#[track_caller]
pub fn must<T>(result: anyhow::Result<T>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{e:?}"),
    }
}
