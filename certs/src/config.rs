//! rustls server and client configurations on the `ring` provider.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::{load_certs, load_key, CertError, ReloadableCert};

/// The protocol versions every configuration built here accepts.
const VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider used throughout the crate.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a server configuration (ring provider, TLS 1.2 and 1.3, no client
/// authentication) presenting the certificate chain in `cert` (leaf first)
/// with the private key in `key`, and offering the protocols in `alpn` in
/// order of preference.
///
/// Fails when either file cannot be read or when the key does not match the
/// leaf certificate.
pub fn server_config(
    cert: &Path,
    key: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, CertError> {
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = alpn_list(alpn);
    Ok(Arc::new(config))
}

/// Like [`server_config`], but takes the certificate from `resolver`, so a
/// later [`ReloadableCert::reload`] changes what new connections are served
/// without rebuilding the configuration.
pub fn server_config_reloadable(
    resolver: Arc<ReloadableCert>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, CertError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn_list(alpn);
    Ok(Arc::new(config))
}

/// Builds a client configuration (ring provider, TLS 1.2 and 1.3, no client
/// certificate, no ALPN) that trusts exactly the CA certificates in the PEM
/// file `ca` — not the system roots. Meant for tests, conformance runs and
/// links between pool nodes.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, CertError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert)?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn alpn_list(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    alpn.iter().map(|p| p.to_vec()).collect()
}
