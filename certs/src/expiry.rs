//! When a certificate stops being valid: the leaf's `notAfter`, read from a PEM chain (for
//! expiry warnings and the `palaver_tls_cert_expiry_seconds` gauge).

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::{load_certs, CertError};

/// The `notAfter` time of the first (leaf) certificate in the PEM file `cert`.
pub fn leaf_not_after(cert: &Path) -> Result<SystemTime, CertError> {
    let chain = load_certs(cert)?;
    let leaf = chain
        .first()
        .ok_or_else(|| CertError::NoCerts(cert.to_path_buf()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| CertError::Pem(format!("{}: {e}", cert.display())))?;
    let secs = parsed.validity().not_after.timestamp();
    let secs = u64::try_from(secs).unwrap_or(0);
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::leaf_not_after;
    use std::time::{Duration, SystemTime};

    #[test]
    fn reads_the_dev_leaf_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (paths, _) =
            crate::ensure_dev_certs(dir.path(), &["localhost".to_string()]).expect("dev certs");
        let at = leaf_not_after(&paths.cert).expect("not after");
        let now = SystemTime::now();
        assert!(at > now + Duration::from_secs(24 * 3600), "{at:?}");
        assert!(
            at < now + Duration::from_secs(3 * 366 * 24 * 3600),
            "{at:?}"
        );
    }
}
