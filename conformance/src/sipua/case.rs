//! What the SIP suites (`xccos`, `sip`) share about their cases: the case type
//! ([`SipCase`]: id, clause, description, body; every one runs alone), what a suite's
//! configuration offers them ([`SipSuite`]: accounts, wait bound), the context helpers
//! (`user(i)`, `unique(what)`) and the run ([`run_suite`]).

use super::account::Account;
use crate::suite::case::{CaseFuture, Ctx};
use crate::suite::{bounded, run_cases, Listed, RunArgs};
use anyhow::Result;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// A SIP suite's configuration.
pub trait SipSuite: Send + Sync + 'static {
    /// The test accounts (at least one).
    fn accounts(&self) -> &[Account];
    /// The bound of every single wait.
    fn wait(&self) -> Duration;
}

/// One case of a SIP suite.
pub struct SipCase<C> {
    pub id: &'static str,
    pub clause: &'static str,
    pub description: &'static str,
    pub run: fn(Ctx<C>) -> CaseFuture,
}

impl<C> Listed for SipCase<C> {
    fn info(&self) -> (&'static str, &'static str, &'static str) {
        (self.id, self.clause, self.description)
    }

    /// Every SIP case runs alone: the cases share the accounts, and the server sends a user's
    /// room traffic (XCCOS: also `--room`'s notices and history) to all of its registered
    /// devices, so a concurrent case's sessions would see it.
    fn exclusive(&self) -> bool {
        true
    }
}

impl<C: SipSuite> Ctx<C> {
    /// User `i` (0 alice, 1 bob).
    pub fn user(&self, i: usize) -> &Account {
        let users = self.config.accounts();
        &users[i.min(users.len().saturating_sub(1))]
    }

    /// A text no other case or run posts.
    pub fn unique(&self, what: &str) -> String {
        format!("{what} {:016x}", rand::random::<u64>())
    }
}

/// Runs the selected `cases` against `config`, each bounded by 12 × the wait bound, and
/// reports.
pub async fn run_suite<C: SipSuite>(
    cases: Vec<SipCase<C>>,
    run: &RunArgs,
    config: C,
) -> Result<ExitCode> {
    let config = Arc::new(config);
    run_cases(cases, run, |case| {
        let ctx = Ctx::new(config.clone());
        let body = (case.run)(ctx.clone());
        let whole = config.wait() * 12;
        async move { (bounded(whole, body).await, ctx.trace()) }
    })
    .await
}

/// Whether `cases` has at least `min` cases, unique ids starting with `prefix`, a clause each
/// and descriptions saying MUST or SHOULD (for the suites' unit tests).
#[cfg(test)]
pub fn well_formed<C>(cases: &[SipCase<C>], prefix: &str, min: usize) -> bool {
    let mut ids: Vec<_> = cases.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len() == cases.len()
        && cases.len() >= min
        && cases.iter().all(|c| {
            c.id.starts_with(prefix)
                && !c.clause.is_empty()
                && (c.description.starts_with("MUST") || c.description.starts_with("SHOULD"))
        })
}
