//! The SIP side of a load session: one socket per user agent — a UDP socket bound to the
//! session's source address and connected to the server, or a TCP connection whose bytes are
//! cut into messages by [`StreamFramer`] (Content-Length framing) — plus the digest answer to
//! a 401/407 challenge (RFC 7616 / RFC 8760: MD5 or SHA-256 with `qop=auth`). Reads are
//! cancel-safe (one datagram or one chunk per [`SipConn::read_more`]), so a session can
//! `select!` on them; parsed messages wait in [`SipConn::next_buffered`].

use super::config::SipTransport;
use crate::client::{ClientError, ErrorKind};
use palaver_dialects::sip::digest::{ha1_hex, DigestAlgo};
use palaver_dialects::sip::{parse, SipMessage, StreamFramer};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// Largest message accepted from the server.
const MAX_MESSAGE: usize = 64 * 1024;
/// Read buffer (TCP chunk; UDP datagrams up to this size).
const READ_BUF: usize = 8 * 1024;

enum Socket {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        framer: StreamFramer,
    },
}

/// One user agent's connection to the server.
pub struct SipConn {
    socket: Socket,
    pub local: SocketAddr,
    pub transport: SipTransport,
    buf: Vec<u8>,
    ready: VecDeque<SipMessage>,
}

fn err(kind: ErrorKind, what: impl std::fmt::Display) -> ClientError {
    ClientError::new(kind, what.to_string())
}

impl SipConn {
    /// Opens the socket (from `source` when given) towards `server`.
    pub async fn connect(
        server: SocketAddr,
        source: Option<IpAddr>,
        transport: SipTransport,
    ) -> Result<SipConn, ClientError> {
        let bind = SocketAddr::new(
            source.unwrap_or(if server.is_ipv4() {
                IpAddr::from([0, 0, 0, 0])
            } else {
                IpAddr::from([0u16; 8])
            }),
            0,
        );
        let socket = match transport {
            SipTransport::Udp => {
                let s = UdpSocket::bind(bind)
                    .await
                    .map_err(|e| err(ErrorKind::Connect, format!("UDP bind {bind}: {e}")))?;
                s.connect(server)
                    .await
                    .map_err(|e| err(ErrorKind::Connect, format!("UDP {server}: {e}")))?;
                Socket::Udp(s)
            }
            SipTransport::Tcp => {
                let s = if server.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }
                .map_err(|e| err(ErrorKind::Connect, e))?;
                if source.is_some() {
                    s.bind(bind)
                        .map_err(|e| err(ErrorKind::Connect, format!("bind {bind}: {e}")))?;
                }
                let stream = s
                    .connect(server)
                    .await
                    .map_err(|e| err(ErrorKind::Connect, format!("TCP {server}: {e}")))?;
                let _ = stream.set_nodelay(true);
                Socket::Tcp {
                    stream,
                    framer: StreamFramer::for_client(MAX_MESSAGE),
                }
            }
        };
        let local = match &socket {
            Socket::Udp(s) => s.local_addr(),
            Socket::Tcp { stream, .. } => stream.local_addr(),
        }
        .map_err(|e| err(ErrorKind::Connect, e))?;
        Ok(SipConn {
            socket,
            local,
            transport,
            buf: Vec::new(),
            ready: VecDeque::new(),
        })
    }

    /// `UDP` or `TCP`, for Via.
    pub fn via_token(&self) -> &'static str {
        match self.transport {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp => "TCP",
        }
    }

    /// `udp` or `tcp`, for the Contact's `transport` parameter.
    pub fn transport_param(&self) -> &'static str {
        match self.transport {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match &mut self.socket {
            Socket::Udp(s) => s.send(bytes).await.map(|_| ()),
            Socket::Tcp { stream, .. } => stream.write_all(bytes).await,
        }
        .map_err(|e| err(ErrorKind::Closed, format!("send: {e}")))
    }

    /// The next parsed message already read, if any.
    pub fn next_buffered(&mut self) -> Option<SipMessage> {
        self.ready.pop_front()
    }

    /// Reads once (one datagram, or one chunk of the stream) and parses what it completes.
    /// Unparsable datagrams are dropped; a broken stream is an error. Cancel-safe.
    pub async fn read_more(&mut self) -> Result<(), ClientError> {
        if self.buf.len() < READ_BUF {
            self.buf.resize(READ_BUF, 0);
        }
        match &mut self.socket {
            Socket::Udp(s) => {
                let n = s
                    .recv(&mut self.buf)
                    .await
                    .map_err(|e| err(ErrorKind::Closed, format!("recv: {e}")))?;
                if let Some(m) = self.buf.get(..n).and_then(|b| parse(b, MAX_MESSAGE).ok()) {
                    self.ready.push_back(m);
                }
            }
            Socket::Tcp { stream, framer } => {
                let n = stream
                    .read(&mut self.buf)
                    .await
                    .map_err(|e| err(ErrorKind::Closed, format!("read: {e}")))?;
                if n == 0 {
                    return Err(err(ErrorKind::Closed, "the server closed the connection"));
                }
                framer.feed(self.buf.get(..n).unwrap_or_default());
                loop {
                    match framer.next_message() {
                        Ok(Some(bytes)) => match parse(&bytes, MAX_MESSAGE) {
                            Ok(m) => self.ready.push_back(m),
                            Err(e) => return Err(err(ErrorKind::Protocol, e)),
                        },
                        Ok(None) => break,
                        Err(e) => return Err(err(ErrorKind::Protocol, e)),
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes a TCP connection (UDP has nothing to close).
    pub async fn close(&mut self) {
        if let Socket::Tcp { stream, .. } = &mut self.socket {
            let _ = stream.shutdown().await;
        }
    }
}

/// The header carrying the answer to `response`'s challenge (`Authorization` for a 401,
/// `Proxy-Authorization` for a 407) and its value, or `None` when no challenge there can be
/// answered (no Digest with an algorithm we know).
pub fn answer_challenge(
    response: &SipMessage,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> Option<(&'static str, String)> {
    let (challenge_header, answer_header) = match response.status() {
        Some(407) => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => ("WWW-Authenticate", "Authorization"),
    };
    let challenge = response
        .header_values(challenge_header)
        .filter_map(Challenge::parse)
        .next()?;
    Some((
        answer_header,
        challenge.answer(user, password, method, uri, nc),
    ))
}

/// One `Digest` challenge we can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algo: DigestAlgo,
    qop_auth: bool,
}

impl Challenge {
    /// `Digest realm=…, nonce=…, …`; `None` for another scheme, an unknown algorithm or a
    /// missing realm or nonce.
    fn parse(value: &str) -> Option<Challenge> {
        let (scheme, rest) = value.trim().split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let params = auth_params(rest)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algo: match get("algorithm") {
                None => DigestAlgo::Md5,
                Some(a) => DigestAlgo::from_name(&a)?,
            },
            qop_auth: get("qop")
                .is_some_and(|q| q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth"))),
        })
    }

    /// The Authorization value for `method` on `uri` (nonce count `nc`).
    fn answer(&self, user: &str, password: &str, method: &str, uri: &str, nc: u32) -> String {
        let algo = self.algo;
        let ha1 = ha1_hex(algo, user, &self.realm, password);
        let ha2 = algo.hex(format!("{method}:{uri}").as_bytes());
        let cnonce = format!("{:016x}", rand::random::<u64>());
        let nc = format!("{nc:08x}");
        let response = if self.qop_auth {
            algo.hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce).as_bytes())
        } else {
            algo.hex(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes())
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm={}",
            quote(user),
            quote(&self.realm),
            quote(&self.nonce),
            algo.name()
        );
        if self.qop_auth {
            out.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quote(o)));
        }
        out
    }
}

