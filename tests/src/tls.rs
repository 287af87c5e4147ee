//! Client-side TLS for the raw test client: a rustls config that trusts exactly the dev CA the
//! server generated in its data directory (`<data_dir>/certs/ca.pem`), as a user who follows
//! the README would. Certificate verification is never disabled.
//!
//! The CA is loaded here with plain rustls rather than through `palaver-certs`, so the tests
//! also check that the CA file is an ordinary PEM bundle any client can read.

use anyhow::{bail, Context as _, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;

/// A rustls client config trusting only the certificates in the PEM file `ca`.
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("reading CA file {}", ca.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("parsing CA file {}", ca.display()))?;
        roots.add(cert).with_context(|| {
            format!(
                "adding a certificate of {} to the trust store",
                ca.display()
            )
        })?;
    }
    if roots.is_empty() {
        bail!("no certificate found in CA file {}", ca.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS server name every test connects to (the domain, which the server certificate names).
pub fn server_name() -> ServerName<'static> {
    ServerName::DnsName(
        rustls::pki_types::DnsName::try_from(crate::DOMAIN)
            .expect("the test domain is a valid DNS name")
            .to_owned(),
    )
}
