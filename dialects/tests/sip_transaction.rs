//! Non-INVITE transactions: timer E retransmission schedule (500 ms doubling to 4 s, 4 s once
//! proceeding), timer F timeout at 32 s, timer K, TCP behaviour, and the server-side
//! retransmission cache (resend last response, pending, ACK absorption, expiry, capacity).

use std::time::{Duration, Instant};

use palaver_dialects::sip::parse;
use palaver_dialects::sip::transaction::{
    Action, ClientState, ClientTransaction, Dedupe, ResponseOutcome, ServerTransactions,
    TransactionKey, T4, TIMEOUT,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls every 10 ms from `start` to `end`, recording when each action happened.
fn drive(tx: &mut ClientTransaction, start: Instant, from: u64, to: u64) -> Vec<(u64, Action)> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        while let Some(action) = tx.poll(start + ms(t)) {
            out.push((t, action));
        }
        t += 10;
    }
    out
}

#[test]
fn udp_retransmits_then_times_out() {
    let start = Instant::now();
    let mut tx = ClientTransaction::new(start, false);
    assert_eq!(tx.next_deadline(), Some(start + ms(500)));
    let actions = drive(&mut tx, start, 0, 33_000);
    let times: Vec<u64> = actions.iter().map(|(t, _)| *t).collect();
    // E: 0.5, 1.5, 3.5, 7.5, 11.5, … every 4 s; F at 32 s.
    assert_eq!(
        times,
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500, 32000]
    );
    assert!(actions[..10].iter().all(|(_, a)| *a == Action::Retransmit));
    assert_eq!(actions[10].1, Action::TimedOut);
    assert!(tx.is_terminated());
    assert_eq!(tx.next_deadline(), None);
    assert_eq!(
        tx.on_response(200, start + ms(33_000)),
        ResponseOutcome::Absorbed
    );
}

#[test]
fn provisional_switches_to_t2_and_final_completes() {
    let start = Instant::now();
    let mut tx = ClientTransaction::new(start, false);
    assert_eq!(drive(&mut tx, start, 0, 600).len(), 1);
    assert_eq!(
        tx.on_response(100, start + ms(700)),
        ResponseOutcome::Provisional
    );
    assert_eq!(tx.state(), ClientState::Proceeding);
    let actions = drive(&mut tx, start, 700, 10_000);
    let times: Vec<u64> = actions.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![1500, 5500, 9500], "after 1xx, E fires every T2");
    assert_eq!(
        tx.on_response(202, start + ms(10_000)),
        ResponseOutcome::Final
    );
    assert_eq!(tx.state(), ClientState::Completed);
    assert_eq!(
        tx.on_response(202, start + ms(10_100)),
        ResponseOutcome::Absorbed
    );
    assert_eq!(
        tx.on_response(180, start + ms(10_100)),
        ResponseOutcome::Absorbed
    );
    assert_eq!(tx.next_deadline(), Some(start + ms(10_000) + T4));
    assert!(drive(&mut tx, start, 10_000, 14_990).is_empty());
    assert!(!tx.is_terminated());
    assert_eq!(tx.poll(start + ms(15_000)), None);
    assert!(tx.is_terminated(), "timer K");
}

#[test]
fn tcp_never_retransmits() {
    let start = Instant::now();
    let mut tx = ClientTransaction::new(start, true);
    assert_eq!(tx.next_deadline(), Some(start + TIMEOUT));
    let actions = drive(&mut tx, start, 0, 33_000);
    assert_eq!(actions, vec![(32_000, Action::TimedOut)]);

    let mut tx = ClientTransaction::new(start, true);
    assert_eq!(tx.on_response(408, start + ms(5)), ResponseOutcome::Final);
    assert!(tx.is_terminated(), "no timer K on reliable transports");
    assert_eq!(tx.on_response(999, start), ResponseOutcome::Absorbed);
}

#[test]
fn late_poll_fires_timeout_first() {
    let start = Instant::now();
    let mut tx = ClientTransaction::new(start, false);
    assert_eq!(tx.poll(start + ms(40_000)), Some(Action::TimedOut));
    assert_eq!(tx.poll(start + ms(40_001)), None);
}

