//! A server certificate resolver that can re-read its files at run time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::provider;
use crate::{load_certs, load_key, CertError};

/// Serves one certificate chain and key, loaded from a pair of PEM files, to
/// every TLS client regardless of SNI. [`reload`](Self::reload) re-reads the
/// same files and swaps the served certificate atomically; handshakes already
/// in progress keep the old one.
///
/// Plug it into a configuration with
/// [`server_config_reloadable`](crate::server_config_reloadable).
pub struct ReloadableCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Loads the chain in `cert` (leaf first) and the private key in `key`.
    ///
    /// Fails when either file cannot be read or the key does not belong to
    /// the leaf certificate.
    pub fn new(cert: &Path, key: &Path) -> Result<Self, CertError> {
        let loaded = load_pair(cert, key)?;
        Ok(Self {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current: RwLock::new(loaded),
        })
    }

    /// Re-reads both files and, if they load and match, serves them from now
    /// on. On error the previously loaded certificate stays in service.
    pub fn reload(&self) -> Result<(), CertError> {
        let loaded = load_pair(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        tracing::info!(cert = %self.cert_path.display(), "reloaded TLS certificate");
        Ok(())
    }

    /// The certificate chain and key currently served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The certificate chain file this resolver reads.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The private key file this resolver reads.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertError> {
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}
