//! The conformance suite (issue 7): black-box cases that check a server against the clauses of
//! RFC 6120 and the XEPs they cite, using only the wire. `xmpp` runs the XMPP cases
//! ([`cases`]) against any server; `list` prints them. Each case gets fresh sessions
//! ([`session`]) and its own room names, so cases are independent; results are printed as a
//! table and written as JSON or JUnit ([`report`]).

pub mod case;
pub mod cases;
pub mod known;
pub mod report;
pub mod runner;
pub mod session;
pub mod xml;

pub use runner::{bounded, run_cases, RunArgs};

use anyhow::{bail, Context as _, Result};
use case::{Config, Ctx, Features, Need, Outcome, User};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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
/// cases, then the XCCOS (`xccos.*`), SIP (`sip.*`) and cross-protocol (`cross.*`) ones.
pub fn list() -> ExitCode {
    print_list(&cases::all());
    print_list(&crate::xccos::cases::all());
    print_list(&crate::sip::cases::all());
    print_list(&crate::cross::cases::all());
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

    /// Whether the case must run alone (not beside others under `-j N`).
    fn exclusive(&self) -> bool {
        false
    }
}

impl Listed for case::Case {
    fn info(&self) -> (&'static str, &'static str, &'static str) {
        (self.id, self.clause, self.description)
    }

    fn exclusive(&self) -> bool {
        RUN_ALONE.contains(&self.id)
    }
}

/// XMPP cases that run alone under `-j N`: what they check goes to the invitee's bare JID,
/// which every concurrent session of the same account could receive instead.
const RUN_ALONE: &[&str] = &["muc.invite.mediated"];

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
    Ok(Config::starttls(
        addr,
        &args.domain,
        &args.muc,
        users,
        crate::client::tls_config(ca)?,
        tls_name,
        timeout,
    ))
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
