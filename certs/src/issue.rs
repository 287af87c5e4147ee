//! Generating the development CA and server (leaf) certificates with rcgen.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::names::Subjects;
use crate::pem::encode_cert;
use crate::sidecar::unix_secs;
use crate::CertError;

const DAY_SECS: u64 = 24 * 60 * 60;
/// Lifetime of a new development CA: ten years.
pub(crate) const CA_LIFETIME: Duration = Duration::from_secs(3650 * DAY_SECS);
/// Lifetime of a leaf, counted from issuance; together with [`BACKDATE`] the
/// total validity stays under the 825 days some clients (Apple) accept.
pub(crate) const LEAF_LIFETIME: Duration = Duration::from_secs(824 * DAY_SECS);
/// How far notBefore is set into the past, to tolerate clock skew.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// Common name of the development CA (followed by a key fingerprint).
const CA_COMMON_NAME: &str = "palaver development CA";
const LEAF_COMMON_NAME: &str = "palaver development server";

/// A CA able to sign leaves.
pub(crate) struct DevCa {
    /// Signs leaves; carries the CA's subject and key identifier method.
    pub issuer: Issuer<'static, KeyPair>,
    /// The CA certificate.
    pub cert: CertificateDer<'static>,
    /// The CA's notAfter, if known.
    pub expires: Option<SystemTime>,
}

impl DevCa {
    /// Generates a new self-signed CA valid from `now` for [`CA_LIFETIME`].
    pub fn generate(now: SystemTime) -> Result<DevCa, CertError> {
        let key = KeyPair::generate().map_err(CertError::gen)?;
        let expires = now + CA_LIFETIME;
        let mut params = ca_params(&key);
        set_validity(&mut params, now, expires);
        let cert = params.self_signed(&key).map_err(CertError::gen)?;
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert: cert.into(),
            expires: Some(expires),
        })
    }

    /// Rebuilds the issuer of a CA made by [`DevCa::generate`] from its
    /// certificate and PEM key. The subject is not parsed from `cert` but
    /// assumed to be ours; callers verify the first leaf signed this way
    /// against `cert` to catch foreign or mismatched files.
    pub fn from_parts(
        cert: CertificateDer<'static>,
        key_pem: &str,
        expires: Option<SystemTime>,
    ) -> Result<DevCa, CertError> {
        let key = KeyPair::from_pem(key_pem).map_err(CertError::gen)?;
        Ok(DevCa {
            issuer: Issuer::new(ca_params(&key), key),
            cert,
            expires,
        })
    }

    /// The CA private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }
}

/// A freshly issued server certificate.
pub(crate) struct Leaf {
    /// Leaf certificate followed by the CA certificate.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf private key.
    pub key: PrivateKeyDer<'static>,
    /// The leaf private key as PKCS#8 PEM.
    pub key_pem: String,
    /// The leaf's notAfter.
    pub expires: SystemTime,
}

impl Leaf {
    /// Issues a leaf for `subjects`, signed by `ca`, valid from `now` for
    /// [`LEAF_LIFETIME`] but never beyond the CA's own expiry.
    pub fn issue(ca: &DevCa, subjects: &Subjects, now: SystemTime) -> Result<Leaf, CertError> {
        let key = KeyPair::generate().map_err(CertError::gen)?;
        let mut expires = now + LEAF_LIFETIME;
        if let Some(ca_expires) = ca.expires {
            expires = expires.min(ca_expires);
        }
        let mut params = CertificateParams::default();
        params.subject_alt_names = subjects.sans()?;
        params.distinguished_name = DistinguishedName::new();
        let common_name = subjects
            .dns
            .first()
            .map_or(LEAF_COMMON_NAME, String::as_str);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, now, expires);
        let cert = params.signed_by(&key, &ca.issuer).map_err(CertError::gen)?;
        let key_der = PrivatePkcs8KeyDer::from(key.serialize_der());
        Ok(Leaf {
            chain: vec![cert.into(), ca.cert.clone()],
            key: key_der.into(),
            key_pem: key.serialize_pem(),
            expires,
        })
    }

    /// The chain (leaf, then CA) as PEM.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| encode_cert(c)).collect()
    }
}

/// The parameters of our CA for `key`; validity is filled in by the caller.
///
/// The common name carries a short fingerprint of the CA key, so CAs made on
/// different machines or checkouts have distinct subjects (clients trusting
/// several of them can tell them apart), yet the subject can be rebuilt from
/// the key alone.
fn ca_params(key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let fingerprint: String = params
        .key_identifier(key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{CA_COMMON_NAME} {fingerprint}"),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "palaver");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Sets notBefore to `now` minus [`BACKDATE`] and notAfter to `until`, both
/// rounded down to whole seconds.
fn set_validity(params: &mut CertificateParams, now: SystemTime, until: SystemTime) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before =
        epoch + Duration::from_secs(unix_secs(now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH)));
    params.not_after = epoch + Duration::from_secs(unix_secs(until));
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(DAY_SECS);

    #[test]
    fn leaf_never_outlives_ca() {
        let now = SystemTime::now();
        let mut ca = DevCa::generate(now).expect("ca");
        ca.expires = Some(now + 10 * DAY);
        let subjects = Subjects::from_requested(&["localhost".to_string()]).expect("names");
        let leaf = Leaf::issue(&ca, &subjects, now).expect("leaf");
        assert_eq!(leaf.expires, now + 10 * DAY);
        assert_eq!(leaf.chain.len(), 2);
    }
}
