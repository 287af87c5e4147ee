//! The case runner every suite shares ([`run_cases`]): the common options ([`RunArgs`]: case
//! selection, reports, wait bound, verbosity, `-j N`, known deviations), running the selected
//! cases up to N at a time (cases that must run alone run afterwards, one by one), a table row
//! per case as it ends, the summary, the JSON/JUnit reports in list order and the exit code.

use super::case::{CaseFuture, Outcome};
use super::known::{self, Known};
use super::report::{self, glob_match, CaseResult};
use super::Listed;
use anyhow::{Context as _, Result};
use clap::Args;
use futures::StreamExt as _;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The options every suite's subcommand takes.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run only the cases whose id matches one of these globs (`*`, `?`).
    #[arg(long = "case")]
    pub cases: Vec<String>,
    /// Skip the cases whose id matches one of these globs.
    #[arg(long = "skip")]
    pub skips: Vec<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the results as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Bound, in seconds, of every single wait for an answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
    /// Print the wire traffic of failing cases.
    #[arg(short, long)]
    pub verbose: bool,
    /// Run up to N cases at the same time (cases that must run alone still do).
    #[arg(short = 'j', long = "jobs", default_value_t = 1)]
    pub jobs: usize,
    /// A markdown file of documented deviations (e.g. conformance/KNOWN-DEVIATIONS.md); their
    /// failures are shown as `FAIL (known: NAME)` and do not fail the run.
    #[arg(long, requires = "implementation")]
    pub known_deviations: Option<PathBuf>,
    /// The implementation under test, as named in the known-deviations file (e.g. `prosody`).
    #[arg(long)]
    pub implementation: Option<String>,
}

/// Runs the selected `cases` with `run_case` (which yields the case's outcome and wire
/// trace), `--jobs` at a time, prints a row per case and the summary, writes the JSON and
/// JUnit reports and gives the exit code: failure when a case failed other than as a known
/// deviation.
pub async fn run_cases<C, F, Fut>(
    cases: Vec<C>,
    opts: &RunArgs,
    mut run_case: F,
) -> Result<ExitCode>
where
    C: Listed,
    F: FnMut(&C) -> Fut,
    Fut: Future<Output = (Outcome, Vec<String>)>,
{
    let known = known::from_options(
        opts.known_deviations.as_deref(),
        opts.implementation.as_deref(),
    )?;
    if let (Some(k), Some(file)) = (&known, &opts.known_deviations) {
        println!(
            "{} known deviations of {} listed in {}",
            k.len(),
            k.implementation,
            file.display()
        );
    }
    let selected: Vec<(usize, C)> = cases
        .into_iter()
        .filter(|c| {
            let id = c.info().0;
            (opts.cases.is_empty() || opts.cases.iter().any(|g| glob_match(g, id)))
                && !opts.skips.iter().any(|g| glob_match(g, id))
        })
        .enumerate()
        .collect();
    let (alone, together): (Vec<_>, Vec<_>) =
        selected.into_iter().partition(|(_, c)| c.exclusive());
    let mut results: Vec<(usize, CaseResult)> = Vec::new();
    let mut record = |i: usize, result: CaseResult| {
        report::print_row(&result, opts.verbose);
        results.push((i, result));
    };
    let mut concurrent = futures::stream::iter(together)
        .map(|(i, case)| timed(i, case.info(), run_case(&case), known.as_ref()))
        .buffer_unordered(opts.jobs.max(1));
    while let Some((i, result)) = concurrent.next().await {
        record(i, result);
    }
    drop(concurrent);
    for (i, case) in alone {
        let (i, result) = timed(i, case.info(), run_case(&case), known.as_ref()).await;
        record(i, result);
    }
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<CaseResult> = results.into_iter().map(|(_, r)| r).collect();
    if let Some(k) = &known {
        for r in results
            .iter()
            .filter(|r| k.contains(r.id) && r.known.is_none())
        {
            println!(
                "note: {} is listed as a known deviation of {} but did not fail",
                r.id, k.implementation
            );
        }
    }
    println!("{}", report::summary(&results));
    if let Some(path) = &opts.json {
        std::fs::write(path, report::json(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &opts.junit {
        std::fs::write(path, report::junit(&results))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if results.iter().any(CaseResult::failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs one case's future, timing it from its first poll, and marks a failure that `known`
/// documents.
async fn timed(
    i: usize,
    (id, clause, _): (&'static str, &'static str, &'static str),
    body: impl Future<Output = (Outcome, Vec<String>)>,
    known: Option<&Known>,
) -> (usize, CaseResult) {
    let started = Instant::now();
    let (outcome, trace) = body.await;
    let known = match (&outcome, known) {
        (Outcome::Fail(_), Some(k)) if k.contains(id) => Some(k.implementation.clone()),
        _ => None,
    };
    let result = CaseResult {
        id,
        clause,
        outcome,
        known,
        ms: started.elapsed().as_millis(),
        trace,
    };
    (i, result)
}

/// Runs a case body bounded by `whole` (every read in it is bounded by --timeout; this bounds
/// a case that loops); an error or the bound is a failure.
pub async fn bounded(whole: Duration, body: CaseFuture) -> Outcome {
    match tokio::time::timeout(whole, body).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Fail(format!("{e:#}")),
        Err(_) => Outcome::Fail(format!("the case took longer than {whole:?}")),
    }
}
