//! Pools of real `palaver` processes for the 8011 tests: [`PoolSpec`] describes the topology
//! (node ids, loopback addresses 127.0.0.x with ports reserved up front, roles, timings),
//! [`PoolCa`] is a pool CA generated at test time (as an operator would with their own PKI)
//! issuing each node its certificate `<node_id>.palaver-pool`, and [`start_node`] starts one
//! member with its own SQLite data directory ([`start_node_with`]: another store, other
//! options). [`start_shared_pg_pool`] starts a whole pool as deployed for cross-node rooms: every
//! node on ONE PostgreSQL schema, its XMPP and SIP listeners on its own loopback address
//! ([`SharedPool`]). [`status`] runs `palaver pool status --json` against a node and
//! [`wait_status`] polls it, bounded.

use crate::server::{ServerOptions, SharedPgSchema, Store, TestServer};
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
    /// Its `xmpp` address in the members list (`127.0.0.x:port`, where its STARTTLS c2s
    /// listener binds: see [`PoolSpec::with_xmpp_addresses`]); `None` (the default): no `xmpp`
    /// key, and the node's c2s listener binds port 0.
    pub xmpp: Option<String>,
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

/// The ids of [`PoolSpec::three_active`].
pub const THREE: [&str; 3] = ["n1", "n2", "n3"];

impl PoolSpec {
    /// Pool `main`: n1, n2 and n3 active on 127.0.0.1, .2 and .3.
    pub fn three_active() -> Result<PoolSpec> {
        PoolSpec::new(
            "main",
            &[
                ("n1", "127.0.0.1", "active"),
                ("n2", "127.0.0.2", "active"),
                ("n3", "127.0.0.3", "active"),
            ],
        )
    }

    /// [`PoolSpec::three_active`] and n4, a standby on 127.0.0.4.
    pub fn three_active_and_standby() -> Result<PoolSpec> {
        PoolSpec::new(
            "main",
            &[
                ("n1", "127.0.0.1", "active"),
                ("n2", "127.0.0.2", "active"),
                ("n3", "127.0.0.3", "active"),
                ("n4", "127.0.0.4", "standby"),
            ],
        )
    }

