//! Pools of real `palaver` processes for the 8011 tests: [`PoolSpec`] describes the topology
//! (node ids, loopback addresses 127.0.0.x with ports reserved up front, roles, timings),
//! [`PoolCa`] is a pool CA generated at test time (as an operator would with their own PKI)
//! issuing each node its certificate `<node_id>.palaver-pool`, and [`start_node`] starts one
//! member (each with its own SQLite data directory for now). [`status`] runs
//! `palaver pool status --json` against a node and [`wait_status`] polls it, bounded.

use crate::server::{ServerOptions, Store, TestServer};
use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One member of a test pool.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Node id.
    pub id: String,
    /// Its 8011 address (`127.0.0.x:port`).
    pub address: String,
    /// `active` or `standby`.
    pub role: &'static str,
}

/// A pool topology.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// The pool id.
    pub pool_id: String,
    /// Every member.
    pub members: Vec<NodeSpec>,
    /// `heartbeat_ms`.
    pub heartbeat_ms: u64,
    /// `dead_after_ms`.
    pub dead_after_ms: u64,
}

impl PoolSpec {
    /// Members `(id, loopback ip, role)` with a free port reserved on each ip.
    pub fn new(pool_id: &str, members: &[(&str, &str, &'static str)]) -> Result<PoolSpec> {
        let mut out = Vec::new();
        for (id, ip, role) in members {
            let port = free_port(ip)?;
            out.push(NodeSpec {
                id: id.to_string(),
                address: format!("{ip}:{port}"),
                role,
            });
        }
        Ok(PoolSpec {
            pool_id: pool_id.to_string(),
            members: out,
            // Fast enough for tests, slack enough for a loaded 2-core machine (a starved node
            // must not miss its heartbeats by a whole second).
            heartbeat_ms: 250,
            dead_after_ms: 2000,
        })
    }

    /// The member `id`.
    pub fn node(&self, id: &str) -> Result<&NodeSpec> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| anyhow!("no member {id} in the spec"))
    }

    /// The `[pool]` table for node `id` (pool id `pool_id`, TLS files `tls`).
    pub fn toml(&self, id: &str, pool_id: &str, tls: &NodeTls) -> Result<String> {
        let me = self.node(id)?;
        let mut t = format!(
            "[pool]\nnode_id = \"{id}\"\npool_id = \"{pool_id}\"\nlisten = \"{}\"\n\
             heartbeat_ms = {}\ndead_after_ms = {}\nca = {}\ncert = {}\nkey = {}\nmembers = [\n",
            me.address,
            self.heartbeat_ms,
            self.dead_after_ms,
            quoted(&tls.ca),
            quoted(&tls.cert),
            quoted(&tls.key),
        );
        for m in &self.members {
            t.push_str(&format!(
                "  {{ id = \"{}\", address = \"{}\", role = \"{}\" }},\n",
                m.id, m.address, m.role
            ));
        }
        t.push_str("]\n");
        Ok(t)
    }
}

/// A node's pool TLS files.
#[derive(Debug, Clone)]
pub struct NodeTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A pool CA in a temporary directory.
pub struct PoolCa {
    dir: tempfile::TempDir,
}

impl PoolCa {
    /// A new CA (created with the first certificate).
    pub fn new() -> Result<PoolCa> {
        let dir = tempfile::Builder::new()
            .prefix("palaver-pool-ca-")
            .tempdir()?;
        Ok(PoolCa { dir })
    }

    /// The certificate of node `id`, signed by this CA.
    pub fn node(&self, id: &str) -> Result<NodeTls> {
        let ca_dir = self.dir.path().join("ca");
        let node_dir = self.dir.path().join(id);
        let name = format!("{id}.palaver-pool");
        let (paths, _) = palaver_certs::ensure_pool_certs(&ca_dir, &node_dir, &name)
            .map_err(|e| anyhow!("pool certificate for {id}: {e}"))?;
        Ok(NodeTls {
            ca: paths.ca,
            cert: paths.cert,
            key: paths.key,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts member `id` of `spec` claiming pool `pool_id` with certificate `tls`.
pub async fn start_node(
    spec: &PoolSpec,
    id: &str,
    pool_id: &str,
    tls: &NodeTls,
) -> Result<TestServer> {
    let opts = ServerOptions {
        extra_toml: spec.toml(id, pool_id, tls)?,
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(Store::Sqlite, opts).await?;
    let want = format!("palaver: listening pool {}", spec.node(id)?.address);
    if !server.stdout_lines().iter().any(|l| l.starts_with(&want)) {
        bail!(
            "node {id} did not print `{want}`:\n{}",
            server.diagnostics()
        );
    }
    Ok(server)
}

/// `palaver pool status --json` on `server`.
pub async fn status(server: &TestServer) -> Result<Value> {
    let out = server.cli(&["pool", "status", "--json"]).await?.ok()?;
    serde_json::from_str(out.stdout.trim()).with_context(|| format!("status JSON: {}", out.stdout))
}

/// The entry of member `id` in a status report.
pub fn member<'a>(status: &'a Value, id: &str) -> Option<&'a Value> {
    status["members"].as_array()?.iter().find(|m| m["id"] == id)
}

/// The state (`up`/`down`/`draining`) of member `id` in a status report.
pub fn state<'a>(status: &'a Value, id: &str) -> &'a str {
    member(status, id)
        .and_then(|m| m["state"].as_str())
        .unwrap_or("?")
}

/// Polls `server`'s status until `ok` holds, for at most `within`; returns that status and
/// when it was seen. `never` is checked on every status seen and fails at once.
pub async fn wait_status(
    server: &TestServer,
    within: Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
    never: impl Fn(&Value) -> Option<String>,
) -> Result<(Value, Instant)> {
    let deadline = Instant::now() + within;
    loop {
        let last = match status(server).await {
            Ok(s) => {
                if let Some(bad) = never(&s) {
                    bail!("{what}: {bad}; status: {s:#}");
                }
                if ok(&s) {
                    return Ok((s, Instant::now()));
                }
                s
            }
            Err(e) => Value::String(format!("{e:#}")),
        };
        if Instant::now() > deadline {
            bail!(
                "{what}: not within {within:?}; last status: {last:#}\n{}",
                server.diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port on `ip` that was free a moment ago (bound, read, released).
pub fn free_port(ip: &str) -> Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0)).with_context(|| format!("binding {ip}:0"))?;
    Ok(l.local_addr()?.port())
}

fn quoted(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}
