//! palaver-certs: PEM loading, rustls configurations and the development CA.
//!
//! * [`load_certs`] / [`load_key`] read PEM files (via `rustls-pki-types`).
//! * [`server_config`] / [`client_config`] build rustls configurations on the
//!   `ring` provider with TLS 1.2 and 1.3 enabled.
//! * [`ReloadableCert`] is a certificate resolver whose certificate and key can
//!   be re-read from disk at run time; use it with [`server_config_reloadable`].
//! * [`ensure_dev_certs`] maintains a self-made development CA and a server
//!   certificate signed by it, so a fresh checkout can speak TLS at once.
//! * [`mutual_tls`] builds the pool's mutual-TLS configurations (TCP 8011) and
//!   [`ensure_pool_certs`] a pool CA and node certificates for development.

mod config;
mod dev;
mod error;
mod expiry;
mod fsutil;
mod issue;
mod mtls;
mod names;
mod pem;
mod pool;
mod reload;
mod sidecar;
mod verify;

pub use config::{client_config, server_config, server_config_reloadable};
pub use dev::{ensure_dev_certs, DevCertPaths};
pub use error::CertError;
pub use expiry::leaf_not_after;
pub use mtls::{mutual_tls, MutualTls, POOL_ALPN};
pub use pem::{load_certs, load_key};
pub use pool::{ensure_pool_certs, PoolCertPaths};
pub use reload::ReloadableCert;
