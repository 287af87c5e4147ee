//! What a case is ([`Case`]: id, clause, description, needed features, the async body), what
//! it yields ([`Outcome`]) and the context it runs in ([`Ctx`]: the run's configuration, fresh
//! sessions, unique room names, the wire trace).

use super::session::Session;
use crate::client::{Client, ConnectOptions};
use anyhow::{Context as _, Result};
use rand::Rng;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The future a case body returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = Result<Outcome>> + Send>>;

/// One conformance case.
pub struct Case {
    /// Stable id, e.g. `muc.join.self-presence-110`.
    pub id: &'static str,
    /// The clause checked, e.g. `XEP-0045 §7.2.3`.
    pub clause: &'static str,
    /// One line: what is checked and whether the clause says MUST or SHOULD.
    pub description: &'static str,
    /// Features that must be advertised, else the case is N-A.
    pub needs: &'static [Need],
    /// The body.
    pub run: fn(Ctx) -> CaseFuture,
}

/// A feature a case needs advertised in disco#info.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// On the user's domain.
    Domain(&'static str),
}

/// How a case ended (a failure is an `Err` from the body, or this `Fail`).
#[derive(Debug, Clone)]
pub enum Outcome {
    Pass,
    /// The server does not offer what the case checks.
    NotApplicable(String),
    Fail(String),
}

/// A test account.
#[derive(Debug, Clone)]
pub struct User {
    pub jid: String,
    pub local: String,
    pub password: String,
}

/// Features found by disco#info on the domain at the start of the run (room features are
/// asked for by the cases that need them).
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub domain: Vec<String>,
}

impl Features {
    pub fn has(&self, need: &Need) -> bool {
        match need {
            Need::Domain(f) => self.domain.iter().any(|x| x == f),
        }
    }
}

/// The run's configuration.
#[derive(Clone)]
pub struct Config {
    pub connect: ConnectOptions,
    pub domain: String,
    pub muc: String,
    pub users: Vec<User>,
    pub timeout: Duration,
    pub features: Features,
}

impl Config {
    /// The configuration of a run against the STARTTLS client port `addr` of `domain`, whose
    /// certificate must name `tls_name` and be trusted by `tls`.
    pub fn starttls(
        addr: std::net::SocketAddr,
        domain: &str,
        muc: &str,
        users: Vec<User>,
        tls: Arc<rustls::ClientConfig>,
        tls_name: rustls_pki_types::ServerName<'static>,
        timeout: Duration,
    ) -> Config {
        Config {
            connect: ConnectOptions {
                addr,
                domain: domain.to_string(),
                tls_mode: crate::client::TlsMode::StartTls,
                tls: Some(tls),
                tls_name,
                mechanism: None,
                resource: None,
                step_timeout: timeout,
            },
            domain: domain.to_string(),
            muc: muc.to_string(),
            users,
            timeout,
            features: Features::default(),
        }
    }
}

/// A case's context: configuration plus the case's wire trace. The XMPP cases use
/// [`Config`]; other suites bring their own configuration (`xccos::XCtx`).
pub struct Ctx<C = Config> {
    pub config: Arc<C>,
    trace: Arc<Mutex<Vec<String>>>,
}

impl<C> Clone for Ctx<C> {
    fn clone(&self) -> Self {
        Ctx {
            config: self.config.clone(),
            trace: self.trace.clone(),
        }
    }
}

impl<C> Ctx<C> {
    pub fn new(config: Arc<C>) -> Ctx<C> {
        Ctx {
            config,
            trace: Arc::default(),
        }
    }

    /// Appends a line to the wire trace.
    pub fn log(&self, line: String) {
        if let Ok(mut t) = self.trace.lock() {
            t.push(line);
        }
    }

    /// The wire trace so far.
    pub fn trace(&self) -> Vec<String> {
        self.trace.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Ctx {
    /// User `i` (0 alice, 1 bob, 2 carol).
    pub fn user(&self, i: usize) -> &User {
        &self.config.users[i.min(self.config.users.len() - 1)]
    }

    /// A fresh logged-in session of user `i`, with initial presence not sent.
    pub async fn login(&self, i: usize) -> Result<Session> {
        let u = self.user(i).clone();
        self.log(format!("** {} logs in", u.local));
        let client = Client::login(&self.config.connect, None, &u.local, &u.password)
            .await
            .with_context(|| format!("{} logging in", u.local))?;
        Ok(Session::new(self.clone(), u.local, client))
    }

    /// A room JID no other case (or run) uses.
    pub fn room(&self) -> String {
        let n: u64 = rand::thread_rng().gen();
        format!("conf-{n:016x}@{}", self.config.muc)
    }
}

/// Boxes a case body.
pub fn boxed(f: impl Future<Output = Result<Outcome>> + Send + 'static) -> CaseFuture {
    Box::pin(f)
}
