//! The development CA: [`ensure_dev_certs`] keeps a directory stocked with a
//! CA and a server certificate signed by it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;

use crate::fsutil::{create_private_dir, write_atomic, PRIVATE, PUBLIC};
use crate::issue::{DevCa, Leaf};
use crate::names::Subjects;
use crate::sidecar::Meta;
use crate::verify::check_leaf;
use crate::{load_certs, load_key, CertError};

/// Certificates are replaced when they would expire within this margin.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Sidecar file recording names and validity of the current certificates.
const META_FILE: &str = "server.names";

/// Where [`ensure_dev_certs`] keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertPaths {
    /// The CA certificate (`ca.pem`); give this to clients as their trust root.
    pub ca_cert: PathBuf,
    /// The CA private key (`ca-key.pem`, mode 0600), kept to re-issue leaves.
    pub ca_key: PathBuf,
    /// The server chain, leaf then CA (`server.pem`).
    pub cert: PathBuf,
    /// The server private key (`server-key.pem`, mode 0600).
    pub key: PathBuf,
}

impl DevCertPaths {
    /// The standard file names inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        }
    }
}

/// Makes sure `dir` holds a development CA (`ca.pem`, `ca-key.pem`) and a
/// server certificate (`server.pem` with the chain leaf then CA,
/// `server-key.pem`) valid for every name in `names` as DNS SANs (IP literals
/// become IP SANs), plus IP SANs 127.0.0.1 and ::1.
///
/// Creates `dir` with mode 0700 if missing; keys are written with mode 0600.
/// Existing files are kept while the server certificate chains to `ca.pem`,
/// matches its key, covers all names and stays valid for at least 30 more
/// days. Otherwise the leaf is re-issued by the same CA; a new CA is made only
/// when the old one is missing, unusable or about to expire (its expiry is
/// recorded in the sidecar file `server.names`).
///
/// Returns the paths and whether anything was (re)generated.
pub fn ensure_dev_certs(dir: &Path, names: &[String]) -> Result<(DevCertPaths, bool), CertError> {
    ensure_at(dir, names, SystemTime::now())
}

/// [`ensure_dev_certs`] with an explicit current time.
pub(crate) fn ensure_at(
    dir: &Path,
    names: &[String],
    now: SystemTime,
) -> Result<(DevCertPaths, bool), CertError> {
    let subjects = Subjects::from_requested(names)?;
    create_private_dir(dir)?;
    let paths = DevCertPaths::in_dir(dir);
    let meta_path = dir.join(META_FILE);
    let meta = Meta::read(&meta_path).unwrap_or_default();
    let horizon = now + RENEW_BEFORE;

    if let Some(ca_cert) = usable_ca_cert(&paths, &meta, horizon) {
        let Err(reason) = current_leaf_ok(&paths, &ca_cert, &subjects, horizon) else {
            tracing::debug!(dir = %dir.display(), "development certificates are current");
            return Ok((paths, false));
        };
        tracing::info!(dir = %dir.display(), %reason, "re-issuing development server certificate");
        match reissue(&paths, ca_cert, &meta, &subjects, now) {
            Ok((ca, leaf)) => {
                write_leaf(&paths, &meta_path, &ca, &leaf, &subjects, now)?;
                return Ok((paths, true));
            }
            Err(reason) => {
                tracing::warn!(dir = %dir.display(), %reason, "replacing the development CA");
            }
        }
    }

    let ca = DevCa::generate(now)?;
    let leaf = Leaf::issue(&ca, &subjects, now)?;
    write_atomic(&paths.ca_key, ca.key_pem().as_bytes(), PRIVATE)?;
    write_atomic(
        &paths.ca_cert,
        crate::pem::encode_cert(&ca.cert).as_bytes(),
        PUBLIC,
    )?;
    write_leaf(&paths, &meta_path, &ca, &leaf, &subjects, now)?;
    tracing::info!(
        dir = %dir.display(),
        "generated a development CA and server certificate; trust {} in clients",
        paths.ca_cert.display()
    );
    Ok((paths, true))
}

/// The CA certificate, unless it is missing, unreadable or (per the sidecar)
/// expires before `horizon`.
fn usable_ca_cert(
    paths: &DevCertPaths,
    meta: &Meta,
    horizon: SystemTime,
) -> Option<CertificateDer<'static>> {
    if meta.ca_expires.is_some_and(|t| t <= horizon) {
        tracing::info!(ca = %paths.ca_cert.display(), "development CA expires soon");
        return None;
    }
    match load_certs(&paths.ca_cert) {
        Ok(certs) => certs.into_iter().next(),
        Err(e) => {
            tracing::debug!(error = %e, "no usable development CA certificate");
            None
        }
    }
}

