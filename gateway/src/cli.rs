//! Command-line interface of the `palaver` binary (clap derive). Every command is documented
//! with an example in `docs/cli.md`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// palaver: a persistent group-chat server (XMPP MUC).
#[derive(Debug, Parser)]
#[command(name = "palaver", version)]
pub struct Cli {
    /// Configuration file [default: ./palaver.toml when it exists]
    #[arg(long, global = true, value_name = "FILE", env = "PALAVER_CONFIG")]
    pub config: Option<PathBuf>,

    /// Data directory (overrides `data_dir` and PALAVER_DATA_DIR)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server
    Serve,
    /// Manage user accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage rooms
    #[command(subcommand)]
    Room(RoomCommand),
    /// Manage room categories
    #[command(subcommand)]
    Category(CategoryCommand),
    /// Certificates
    #[command(subcommand)]
    Certs(CertsCommand),
    /// The compliance archive: `compliance verify|export|purge`
    #[command(subcommand)]
    Compliance(crate::compliance_cli::ComplianceCommand),
    /// The pool (TCP 8011): `pool status`
    #[command(subcommand)]
    Pool(crate::pool::admin::PoolCommand),
    /// The configuration file: `config check`
    #[command(subcommand)]
    Config(crate::config_cli::ConfigCommand),
}

/// Where a password comes from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PasswordSource {
    /// The password (visible to other local users in the process list; prefer --password-stdin)
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account
    Add {
        /// The account's address, e.g. alice@localhost
        jid: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Change an account's password
    Passwd {
        jid: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Delete an account
    Del { jid: String },
    /// List accounts
    List,
    /// Create many accounts from a file of `user:password` lines (`user` is a local part of the
    /// served domain or a full address; blank lines and `#` comments skipped). Existing
    /// accounts are left as they are.
    Import {
        /// The file to read (`-` for standard input)
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoomCommand {
    /// Create a persistent room
    Create(RoomCreateArgs),
    /// List rooms
    List,
    /// Delete a room with its history and affiliations
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct RoomCreateArgs {
    /// The room's local name (`NAME@conference.<domain>`), lowercase
    pub name: String,
    /// Category [default: rooms.default_category when it exists]
    #[arg(long, value_name = "NAME", conflicts_with = "no_category")]
    pub category: Option<String>,
    /// Create the room outside any category
    #[arg(long)]
    pub no_category: bool,
    /// Human-readable title
    #[arg(long, value_name = "T")]
    pub title: Option<String>,
    /// Description
    #[arg(long, value_name = "D")]
    pub description: Option<String>,
    /// Only members may join
    #[arg(long)]
    pub members_only: bool,
    /// Hide the room from room listings (disco#items)
    #[arg(long)]
    pub private: bool,
    /// Only participants (not visitors) may speak
    #[arg(long)]
    pub moderated: bool,
    /// Password needed to join
    #[arg(long, value_name = "P")]
    pub password: Option<String>,
    /// Give this user the owner affiliation
    #[arg(long, value_name = "JID")]
    pub owner: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CategoryCommand {
    /// Create a category
    Create {
        name: String,
        /// Description
        #[arg(long, value_name = "D", default_value = "")]
        description: String,
        /// Who may create rooms in it: comma-separated `*`, `@domain`, `user@domain`
        #[arg(long, value_name = "LIST", default_value = "*")]
        creators: String,
        /// Who may join its rooms: comma-separated `*`, `@domain`, `user@domain`
        #[arg(long, value_name = "LIST", default_value = "*")]
        members: String,
    },
    /// List categories
    List,
    /// Delete a category (its rooms stay, without a category)
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate (or refresh) the development CA and server certificate under <data_dir>/certs
    Dev,
    /// Issue a pool node certificate (<NODE>.palaver-pool) from the pool CA in --ca-dir,
    /// creating that CA the first time; run it on one machine for every node and copy each
    /// node its files
    Pool {
        /// The node id the certificate is for
        node: String,
        /// Directory of the pool CA (pool-ca.pem, pool-ca-key.pem): created when missing
        #[arg(long, value_name = "DIR")]
        ca_dir: std::path::PathBuf,
        /// Where the node's certificate and key go [default: --ca-dir]
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_after_subcommand() {
        let cli = Cli::try_parse_from([
            "palaver",
            "user",
            "add",
            "alice@localhost",
            "--password",
            "x",
            "--data-dir",
            "/tmp/d",
        ])
        .expect("parses");
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/d")));
        assert!(matches!(
            cli.command,
            Some(Command::User(UserCommand::Add { .. }))
        ));
    }

    #[test]
    fn password_source_is_required_and_exclusive() {
        assert!(Cli::try_parse_from(["palaver", "user", "add", "a@b"]).is_err());
        assert!(Cli::try_parse_from([
            "palaver",
            "user",
            "add",
            "a@b",
            "--password",
            "x",
            "--password-stdin"
        ])
        .is_err());
    }
}
