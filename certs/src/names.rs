//! The subject names a development server certificate must cover.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::SanType;
use rustls_pki_types::ServerName;

use crate::CertError;

/// Label substituted for a leading `*` when checking that a certificate
/// covers a wildcard name.
const WILDCARD_PROBE: &str = "palaver-wildcard-probe";

/// Normalised DNS names and IP addresses for a server certificate. The
/// loopback addresses 127.0.0.1 and ::1 are always included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subjects {
    /// DNS names, lower-cased, without trailing dot, in request order.
    pub dns: Vec<String>,
    /// IP addresses, loopback first.
    pub ips: Vec<IpAddr>,
}

impl Subjects {
    /// Normalises the requested names: trims, drops empty entries and a
    /// trailing dot, lower-cases, removes duplicates and sorts IP literals
    /// into [`Subjects::ips`]. Fails for names no certificate can carry.
    pub fn from_requested(names: &[String]) -> Result<Self, CertError> {
        let mut subjects = Subjects {
            dns: Vec::new(),
            ips: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        };
        for raw in names {
            let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if let Ok(ip) = name.parse::<IpAddr>() {
                if !subjects.ips.contains(&ip) {
                    subjects.ips.push(ip);
                }
                continue;
            }
            if ServerName::try_from(probe_name(&name)).is_err() {
                return Err(CertError::Gen(format!("invalid server name {raw:?}")));
            }
            if !subjects.dns.contains(&name) {
                subjects.dns.push(name);
            }
        }
        Ok(subjects)
    }

    /// The subject alternative names to put into a certificate.
    pub fn sans(&self) -> Result<Vec<SanType>, CertError> {
        let mut sans = Vec::with_capacity(self.dns.len() + self.ips.len());
        for name in &self.dns {
            let ia5 = name.as_str().try_into().map_err(CertError::gen)?;
            sans.push(SanType::DnsName(ia5));
        }
        sans.extend(self.ips.iter().copied().map(SanType::IpAddress));
        Ok(sans)
    }

    /// Names a client may connect with, one per subject; a certificate is
    /// good enough when it verifies for all of them. Wildcard names are
    /// represented by a concrete name they match.
    pub fn server_names(&self) -> Vec<ServerName<'static>> {
        let dns = self
            .dns
            .iter()
            .filter_map(|n| ServerName::try_from(probe_name(n)).ok());
        let ips = self.ips.iter().map(|ip| ServerName::from(*ip));
        dns.chain(ips).collect()
    }
}

/// `*.example` becomes `palaver-wildcard-probe.example`; other names are
/// returned unchanged.
fn probe_name(name: &str) -> String {
    match name.strip_prefix("*.") {
        Some(rest) => format!("{WILDCARD_PROBE}.{rest}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_dedupes() {
        let names = [
            " Localhost. ",
            "",
            "conference.localhost",
            "localhost",
            "10.0.0.1",
            "::1",
        ]
        .map(String::from);
        let s = Subjects::from_requested(&names).expect("valid");
        assert_eq!(s.dns, ["localhost", "conference.localhost"]);
        assert_eq!(s.ips.len(), 3);
        assert_eq!(s.server_names().len(), 5);
    }

    #[test]
    fn rejects_unusable_names() {
        for bad in ["foo bar", "a..b", "*"] {
            assert!(
                Subjects::from_requested(&[bad.to_string()]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn wildcards_are_probed() {
        let s = Subjects::from_requested(&["*.muc.localhost".to_string()]).expect("valid");
        assert_eq!(s.dns, ["*.muc.localhost"]);
        let first = format!("{:?}", s.server_names()[0]);
        assert!(
            first.contains("palaver-wildcard-probe.muc.localhost"),
            "{first}"
        );
    }
}