/// Whether the existing server certificate and key are good until `horizon`.
fn current_leaf_ok(
    paths: &DevCertPaths,
    ca: &CertificateDer<'static>,
    subjects: &Subjects,
    horizon: SystemTime,
) -> Result<(), String> {
    let chain = load_certs(&paths.cert).map_err(|e| e.to_string())?;
    let key = load_key(&paths.key).map_err(|e| e.to_string())?;
    check_leaf(ca, &chain, key, subjects, horizon)
}

/// Issues a new leaf with the existing CA key, checking that the result
/// really chains to `ca.pem` (i.e. the key and certificate belong together
/// and the CA is one of ours).
fn reissue(
    paths: &DevCertPaths,
    ca_cert: CertificateDer<'static>,
    meta: &Meta,
    subjects: &Subjects,
    now: SystemTime,
) -> Result<(DevCa, Leaf), String> {
    let key_pem = std::fs::read_to_string(&paths.ca_key)
        .map_err(|e| format!("{}: {e}", paths.ca_key.display()))?;
    let ca = DevCa::from_parts(ca_cert, &key_pem, meta.ca_expires).map_err(|e| e.to_string())?;
    let leaf = Leaf::issue(&ca, subjects, now).map_err(|e| e.to_string())?;
    check_leaf(&ca.cert, &leaf.chain, leaf.key.clone_key(), subjects, now)
        .map_err(|reason| format!("CA key and certificate do not fit: {reason}"))?;
    Ok((ca, leaf))
}

/// Writes the leaf key, the chain and the sidecar.
fn write_leaf(
    paths: &DevCertPaths,
    meta_path: &Path,
    ca: &DevCa,
    leaf: &Leaf,
    subjects: &Subjects,
    now: SystemTime,
) -> Result<(), CertError> {
    write_atomic(&paths.key, leaf.key_pem.as_bytes(), PRIVATE)?;
    write_atomic(&paths.cert, leaf.chain_pem().as_bytes(), PUBLIC)?;
    let names = subjects
        .dns
        .iter()
        .cloned()
        .chain(subjects.ips.iter().map(ToString::to_string))
        .collect();
    let meta = Meta {
        issued: Some(now),
        expires: Some(leaf.expires),
        ca_expires: ca.expires,
        names,
    };
    meta.write(meta_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{CA_LIFETIME, LEAF_LIFETIME};

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).expect("read")
    }

    #[test]
    fn renews_leaf_before_expiry_and_ca_before_its_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = vec!["localhost".to_string()];
        let now = SystemTime::now();
        let (paths, generated) = ensure_at(dir.path(), &names, now).expect("first");
        assert!(generated);
        let ca = read(&paths.ca_cert);
        let leaf = read(&paths.cert);

        let later = now + LEAF_LIFETIME - RENEW_BEFORE - DAY;
        assert!(!ensure_at(dir.path(), &names, later).expect("kept").1);
        assert_eq!(read(&paths.cert), leaf);

        let near_expiry = now + LEAF_LIFETIME - RENEW_BEFORE + DAY;
        assert!(
            ensure_at(dir.path(), &names, near_expiry)
                .expect("renewed")
                .1
        );
        assert_ne!(read(&paths.cert), leaf, "leaf re-issued");
        assert_eq!(read(&paths.ca_cert), ca, "CA kept");

        let ca_near_expiry = now + CA_LIFETIME - RENEW_BEFORE + DAY;
        assert!(
            ensure_at(dir.path(), &names, ca_near_expiry)
                .expect("new CA")
                .1
        );
        assert_ne!(read(&paths.ca_cert), ca, "CA replaced");
    }

    #[test]
    fn leaf_is_capped_by_ca_expiry_without_churn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = vec!["localhost".to_string()];
        let now = SystemTime::now();
        ensure_at(dir.path(), &names, now).expect("first");
        // With 300 days of CA validity left, a new leaf gets the CA's expiry
        // instead of the full leaf lifetime, and is then kept.
        let late = now + CA_LIFETIME - 300 * DAY;
        assert!(ensure_at(dir.path(), &names, late).expect("reissue").1);
        let meta = Meta::read(&dir.path().join(META_FILE)).expect("meta");
        assert_eq!(
            meta.expires,
            meta.ca_expires.map(|t| t.min(late + LEAF_LIFETIME))
        );
        assert!(!ensure_at(dir.path(), &names, late + DAY).expect("stable").1);
    }

    #[test]
    fn foreign_ca_key_leads_to_new_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = vec!["localhost".to_string()];
        let (paths, _) = ensure_at(dir.path(), &names, SystemTime::now()).expect("first");
        let ca = read(&paths.ca_cert);
        let other = rcgen::KeyPair::generate().expect("key");
        std::fs::write(&paths.ca_key, other.serialize_pem()).expect("write");
        let more = vec!["localhost".to_string(), "other.localhost".to_string()];
        assert!(
            ensure_at(dir.path(), &more, SystemTime::now())
                .expect("again")
                .1
        );
        assert_ne!(
            read(&paths.ca_cert),
            ca,
            "mismatched CA key forces a new CA"
        );
    }
}
