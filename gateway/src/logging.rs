//! Logging: `tracing` events to standard error (standard output is reserved for the lines
//! scripts parse), human-readable or JSON, filtered by `RUST_LOG` or else the configured filter.

use crate::config::LogFormat;
use anyhow::Context as _;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set and non-empty, wins over `filter`.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (source, spec) = match &env {
        Some(v) => ("RUST_LOG", v.as_str()),
        None => ("log.filter", filter),
    };
    let filter = EnvFilter::try_new(spec).with_context(|| format!("invalid {source} {spec:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
