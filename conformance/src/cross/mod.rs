//! The cross-protocol conformance cases: `palaver-conformance cross` puts XMPP occupants
//! (XEP-0045, the suite's [`crate::suite::session::Session`]) and SIP pager-mode occupants
//! (RFC 3428 MESSAGE with Kamailio imc's `#commands`, over [`crate::sipua`]) in one room and
//! checks that each side sees the other: presence, posts, history, archive, nicks, subject,
//! moderation and the RFC 4575 roster. Each case creates its own room (`cross-<random>`, an
//! instant room owned by the first user over XMPP) and destroys it at the end. Results use
//! the shared runner (table, summary, JSON, JUnit, exit code).

pub mod cases;
mod config;
mod ctx;
mod pager;
mod room;

pub use ctx::CrossCtx;

use crate::suite::case::{Ctx, Outcome};
use crate::suite::{bounded, run_cases, RunArgs};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Options of `palaver-conformance cross`.
#[derive(Args, Debug)]
pub struct CrossArgs {
    /// The server's XMPP STARTTLS client port, host:port.
    #[arg(long)]
    pub xmpp_server: String,
    /// The users' domain (XMPP and SIP).
    #[arg(long)]
    pub domain: String,
    /// The MUC service (XEP-0045), e.g. conference.example.org.
    #[arg(long)]
    pub muc: String,
    /// The server's SIP listener, host:port.
    #[arg(long)]
    pub sip_server: String,
    /// SIP transport.
    #[arg(long, value_enum, default_value_t = config::SipTransport::Tcp)]
    pub transport: config::SipTransport,
    /// The host part of room URIs, sip:ROOM@<room-domain> [default: the MUC service].
    #[arg(long)]
    pub room_domain: Option<String>,
    /// A test account, user@domain:password, used over both protocols; give two or three
    /// (XMPP owner, SIP occupant, second XMPP occupant, in order).
    #[arg(long = "user", required = true)]
    pub users: Vec<String>,
    /// The SIP credentials of the second account when they differ, user@domain:password.
    #[arg(long)]
    pub sip_user: Option<String>,
    /// PEM file of the CA that signed the server's certificates (XMPP STARTTLS, SIP TLS).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify in the server's certificates [default: the domain].
    #[arg(long)]
    pub tls_name: Option<String>,
    /// Case selection, reports, timeout and verbosity.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `palaver-conformance cross`: runs the selected cases and reports.
pub async fn run(args: CrossArgs) -> Result<ExitCode> {
    let (xmpp, sip) = config::build(&args).await?;
    let (xmpp, sip) = (Arc::new(xmpp), Arc::new(sip));
    run_cases(cases::all(), &args.run, |case| {
        let x = Ctx::new(xmpp.clone());
        let cx = CrossCtx::new(x.clone(), sip.clone());
        let whole = xmpp.timeout * 12;
        let body = (!case.needs_third || xmpp.users.len() > 2).then(|| (case.run)(cx));
        async move {
            let outcome = match body {
                None => Outcome::NotApplicable("needs a third --user".into()),
                Some(body) => bounded(whole, body).await,
            };
            (outcome, x.trace())
        }
    })
    .await
}
