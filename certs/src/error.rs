//! The error type shared by every fallible function in this crate.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading, generating or configuring
/// certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Reading, writing or creating a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A PEM file could not be decoded; the message names the file.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// The file holds no private key (PKCS#8, PKCS#1 or SEC1) section.
    #[error("{}: no private key found", .0.display())]
    NoKey(PathBuf),
    /// The file holds no certificate section.
    #[error("{}: no certificates found", .0.display())]
    NoCerts(PathBuf),
    /// rustls rejected a certificate, key or configuration.
    #[error("TLS configuration error: {0}")]
    Rustls(#[from] rustls::Error),
    /// A certificate verifier could not be built (e.g. an unusable CA).
    #[error("certificate verifier: {0}")]
    Verifier(String),
    /// Generating a certificate or key failed, or a requested name is not
    /// usable in a certificate.
    #[error("certificate generation failed: {0}")]
    Gen(String),
}

impl CertError {
    /// Returns a closure that wraps an I/O error together with `path`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
        move |source| CertError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Wraps an rcgen error.
    pub(crate) fn gen(err: rcgen::Error) -> CertError {
        CertError::Gen(err.to_string())
    }
}
