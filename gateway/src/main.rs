//! The palaver server binary: parses the command line, loads the configuration, installs
//! logging and runs `serve` or one administrative command. Errors are printed to standard
//! error and end the process with status 1.

mod admin_cli;
mod bootstrap;
mod cli;
mod compliance_cli;
mod config;
mod config_cli;
mod conn_limit;
mod context;
mod files;
mod http;
mod logging;
mod pool;
mod reload;
mod signals;
mod sip;
mod user_import;
mod xmpp;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use config::{Config, LogFormat};
use std::process::ExitCode;

fn main() -> ExitCode {
    // rustls clients built without an explicit provider (the S3 file store's HTTP client) use
    // the process default: ring, as everywhere else in palaver.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        println!();
        return ExitCode::SUCCESS;
    };
    match run(cli.config.as_deref(), cli.data_dir.as_deref(), command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("palaver: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    config_file: Option<&std::path::Path>,
    data_dir: Option<&std::path::Path>,
    command: Command,
) -> anyhow::Result<()> {
    let config = Config::load(config_file, data_dir)?;
    let serving = matches!(command, Command::Serve);
    // Administrative commands stay quiet unless something goes wrong (or RUST_LOG asks).
    let (filter, format) = if serving {
        (config.log.filter.as_str(), config.log.format)
    } else {
        ("warn", LogFormat::Human)
    };
    logging::init(filter, format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(async move {
        match command {
            Command::Serve => {
                let source = reload::ConfigSource {
                    file: config_file.map(std::path::Path::to_path_buf),
                    data_dir_flag: data_dir.map(std::path::Path::to_path_buf),
                };
                bootstrap::serve(config, source).await
            }
            Command::User(cmd) => admin_cli::user(config, cmd).await,
            Command::Room(cmd) => admin_cli::room(config, cmd).await,
            Command::Category(cmd) => admin_cli::category(config, cmd).await,
            Command::Certs(cmd) => admin_cli::certs(config, cmd),
            Command::Compliance(cmd) => compliance_cli::run(config, cmd).await,
            Command::Pool(cmd) => pool::admin::run(config, cmd).await,
            Command::Config(cmd) => config_cli::run(&config, config_file, cmd),
        }
    });
    // Don't wait for background tasks (room tasks, commit writer) of admin commands.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
