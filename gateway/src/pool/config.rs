//! `[pool]`: this node's place in a pool (TCP 8011) — its id, the pool id, the listen address,
//! the topology (members with their 8011 address and role), the pool's mutual-TLS material and
//! the link timings and bounds. Absent `[pool]` means a single node: nothing listens on 8011.
//! Every key is documented in `docs/configuration.md`.

use anyhow::{bail, Context as _};
use palaver_core::pool::membership::{MAX_ACTIVE, MAX_STANDBY};
use palaver_core::pool::{valid_id, Role};
use serde::Deserialize;
use std::path::PathBuf;

/// `[pool]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// This node's id; must be one of `members`.
    pub node_id: String,
    /// The pool's id; every member must use the same.
    pub pool_id: String,
    /// Where the 8011 listener binds.
    pub listen: String,
    /// The topology: every member, this node included.
    pub members: Vec<MemberConfig>,
    /// PEM file of the pool CA (empty with `cert` and `key`: development certificates).
    pub ca: PathBuf,
    /// PEM chain of this node's pool certificate (name `<node_id>.palaver-pool`).
    pub cert: PathBuf,
    /// PEM key of this node's pool certificate.
    pub key: PathBuf,
    /// Interval between heartbeats on every link.
    pub heartbeat_ms: u64,
    /// A member without a heartbeat for this long is down (at most 10 000).
    pub dead_after_ms: u64,
    /// Largest frame accepted or sent (length prefix excluded).
    pub max_frame_bytes: usize,
    /// Frames queued towards one peer before its link is dropped and re-established.
    pub peer_queue: usize,
}

/// One `[[pool.members]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// Node id (a DNS label: `a-z`, `0-9`, `-`).
    pub id: String,
    /// Its 8011 address, `host:port`.
    pub address: String,
    /// `active` (default) or `standby`.
    #[serde(default)]
    pub role: ConfigRole,
    /// Where XMPP clients reach this member (`host` or `host:port`): the `see-other-host`
    /// a draining node sends its clients to. Empty: clients get `system-shutdown` and find
    /// another node themselves (DNS SRV).
    #[serde(default)]
    pub xmpp: String,
}

/// A role as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigRole {
    #[default]
    Active,
    Standby,
}

impl From<ConfigRole> for Role {
    fn from(r: ConfigRole) -> Role {
        match r {
            ConfigRole::Active => Role::Active,
            ConfigRole::Standby => Role::Standby,
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            node_id: String::new(),
            pool_id: "pool".into(),
            listen: "0.0.0.0:8011".into(),
            members: Vec::new(),
            ca: PathBuf::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            heartbeat_ms: 1000,
            dead_after_ms: 5000,
            max_frame_bytes: palaver_core::pool::DEFAULT_MAX_FRAME,
            peer_queue: 16_384,
        }
    }
}

impl PoolConfig {
    /// The origin number of member `id` in client ids (see
    /// `palaver_core::engine::client_origin`): its position among the members sorted by id,
    /// plus one — the same on every node whatever order each config lists them in. 0 for an
    /// unknown id.
    pub fn origin_of(&self, id: &str) -> u16 {
        let mut ids: Vec<&str> = self.members.iter().map(|m| m.id.as_str()).collect();
        ids.sort_unstable();
        ids.iter()
            .position(|m| *m == id)
            .and_then(|p| u16::try_from(p + 1).ok())
            .unwrap_or(0)
    }

