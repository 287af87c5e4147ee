//! Reading certificates and private keys from PEM files, and the small PEM
//! encoder used when writing certificate chains.

use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::CertError;

/// Reads every `CERTIFICATE` section of the PEM file at `path`, in file order
/// (for a chain file: leaf first, then intermediates). Sections of other kinds
/// are skipped.
///
/// Fails with [`CertError::NoCerts`] when the file holds no certificate and
/// with [`CertError::Pem`] when a section cannot be decoded.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let data = std::fs::read(path).map_err(CertError::io(path))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, &e))?;
    if certs.is_empty() {
        return Err(CertError::NoCerts(path.to_path_buf()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE
/// KEY` or SEC1 `EC PRIVATE KEY`) of the PEM file at `path`.
///
/// Fails with [`CertError::NoKey`] when the file holds no key and with
/// [`CertError::Pem`] when a section cannot be decoded.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let data = std::fs::read(path).map_err(CertError::io(path))?;
    match PrivateKeyDer::from_pem_slice(&data) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(CertError::NoKey(path.to_path_buf())),
        Err(e) => Err(pem_error(path, &e)),
    }
}

fn pem_error(path: &Path, err: &pem::Error) -> CertError {
    CertError::Pem(format!("{}: {err}", path.display()))
}

/// Encodes one DER certificate as a `CERTIFICATE` PEM block (64-column
/// base64, trailing newline).
pub(crate) fn encode_cert(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = (n >> (18 - 6 * i)) & 0x3f;
                b64.push(char::from(ALPHABET[idx as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_matches_rcgen_and_round_trips() {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["a.example".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        let ours = encode_cert(cert.der());
        assert_eq!(ours.replace("\r\n", "\n"), cert.pem().replace("\r\n", "\n"));
        let back = CertificateDer::from_pem_slice(ours.as_bytes()).expect("parse");
        assert_eq!(back.as_ref(), cert.der().as_ref());
    }

    #[test]
    fn encoder_pads_every_length() {
        for len in 1..8u8 {
            let der: Vec<u8> = (0..len).collect();
            let pem = encode_cert(&der);
            let back = CertificateDer::from_pem_slice(pem.as_bytes()).expect("parse");
            assert_eq!(back.as_ref(), der.as_slice());
        }
    }
}
