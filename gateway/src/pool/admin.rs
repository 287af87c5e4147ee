//! `palaver pool status|drain|undrain`: connects to the local node's 8011 listener (or
//! `--address`, or the member being drained) with the node's own pool certificate, sends the
//! admin request over the pool protocol (an admin session: Hello kind `admin`, AdminRequest
//! Status / Drain / Undrain) and prints the members as a table or, with `--json`, as one JSON
//! object.

use super::link::{FramedIo, LinkError};
use super::listener::HANDSHAKE_TIMEOUT;
use crate::bootstrap::{prepare_data_dir, say};
use crate::config::Config;
use anyhow::{anyhow, bail, Context as _};
use clap::Subcommand;
use palaver_core::pool::{
    cert_name, AdminRequest, AdminResponse, Frame, Hello, LinkKind, MemberState, Role,
    StatusReport, PROTOCOL_VERSION,
};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

/// `palaver pool …`
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Show every member of the pool as this node sees it (over TCP 8011)
    Status {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// The node to ask: its 8011 address as listed in pool.members, or this node's
        /// [default: pool.listen, with 0.0.0.0 / [::] read as loopback]
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<String>,
    },
    /// Drain member NODE: its rooms move to the other members and its clients are asked to
    /// reconnect elsewhere (XMPP see-other-host, SIP 503), so it can be stopped or upgraded
    /// without losing anyone
    Drain {
        /// The member's node id (its 8011 address is taken from pool.members)
        node: String,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Member NODE serves clients and homes rooms again after `pool drain`
    Undrain {
        /// The member's node id
        node: String,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `palaver pool` subcommand.
pub async fn run(mut config: Config, cmd: PoolCommand) -> anyhow::Result<()> {
    match cmd {
        PoolCommand::Status { json, address } => {
            prepare_data_dir(&mut config)?;
            let report = ask(&config, address, AdminRequest::Status).await?;
            show(&report, json);
            Ok(())
        }
        PoolCommand::Drain { node, json } => {
            drain(&mut config, &node, AdminRequest::Drain, json).await
        }
        PoolCommand::Undrain { node, json } => {
            drain(&mut config, &node, AdminRequest::Undrain, json).await
        }
    }
}

fn show(report: &StatusReport, json: bool) {
    if json {
        say(&to_json(report).to_string());
    } else {
        print_table(report);
    }
}

/// Asks member `node` (at its address in pool.members) to start or stop draining and shows
/// the pool as it sees it afterwards.
async fn drain(
    config: &mut Config,
    node: &str,
    request: AdminRequest,
    json: bool,
) -> anyhow::Result<()> {
    prepare_data_dir(config)?;
    let Some(pool) = &config.pool else {
        bail!("this node is not in a pool (no [pool] section in the configuration)");
    };
    let address = if node == pool.node_id {
        local_address(&pool.listen)
    } else {
        match pool.members.iter().find(|m| m.id == node) {
            Some(m) => m.address.clone(),
            None => bail!("{node} is not a member of pool {}", pool.pool_id),
        }
    };
    let report = ask(config, Some(address), request).await?;
    show(&report, json);
    Ok(())
}

/// The address `palaver pool status` dials by default.
fn local_address(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    }
}

/// Sends one admin request to the node at `address` (default: this node) and returns the
/// status it answers with.
async fn ask(
    config: &Config,
    address: Option<String>,
    request: AdminRequest,
) -> anyhow::Result<StatusReport> {
    let Some(pool) = &config.pool else {
        bail!("this node is not in a pool (no [pool] section in the configuration)");
    };
    let tls = super::load_tls(config)?;
    let address = address.unwrap_or_else(|| local_address(&pool.listen));
    let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(&address))
        .await
        .map_err(|_| anyhow!("connecting to {address} timed out"))?
        .with_context(|| {
            format!("cannot connect to the pool listener at {address} (is the node running?)")
        })?;
    // The node we ask presents its own certificate: the member at that address, else us.
    let target = pool
        .members
        .iter()
        .find(|m| m.address == address)
        .map_or(pool.node_id.as_str(), |m| m.id.as_str());
    let name = ServerName::try_from(cert_name(target))?;
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| anyhow!("TLS handshake with {address} timed out"))?
        .with_context(|| format!("TLS handshake with {address} failed"))?;
    let mut io = FramedIo::new(stream, pool.max_frame_bytes);
    io.write(&Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        pool_id: pool.pool_id.clone(),
        node_id: pool.node_id.clone(),
        kind: LinkKind::Admin,
        incarnation: 0,
    }))
    .await?;
    match io.read(HANDSHAKE_TIMEOUT).await {
        Ok(Frame::HelloAck(_)) => {}
        Ok(Frame::Refuse(r)) => bail!("{address} refused: {}", r.reason),
        Ok(other) => bail!(
            "{address} answered {:?} instead of HelloAck",
            other.frame_type()
        ),
        Err(LinkError::Closed) => bail!("{address} closed the connection during the handshake"),
        Err(e) => bail!("handshake with {address}: {e}"),
    }
    io.write(&Frame::AdminRequest { id: 1, request }).await?;
    let reply = io.read(HANDSHAKE_TIMEOUT).await;
    io.shutdown().await;
    match reply {
        Ok(Frame::AdminResponse {
            response: AdminResponse::Status(report),
            ..
        }) => Ok(report),
        Ok(Frame::AdminResponse {
            response: AdminResponse::Error(e),
            ..
        }) => bail!("{address}: {e}"),
        Ok(other) => bail!("{address} answered {:?}", other.frame_type()),
        Err(e) => bail!("reading the status from {address}: {e}"),
    }
}