fn request(branch: &str, method: &str, sent_by: &str) -> palaver_dialects::sip::SipMessage {
    let raw = format!(
        "{method} sip:lobby@conference.localhost SIP/2.0\r\n\
         Via: SIP/2.0/UDP {sent_by};branch={branch}\r\n\
         From: <sip:alice@localhost>;tag=a\r\n\
         To: <sip:lobby@conference.localhost>\r\n\
         Call-ID: c1\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    parse(raw.as_bytes(), 4096).expect("should succeed")
}

#[test]
fn server_cache_dedupes_retransmissions() {
    let now = Instant::now();
    let mut cache = ServerTransactions::new(100, TIMEOUT);
    let m = request("z9hG4bK1", "MESSAGE", "10.0.0.1:5060");
    assert_eq!(cache.check(&m, now), Dedupe::New);
    assert_eq!(cache.check(&m, now + ms(500)), Dedupe::Pending);
    cache.record_response(&m, b"SIP/2.0 200 OK\r\n\r\n", now + ms(600));
    assert_eq!(
        cache.check(&m, now + ms(1000)),
        Dedupe::Resend(b"SIP/2.0 200 OK\r\n\r\n".to_vec())
    );
    // Different method, sent-by or branch: different transactions.
    assert_eq!(
        cache.check(&request("z9hG4bK1", "OPTIONS", "10.0.0.1:5060"), now),
        Dedupe::New
    );
    assert_eq!(
        cache.check(&request("z9hG4bK1", "MESSAGE", "10.0.0.2:5060"), now),
        Dedupe::New
    );
    assert_eq!(
        cache.check(&request("z9hG4bK2", "MESSAGE", "10.0.0.1:5060"), now),
        Dedupe::New
    );
    // Timer J: forgotten 32 s after the response.
    assert_eq!(cache.check(&m, now + ms(600) + TIMEOUT), Dedupe::New);
    assert_eq!(cache.len(), 1, "expired entries were dropped");
}

#[test]
fn server_cache_acks_and_old_style_branches() {
    let now = Instant::now();
    let mut cache = ServerTransactions::new(100, TIMEOUT);
    let invite = request("z9hG4bKi", "INVITE", "10.0.0.1:5060");
    let ack = request("z9hG4bKi", "ACK", "10.0.0.1:5060");
    let key = TransactionKey::of(&ack).expect("should succeed");
    assert_eq!(
        key,
        TransactionKey::of(&invite).expect("should succeed"),
        "ACK matches its INVITE"
    );
    assert_eq!(
        cache.check(&ack, now),
        Dedupe::New,
        "no INVITE seen: pass the ACK up"
    );
    assert!(cache.is_empty(), "ACKs are not remembered");
    assert_eq!(cache.check(&invite, now), Dedupe::New);
    cache.record_response(&invite, b"SIP/2.0 486 Busy Here\r\n\r\n", now);
    assert_eq!(cache.check(&ack, now), Dedupe::AckAbsorbed);

    let old = request("1234", "MESSAGE", "10.0.0.1:5060");
    let key = TransactionKey::of(&old).expect("should succeed");
    assert!(key
        .branch
        .starts_with("rfc2543|sip:lobby@conference.localhost|a||c1|1"));
    assert_eq!(cache.check(&old, now), Dedupe::New);
    assert_eq!(cache.check(&old, now), Dedupe::Pending);
}

#[test]
fn server_cache_is_bounded() {
    let now = Instant::now();
    let mut cache = ServerTransactions::new(3, TIMEOUT);
    let requests: Vec<_> = (0..5)
        .map(|i| request(&format!("z9hG4bK{i}"), "MESSAGE", "10.0.0.1:5060"))
        .collect();
    for r in &requests {
        assert_eq!(cache.check(r, now), Dedupe::New);
        assert!(cache.len() <= 3);
    }
    assert_eq!(
        cache.check(&requests[0], now),
        Dedupe::New,
        "oldest evicted"
    );
    assert_eq!(cache.check(&requests[4], now), Dedupe::Pending);
    // Responses for forgotten transactions are remembered again.
    cache.record_response(&requests[1], b"r1", now);
    assert_eq!(
        cache.check(&requests[1], now),
        Dedupe::Resend(b"r1".to_vec())
    );
    assert!(cache.len() <= 3);
}
