//! Changes without a restart: on SIGHUP the configuration file is read again and its log filter,
//! per-address connection caps and TLS certificate are applied (sessions stay up; a file that
//! does not load changes nothing); the certificate and key files are also watched and reloaded
//! when they change (e.g. certbot renewing them); and the certificate's expiry is checked at
//! every load and daily — `palaver_tls_cert_expiry_seconds`, a warning within 14 days.

use crate::config::Config;
use crate::conn_limit::ConnLimiter;
use palaver_certs::ReloadableCert;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How often the certificate files are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(10);
/// How often the expiry is checked when nothing changes.
const EXPIRY_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Warn when the certificate expires within this.
const WARN_WITHIN: Duration = Duration::from_secs(14 * 24 * 3600);

/// Where the configuration came from, to read it again the same way.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub file: Option<PathBuf>,
    pub data_dir_flag: Option<PathBuf>,
}

/// What a reload changes in the running server.
pub struct Reloader {
    pub source: ConfigSource,
    pub cert: Arc<ReloadableCert>,
    pub xmpp_conn_limit: Arc<ConnLimiter>,
    pub sip_conn_limit: Arc<ConnLimiter>,
    /// Modification times of the certificate and key files at the last load.
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Reloader {
    pub fn new(
        source: ConfigSource,
        cert: Arc<ReloadableCert>,
        xmpp_conn_limit: Arc<ConnLimiter>,
        sip_conn_limit: Arc<ConnLimiter>,
    ) -> Arc<Reloader> {
        let stamps = (modified(cert.cert_path()), modified(cert.key_path()));
        let r = Arc::new(Reloader {
            source,
            cert,
            xmpp_conn_limit,
            sip_conn_limit,
            stamps: Mutex::new(stamps),
        });
        r.check_expiry();
        r
    }

    /// SIGHUP: reads the configuration again and applies what can change at run time.
    pub fn reload_config(&self) {
        let config = match Config::load(
            self.source.file.as_deref(),
            self.source.data_dir_flag.as_deref(),
        ) {
            Ok(c) => c,
            Err(e) => {
                metrics::counter!("palaver_config_reloads_total", "result" => "error").increment(1);
                tracing::error!(error = %format!("{e:#}"), "configuration reload failed; the running configuration stays");
                return;
            }
        };
        if let Err(e) = crate::logging::set_filter(&config.log.filter) {
            tracing::error!(error = %format!("{e:#}"), "log filter not changed");
        }
        self.xmpp_conn_limit
            .set_max(config.xmpp.max_connections_per_ip);
        self.sip_conn_limit
            .set_max(config.sip.max_connections_per_ip);
        self.reload_cert("SIGHUP");
        metrics::counter!("palaver_config_reloads_total", "result" => "ok").increment(1);
        tracing::info!(
            log_filter = %config.log.filter,
            xmpp_max_connections_per_ip = config.xmpp.max_connections_per_ip,
            sip_max_connections_per_ip = config.sip.max_connections_per_ip,
            "configuration reloaded"
        );
    }

    /// Re-reads the certificate and key; on failure the current one stays in service.
    pub fn reload_cert(&self, why: &str) {
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) = (
            modified(self.cert.cert_path()),
            modified(self.cert.key_path()),
        );
        match self.cert.reload() {
            Ok(()) => {
                metrics::counter!("palaver_tls_cert_reloads_total", "result" => "ok").increment(1);
                tracing::info!(reason = why, cert = %self.cert.cert_path().display(), "TLS certificate loaded");
            }
            Err(e) => {
                metrics::counter!("palaver_tls_cert_reloads_total", "result" => "error")
                    .increment(1);
                tracing::error!(reason = why, error = %e, "TLS certificate not reloaded; the previous one stays in service");
            }
        }
        self.check_expiry();
    }

    /// Sets the expiry gauge; warns within 14 days, errors once expired.
    fn check_expiry(&self) {
        let path = self.cert.cert_path();
        let not_after = match palaver_certs::leaf_not_after(path) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(cert = %path.display(), error = %e, "cannot read the certificate's expiry");
                return;
            }
        };
        let left = match not_after.duration_since(SystemTime::now()) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        metrics::gauge!("palaver_tls_cert_expiry_seconds").set(left);
        let days = left / 86_400.0;
        if left <= 0.0 {
            tracing::error!(cert = %path.display(), days = format!("{days:.1}"), "the TLS certificate has EXPIRED");
        } else if left < WARN_WITHIN.as_secs_f64() {
            tracing::warn!(cert = %path.display(), days = format!("{days:.1}"), "the TLS certificate expires soon");
        }
    }

    /// Reloads the certificate when its files change; checks the expiry daily. Ends at shutdown.
    pub async fn watch(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut since_expiry = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(WATCH_EVERY) => {}
                _ = shutdown.changed() => return,
            }
            let now = (
                modified(self.cert.cert_path()),
                modified(self.cert.key_path()),
            );
            let before = *self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
            if now != before {
                // Give a renewal that writes the two files one after the other time to finish.
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.reload_cert("certificate files changed");
                since_expiry = Duration::ZERO;
                continue;
            }
            since_expiry += WATCH_EVERY;
            if since_expiry >= EXPIRY_EVERY {
                since_expiry = Duration::ZERO;
                self.check_expiry();
            }
        }
    }
}