    /// Members `(id, loopback ip, role)` with a free port reserved on each ip.
    pub fn new(pool_id: &str, members: &[(&str, &str, &'static str)]) -> Result<PoolSpec> {
        let mut out = Vec::new();
        for (id, ip, role) in members {
            let port = free_port(ip)?;
            out.push(NodeSpec {
                id: id.to_string(),
                address: format!("{ip}:{port}"),
                role,
                xmpp: None,
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

    /// This topology with an `xmpp` address for every member: a STARTTLS c2s port reserved
    /// on the member's own loopback ip ([`free_port`]). Each member line of the `[pool]` table
    /// then names it (`xmpp = "127.0.0.x:port"`, where a draining node sends its XMPP clients
    /// with `see-other-host`), and [`start_node_with`] / [`start_shared_pg_pool`] bind that
    /// node's c2s listener there (`[xmpp] c2s`).
    pub fn with_xmpp_addresses(mut self) -> Result<PoolSpec> {
        for m in &mut self.members {
            let addr: std::net::SocketAddr = m
                .address
                .parse()
                .with_context(|| format!("the address of {} in the spec", m.id))?;
            let ip = addr.ip().to_string();
            let port = free_port(&ip)?;
            m.xmpp = Some(format!("{ip}:{port}"));
        }
        Ok(self)
    }

    /// The `xmpp` address of member `id` (see [`PoolSpec::with_xmpp_addresses`]); an error when
    /// it has none.
    pub fn xmpp_addr(&self, id: &str) -> Result<std::net::SocketAddr> {
        let m = self.node(id)?;
        let x = m
            .xmpp
            .as_deref()
            .ok_or_else(|| anyhow!("member {id} has no xmpp address in the spec"))?;
        x.parse()
            .with_context(|| format!("the xmpp address {x} of {id} in the spec"))
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
            let xmpp = m
                .xmpp
                .as_ref()
                .map(|x| format!(", xmpp = \"{x}\""))
                .unwrap_or_default();
            t.push_str(&format!(
                "  {{ id = \"{}\", address = \"{}\", role = \"{}\"{xmpp} }},\n",
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
    start_node_with(
        spec,
        id,
        pool_id,
        tls,
        Store::Sqlite,
        ServerOptions::default(),
    )
    .await
}

/// [`start_node`] with a store and server options of the caller's choosing (the `[pool]`
/// table is appended to `opts.extra_toml`). When member `id` has an `xmpp` address in `spec`
/// ([`PoolSpec::with_xmpp_addresses`]) and `opts.c2s_port` is unset, its STARTTLS c2s listener
/// binds that port (and the node must announce it).
pub async fn start_node_with(
    spec: &PoolSpec,
    id: &str,
    pool_id: &str,
    tls: &NodeTls,
    store: Store,
    mut opts: ServerOptions,
) -> Result<TestServer> {
    opts.extra_toml.push('\n');
    opts.extra_toml.push_str(&spec.toml(id, pool_id, tls)?);
    let xmpp = match spec.node(id)?.xmpp {
        Some(_) if opts.c2s_port.is_none() => {
            let addr = spec.xmpp_addr(id)?;
            opts.c2s_port = Some(addr.port());
            Some(addr)
        }
        _ => None,
    };
    let server = TestServer::start_with(store, opts).await?;
    let want = format!("palaver: listening pool {}", spec.node(id)?.address);
    if !server.stdout_lines().iter().any(|l| l.starts_with(&want)) {
        bail!(
            "node {id} did not print `{want}`:\n{}",
            server.diagnostics()
        );
    }
    if let Some(addr) = xmpp {
        if server.starttls_addr() != addr {
            bail!(
                "node {id} should listen for XMPP (STARTTLS) on {addr}, its xmpp address in the \
                 pool, but announced {}\n{}",
                server.starttls_addr(),
                server.diagnostics()
            );
        }
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

/// A pool whose nodes share one PostgreSQL schema (see [`start_shared_pg_pool`]). Dropping it
/// kills the nodes, then drops the schema; when a test panics it first prints which node is
/// which (each node's own log follows, as for any [`TestServer`]).
pub struct SharedPool {
    spec: PoolSpec,
    /// In start order; dropped before `schema`.
    nodes: Vec<(String, TestServer)>,
    schema: SharedPgSchema,
}

/// Starts members `ids` of `spec` (pool id `spec.pool_id`, certificates from `ca`) on one new
/// PostgreSQL schema (`$PALAVER_TEST_PG`, else `$DATABASE_URL`; an error when neither is
/// set). Node `nX` at `127.0.0.x:port` in `spec` gets its XMPP (STARTTLS, direct TLS) and SIP
/// (UDP, TCP, TLS) listeners on `127.0.0.x` too, ports chosen by the OS (the STARTTLS one on the
/// member's `xmpp` address when the spec has one: [`PoolSpec::with_xmpp_addresses`]); clients of
/// a node trust that node's dev CA ([`TestServer::ca_path`]; each node has its own data directory).
///
/// The first node creates and migrates the schema and adds the default category and lobby
/// before the next one starts: the nodes start one after the other, each waited for until
/// `palaver: ready`, so no two run the migrations or the first-start defaults at once.
pub async fn start_shared_pg_pool(
    spec: &PoolSpec,
    ca: &PoolCa,
    ids: &[&str],
) -> Result<SharedPool> {
    start_shared_pg_pool_with(spec, ca, ids, ServerOptions::default()).await
}

/// [`start_shared_pg_pool`] with every node started from `base` (its `https` and
/// `extra_toml`, say; the bind address and store are the pool's).
pub async fn start_shared_pg_pool_with(
    spec: &PoolSpec,
    ca: &PoolCa,
    ids: &[&str],
    base: ServerOptions,
) -> Result<SharedPool> {
    let schema = SharedPgSchema::new()?;
    let mut pool = SharedPool {
        spec: spec.clone(),
        nodes: Vec::new(),
        schema,
    };
    for id in ids {
        let ip = node_ip(spec, id)?;
        let tls = ca.node(id)?;
        let opts = ServerOptions {
            bind_ip: Some(ip.clone()),
            store_url: Some(pool.schema.url().to_string()),
            ..base.clone()
        };
        let server = start_node_with(spec, id, &spec.pool_id, &tls, Store::Postgres, opts)
            .await
            .with_context(|| {
                format!(
                    "starting node {id} of the shared-PostgreSQL pool (schema {}); nodes \
                     already running:\n{}",
                    pool.schema.schema(),
                    pool.describe()
                )
            })?;
        let wrong: Vec<String> = listeners(&server)
            .into_iter()
            .filter(|(_, addr)| !addr.starts_with(&format!("{ip}:")))
            .map(|(kind, addr)| format!("{kind} {addr}"))
            .collect();
        if !wrong.is_empty() {
            bail!(
                "node {id} should listen on {ip} only, but announced {}\n{}",
                wrong.join(", "),
                server.diagnostics()
            );
        }
        pool.nodes.push((id.to_string(), server));
    }
    Ok(pool)
}

impl SharedPool {
    /// The node `id`.
    pub fn node(&self, id: &str) -> Result<&TestServer> {
        self.nodes
            .iter()
            .find(|(n, _)| n == id)
            .map(|(_, s)| s)
            .ok_or_else(|| anyhow!("no node {id} in this pool"))
    }

    /// The node `id`, mutable (to stop, kill or restart it).
    pub fn node_mut(&mut self, id: &str) -> Result<&mut TestServer> {
        self.nodes
            .iter_mut()
            .find(|(n, _)| n == id)
            .map(|(_, s)| s)
            .ok_or_else(|| anyhow!("no node {id} in this pool"))
    }

    /// An available XMPP session of `user` on node `id`.
    pub async fn xmpp(&self, id: &str, user: &str) -> Result<crate::RawClient> {
        crate::xmpp_available(self.node(id)?, user)
            .await
            .with_context(|| format!("XMPP login of {user} on {id}"))
    }

    /// The node ids, in start order.
    pub fn ids(&self) -> Vec<&str> {
        self.nodes.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The topology the pool was started with.
    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    /// The store URL every node uses.
    pub fn store_url(&self) -> &str {
        self.schema.url()
    }

    /// Adds `users` once, through the first node's CLI (the store is shared): `alice` →
    /// `alice@localhost`, password [`crate::password_of`].
    pub async fn add_users(&self, users: &[&str]) -> Result<()> {
        let (id, first) = self
            .nodes
            .first()
            .ok_or_else(|| anyhow!("the pool has no node"))?;
        for u in users {
            let jid = format!("{u}@{}", crate::DOMAIN);
            first
                .add_user(&jid, &crate::password_of(u))
                .await
                .with_context(|| format!("adding {jid} through node {id}"))?;
        }
        Ok(())
    }

    /// Waits (at most `within` per node) until every node sees every node of the pool up and
    /// a majority.
    pub async fn wait_all_up(&self, within: Duration) -> Result<()> {
        let ids = self.ids();
        for (id, server) in &self.nodes {
            let what = format!("{id} sees {} up with a majority", ids.join(", "));
            wait_status(
                server,
                within,
                &what,
                |s| s["majority"] == true && ids.iter().all(|m| state(s, m) == "up"),
                |_| None,
            )
            .await?;
        }
        Ok(())
    }

    /// What each node reports about itself in `palaver pool status` (users connected, rooms
    /// it homes; heartbeat-carried, so it may lag a beat): one line per node, for logs.
    pub async fn load_summary(&self) -> String {
        let mut out = String::new();
        for (id, server) in &self.nodes {
            let line = match status(server).await {
                Ok(s) => match member(&s, id) {
                    Some(m) => format!("{id}: users {}, rooms homed {}", m["users"], m["rooms"]),
                    None => format!("{id}: not in its own status: {s}"),
                },
                Err(e) => format!("{id}: no status: {e:#}"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// One line per node: id, pid, listeners, data directory; and the schema.
    pub fn describe(&self) -> String {
        let mut out = format!("shared PostgreSQL schema {}\n", self.schema.schema());
        for (id, server) in &self.nodes {
            let addrs: Vec<String> = listeners(server)
                .into_iter()
                .map(|(kind, addr)| format!("{kind} {addr}"))
                .collect();
            out.push_str(&format!(
                "node {id}: pid {:?}, {}, data dir {}\n",
                server.pid(),
                addrs.join(", "),
                server.data_dir().display()
            ));
        }
        out
    }

    /// Every node's stdout and stderr tail, each headed by its id.
    pub fn diagnostics(&self) -> String {
        let mut out = self.describe();
        for (id, server) in &self.nodes {
            out.push_str(&format!(
                "\n======== node {id} ========\n{}\n",
                server.diagnostics()
            ));
        }
        out
    }
}

impl Drop for SharedPool {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "==== the shared-PostgreSQL pool of the failed test (each node's log follows, \
                 in this order) ====\n{}",
                self.describe()
            );
        }
    }
}

/// The loopback ip of member `id`'s 8011 address in `spec`.
pub fn node_ip(spec: &PoolSpec, id: &str) -> Result<String> {
    let addr: std::net::SocketAddr = spec
        .node(id)?
        .address
        .parse()
        .with_context(|| format!("the address of {id} in the spec"))?;
    Ok(addr.ip().to_string())
}

/// The `(kind, address)` of every `palaver: listening KIND ADDR` line a server printed.
pub fn listeners(server: &TestServer) -> Vec<(String, String)> {
    server
        .stdout_lines()
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next(), w.next()) {
                (Some("palaver:"), Some("listening"), Some(kind), Some(addr)) => {
                    Some((kind.to_string(), addr.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

/// The home of `room` among the live active `nodes` as docs/pool-protocol.md "Placement"
/// defines it: the highest rendezvous score SHA-256(len ‖ room ‖ len ‖ node)[0..8] (lengths as
/// 8-byte big-endian), ties to the smaller id. Tests use it only to spread their rooms over
/// the nodes; what they assert never depends on it.
pub fn predicted_home<'a>(room: &str, nodes: &[&'a str]) -> Option<&'a str> {
    use sha2::{Digest as _, Sha256};
    let score = |node: &str| -> u64 {
        let mut h = Sha256::new();
        h.update((room.len() as u64).to_be_bytes());
        h.update(room.as_bytes());
        h.update((node.len() as u64).to_be_bytes());
        h.update(node.as_bytes());
        let d = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        u64::from_be_bytes(first)
    };
    nodes
        .iter()
        .map(|n| (score(n), *n))
        .max_by(|(sa, na), (sb, nb)| sa.cmp(sb).then_with(|| nb.cmp(na)))
        .map(|(_, n)| n)
}

/// One room name `<prefix>-<k>` per node of `nodes`, each [`predicted_home`]d on that node:
/// `(room, node)` in the order of `nodes`.
pub fn rooms_homed_on(prefix: &str, nodes: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for node in nodes {
        let found = (0..10_000).map(|k| format!("{prefix}-{k}")).find(|room| {
            predicted_home(room, nodes) == Some(*node) && out.iter().all(|(r, _)| r != room)
        });
        match found {
            Some(room) => out.push((room, node.to_string())),
            None => bail!("no room name {prefix}-<k> is homed on {node}"),
        }
    }
    Ok(out)
}
