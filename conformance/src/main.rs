//! palaver-conformance: a black-box client toolkit for group-chat servers. Today it has the
//! `load` subcommand, the load generator (see docs/load.md); the conformance cases (issue 7)
//! build on the same XMPP client ([`client`]).

mod client;
mod load;

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
    Load(load::LoadArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Load(args) => load::run(args).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("palaver-conformance: {e:#}");
        ExitCode::FAILURE
    })
}
