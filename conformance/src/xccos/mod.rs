//! The MS-XCCOSIP (Lync / Skype for Business Persistent Chat) conformance cases:
//! `palaver-conformance xccos` signs test users in as pidgin-sipe does (REGISTER, INVITE the
//! lookup URI, `cmd:requri`, INVITE the pool URI — [`session`]) over UDP, TCP or TLS
//! ([`conn`], [`sip`], [`dialog`]) and checks the server's commands, replies, notices and room messages
//! ([`cases`]) using only the wire. Results use the XMPP suite's report (table, summary, JSON,
//! JUnit, exit code); each case opens fresh sessions and posts its own unique texts, so cases
//! are independent. A case needing a room uses `--room` (public, existing).

pub mod cases;
pub mod conn;
pub mod dialog;
pub mod envelope;
pub mod session;
pub mod sip;

use crate::suite::case::{CaseFuture, Outcome};
use crate::suite::report::{self, glob_match, CaseResult};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use conn::{TlsSetup, Transport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `palaver-conformance xccos`.
#[derive(Args, Debug)]
pub struct XccosArgs {
    /// The server's SIP listener, host:port.
    #[arg(long)]
    pub server: String,
    /// SIP transport.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// The SIP domain the users live on.
    #[arg(long)]
    pub domain: String,
    /// The group-chat lookup URI [default: sip:ocschat@<domain>].
    #[arg(long)]
    pub chat_uri: Option<String>,
    /// A test account, user@domain:password; give two (alice and bob roles, in order).
    #[arg(long = "user", required = true)]
    pub users: Vec<String>,
    /// PEM file of the CA that signed the server's certificate (TLS).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify in the server's certificate [default: the domain].
    #[arg(long)]
    pub tls_name: Option<String>,
    /// An existing public room (channel value) the cases join and post to.
    #[arg(long, default_value = "lobby")]
    pub room: String,
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

/// A test account.
#[derive(Debug, Clone)]
pub struct XUser {
    pub local: String,
    pub domain: String,
    pub password: String,
}

impl XUser {
    /// `sip:local@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.local, self.domain)
    }
}

/// The run's configuration.
pub struct XConfig {
    pub server: SocketAddr,
    pub transport: Transport,
    pub tls: Option<TlsSetup>,
    pub domain: String,
    pub chat_uri: String,
    pub users: Vec<XUser>,
    pub room: String,
    pub timeout: Duration,
}

impl XConfig {
    /// `ma-chan://<domain>/<room>`.
    pub fn chan(&self) -> String {
        format!("ma-chan://{}/{}", self.domain, self.room)
    }
}

/// A case's context: the configuration plus the case's wire trace.
#[derive(Clone)]
pub struct XCtx {
    pub config: Arc<XConfig>,
    trace: Arc<Mutex<Vec<String>>>,
}

impl XCtx {
    pub fn new(config: Arc<XConfig>) -> XCtx {
        XCtx {
            config,
            trace: Arc::default(),
        }
    }

    /// Appends a line to the trace.
    pub fn log(&self, line: String) {
        if let Ok(mut t) = self.trace.lock() {
            t.push(line);
        }
    }

    /// The trace so far.
    pub fn trace(&self) -> Vec<String> {
        self.trace.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// User `i` (0 alice, 1 bob).
    pub fn user(&self, i: usize) -> &XUser {
        &self.config.users[i.min(self.config.users.len() - 1)]
    }

    /// A text no other case or run posts.
    pub fn unique(&self, what: &str) -> String {
        format!("{what} {:016x}", rand::random::<u64>())
    }
}

/// One XCCOS case.
pub struct XCase {
    pub id: &'static str,
    pub clause: &'static str,
    pub description: &'static str,
    pub run: fn(XCtx) -> CaseFuture,
}

/// `palaver-conformance xccos`: runs the selected cases and reports.
pub async fn run(args: XccosArgs) -> Result<ExitCode> {
    let config = Arc::new(config(&args).await?);
    let mut results = Vec::new();
    for case in cases::all() {
        let selected = args.cases.is_empty() || args.cases.iter().any(|g| glob_match(g, case.id));
        if !selected || args.skips.iter().any(|g| glob_match(g, case.id)) {
            continue;
        }
        let started = Instant::now();
        let ctx = XCtx::new(config.clone());
        let whole = config.timeout * 12;
        let outcome = match tokio::time::timeout(whole, (case.run)(ctx.clone())).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => Outcome::Fail(format!("{e:#}")),
            Err(_) => Outcome::Fail(format!("the case took longer than {whole:?}")),
        };
        let result = CaseResult {
            id: case.id,
            clause: case.clause,
            outcome,
            ms: started.elapsed().as_millis(),
            trace: ctx.trace(),
        };
        report::print_row(&result, args.verbose);
        results.push(result);
    }
    println!("{}", report::summary(&results));
    if let Some(path) = &args.json {
        std::fs::write(path, report::json(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
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

async fn config(args: &XccosArgs) -> Result<XConfig> {
    let server = tokio::net::lookup_host(&args.server)
        .await
        .with_context(|| format!("resolving {}", args.server))?
        .next()
        .with_context(|| format!("{} resolves to no address", args.server))?;
    let tls = match (&args.tls_ca, args.transport) {
        (Some(ca), _) => {
            let name = args.tls_name.clone().unwrap_or_else(|| args.domain.clone());
            Some(TlsSetup {
                config: crate::client::tls_config(ca)?,
                name: rustls_pki_types::ServerName::try_from(name.clone())
                    .with_context(|| format!("{name} is not a valid TLS name"))?,
            })
        }
        (None, Transport::Tls) => {
            bail!("--transport tls needs --tls-ca (system trust roots are not supported yet)")
        }
        (None, _) => None,
    };
    let mut users = Vec::new();
    for u in &args.users {
        let Some((addr, password)) = u.split_once(':') else {
            bail!("--user {u}: expected user@domain:password");
        };
        let (local, domain) = addr.split_once('@').unwrap_or((addr, &args.domain));
        users.push(XUser {
            local: local.to_string(),
            domain: domain.to_string(),
            password: password.to_string(),
        });
    }
    if users.len() < 2 {
        bail!("give two --user accounts (the cases need up to two room occupants)");
    }
    Ok(XConfig {
        server,
        transport: args.transport,
        tls,
        domain: args.domain.clone(),
        chat_uri: args
            .chat_uri
            .clone()
            .unwrap_or_else(|| format!("sip:ocschat@{}", args.domain)),
        users,
        room: args.room.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
    })
}
