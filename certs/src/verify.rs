//! Checking that an existing server certificate is still good enough: it
//! chains to the CA, matches its key, covers every wanted name and is valid
//! at a given time.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::config::provider;
use crate::names::Subjects;

/// Returns `Ok` when `chain` (leaf first) with `key` would be accepted by a
/// client trusting only `ca`, for every name in `subjects`, at time `at`.
/// The error explains the first problem found.
pub(crate) fn check_leaf(
    ca: &CertificateDer<'static>,
    chain: &[CertificateDer<'static>],
    key: PrivateKeyDer<'static>,
    subjects: &Subjects,
    at: SystemTime,
) -> Result<(), String> {
    let (leaf, intermediates) = chain.split_first().ok_or("empty certificate chain")?;
    CertifiedKey::from_der(chain.to_vec(), key, &provider())
        .map_err(|e| format!("key does not fit certificate: {e}"))?;
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| format!("unusable CA certificate: {e}"))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| format!("cannot build verifier: {e}"))?;
    let now = UnixTime::since_unix_epoch(
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    for name in subjects.server_names() {
        verifier
            .verify_server_cert(leaf, intermediates, &name, &[], now)
            .map_err(|e| format!("not valid for {name:?}: {e}"))?;
    }
    Ok(())
}
