//! The run's configuration from the command line: the XMPP side as the XMPP suite's
//! [`Config`] (STARTTLS, the three accounts) and the SIP side ([`SipSide`]: listener,
//! transport, TLS, room URIs, the SIP occupant's credentials).

use super::CrossArgs;
use crate::client::tls_config;
use crate::suite::case::{Config, User};
use anyhow::{bail, Context as _, Result};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::time::Duration;

pub use crate::sipua::Transport as SipTransport;
use crate::sipua::{SipServer, TlsSetup};

/// The SIP side of a run.
pub struct SipSide {
    /// Listener, transport, TLS and wait bound.
    pub server: SipServer,
    /// Host part of room URIs.
    pub room_domain: String,
    /// The SIP occupant: local part, domain, password.
    pub user: (String, String, String),
}

/// Both sides' configuration.
pub async fn build(args: &CrossArgs) -> Result<(Config, SipSide)> {
    let xmpp_addr = resolve(&args.xmpp_server).await?;
    let sip_addr = resolve(&args.sip_server).await?;
    let Some(ca) = &args.tls_ca else {
        bail!(
            "--tls-ca is required (XMPP needs STARTTLS; system trust roots are not supported yet)"
        );
    };
    let tls = tls_config(ca)?;
    let name = args.tls_name.clone().unwrap_or_else(|| args.domain.clone());
    let tls_name = ServerName::try_from(name.clone())
        .with_context(|| format!("{name} is not a valid TLS name"))?;
    let users = args
        .users
        .iter()
        .map(|u| account(u, &args.domain))
        .collect::<Result<Vec<_>>>()?;
    if users.len() < 2 {
        bail!("give at least two --user accounts (an XMPP owner and a SIP occupant)");
    }
    let sip_user = match &args.sip_user {
        Some(u) => account(u, &args.domain)?,
        None => users[1].clone(),
    };
    let timeout = Duration::from_secs(args.run.timeout.max(1));
    let xmpp = Config::starttls(
        xmpp_addr,
        &args.domain,
        &args.muc,
        users,
        tls.clone(),
        tls_name.clone(),
        timeout,
    );
    let (sip_local, sip_domain) = sip_user.jid.split_once('@').unwrap_or_default();
    let sip = SipSide {
        server: SipServer {
            server: sip_addr,
            transport: args.transport,
            tls: Some(TlsSetup {
                config: tls,
                name: tls_name,
            }),
            timeout,
        },
        room_domain: args.room_domain.clone().unwrap_or_else(|| args.muc.clone()),
        user: (
            sip_local.to_string(),
            sip_domain.to_string(),
            sip_user.password.clone(),
        ),
    };
    Ok((xmpp, sip))
}

async fn resolve(host_port: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(host_port)
        .await
        .with_context(|| format!("resolving {host_port}"))?
        .next()
        .with_context(|| format!("{host_port} resolves to no address"))
}

/// `user@domain:password` (the domain defaults to `domain`).
fn account(spec: &str, domain: &str) -> Result<User> {
    let Some((addr, password)) = spec.split_once(':') else {
        bail!("--user {spec}: expected user@domain:password");
    };
    let (local, dom) = addr.split_once('@').unwrap_or((addr, domain));
    Ok(User {
        jid: format!("{local}@{dom}"),
        local: local.to_string(),
        password: password.to_string(),
    })
}
