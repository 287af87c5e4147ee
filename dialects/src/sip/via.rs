//! Via header values (RFC 3261 §20.42, §18.2.1–2; RFC 3581 `rport`): parsing, stamping the
//! top Via of a received request with `received`/`rport`, and finding where a response goes.
//! Parsed by hand: rsip 0.4 rejects IPv6 sent-by values and white space around the slashes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::sip::error::SipError;
use crate::sip::syntax::{is_token, is_ws, ParamMode, Params};
use crate::sip::uri::{parse_port, split_host};

/// The RFC 3261 branch prefix ("magic cookie").
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-case transport: `UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP` …
    pub transport: String,
    /// sent-by host, lower case; IPv6 in brackets.
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Via parameters (branch, received, rport, maddr, ttl …).
    pub params: Params,
}

impl Via {
    /// A placeholder with every field empty (never produced by parsing).
    pub(crate) const EMPTY: Via = Via {
        transport: String::new(),
        host: String::new(),
        port: None,
        params: Params::new(),
    };

    /// A Via for a request we send: `SIP/2.0/<transport> <sent_by>;branch=<branch>;rport`.
    /// `sent_by` is `host`, `host:port` or `[v6]:port`.
    pub fn new(transport: &str, sent_by: &str, branch: &str) -> Result<Via, SipError> {
        let transport = transport.to_ascii_uppercase();
        if !is_token(&transport) {
            return Err(SipError::malformed("invalid transport"));
        }
        let (host, port, rest) = parse_sent_by(sent_by)?;
        if !rest.is_empty() {
            return Err(SipError::malformed("invalid sent-by"));
        }
        let mut params = Params::new();
        params.set("branch", Some(branch));
        params.set("rport", None);
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    /// Parses one Via value (one element of a comma-separated Via header).
    pub fn parse(s: &str) -> Result<Via, SipError> {
        let mut parts = s.trim().splitn(3, '/');
        let (name, version, rest) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(v), Some(r)) => (n.trim(), v.trim(), r.trim_start()),
            _ => return Err(SipError::malformed("bad Via sent-protocol")),
        };
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(SipError::malformed("bad Via protocol"));
        }
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let transport = rest.get(..end).unwrap_or_default();
        if !is_token(transport) {
            return Err(SipError::malformed("bad Via transport"));
        }
        let sent_by = rest.get(end..).unwrap_or_default();
        if !sent_by.bytes().next().is_some_and(is_ws) {
            return Err(SipError::malformed("bad Via sent-by"));
        }
        let (host, port, params) = parse_sent_by(sent_by.trim_start())?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params: Params::parse(params, ParamMode::Header)?,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// Whether the branch carries the RFC 3261 magic cookie (so it identifies a transaction).
    pub fn has_magic_cookie(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// Whether an `rport` parameter is present (with or without a value).
    pub fn rport_requested(&self) -> bool {
        self.params.has("rport")
    }

    /// The numeric value of `rport`, when one was filled in.
    pub fn rport(&self) -> Option<u16> {
        self.params.value("rport").and_then(|p| parse_port(p).ok())
    }

    /// `host` or `host:port` as sent.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// Records the packet's source on the top Via of a received request: `received` when the
    /// sent-by host differs from the source address (RFC 3261 §18.2.1), and — when the client
    /// asked with `rport` — `rport=<source port>` plus `received` unconditionally (RFC 3581).
    pub fn stamp_source(&mut self, source: SocketAddr) {
        let ip = source.ip();
        let same_ip = strip_brackets(&self.host).parse::<IpAddr>().ok() == Some(ip);
        if self.rport_requested() {
            self.params.set("rport", Some(&source.port().to_string()));
            self.params.set("received", Some(&ip.to_string()));
        } else if !same_ip {
            self.params.set("received", Some(&ip.to_string()));
        }
    }

    /// Where a response to this (top) Via goes over an unreliable transport (RFC 3261
    /// §18.2.2, RFC 3581 §4): the `received` address if any, else the sent-by host; the `rport`
    /// value if any, else the sent-by port, else `default_port` (5060, or 5061 for TLS).
    pub fn response_target(&self, default_port: u16) -> (String, u16) {
        let host = self
            .received()
            .map(str::to_string)
            .unwrap_or_else(|| strip_brackets(&self.host).to_string());
        let port = self.rport().or(self.port).unwrap_or(default_port);
        (host, port)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SIP/2.0/{} {}{}",
            self.transport,
            self.sent_by(),
            self.params
        )
    }
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Parses `host[:port]` and returns the rest (parameters).
fn parse_sent_by(s: &str) -> Result<(String, Option<u16>, &str), SipError> {
    let (host, rest) = split_host(s)?;
    if rest.starts_with('?') {
        return Err(SipError::malformed("invalid sent-by"));
    }
    match rest.strip_prefix(':') {
        Some(p) => {
            let end = p.find([';', ' ', '\t']).unwrap_or(p.len());
            let port = parse_port(p.get(..end).unwrap_or_default())?;
            Ok((host, Some(port), p.get(end..).unwrap_or_default()))
        }
        None => Ok((host, None, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let v = Via::parse("SIP / 2.0 / udp 10.0.0.1:5062 ;branch=z9hG4bK776asdhds ; rport")
            .expect("should succeed");
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.sent_by(), "10.0.0.1:5062");
        assert_eq!(v.branch(), Some("z9hG4bK776asdhds"));
        assert!(v.has_magic_cookie());
        assert!(v.rport_requested());
        assert_eq!(v.rport(), None);
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776asdhds;rport"
        );
        let v6 =
            Via::parse("SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKx").expect("should succeed");
        assert_eq!(v6.host, "[2001:db8::9]");
        assert_eq!(v6.response_target(5061), ("2001:db8::9".to_string(), 5061));
    }

    #[test]
    fn stamping() {
        let src: SocketAddr = "192.0.2.7:40000".parse().expect("should succeed");
        let mut v =
            Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport").expect("should succeed");
        v.stamp_source(src);
        assert_eq!(v.rport(), Some(40000));
        assert_eq!(v.received(), Some("192.0.2.7"));
        assert_eq!(v.response_target(5060), ("192.0.2.7".to_string(), 40000));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=40000;received=192.0.2.7"
        );

        let mut same =
            Via::parse("SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1").expect("should succeed");
        same.stamp_source(src);
        assert_eq!(same.received(), None);
        assert_eq!(same.response_target(5060), ("192.0.2.7".to_string(), 5060));

        let mut named =
            Via::parse("SIP/2.0/TCP pc33.example.com;branch=z9hG4bK1").expect("should succeed");
        named.stamp_source(src);
        assert_eq!(named.received(), Some("192.0.2.7"));
        assert_eq!(named.response_target(5060), ("192.0.2.7".to_string(), 5060));
    }

    #[test]
    fn rejects() {
        for bad in [
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ",
            "SIP/2.0/UDP h:0x",
            "SIP/3.0/UDP h",
            "HTTP/2.0/UDP h",
            "SIP/2.0 UDP h",
            "SIP/2.0/UDPh",
            "SIP/2.0/UDP h;branch",
            "SIP/2.0/U@P h",
            "SIP/2.0/UDP h?x",
            "SIP/2.0/UDP h;branch=\"x",
        ] {
            let r = Via::parse(bad);
            assert!(
                r.is_err() || bad == "SIP/2.0/UDP h;branch",
                "{bad:?}: {r:?}"
            );
        }
        assert!(Via::new("UDP", "h:5060", "z9hG4bK1").is_ok());
        assert!(Via::new("U P", "h", "z9hG4bK1").is_err());
        assert!(Via::new("UDP", "h;x", "z9hG4bK1").is_err());
    }
}
