//! The MS-XCCOSIP (Lync / Skype for Business Persistent Chat) conformance cases:
//! `palaver-conformance xccos` signs test users in as pidgin-sipe does (REGISTER, INVITE the
//! lookup URI, `cmd:requri`, INVITE the pool URI — [`session`]) over UDP, TCP or TLS
//! (the shared user agent, [`crate::sipua`]) and checks the server's commands, replies, notices and room messages
//! ([`cases`]) using only the wire. Results use the XMPP suite's report (table, summary, JSON,
//! JUnit, exit code); each case opens fresh sessions and posts its own unique texts, so cases
//! are independent. A case needing a room uses `--room` (public, existing).

pub mod cases;
pub mod envelope;
pub mod session;

pub use crate::sipua::conn;

use crate::sipua::account::AccountArgs;
use crate::sipua::case::{run_suite, SipCase, SipSuite};
use crate::suite::case::Ctx;
use crate::suite::RunArgs;
use anyhow::Result;
use clap::Args;
use conn::{TlsSetup, Transport};
use std::net::SocketAddr;
use std::process::ExitCode;
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
    /// Domain, accounts and TLS.
    #[command(flatten)]
    pub accounts: AccountArgs,
    /// The group-chat lookup URI [default: sip:ocschat@<domain>].
    #[arg(long)]
    pub chat_uri: Option<String>,
    /// An existing public room (channel value) the cases join and post to.
    #[arg(long, default_value = "lobby")]
    pub room: String,
    /// Case selection, reports, timeout and verbosity.
    #[command(flatten)]
    pub run: RunArgs,
}

/// A test account.
pub use crate::sipua::account::Account as XUser;

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

impl SipSuite for XConfig {
    fn accounts(&self) -> &[XUser] {
        &self.users
    }

    fn wait(&self) -> Duration {
        self.timeout
    }
}

/// One XCCOS case (run alone: they share `--room` and the two accounts).
pub type XCase = SipCase<XConfig>;

/// `palaver-conformance xccos`: runs the selected cases and reports.
pub async fn run(args: XccosArgs) -> Result<ExitCode> {
    run_suite(cases::all(), &args.run, config(&args).await?).await
}

async fn config(args: &XccosArgs) -> Result<XConfig> {
    let (server, tls, users) = args.accounts.resolve(&args.server, args.transport).await?;
    let domain = &args.accounts.domain;
    Ok(XConfig {
        server,
        transport: args.transport,
        tls,
        domain: domain.clone(),
        chat_uri: args
            .chat_uri
            .clone()
            .unwrap_or_else(|| format!("sip:ocschat@{domain}")),
        users,
        room: args.room.clone(),
        timeout: Duration::from_secs(args.run.timeout.max(1)),
    })
}
