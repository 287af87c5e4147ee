//! palaver-conformance: a black-box client toolkit for group-chat servers. Today it has the
//! `load` subcommand, the load generator (see docs/load.md), and the conformance suite (issue 7,
//! docs/conformance.md): `xmpp` runs the XMPP cases against a server, `xccos` the MS-XCCOSIP
//! (Lync group chat over SIP) cases ([`xccos`]), `list` prints them all. `load` and `xmpp`
//! build on the same XMPP client ([`client`]).

mod client;
mod cross;
mod load;
mod sip;
mod sipua;
mod suite;
mod xccos;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "palaver-conformance", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log many XMPP users in, spread them over rooms, post and measure delivery latency
    /// (chat mode) or hold idle sessions (idle mode); report as a table and JSON.
    Load(Box<load::LoadArgs>),
    /// Run the XMPP conformance cases against a server; print a table and a summary, exit
    /// non-zero when a case failed.
    Xmpp(Box<suite::XmppArgs>),
    /// Run the MS-XCCOSIP (Lync group chat over SIP) conformance cases against a server;
    /// print a table and a summary, exit non-zero when a case failed.
    Xccos(Box<xccos::XccosArgs>),
    /// Run the SIP pager-mode group chat and RFC 4575 conference-event cases against a
    /// server; print a table and a summary, exit non-zero when a case failed.
    Sip(Box<sip::SipArgs>),
    /// Run the cross-protocol cases (one room, XMPP and SIP pager-mode occupants) against a
    /// server; print a table and a summary, exit non-zero when a case failed.
    Cross(Box<cross::CrossArgs>),
    /// List every conformance case (XMPP, then XCCOS, SIP and cross-protocol): id, clause,
    /// description.
    List,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Load(args) => load::run(*args).await,
        Command::Xmpp(args) => suite::run(*args).await,
        Command::Xccos(args) => xccos::run(*args).await,
        Command::Sip(args) => sip::run(*args).await,
        Command::Cross(args) => cross::run(*args).await,
        Command::List => Ok(suite::list()),
    };
    result.unwrap_or_else(|e| {
        eprintln!("palaver-conformance: {e:#}");
        ExitCode::FAILURE
    })
}
