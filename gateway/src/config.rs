//! `palaver.toml`: the server configuration, its defaults, environment overrides and the values
//! derived from it (store URL, MUC domain, certificate names). Every key is documented in
//! `docs/configuration.md`; keep the two in step.

use anyhow::{bail, Context as _};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Name of the configuration file looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "palaver.toml";

/// The whole configuration. Every key has a default, so an empty file (or none) is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The XMPP domain users live in (`alice@<domain>`).
    pub domain: String,
    /// Directory for the SQLite database, the occupant-id secret and dev certificates.
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub tls: TlsConfig,
    pub xmpp: XmppConfig,
    pub sip: crate::sip::SipConfig,
    pub http: HttpConfig,
    pub files: crate::files::FilesConfig,
    pub rooms: RoomsConfig,
    pub log: LogConfig,
    /// `[compliance]`: the compliance archive (off by default).
    pub compliance: ComplianceConfig,
    /// `[pool]`: absent means a single node (nothing listens on 8011).
    pub pool: Option<crate::pool::PoolConfig>,
}

/// `[store]`: where durable state lives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://<data_dir>/palaver.db`.
    pub url: String,
}

/// `[compliance]`: every room event copied to a separate, hash-chained database (see
/// docs/compliance.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceConfig {
    /// Record events (default false).
    pub enabled: bool,
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://<data_dir>/compliance.db`.
    pub url: String,
}

impl ComplianceConfig {
    /// The compliance database URL, the default filled in from `data_dir`.
    pub fn url_or_default(&self, data_dir: &std::path::Path) -> String {
        if self.url.is_empty() {
            format!("sqlite://{}", data_dir.join("compliance.db").display())
        } else {
            self.url.clone()
        }
    }
}

/// `[tls]`: the server certificate. Both empty means a generated development CA and leaf.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
}

/// `[xmpp]`: client-to-server listeners and per-connection limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XmppConfig {
    /// Plain TCP listeners that offer STARTTLS.
    pub c2s: Vec<String>,
    /// XEP-0368 direct-TLS listeners.
    pub c2s_direct_tls: Vec<String>,
    /// Refuse authentication before TLS is established.
    pub require_encryption: bool,
    /// The MUC service's domain; empty means `conference.<domain>`.
    pub muc_domain: String,
    pub max_stanza_bytes: usize,
    pub max_depth: usize,
    /// Stanzas queued towards one client before it is considered too slow.
    pub outbound_queue: usize,
    /// Failed logins from one IP before further attempts are slowed down.
    pub auth_failures_before_backoff: u32,
    /// Seconds of silence after which a connection is closed.
    pub idle_timeout_secs: u64,
    /// Concurrent connections one IP address may hold (0: no cap).
    pub max_connections_per_ip: usize,
}

impl Default for XmppConfig {
    fn default() -> Self {
        XmppConfig {
            c2s: vec!["0.0.0.0:5222".into()],
            c2s_direct_tls: vec!["0.0.0.0:5223".into()],
            require_encryption: true,
            muc_domain: String::new(),
            max_stanza_bytes: 262_144,
            max_depth: 32,
            outbound_queue: 16_384,
            auth_failures_before_backoff: 5,
            idle_timeout_secs: 600,
            max_connections_per_ip: 1000,
        }
    }
}

/// `[http]`: the HTTPS listeners (`/health`, `/ready`, `/metrics`; upload and the admin API
/// later).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec!["0.0.0.0:5443".into()],
        }
    }
}

/// `[rooms]`: what exists on first start and how rooms behave by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// Category created at start when absent (creators and members `*`); empty: none.
    pub default_category: String,
    /// Room created at start when absent, in `default_category`; empty: none.
    pub default_room: String,
    /// Messages of history sent to a client joining a room.
    pub history_on_join: u32,
    /// Whether clients may create rooms by joining a room that does not exist.
    pub allow_client_room_creation: bool,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            default_category: "General".into(),
            default_room: "lobby".into(),
            history_on_join: 20,
            allow_client_room_creation: true,
        }
    }
}

/// Log output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `[log]`: logging to standard error.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG`-style filter; the `RUST_LOG` environment variable wins over it.
    pub filter: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
            format: LogFormat::Human,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "localhost".into(),
            data_dir: PathBuf::from("./palaver-data"),
            store: StoreConfig::default(),
            tls: TlsConfig::default(),
            xmpp: XmppConfig::default(),
            sip: crate::sip::SipConfig::default(),
            http: HttpConfig::default(),
            files: crate::files::FilesConfig::default(),
            rooms: RoomsConfig::default(),
            log: LogConfig::default(),
            compliance: ComplianceConfig::default(),
            pool: None,
        }
    }
}

