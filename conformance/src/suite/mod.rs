//! The conformance suite (issue 7): black-box cases that check a server against the clauses of
//! RFC 6120 and the XEPs they cite, using only the wire. `xmpp` runs the XMPP cases
//! ([`cases`]) against any server; `list` prints them. Each case gets fresh sessions
//! ([`session`]) and its own room names, so cases are independent; results are printed as a
//! table and written as JSON or JUnit ([`report`]).

pub mod case;
pub mod cases;
pub mod report;
pub mod session;
pub mod xml;

use anyhow::{bail, Context as _, Result};
use case::{CaseFuture, Config, Ctx, Features, Need, Outcome, User};
use clap::Args;
use report::{glob_match, CaseResult};
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `palaver-conformance xmpp`.
#[derive(Args, Debug)]
pub struct XmppArgs {
    /// The server's STARTTLS client port, host:port.
    #[arg(long)]
    pub server: String,
    /// The XMPP domain the users live on.
    #[arg(long)]
    pub domain: String,
    /// The MUC service (XEP-0045), e.g. conference.example.org.
    #[arg(long)]
    pub muc: String,
    /// A test account, user@domain:password; give three (alice, bob, carol roles, in order).
    #[arg(long = "user", required = true)]
    pub users: Vec<String>,
    /// PEM file of the CA that signed the server's certificate.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Case selection, reports, timeout and verbosity.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `palaver-conformance list`: every case with its id, clause and description — the XMPP
/// cases, then the XCCOS cases (ids `xccos.*`).
pub fn list() -> ExitCode {
    print_list(&cases::all());
    print_list(&crate::xccos::cases::all());
    ExitCode::SUCCESS
}

fn print_list<C: Listed>(cases: &[C]) {
    for c in cases {
        let (id, clause, description) = c.info();
        println!("{id:<44}  {clause:<32}  {description}");
    }
}

/// What the runner and `list` read of a suite's case: its id, clause and description.
pub trait Listed {
    fn info(&self) -> (&'static str, &'static str, &'static str);
}

impl Listed for case::Case {
    fn info(&self) -> (&'static str, &'static str, &'static str) {
        (self.id, self.clause, self.description)
    }
}

/// The options every suite's subcommand takes: which cases run, where the results are
/// written, the wait bound and verbosity.
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
}

/// Runs the selected `cases` one after the other with `run_case` (which yields the case's
/// outcome and wire trace), prints a row per case and the summary, writes the JSON and JUnit
/// reports and gives the exit code: failure when a case failed.
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
    let mut results = Vec::new();
    for case in cases {
        let (id, clause, _) = case.info();
        let selected = opts.cases.is_empty() || opts.cases.iter().any(|g| glob_match(g, id));
        if !selected || opts.skips.iter().any(|g| glob_match(g, id)) {
            continue;
        }
        let started = Instant::now();
        let (outcome, trace) = run_case(&case).await;
        let result = CaseResult {
            id,
            clause,
            outcome,
            ms: started.elapsed().as_millis(),
            trace,
        };
        report::print_row(&result, opts.verbose);
        results.push(result);
    }
    let summary = report::summary(&results);
    println!("{summary}");
    if let Some(path) = &opts.json {
        std::fs::write(path, report::json(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &opts.junit {
        std::fs::write(path, report::junit(&results))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = results
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Fail(_)));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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

/// `palaver-conformance xmpp`: runs the selected cases and reports.
pub async fn run(args: XmppArgs) -> Result<ExitCode> {
    let config = Arc::new(config(&args).await?);
    let features = discover(&config).await;
    let config = Arc::new(Config {
        features,
        ..(*config).clone()
    });
    run_cases(cases::all(), &args.run, |case| {
        let missing = case.needs.iter().find(|n| !config.features.has(n));
        let ctx = Ctx::new(config.clone());
        let body = match missing {
            Some(n) => Err(format!("not advertised: {}", n.describe())),
            None => Ok((case.run)(ctx.clone())),
        };
        let whole = config.timeout * 12;
        async move {
            let outcome = match body {
                Err(why) => Outcome::NotApplicable(why),
                Ok(body) => bounded(whole, body).await,
            };
            (outcome, ctx.trace())
        }
    })
    .await
}

async fn config(args: &XmppArgs) -> Result<Config> {
    let addr = tokio::net::lookup_host(&args.server)
        .await
        .with_context(|| format!("resolving {}", args.server))?
        .next()
        .with_context(|| format!("{} resolves to no address", args.server))?;
    let Some(ca) = &args.tls_ca else {
        bail!("--tls-ca is required (system trust roots are not supported yet)");
    };
    let mut users = Vec::new();
    for u in &args.users {
        let Some((jid, password)) = u.split_once(':') else {
            bail!("--user {u}: expected user@domain:password");
        };
        let local = jid.split('@').next().unwrap_or(jid).to_string();
        users.push(User {
            jid: jid.to_string(),
            local,
            password: password.to_string(),
        });
    }
    if users.len() < 3 {
        bail!("give three --user accounts (the cases need up to three occupants)");
    }
    let tls_name = rustls_pki_types::ServerName::try_from(args.domain.clone())
        .with_context(|| format!("{} is not a valid TLS name", args.domain))?;
    let timeout = Duration::from_secs(args.run.timeout.max(1));
    Ok(Config {
        connect: crate::client::ConnectOptions {
            addr,
            domain: args.domain.clone(),
            tls_mode: crate::client::TlsMode::StartTls,
            tls: Some(crate::client::tls_config(ca)?),
            tls_name,
            mechanism: None,
            resource: None,
            step_timeout: timeout,
        },
        domain: args.domain.clone(),
        muc: args.muc.clone(),
        users,
        timeout,
        features: Features::default(),
    })
}

/// disco#info on the domain, once, as the first user. Failures leave
/// the feature lists empty (the cases that need a feature then report N-A; those that do
/// not will fail on their own).
async fn discover(config: &Arc<Config>) -> Features {
    let ctx = Ctx::new(config.clone());
    let mut features = Features::default();
    if let Ok(mut s) = ctx.login(0).await {
        features.domain = s.disco_features(&config.domain).await.unwrap_or_default();
        s.close().await;
    }
    features
}

impl Need {
    fn describe(&self) -> String {
        match self {
            Need::Domain(f) => format!("{f} on the domain"),
        }
    }
}
