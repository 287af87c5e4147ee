//! Sans-IO non-INVITE transactions (RFC 3261 §17.1.2, §17.2.2). The caller owns sockets and
//! clocks and passes `now` in.
//!
//! * [`ClientTransaction`]: one outbound MESSAGE/NOTIFY. Over UDP timer E retransmits (T1,
//!   doubling up to T2; T2 once a provisional arrived), timer F gives up after 64·T1, timer K
//!   absorbs retransmitted finals for T4. Over TCP/TLS only timer F runs.
//! * [`ServerTransactions`]: a bounded cache keyed by (branch, method, sent-by) that recognizes
//!   retransmitted requests and hands back the last response to resend (timer J keeps an
//!   entry 64·T1 after its final response).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sip::message::SipMessage;
use crate::sip::typed::Method;

/// RTT estimate (RFC 3261 §17.1.1.1).
pub const T1: Duration = Duration::from_millis(500);
/// Maximum retransmit interval for non-INVITE requests.
pub const T2: Duration = Duration::from_secs(4);
/// Maximum duration a message remains in the network.
pub const T4: Duration = Duration::from_secs(5);
/// Timer F / timer J: 64·T1.
pub const TIMEOUT: Duration = Duration::from_secs(32);

/// States of a non-INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Request sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; retransmissions of it are absorbed.
    Completed,
    /// Done (final response handled, or timed out).
    Terminated,
}

/// What the caller must do after [`ClientTransaction::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the request bytes again.
    Retransmit,
    /// No final response within 64·T1: treat as 408 Request Timeout.
    TimedOut,
}

/// What a response means to the transaction user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// A 1xx: pass it up if interested; keep waiting.
    Provisional,
    /// The final response: pass it up; the transaction is done.
    Final,
    /// A retransmission or a response after the end: ignore it.
    Absorbed,
}

/// One outbound non-INVITE client transaction.
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    state: ClientState,
    reliable: bool,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Instant,
    terminate_at: Option<Instant>,
}

impl ClientTransaction {
    /// Starts the transaction; the request was just sent at `now`. `reliable` is true over
    /// TCP/TLS (no retransmissions, no timer K).
    pub fn new(now: Instant, reliable: bool) -> Self {
        ClientTransaction {
            state: ClientState::Trying,
            reliable,
            interval: T1,
            retransmit_at: (!reliable).then(|| now + T1),
            timeout_at: now + TIMEOUT,
            terminate_at: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the transaction is over (drop it).
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// When [`ClientTransaction::poll`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => Some(
                self.retransmit_at
                    .map_or(self.timeout_at, |r| r.min(self.timeout_at)),
            ),
            ClientState::Completed => self.terminate_at,
            ClientState::Terminated => None,
        }
    }

    /// Runs due timers: at most one action per call (call again until `None`).
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                if now >= self.timeout_at {
                    self.terminate();
                    return Some(Action::TimedOut);
                }
                let due = self.retransmit_at.is_some_and(|at| now >= at);
                if !due {
                    return None;
                }
                self.interval = match self.state {
                    ClientState::Trying => (self.interval * 2).min(T2),
                    _ => T2,
                };
                self.retransmit_at = Some(now + self.interval);
                Some(Action::Retransmit)
            }
            ClientState::Completed => {
                if self.terminate_at.is_some_and(|at| now >= at) {
                    self.terminate();
                }
                None
            }
            ClientState::Terminated => None,
        }
    }

    /// Feeds the status code of a response matched to this transaction (by branch and CSeq
    /// method) at `now`.
    pub fn on_response(&mut self, code: u16, now: Instant) -> ResponseOutcome {
        let active = matches!(self.state, ClientState::Trying | ClientState::Proceeding);
        match code {
            100..=199 if active => {
                self.state = ClientState::Proceeding;
                ResponseOutcome::Provisional
            }
            200..=699 if active => {
                self.retransmit_at = None;
                if self.reliable {
                    self.terminate();
                } else {
                    self.state = ClientState::Completed;
                    self.terminate_at = Some(now + T4);
                }
                ResponseOutcome::Final
            }
            _ => ResponseOutcome::Absorbed,
        }
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.retransmit_at = None;
        self.terminate_at = None;
    }
}

/// Identifies a server transaction (RFC 3261 §17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// The top Via branch; for pre-RFC 3261 peers (no magic cookie) a composite of
    /// Request-URI, tags, Call-ID and CSeq number.
    pub branch: String,
    /// The CSeq method, with ACK counted as INVITE.
    pub method: String,
    /// The top Via sent-by.
    pub sent_by: String,
}