impl Config {
    /// Loads the configuration: `file` when given (it must exist), else `./palaver.toml` when
    /// present, else defaults; then applies `PALAVER_DOMAIN`, `PALAVER_DATA_DIR`,
    /// `PALAVER_STORE_URL` and finally `data_dir_flag` (`--data-dir`).
    pub fn load(file: Option<&Path>, data_dir_flag: Option<&Path>) -> anyhow::Result<Config> {
        let default_file = Path::new(DEFAULT_CONFIG_FILE);
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None if default_file.is_file() => Config::from_file(default_file)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok());
        if let Some(dir) = data_dir_flag {
            config.data_dir = dir.to_path_buf();
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses one TOML file.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Config::from_toml(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses TOML text (unknown keys are errors).
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        Ok(toml::from_str(text)?)
    }

    /// Applies the `PALAVER_*` environment overrides read through `var` (empty values ignored).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(domain) = get("PALAVER_DOMAIN") {
            self.domain = domain.trim().to_string();
        }
        if let Some(dir) = get("PALAVER_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(url) = get("PALAVER_STORE_URL") {
            self.store.url = url.trim().to_string();
        }
    }

    /// Checks values serde cannot, and normalizes the domains to lowercase.
    pub fn validate(&mut self) -> anyhow::Result<()> {
        self.domain = self.domain.trim().to_lowercase();
        check_domain("domain", &self.domain)?;
        self.xmpp.muc_domain = self.xmpp.muc_domain.trim().to_lowercase();
        if !self.xmpp.muc_domain.is_empty() {
            check_domain("xmpp.muc_domain", &self.xmpp.muc_domain)?;
        }
        if self.data_dir.as_os_str().is_empty() {
            bail!("data_dir must not be empty");
        }
        if self.tls.cert.as_os_str().is_empty() != self.tls.key.as_os_str().is_empty() {
            bail!("tls.cert and tls.key must be set together (or both left empty for dev certs)");
        }
        if self.xmpp.max_stanza_bytes < 1024 {
            bail!("xmpp.max_stanza_bytes must be at least 1024");
        }
        if self.xmpp.max_depth < 2 {
            bail!("xmpp.max_depth must be at least 2");
        }
        self.sip.validate()?;
        if let Some(pool) = &mut self.pool {
            pool.validate()?;
        }
        self.rooms.default_category = self.rooms.default_category.trim().to_string();
        self.rooms.default_room = self.rooms.default_room.trim().to_lowercase();
        Ok(())
    }

    /// The store URL, defaulting to SQLite inside the data directory.
    pub fn store_url(&self) -> String {
        if self.store.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("palaver.db").display())
        } else {
            self.store.url.clone()
        }
    }

    /// The MUC service domain.
    pub fn muc_domain(&self) -> String {
        if self.xmpp.muc_domain.is_empty() {
            format!("conference.{}", self.domain)
        } else {
            self.xmpp.muc_domain.clone()
        }
    }

    /// The names the server certificate must cover: domain, MUC domain, upload domain.
    pub fn cert_names(&self) -> Vec<String> {
        let upload = match self.files.upload_domain.trim() {
            "" => format!("upload.{}", self.domain),
            configured => configured.to_lowercase(),
        };
        let mut names = vec![self.domain.clone(), self.muc_domain(), upload];
        names.dedup();
        names
    }

    /// Directory of the generated development certificates.
    pub fn dev_cert_dir(&self) -> PathBuf {
        self.data_dir.join("certs")
    }

    /// The default category name, `None` when disabled (empty).
    pub fn default_category(&self) -> Option<&str> {
        Some(self.rooms.default_category.as_str()).filter(|c| !c.is_empty())
    }
}

fn check_domain(key: &str, domain: &str) -> anyhow::Result<()> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || "@/\"&'<>:".contains(c);
    if domain.is_empty() || domain.len() > 253 || domain.chars().any(bad) {
        bail!("{key} {domain:?} is not a valid domain name");
    }
    Ok(())
}

/// Hides the password of a `scheme://user:password@host/…` URL for display.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_toml("").expect("empty config parses");
        assert_eq!(c.domain, "localhost");
        assert_eq!(c.xmpp.c2s, vec!["0.0.0.0:5222".to_string()]);
        assert_eq!(c.rooms.default_room, "lobby");
        assert_eq!(c.log.format, LogFormat::Human);
        assert_eq!(c.store_url(), "sqlite://./palaver-data/palaver.db");
        assert_eq!(c.muc_domain(), "conference.localhost");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::from_toml("domian = \"x\"").is_err());
        assert!(Config::from_toml("[xmpp]\nc2ss = []").is_err());
        assert!(Config::from_toml("[log]\nformat = \"xml\"").is_err());
    }

    #[test]
    fn env_overrides_file() {
        let mut c = Config::from_toml("domain = \"a.example\"").expect("parses");
        c.apply_env(|n| match n {
            "PALAVER_DOMAIN" => Some("B.example".into()),
            "PALAVER_STORE_URL" => Some("postgres://u:p@db/x".into()),
            _ => None,
        });
        c.validate().expect("valid");
        assert_eq!(c.domain, "b.example");
        assert_eq!(c.store_url(), "postgres://u:p@db/x");
        assert_eq!(c.cert_names()[2], "upload.b.example");
    }

    #[test]
    fn bad_values_are_rejected() {
        let mut c = Config::from_toml("domain = \"a b\"").expect("parses");
        assert!(c.validate().is_err());
        let mut c = Config::from_toml("[tls]\ncert = \"x.pem\"").expect("parses");
        assert!(c.validate().is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }
}
