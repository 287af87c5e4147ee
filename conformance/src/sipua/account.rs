//! The options every SIP suite takes ([`AccountArgs`]: `--domain`, `--user`, `--tls-ca`,
//! `--tls-name`) and what they turn into: test accounts ([`Account`], from
//! `--user user@domain:password`), the server address and the TLS setup ([`server`]).

use super::conn::{TlsSetup, Transport};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The accounts and TLS options of a SIP suite.
#[derive(Args, Debug)]
pub struct AccountArgs {
    /// The SIP domain the users live on.
    #[arg(long)]
    pub domain: String,
    /// A test account, user@domain:password; give two (alice and bob roles, in order).
    #[arg(long = "user", required = true)]
    pub users: Vec<String>,
    /// PEM file of the CA that signed the server's certificate (TLS).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify in the server's certificate [default: the domain].
    #[arg(long)]
    pub tls_name: Option<String>,
}

impl AccountArgs {
    /// The two accounts or more, the resolved `server` and the TLS setup for `transport`.
    pub async fn resolve(
        &self,
        server_addr: &str,
        transport: Transport,
    ) -> Result<(SocketAddr, Option<TlsSetup>, Vec<Account>)> {
        let name = self.tls_name.as_deref().unwrap_or(&self.domain);
        let (addr, tls) = server(server_addr, transport, self.tls_ca.as_deref(), name).await?;
        Ok((addr, tls, accounts(&self.users, &self.domain, 2)?))
    }
}

/// A test account.
#[derive(Debug, Clone)]
pub struct Account {
    pub local: String,
    pub domain: String,
    pub password: String,
}

impl Account {
    /// `sip:local@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.local, self.domain)
    }
}

/// Parses `--user` values (`user@domain:password`; the domain defaults to `domain`) and
/// requires at least `min` of them.
pub fn accounts(users: &[String], domain: &str, min: usize) -> Result<Vec<Account>> {
    let mut out = Vec::new();
    for u in users {
        let Some((addr, password)) = u.split_once(':') else {
            bail!("--user {u}: expected user@domain:password");
        };
        let (local, domain) = addr.split_once('@').unwrap_or((addr, domain));
        out.push(Account {
            local: local.to_string(),
            domain: domain.to_string(),
            password: password.to_string(),
        });
    }
    if out.len() < min {
        bail!("give {min} --user accounts (the cases need up to {min} users)");
    }
    Ok(out)
}

/// Resolves `server` (host:port) and builds the TLS setup: from `ca` when given (the name
/// checked is `tls_name`), required with [`Transport::Tls`].
pub async fn server(
    server: &str,
    transport: Transport,
    ca: Option<&Path>,
    tls_name: &str,
) -> Result<(SocketAddr, Option<TlsSetup>)> {
    let addr = tokio::net::lookup_host(server)
        .await
        .with_context(|| format!("resolving {server}"))?
        .next()
        .with_context(|| format!("{server} resolves to no address"))?;
    let tls = match (ca, transport) {
        (Some(ca), _) => Some(TlsSetup {
            config: crate::client::tls_config(ca)?,
            name: rustls_pki_types::ServerName::try_from(tls_name.to_string())
                .with_context(|| format!("{tls_name} is not a valid TLS name"))?,
        }),
        (None, Transport::Tls) => {
            bail!("--transport tls needs --tls-ca (system trust roots are not supported yet)")
        }
        (None, _) => None,
    };
    Ok((addr, tls))
}
