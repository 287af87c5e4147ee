//! Signals: SIGINT or SIGTERM so `serve` can shut down gracefully, SIGHUP to reload the
//! configuration.

use anyhow::Context as _;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT and SIGTERM handlers, installed once at start so no signal is lost.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

/// What [`Signals::next`] saw.
pub enum Received {
    /// SIGINT or SIGTERM (named): stop.
    Stop(&'static str),
    /// SIGHUP: reload.
    Reload,
}

impl Signals {
    /// Installs the handlers (must run inside the tokio runtime).
    pub fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?,
            hangup: signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?,
        })
    }

    /// The next SIGINT, SIGTERM or SIGHUP.
    pub async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.interrupt.recv() => Received::Stop("SIGINT"),
            _ = self.terminate.recv() => Received::Stop("SIGTERM"),
            _ = self.hangup.recv() => Received::Reload,
        }
    }

    /// Resolves with the signal's name at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
