//! The pool's mutual-TLS material: the configured `ca`/`cert`/`key`, or development
//! certificates under `<data_dir>/pool-certs/` (a pool CA of this node alone and a node
//! certificate named `<node_id>.palaver-pool`). Development certificates only let a
//! node talk to itself (`palaver pool status`); a real pool shares one CA — see
//! `docs/configuration.md`.

use crate::config::Config;
use anyhow::{anyhow, bail};
use palaver_certs::MutualTls;
use palaver_core::pool::cert_name;

/// Loads (or generates) the pool's TLS configurations.
pub fn load(config: &Config) -> anyhow::Result<MutualTls> {
    let Some(pool) = &config.pool else {
        bail!("no [pool] section in the configuration");
    };
    let (ca, cert, key) = if pool.ca.as_os_str().is_empty() {
        let dir = config.data_dir.join("pool-certs");
        let name = cert_name(&pool.node_id);
        let (paths, generated) =
            palaver_certs::ensure_pool_certs(&dir, &dir, &name).map_err(|e| {
                anyhow!(
                    "cannot create pool development certificates in {}: {e}",
                    dir.display()
                )
            })?;
        if generated {
            tracing::warn!(
                ca = %paths.ca.display(),
                "generated a pool CA for this node only; other members must share one pool CA (set pool.ca, pool.cert, pool.key)"
            );
        }
        (paths.ca, paths.cert, paths.key)
    } else {
        (pool.ca.clone(), pool.cert.clone(), pool.key.clone())
    };
    palaver_certs::mutual_tls(&ca, &cert, &key).map_err(|e| {
        anyhow!(
            "cannot load the pool TLS material (ca {}, cert {}, key {}): {e}",
            ca.display(),
            cert.display(),
            key.display()
        )
    })
}
