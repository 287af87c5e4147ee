//! palaver-conformance: a black-box client toolkit for group-chat servers. Today it has the
//! `load` subcommand (sequential connect+join timing and idle sessions); the conformance
//! cases (issue 7) build on the same client.

mod client;
mod load;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "palaver-conformance", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect many XMPP clients, join a room with each, report timing and the server's RSS.
    Load(load::LoadArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => load::run(args).await,
    }
}