impl TransactionKey {
    /// The key of a request (`None` for a response).
    pub fn of(request: &SipMessage) -> Option<TransactionKey> {
        let uri = request.request_uri()?;
        let via = request.top_via();
        let branch = match via.branch() {
            Some(b) if via.has_magic_cookie() => b.to_string(),
            _ => format!(
                "rfc2543|{uri}|{}|{}|{}|{}",
                request.from().tag().unwrap_or_default(),
                request.to().tag().unwrap_or_default(),
                request.call_id(),
                request.cseq().seq
            ),
        };
        let method = match request.cseq().method {
            Method::Ack => Method::Invite,
            other => other,
        }
        .to_string();
        Some(TransactionKey {
            branch,
            method,
            sent_by: via.sent_by(),
        })
    }
}

/// What to do with a received request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dedupe {
    /// A new transaction: process it.
    New,
    /// A retransmission of a request still being processed: drop it.
    Pending,
    /// A retransmission: send these response bytes again, process nothing.
    Resend(Vec<u8>),
    /// An ACK for an INVITE transaction we answered with a non-2xx: absorb it.
    AckAbsorbed,
}

#[derive(Debug, Clone)]
struct Entry {
    response: Option<Vec<u8>>,
    expires: Instant,
    generation: u64,
}

/// A bounded cache of recent server transactions.
#[derive(Debug, Clone)]
pub struct ServerTransactions {
    entries: HashMap<TransactionKey, Entry>,
    order: VecDeque<(TransactionKey, u64)>,
    capacity: usize,
    lifetime: Duration,
    generation: u64,
}

impl ServerTransactions {
    /// A cache of at most `capacity` transactions, each kept `lifetime` after its last
    /// response (use [`TIMEOUT`], timer J, for UDP).
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        ServerTransactions {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            lifetime,
            generation: 0,
        }
    }

    /// Transactions currently remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Classifies a received request; a new non-ACK request is remembered as pending.
    pub fn check(&mut self, request: &SipMessage, now: Instant) -> Dedupe {
        let Some(key) = TransactionKey::of(request) else {
            return Dedupe::New;
        };
        let is_ack = request.method() == Some(Method::Ack);
        self.check_key(key, is_ack, now)
    }

    /// [`ServerTransactions::check`] with a precomputed key.
    pub fn check_key(&mut self, key: TransactionKey, is_ack: bool, now: Instant) -> Dedupe {
        self.expire(now);
        if let Some(entry) = self.entries.get(&key).filter(|e| e.expires > now) {
            return match (&entry.response, is_ack) {
                (_, true) => Dedupe::AckAbsorbed,
                (Some(response), false) => Dedupe::Resend(response.clone()),
                (None, false) => Dedupe::Pending,
            };
        }
        if !is_ack {
            self.insert(key, None, now);
        }
        Dedupe::New
    }

    /// Forgets `request`'s transaction, so the same branch is processed again: after a digest
    /// challenge, for clients (pidgin-sipe) that resend the request with credentials but the
    /// same Via branch and CSeq instead of a new transaction.
    pub fn forget(&mut self, request: &SipMessage) {
        if let Some(key) = TransactionKey::of(request) {
            self.entries.remove(&key);
        }
    }

    /// Remembers the latest response sent for `request` (resent on retransmissions).
    pub fn record_response(&mut self, request: &SipMessage, response: &[u8], now: Instant) {
        if let Some(key) = TransactionKey::of(request) {
            self.record_response_key(key, response, now);
        }
    }

    /// [`ServerTransactions::record_response`] with a precomputed key.
    pub fn record_response_key(&mut self, key: TransactionKey, response: &[u8], now: Instant) {
        match self.entries.get_mut(&key) {
            Some(entry) => {
                entry.response = Some(response.to_vec());
                entry.expires = now + self.lifetime;
            }
            None => self.insert(key, Some(response.to_vec()), now),
        }
    }

    fn insert(&mut self, key: TransactionKey, response: Option<Vec<u8>>, now: Instant) {
        self.generation += 1;
        let generation = self.generation;
        self.order.push_back((key.clone(), generation));
        let expires = now + self.lifetime;
        self.entries.insert(
            key,
            Entry {
                response,
                expires,
                generation,
            },
        );
        while self.entries.len() > self.capacity {
            let Some((old, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&old)
                .is_some_and(|e| e.generation == generation)
            {
                self.entries.remove(&old);
            }
        }
    }

    /// Drops expired entries from the front of the insertion order (and stale order items).
    fn expire(&mut self, now: Instant) {
        while let Some((key, generation)) = self.order.front() {
            let live = self
                .entries
                .get(key)
                .filter(|e| e.generation == *generation);
            match live {
                Some(e) if e.expires > now => break,
                Some(_) => {
                    self.entries.remove(key);
                }
                None => {}
            }
            self.order.pop_front();
        }
    }
}
