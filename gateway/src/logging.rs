//! Logging: `tracing` events to standard error (standard output is reserved for the lines
//! scripts parse), human-readable or JSON, filtered by `RUST_LOG` or else the configured filter,
//! which [`set_filter`] changes at run time (configuration reload on SIGHUP).

use crate::config::LogFormat;
use anyhow::Context as _;
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Layer as _, Registry};

/// The handle that swaps the filter, and whether `RUST_LOG` set it (then it stays).
static FILTER: OnceLock<(reload::Handle<EnvFilter, Registry>, bool)> = OnceLock::new();

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
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        LogFormat::Human => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    let _ = FILTER.set((handle, env.is_some()));
    Ok(())
}

/// Replaces the filter with `spec` (the configuration's `log.filter`), unless `RUST_LOG` chose
/// it at start. Returns whether the filter changed.
pub fn set_filter(spec: &str) -> anyhow::Result<bool> {
    let Some((handle, from_env)) = FILTER.get() else {
        return Ok(false);
    };
    if *from_env {
        tracing::info!("RUST_LOG is set: log.filter is not applied");
        return Ok(false);
    }
    let filter =
        EnvFilter::try_new(spec).with_context(|| format!("invalid log.filter {spec:?}"))?;
    handle
        .reload(filter)
        .map_err(|e| anyhow::anyhow!("cannot change the log filter: {e}"))?;
    Ok(true)
}
