//! The MS-XCCOSIP (Lync / Skype for Business Persistent Chat) conformance cases:
//! `palaver-conformance xccos` signs test users in as pidgin-sipe does (REGISTER, INVITE the
//! lookup URI, `cmd:requri`, INVITE the pool URI — [`session`]) over UDP, TCP or TLS
//! ([`conn`], [`sip`], [`dialog`]) and checks the server's commands, replies, notices and room messages
//! ([`cases`]) using only the wire. Results use the XMPP suite's report (table, summary, JSON,
//! JUnit, exit code); each case opens fresh sessions and posts its own unique texts, so cases
//! are independent. A case needing a room uses `--room` (public, existing).

pub mod cases;
pub mod conn;
pub mod dialog;
pub mod envelope;
pub mod session;
pub mod sip;

use crate::suite::case::{CaseFuture, Ctx};
use crate::suite::{bounded, run_cases, Listed, RunArgs};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use conn::{TlsSetup, Transport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Options of `palaver-conformance xccos`.
#[derive(Args, Debug)]
pub struct XccosArgs {
    /// The server's SIP listener, host:port.
    #[arg(long)]
    pub server: String,
    /// SIP transport.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// The SIP domain the users live on.
    #[arg(long)]
    pub domain: String,
    /// The group-chat lookup URI [default: sip:ocschat@<domain>].
    #[arg(long)]
    pub chat_uri: Option<String>,
    /// A test account, user@domain:password; give two (alice and bob roles, in order).
    #[arg(long = "user", required = true)]
    pub users: Vec<String>,
    /// PEM file of the CA that signed the server's certificate (TLS).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify in the server's certificate [default: the domain].
    #[arg(long)]
    pub tls_name: Option<String>,
    /// An existing public room (channel value) the cases join and post to.
    #[arg(long, default_value = "lobby")]
    pub room: String,
    /// Case selection, reports, timeout and verbosity.
    #[command(flatten)]
    pub run: RunArgs,
}

/// A test account.
#[derive(Debug, Clone)]
pub struct XUser {
    pub local: String,
    pub domain: String,
    pub password: String,
}

impl XUser {
    /// `sip:local@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.local, self.domain)
    }
}

/// The run's configuration.
pub struct XConfig {
    pub server: SocketAddr,
    pub transport: Transport,
    pub tls: Option<TlsSetup>,
    pub domain: String,
    pub chat_uri: String,
    pub users: Vec<XUser>,
    pub room: String,
    pub timeout: Duration,
}

impl XConfig {
    /// `ma-chan://<domain>/<room>`.
    pub fn chan(&self) -> String {
        format!("ma-chan://{}/{}", self.domain, self.room)
    }
}

/// A case's context: the configuration plus the case's wire trace.
pub type XCtx = Ctx<XConfig>;

impl XCtx {
    /// User `i` (0 alice, 1 bob).
    pub fn user(&self, i: usize) -> &XUser {
        &self.config.users[i.min(self.config.users.len() - 1)]
    }

    /// A text no other case or run posts.
    pub fn unique(&self, what: &str) -> String {
        format!("{what} {:016x}", rand::random::<u64>())
    }
}

/// One XCCOS case.
pub struct XCase {
    pub id: &'static str,
    pub clause: &'static str,
    pub description: &'static str,
    pub run: fn(XCtx) -> CaseFuture,
}

impl Listed for XCase {
    fn info(&self) -> (&'static str, &'static str, &'static str) {
        (self.id, self.clause, self.description)
    }

    /// Every XCCOS case runs alone: they share `--room` and the two accounts, whose joins,
    /// parts and posts another case's notices and history would show.
    fn exclusive(&self) -> bool {
        true
    }
}

/// `palaver-conformance xccos`: runs the selected cases and reports.
pub async fn run(args: XccosArgs) -> Result<ExitCode> {
    let config = Arc::new(config(&args).await?);
    run_cases(cases::all(), &args.run, |case| {
        let ctx = XCtx::new(config.clone());
        let body = (case.run)(ctx.clone());
        let whole = config.timeout * 12;
        async move { (bounded(whole, body).await, ctx.trace()) }
    })
    .await
}

async fn config(args: &XccosArgs) -> Result<XConfig> {
    let server = tokio::net::lookup_host(&args.server)
        .await
        .with_context(|| format!("resolving {}", args.server))?
        .next()
        .with_context(|| format!("{} resolves to no address", args.server))?;
    let tls = match (&args.tls_ca, args.transport) {
        (Some(ca), _) => {
            let name = args.tls_name.clone().unwrap_or_else(|| args.domain.clone());
            Some(TlsSetup {
                config: crate::client::tls_config(ca)?,
                name: rustls_pki_types::ServerName::try_from(name.clone())
                    .with_context(|| format!("{name} is not a valid TLS name"))?,
            })
        }
        (None, Transport::Tls) => {
            bail!("--transport tls needs --tls-ca (system trust roots are not supported yet)")
        }
        (None, _) => None,
    };
    let mut users = Vec::new();
    for u in &args.users {
        let Some((addr, password)) = u.split_once(':') else {
            bail!("--user {u}: expected user@domain:password");
        };
        let (local, domain) = addr.split_once('@').unwrap_or((addr, &args.domain));
        users.push(XUser {
            local: local.to_string(),
            domain: domain.to_string(),
            password: password.to_string(),
        });
    }
    if users.len() < 2 {
        bail!("give two --user accounts (the cases need up to two room occupants)");
    }
    Ok(XConfig {
        server,
        transport: args.transport,
        tls,
        domain: args.domain.clone(),
        chat_uri: args
            .chat_uri
            .clone()
            .unwrap_or_else(|| format!("sip:ocschat@{}", args.domain)),
        users,
        room: args.room.clone(),
        timeout: Duration::from_secs(args.run.timeout.max(1)),
    })
}
