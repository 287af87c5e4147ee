//! A small SIP user agent any suite can use: a connection over UDP, TCP or TLS ([`conn`]),
//! client transactions with UDP retransmission that answer the server's requests meanwhile
//! ([`ua`]), REGISTER / INVITE / in-dialog requests with one digest challenge answered
//! ([`dialog`]) and the pager-mode API — MESSAGE, the server's MESSAGEs, SUBSCRIBE and its
//! NOTIFYs ([`pager`]). The UA logs to a [`Trace`]: [`tracer`] makes one from a case's
//! [`Ctx`]. [`account`] parses the common options (accounts, server, TLS); [`case`] is
//! what the SIP suites' cases share.

pub mod account;
pub mod case;
pub mod conn;
pub mod dialog;
pub mod pager;
pub mod ua;

pub use conn::{Conn, TlsSetup, Transport};
pub use dialog::{session_expires, Dialog};
pub use pager::Inbound;
pub use ua::{Trace, Ua};

use crate::suite::case::Ctx;
use anyhow::{Context as _, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where a [`Ua`] connects: the server's SIP listener, the transport, TLS (needed with
/// [`Transport::Tls`]) and the bound of every wait.
#[derive(Clone)]
pub struct SipServer {
    pub server: SocketAddr,
    pub transport: Transport,
    pub tls: Option<TlsSetup>,
    pub timeout: Duration,
}

impl Ua {
    /// Opens a connection to `s` for `user@domain` (nothing sent yet).
    pub async fn connect(
        trace: Trace,
        s: &SipServer,
        user: &str,
        password: &str,
        domain: &str,
    ) -> Result<Ua> {
        trace(format!("** {user} connects over {}", s.transport.param()));
        let conn = Conn::open(s.server, s.transport, s.tls.as_ref())
            .await
            .with_context(|| format!("{user} connecting"))?;
        Ok(Ua::new(trace, s.timeout, conn, user, password, domain))
    }
}

/// A [`Trace`] writing to the case's wire trace.
pub fn tracer<C: Send + Sync + 'static>(cx: &Ctx<C>) -> Trace {
    let cx = cx.clone();
    Arc::new(move |line| cx.log(line))
}