    /// Checks what serde cannot.
    pub fn validate(&mut self) -> anyhow::Result<()> {
        self.node_id = self.node_id.trim().to_string();
        self.pool_id = self.pool_id.trim().to_string();
        for (key, id) in [
            ("pool.node_id", &self.node_id),
            ("pool.pool_id", &self.pool_id),
        ] {
            if !valid_id(id) {
                bail!(
                    "{key} {id:?} must be 1-63 characters of a-z, 0-9 and '-' (not at either end)"
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for m in &mut self.members {
            m.id = m.id.trim().to_string();
            if !valid_id(&m.id) {
                bail!(
                    "pool.members: id {:?} must be 1-63 characters of a-z, 0-9 and '-'",
                    m.id
                );
            }
            if !seen.insert(m.id.clone()) {
                bail!("pool.members: {} is listed twice", m.id);
            }
            check_address(&format!("pool.members {} address", m.id), &m.address)?;
        }
        let active = self
            .members
            .iter()
            .filter(|m| m.role == ConfigRole::Active)
            .count();
        let standby = self.members.len() - active;
        if active == 0 || active > MAX_ACTIVE {
            bail!("pool.members: {active} active members; a pool has 1 to {MAX_ACTIVE}");
        }
        if standby > MAX_STANDBY {
            bail!("pool.members: {standby} standby members; at most {MAX_STANDBY}");
        }
        if !seen.contains(&self.node_id) {
            bail!("pool.node_id {} is not one of pool.members", self.node_id);
        }
        check_address("pool.listen", &self.listen)?;
        let tls_set = [&self.ca, &self.cert, &self.key].map(|p| !p.as_os_str().is_empty());
        if tls_set.iter().any(|s| *s) && !tls_set.iter().all(|s| *s) {
            bail!("pool.ca, pool.cert and pool.key must be set together (or all left empty for development certificates)");
        }
        if !(50..=5000).contains(&self.heartbeat_ms) {
            bail!("pool.heartbeat_ms must be between 50 and 5000");
        }
        if self.dead_after_ms < 2 * self.heartbeat_ms || self.dead_after_ms > 10_000 {
            bail!("pool.dead_after_ms must be at least twice pool.heartbeat_ms and at most 10000");
        }
        if !(4096..=16 << 20).contains(&self.max_frame_bytes) {
            bail!("pool.max_frame_bytes must be between 4096 and 16777216");
        }
        if self.peer_queue < 16 {
            bail!("pool.peer_queue must be at least 16");
        }
        Ok(())
    }

    /// Whether `id` is a member.
    pub fn member(&self, id: &str) -> Option<&MemberConfig> {
        self.members.iter().find(|m| m.id == id)
    }
}

fn check_address(key: &str, addr: &str) -> anyhow::Result<()> {
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("{key} {addr:?} must be host:port"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        bail!("{key} {addr:?} must be host:port");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const POOL: &str = r#"
[pool]
node_id = "n1"
pool_id = "main"
listen = "127.0.0.1:8011"
members = [
  { id = "n1", address = "127.0.0.1:8011" },
  { id = "n2", address = "127.0.0.2:8011", role = "active" },
  { id = "s1", address = "127.0.0.4:8011", role = "standby" },
]
"#;

    #[test]
    fn absent_pool_is_single_node() {
        let c = Config::from_toml("").expect("parses");
        assert!(c.pool.is_none());
    }

    #[test]
    fn pool_parses_with_defaults() {
        let mut c = Config::from_toml(POOL).expect("parses");
        c.validate().expect("valid");
        let p = c.pool.expect("pool");
        assert_eq!(p.heartbeat_ms, 1000);
        assert_eq!(p.dead_after_ms, 5000);
        assert_eq!(p.members.len(), 3);
        let me = p.member(&p.node_id).map(|m| m.address.as_str());
        assert_eq!(me, Some("127.0.0.1:8011"));
    }

    #[test]
    fn bad_pools_are_rejected() {
        for (from, to) in [
            ("node_id = \"n1\"", "node_id = \"n9\""),
            ("pool_id = \"main\"", "pool_id = \"Main!\""),
            ("{ id = \"n2\"", "{ id = \"n1\""),
            ("127.0.0.2:8011", "127.0.0.2"),
            ("listen = \"127.0.0.1:8011\"", "dead_after_ms = 20000"),
            ("listen = \"127.0.0.1:8011\"", "ca = \"x.pem\""),
            ("role = \"active\"", "role = \"boss\""),
        ] {
            let text = POOL.replace(from, to);
            let ok = Config::from_toml(&text).and_then(|mut c| c.validate());
            assert!(ok.is_err(), "accepted: {from} -> {to}");
        }
        let five: String = (1..=5)
            .map(|i| format!("{{ id = \"a{i}\", address = \"h:1\" }},"))
            .collect();
        let text = format!("[pool]\nnode_id = \"a1\"\nmembers = [{five}]\n");
        assert!(Config::from_toml(&text)
            .and_then(|mut c| c.validate())
            .is_err());
    }
}
