//! Mutual TLS for the pool links on TCP 8011: both sides present a certificate signed by the
//! pool CA and verify the other's against that CA only (never the system roots). A node
//! certificate carries the DNS name `<node_id>.palaver-pool` and both the serverAuth
//! and clientAuth extended key usages; the listener checks the name against the node id the
//! peer claims with [`MutualTls::check_peer_name`], the dialer by connecting with that name.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::provider;
use crate::{load_certs, load_key, CertError};

/// ALPN protocol id of pool links.
pub const POOL_ALPN: &[u8] = b"palaver-pool/1";

/// The TLS side of a pool node: server and client configurations requiring certificates from
/// the pool CA, and a verifier to check which node a client certificate names.
pub struct MutualTls {
    /// For the 8011 listener: a client certificate chaining to the pool CA is required.
    pub server: Arc<ServerConfig>,
    /// For dialing other members: presents this node's certificate, trusts the pool CA only.
    pub client: Arc<ClientConfig>,
    names: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for MutualTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutualTls").finish_non_exhaustive()
    }
}

/// Builds the pool's mutual-TLS configurations from the pool CA (`ca`, PEM, one or more
/// certificates) and this node's chain (`cert`, leaf first) and key (`key`).
pub fn mutual_tls(ca: &Path, cert: &Path, key: &Path) -> Result<MutualTls, CertError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c)?;
    }
    let roots = Arc::new(roots);
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let versions = &[&rustls::version::TLS13];
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| CertError::Verifier(e.to_string()))?;
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())?;
    server.alpn_protocols = vec![POOL_ALPN.to_vec()];
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(chain, key)?;
    client.alpn_protocols = vec![POOL_ALPN.to_vec()];
    let names = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| CertError::Verifier(e.to_string()))?;
    Ok(MutualTls {
        server: Arc::new(server),
        client: Arc::new(client),
        names,
    })
}

impl MutualTls {
    /// Checks that the verified peer chain `chain` (leaf first, as rustls reports it) names
    /// `name`. The chain was already verified against the pool CA during the handshake; this
    /// adds the name check a server does not do for client certificates.
    pub fn check_peer_name(&self, chain: &[CertificateDer<'_>], name: &str) -> Result<(), String> {
        let (leaf, intermediates) = chain.split_first().ok_or("no peer certificate")?;
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|e| format!("{name:?} is not a valid name: {e}"))?;
        self.names
            .verify_server_cert(leaf, intermediates, &server_name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("certificate is not valid for {name}: {e}"))
    }
}
