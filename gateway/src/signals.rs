//! Termination signals: waits for SIGINT or SIGTERM so `serve` can shut down gracefully.

use anyhow::Context as _;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT and SIGTERM handlers, installed once at start so no signal is lost.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Installs the handlers (must run inside the tokio runtime).
    pub fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?,
        })
    }

    /// Resolves with the signal's name at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
