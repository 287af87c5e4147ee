//! Development certificates for a pool: a pool CA and one node certificate per node, named
//! `<node_id>.palaver-pool` (see [`crate::mutual_tls`]). Every node of a pool must
//! trust the same CA, so for a real pool generate the CA once ([`ensure_pool_certs`] with a
//! shared `ca_dir`) and a node certificate for each node from it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::fsutil::{create_private_dir, write_atomic, PRIVATE, PUBLIC};
use crate::issue::{DevCa, Leaf};
use crate::names::Subjects;
use crate::verify::check_leaf;
use crate::{load_certs, load_key, CertError};

/// Files of a pool CA and one node certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolCertPaths {
    /// The pool CA certificate (`<ca_dir>/pool-ca.pem`).
    pub ca: PathBuf,
    /// The pool CA key (`<ca_dir>/pool-ca-key.pem`, mode 0600).
    pub ca_key: PathBuf,
    /// The node chain, leaf then CA (`<node_dir>/<name>.pem`).
    pub cert: PathBuf,
    /// The node key (`<node_dir>/<name>-key.pem`, mode 0600).
    pub key: PathBuf,
}

/// Makes sure `ca_dir` holds a pool CA (created when missing) and `node_dir` a certificate for
/// the DNS name `name` signed by it (issued when missing, not chaining to the CA, not covering
/// `name` or expiring within 30 days). Directories are created with mode 0700. Returns the
/// paths and whether anything was generated.
pub fn ensure_pool_certs(
    ca_dir: &Path,
    node_dir: &Path,
    name: &str,
) -> Result<(PoolCertPaths, bool), CertError> {
    let now = SystemTime::now();
    create_private_dir(ca_dir)?;
    create_private_dir(node_dir)?;
    let paths = PoolCertPaths {
        ca: ca_dir.join("pool-ca.pem"),
        ca_key: ca_dir.join("pool-ca-key.pem"),
        cert: node_dir.join(format!("{name}.pem")),
        key: node_dir.join(format!("{name}-key.pem")),
    };
    let subjects = Subjects::from_requested(&[name.to_string()])?;
    let mut generated = false;
    let ca = match (
        load_certs(&paths.ca),
        std::fs::read_to_string(&paths.ca_key),
    ) {
        (Ok(certs), Ok(key_pem)) if !certs.is_empty() => {
            let cert = certs
                .into_iter()
                .next()
                .ok_or(CertError::NoCerts(paths.ca.clone()))?;
            DevCa::from_parts(cert, &key_pem, None)?
        }
        _ => {
            let ca = DevCa::generate(now)?;
            write_atomic(&paths.ca_key, ca.key_pem().as_bytes(), PRIVATE)?;
            write_atomic(
                &paths.ca,
                crate::pem::encode_cert(&ca.cert).as_bytes(),
                PUBLIC,
            )?;
            tracing::info!(ca = %paths.ca.display(), "generated a pool CA");
            generated = true;
            ca
        }
    };
    let horizon = now + std::time::Duration::from_secs(30 * 24 * 60 * 60);
    let current = load_certs(&paths.cert)
        .and_then(|chain| Ok((chain, load_key(&paths.key)?)))
        .map_err(|e| e.to_string())
        .and_then(|(chain, key)| check_leaf(&ca.cert, &chain, key, &subjects, horizon));
    if let Err(reason) = current {
        tracing::debug!(%reason, name, "issuing a pool node certificate");
        let leaf = Leaf::issue(&ca, &subjects, now)?;
        check_leaf(&ca.cert, &leaf.chain, leaf.key.clone_key(), &subjects, now).map_err(|r| {
            CertError::Gen(format!("the pool CA key does not fit its certificate: {r}"))
        })?;
        write_atomic(&paths.key, leaf.key_pem.as_bytes(), PRIVATE)?;
        write_atomic(&paths.cert, leaf.chain_pem().as_bytes(), PUBLIC)?;
        generated = true;
    }
    Ok((paths, generated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutual_tls;

    #[test]
    fn shared_ca_issues_verifiable_node_certs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().join("ca");
        let (a, gen_a) =
            ensure_pool_certs(&ca_dir, &dir.path().join("a"), "n1.palaver-pool").expect("n1");
        let (b, _) =
            ensure_pool_certs(&ca_dir, &dir.path().join("b"), "n2.palaver-pool").expect("n2");
        assert!(gen_a);
        assert_eq!(a.ca, b.ca);
        let (again, gen) =
            ensure_pool_certs(&ca_dir, &dir.path().join("a"), "n1.palaver-pool").expect("again");
        assert!(!gen, "kept");
        assert_eq!(again, a);
        let tls = mutual_tls(&a.ca, &a.cert, &a.key).expect("config");
        let chain = load_certs(&b.cert).expect("chain");
        assert!(tls.check_peer_name(&chain, "n2.palaver-pool").is_ok());
        assert!(tls.check_peer_name(&chain, "n1.palaver-pool").is_err());
        // A certificate from another CA does not verify.
        let other = dir.path().join("other");
        let (o, _) = ensure_pool_certs(&other, &other, "n2.palaver-pool").expect("other");
        let chain = load_certs(&o.cert).expect("chain");
        assert!(tls.check_peer_name(&chain, "n2.palaver-pool").is_err());
    }
}
