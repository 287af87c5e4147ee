//! The SIP pager-mode conformance cases: `palaver-conformance sip` registers test users (RFC
//! 3261 §10, digest), sends MESSAGEs (RFC 3428) to room URIs — posts and the `#commands` of
//! Kamailio imc's convention — reads the rooms' MESSAGEs, subscribes to RFC 4575 conference
//! events and checks the server's answers to bad requests, using only the wire and the shared
//! user agent ([`crate::sipua`]). Each case that needs a room creates its own
//! (`#create sipconf-<random>`) and destroys it at the end. Results use the shared runner
//! (table, summary, JSON, JUnit, exit code).

pub mod cases;
mod room;

use crate::sipua::account::{Account, AccountArgs};
use crate::sipua::case::{run_suite, SipCase, SipSuite};
use crate::sipua::{SipServer, Transport};
use crate::suite::case::Ctx;
use crate::suite::RunArgs;
use anyhow::Result;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

/// Options of `palaver-conformance sip`.
#[derive(Args, Debug)]
pub struct SipArgs {
    /// The server's SIP listener, host:port.
    #[arg(long)]
    pub server: String,
    /// SIP transport.
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,
    /// Domain, accounts and TLS.
    #[command(flatten)]
    pub accounts: AccountArgs,
    /// The host part of room URIs, sip:ROOM@<room-domain> [default: conference.<domain>].
    #[arg(long)]
    pub room_domain: Option<String>,
    /// Case selection, reports, timeout and verbosity.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The run's configuration.
pub struct SConfig {
    pub sip: SipServer,
    pub domain: String,
    pub room_domain: String,
    pub users: Vec<Account>,
}

/// A case's context: the configuration plus the case's wire trace.
pub type SCtx = Ctx<SConfig>;

impl SipSuite for SConfig {
    fn accounts(&self) -> &[Account] {
        &self.users
    }

    fn wait(&self) -> Duration {
        self.sip.timeout
    }
}

impl SCtx {
    /// The URI of room `name`.
    pub fn room_uri(&self, name: &str) -> String {
        format!("sip:{name}@{}", self.config.room_domain)
    }
}

/// One SIP case (run alone, see [`SipCase`]).
pub type SCase = SipCase<SConfig>;

/// `palaver-conformance sip`: runs the selected cases and reports.
pub async fn run(args: SipArgs) -> Result<ExitCode> {
    run_suite(cases::all(), &args.run, config(&args).await?).await
}

async fn config(args: &SipArgs) -> Result<SConfig> {
    let (server, tls, users) = args.accounts.resolve(&args.server, args.transport).await?;
    let domain = &args.accounts.domain;
    Ok(SConfig {
        sip: SipServer {
            server,
            transport: args.transport,
            tls,
            timeout: Duration::from_secs(args.run.timeout.max(1)),
        },
        domain: domain.clone(),
        room_domain: args
            .room_domain
            .clone()
            .unwrap_or_else(|| format!("conference.{domain}")),
        users,
    })
}
