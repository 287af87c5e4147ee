//! `palaver config check`: the configuration file is loaded and validated the way `serve`
//! does (an unknown key or a bad value is reported with its line, column and the keys the table
//! accepts, by the loader before any command runs), and then what `serve` would read next is
//! tried: the TLS certificate and key when configured, the pool's.

use crate::bootstrap::say;
use crate::config::Config;
use anyhow::Context as _;
use clap::Subcommand;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Checks the configuration (the --config file, ./palaver.toml, or the defaults) and the
    /// certificate files it names; exits 1 with the reason when something is wrong.
    Check,
}

pub fn run(config: &Config, file: Option<&Path>, cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check => {
            if !config.tls.cert.as_os_str().is_empty() {
                palaver_certs::ReloadableCert::new(&config.tls.cert, &config.tls.key)
                    .with_context(|| {
                        format!(
                            "tls.cert {} / tls.key {}",
                            config.tls.cert.display(),
                            config.tls.key.display()
                        )
                    })?;
            }
            if let Some(pool) = &config.pool {
                if !pool.cert.as_os_str().is_empty() {
                    palaver_certs::ReloadableCert::new(&pool.cert, &pool.key).with_context(
                        || {
                            format!(
                                "pool.cert {} / pool.key {}",
                                pool.cert.display(),
                                pool.key.display()
                            )
                        },
                    )?;
                }
            }
            let source = match file {
                Some(f) => f.display().to_string(),
                None if Path::new(crate::config::DEFAULT_CONFIG_FILE).is_file() => {
                    crate::config::DEFAULT_CONFIG_FILE.to_string()
                }
                None => "the defaults (no palaver.toml)".to_string(),
            };
            say(&format!("ok: {source} (domain {})", config.domain));
            Ok(())
        }
    }
}
