//! A cross case ([`CrossCase`]) and its context ([`CrossCtx`]): the XMPP suite's context
//! (XMPP sessions, the wire trace) plus the SIP side, room names and room URIs.

use super::config::SipSide;
use crate::suite::case::{CaseFuture, Ctx};
use crate::suite::Listed;
use rand::Rng;
use std::sync::Arc;

/// One cross-protocol case.
pub struct CrossCase {
    pub id: &'static str,
    /// Both sides' clauses, e.g. `XEP-0045 §7.4; RFC 3428 §7`.
    pub clause: &'static str,
    pub description: &'static str,
    /// N-A unless a third `--user` is given (a second XMPP occupant).
    pub needs_third: bool,
    pub run: fn(CrossCtx) -> CaseFuture,
}

impl Listed for CrossCase {
    fn info(&self) -> (&'static str, &'static str, &'static str) {
        (self.id, self.clause, self.description)
    }

    /// Every case uses the SIP account's registration, which another case's REGISTER of
    /// the same account would add to (and its room traffic would reach).
    fn exclusive(&self) -> bool {
        true
    }
}

/// A case's context.
#[derive(Clone)]
pub struct CrossCtx {
    /// The XMPP side (sessions log into its trace, which the SIP side shares).
    pub x: Ctx,
    pub sip: Arc<SipSide>,
}

impl CrossCtx {
    pub fn new(x: Ctx, sip: Arc<SipSide>) -> CrossCtx {
        CrossCtx { x, sip }
    }

    /// A fresh room: its XMPP JID `cross-<random>@<muc>` and its SIP URI
    /// `sip:cross-<random>@<room-domain>`.
    pub fn room(&self) -> Room {
        let n: u64 = rand::thread_rng().gen();
        let name = format!("cross-{n:016x}");
        Room {
            jid: format!("{name}@{}", self.x.config.muc),
            uri: format!("sip:{name}@{}", self.sip.room_domain),
        }
    }

    /// A text no other case or run posts.
    pub fn unique(&self, what: &str) -> String {
        format!("{what} {:016x}", rand::random::<u64>())
    }

    /// The bare JID of XMPP user `i`.
    pub fn jid(&self, i: usize) -> String {
        self.x.user(i).jid.clone()
    }

    /// The SIP user's address, `user@domain` (its bare JID on a server where the account is
    /// the same over both protocols).
    pub fn sip_jid(&self) -> String {
        format!("{}@{}", self.sip.user.0, self.sip.user.1)
    }

    /// The SIP occupant's nick in every case.
    pub fn sip_nick(&self) -> String {
        format!("{}-sip", self.sip.user.0)
    }
}

/// A case's room.
#[derive(Debug, Clone)]
pub struct Room {
    pub jid: String,
    pub uri: String,
}

impl Room {
    /// `room/nick`.
    pub fn occupant(&self, nick: &str) -> String {
        format!("{}/{nick}", self.jid)
    }
}