/// Escapes a quoted-string's content.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_ascii_control())
        .flat_map(|c| {
            let esc = (c == '"' || c == '\\').then_some('\\');
            esc.into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// `name=value` pairs separated by commas; values are tokens or quoted strings.
fn auth_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(out);
        }
        let (name, tail) = rest.split_once('=')?;
        let name = name.trim();
        rest = tail.trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => v.push(chars.next()?.1),
                    c => v.push(c),
                }
            }
            rest = quoted.get(end?..)?;
            v
        } else {
            let end = rest.find([',', ' ', '\t']).unwrap_or(rest.len());
            let v = rest.get(..end)?.to_string();
            rest = rest.get(end..)?;
            v
        };
        out.push((name.to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_dialects::sip::digest::DigestCredentials;

    #[test]
    fn answers_verify_like_the_server_checks_them() {
        for algo in ["SHA-256", "MD5"] {
            let c = Challenge::parse(&format!(
                "Digest realm=\"localhost\", nonce=\"n\\\"1\", opaque=\"o\", \
                 algorithm={algo}, qop=\"auth,auth-int\""
            ))
            .expect("parses");
            assert!(c.qop_auth);
            let value = c.answer("alice", "pw", "REGISTER", "sip:localhost", 1);
            let creds = DigestCredentials::parse(&value).expect("well-formed");
            assert_eq!(creds.nonce, "n\"1");
            let a = creds.algo().expect("known");
            let ha1 = ha1_hex(a, "alice", "localhost", "pw");
            assert_eq!(creds.expected_response(a, "REGISTER", &ha1), creds.response);
        }
        assert_eq!(Challenge::parse("Basic realm=\"x\""), None);
        assert_eq!(
            Challenge::parse("Digest realm=x, nonce=y, algorithm=SHA-512"),
            None
        );
    }
}
