//! `[sip]` in palaver.toml: the SIP listeners (UDP, TCP, TLS), the room domain, registration
//! bounds, message limits, rate limits and delivery policy. Documented in
//! `docs/configuration.md`.

use serde::Deserialize;

/// `[sip]`: the SIP front end (RFC 3261 registrar, pager rooms, conference events).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen addresses.
    pub udp: Vec<String>,
    /// TCP listen addresses.
    pub tcp: Vec<String>,
    /// TLS listen addresses (the server certificate of `[tls]`).
    pub tls: Vec<String>,
    /// Largest SIP message accepted, in bytes (a bigger one gets 513).
    pub max_message_bytes: usize,
    /// Largest text a MESSAGE may post to a room, in bytes (a bigger one gets 413).
    pub max_post_bytes: usize,
    /// Bodies the room sends are split into MESSAGEs of at most this many bytes over UDP
    /// (RFC 3428 §7: stay under the path MTU); over TCP/TLS `max_post_bytes` applies.
    pub udp_body_bytes: usize,
    /// Kernel receive buffer asked for on each UDP socket (SO_RCVBUF): a room post to many UDP
    /// occupants brings their 200 OKs back in one burst, which the Linux default (208 KiB)
    /// drops. The kernel caps it at `net.core.rmem_max`.
    pub udp_receive_buffer_bytes: usize,
    /// Registrations shorter than this are answered 423 Interval Too Brief.
    pub min_expires: u32,
    /// Longer registrations and subscriptions are shortened to this.
    pub max_expires: u32,
    /// Used when a REGISTER gives no expiry.
    pub default_expires: u32,
    /// Seconds a digest nonce stays valid.
    pub nonce_lifetime_secs: u64,
    /// Requests per second one source IP may send (token bucket refill rate).
    pub rate_per_sec: u32,
    /// Requests one source IP may send in a burst.
    pub rate_burst: u32,
    /// Failed digest checks from one IP before it is answered 403 without a check for a while.
    pub auth_failures_before_backoff: u32,
    /// Consecutive failed deliveries (timeout, 408, 481, other ≥ 400) after which a SIP
    /// occupant leaves the room.
    pub delivery_failures_before_leave: u32,
    /// Room events queued towards one SIP occupant before it counts as too slow.
    pub outbound_queue: usize,
    /// Seconds a TCP/TLS connection may stay silent (keep-alive CRLFs count) before it closes.
    pub idle_timeout_secs: u64,
    /// Clients whose User-Agent starts with one of these get MD5-only digest challenges: they
    /// give up when a challenge names SHA-256 (RFC 8760), however many others are offered.
    pub md5_only_user_agents: Vec<String>,
    /// Clients whose User-Agent contains one of these get REGISTER challenged with
    /// 407/Proxy-Authenticate (MD5 only) instead of 401/WWW-Authenticate: pidgin-sipe answers
    /// a Digest challenge only in a 407 (its 401 handling knows NTLM, Kerberos and TLS-DSK).
    pub proxy_challenge_user_agents: Vec<String>,
    /// Concurrent TCP/TLS connections one IP address may hold (0: no cap).
    pub max_connections_per_ip: usize,
    /// The user part of the group-chat lookup URI XCCOS clients INVITE first
    /// (`sip:ocschat@<domain>`, pidgin-sipe's and Lync's default).
    pub chat_lookup_user: String,
    /// The chat pool URI `cmd:requri` answers (clients re-INVITE it); empty means
    /// `sip:<chat_lookup_user>@<room domain>`.
    pub chat_pool_uri: String,
    /// Session interval (RFC 4028) of XCCOS sessions: clients refresh before it runs out
    /// (at least 90; a client asking for less than 90 gets 422).
    pub session_expires_secs: u32,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: vec!["0.0.0.0:5060".into()],
            tcp: vec!["0.0.0.0:5060".into()],
            tls: vec!["0.0.0.0:5061".into()],
            max_message_bytes: 65_535,
            max_post_bytes: 16_384,
            udp_body_bytes: 1_200,
            udp_receive_buffer_bytes: 4 << 20,
            min_expires: 60,
            max_expires: 3_600,
            default_expires: 3_600,
            nonce_lifetime_secs: 300,
            rate_per_sec: 50,
            rate_burst: 200,
            auth_failures_before_backoff: 5,
            delivery_failures_before_leave: 3,
            outbound_queue: 16_384,
            idle_timeout_secs: 3_900,
            md5_only_user_agents: vec!["baresip v0.".into(), "baresip v1.".into()],
            proxy_challenge_user_agents: vec![" Sipe/".into()],
            max_connections_per_ip: 1000,
            chat_lookup_user: "ocschat".into(),
            chat_pool_uri: String::new(),
            session_expires_secs: 600,
        }
    }
}

impl SipConfig {
    /// Checks values serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_message_bytes < 1_500 {
            anyhow::bail!("sip.max_message_bytes must be at least 1500");
        }
        if self.udp_body_bytes < 200 {
            anyhow::bail!("sip.udp_body_bytes must be at least 200");
        }
        if self.max_post_bytes < 16 || self.max_post_bytes > self.max_message_bytes {
            anyhow::bail!("sip.max_post_bytes must be between 16 and sip.max_message_bytes");
        }
        if self.min_expires == 0
            || self.min_expires > self.max_expires
            || self.default_expires < self.min_expires
            || self.default_expires > self.max_expires
        {
            anyhow::bail!("sip: need 0 < min_expires <= default_expires <= max_expires");
        }
        if self.session_expires_secs < 90 {
            anyhow::bail!("sip.session_expires_secs must be at least 90 (RFC 4028 Min-SE)");
        }
        if self.chat_lookup_user.is_empty() || self.chat_lookup_user.contains(['@', ':']) {
            anyhow::bail!("sip.chat_lookup_user must be a plain user part such as ocschat");
        }
        if !self.chat_pool_uri.is_empty() && !self.chat_pool_uri.starts_with("sip:") {
            anyhow::bail!("sip.chat_pool_uri must be a sip: URI (or empty)");
        }
        if self.rate_per_sec == 0 || self.rate_burst == 0 {
            anyhow::bail!("sip.rate_per_sec and sip.rate_burst must be positive");
        }
        Ok(())
    }
}