fn role_text(role: Role, effective: Role) -> String {
    if role == effective {
        role.as_str().to_string()
    } else {
        format!("{} (promoted from {})", effective.as_str(), role.as_str())
    }
}

fn to_json(r: &StatusReport) -> serde_json::Value {
    let members: Vec<serde_json::Value> = r
        .members
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "address": m.address,
                "self": m.id == r.node,
                "role": m.role.as_str(),
                "effective_role": m.effective.as_str(),
                "state": m.state.as_str(),
                "last_seen_ms": m.last_seen_ms,
                "incarnation": m.incarnation,
                "links": m.links,
                "last_error": m.last_error,
                "users": m.users,
                "rooms": m.rooms,
            })
        })
        .collect();
    serde_json::json!({
        "node": r.node,
        "pool": r.pool,
        "majority": r.majority,
        "members": members,
    })
}

fn print_table(r: &StatusReport) {
    say(&format!(
        "pool {} as seen by {} (majority of active members: {})",
        r.pool,
        r.node,
        if r.majority { "yes" } else { "no" }
    ));
    let mut rows = vec![[
        "MEMBER".to_string(),
        "ADDRESS".into(),
        "ROLE".into(),
        "STATE".into(),
        "LAST HEARTBEAT".into(),
        "USERS".into(),
        "ROOMS".into(),
        "LINKS".into(),
        "LAST ERROR".into(),
    ]];
    for m in &r.members {
        let seen = match (m.id == r.node, m.last_seen_ms) {
            (true, _) => "(this node)".to_string(),
            (false, Some(ms)) => format!("{:.1}s ago", ms as f64 / 1000.0),
            (false, None) => "never".to_string(),
        };
        let error = if m.state == MemberState::Up {
            String::new()
        } else {
            m.last_error.clone()
        };
        rows.push([
            m.id.clone(),
            m.address.clone(),
            role_text(m.role, m.effective),
            m.state.as_str().to_string(),
            seen,
            m.users.to_string(),
            m.rooms.to_string(),
            m.links.to_string(),
            error,
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        say(line.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_is_dialed_on_loopback() {
        assert_eq!(local_address("0.0.0.0:8011"), "127.0.0.1:8011");
        assert_eq!(local_address("[::]:8011"), "[::1]:8011");
        assert_eq!(local_address("10.0.0.5:8011"), "10.0.0.5:8011");
    }
}
