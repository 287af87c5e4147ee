//! One SIP pager load session — one tokio task per user agent: REGISTER (digest), the room's
//! first user sends the create command (a 403 "exists" is fine), every user sends the join
//! command as a MESSAGE to the room URI and is in once its 200 arrives; the live phase is
//! [`super::sip_live`]. At stop, UDP agents unregister so the server forgets them, TCP agents
//! close. Over UDP requests are retransmitted (T1 doubling, capped at T2) until answered or
//! `timeout` (at most 32 s, RFC 3261 Timer F) passes.

use super::config::SipTransport;
use super::sip_client::SipConn;
use super::sip_live::Live;
use super::sip_ua::Ua;
use super::stats::micros;
use super::Shared;
use crate::client::{ClientError, ErrorKind};
use palaver_dialects::sip::{Method, SipMessage};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{timeout_at, Instant};

/// Registration lifetime asked for (the run ends long before).
const EXPIRES: u32 = 3600;
/// RFC 3261 Timer F: a non-INVITE transaction gives up after 64 × T1.
pub(super) const TIMER_F: Duration = Duration::from_secs(32);
/// How long the unregistration at stop may take.
const UNREGISTER: Duration = Duration::from_secs(2);

/// Fills `{room}`, `{muc_domain}` and `{nick}` in a template.
fn fill(template: &str, room: &str, muc_domain: &str, nick: &str) -> String {
    template
        .replace("{room}", room)
        .replace("{muc_domain}", muc_domain)
        .replace("{nick}", nick)
}

/// Runs session `idx` to its end. `permit` (a login slot) is released once it is in its room.
pub async fn run(shared: Arc<Shared>, idx: usize, permit: OwnedSemaphorePermit) {
    let Some(user) = shared.users.get(idx) else {
        return;
    };
    let cfg = &shared.cfg;
    let stats = &shared.stats;
    let room_i = idx % cfg.rooms.len();
    let creator = idx < cfg.rooms.len();
    let t0 = Instant::now();
    let source = cfg.sources.get(idx % cfg.sources.len().max(1)).copied();
    let login = timeout_at(shared.hard_deadline, login(&shared, idx, source))
        .await
        .unwrap_or_else(|_| Err(ClientError::new(ErrorKind::Timeout, "hard deadline")));
    let mut ua = match login {
        Ok(ua) => ua,
        Err(e) => {
            stats.error(&user.name, &e);
            stats.failed.fetch_add(1, Relaxed);
            if creator {
                shared.room_ready[room_i].send_replace(true);
            }
            return;
        }
    };
    stats.established.fetch_add(1, Relaxed);
    stats.session_up();
    let room_uri = room_uri(&shared, room_i);
    let joined = timeout_at(shared.hard_deadline, join(&shared, &mut ua, idx, &room_uri))
        .await
        .unwrap_or_else(|_| Err(ClientError::new(ErrorKind::Timeout, "hard deadline")));
    if creator {
        shared.room_ready[room_i].send_replace(true);
    }
    if let Err(e) = joined {
        stats.error(&user.name, &e);
        stats.failed.fetch_add(1, Relaxed);
        stats.session_down();
        stop(&shared, &mut ua).await;
        stats.retransmissions.fetch_add(ua.retransmitted, Relaxed);
        return;
    }
    drop(permit);
    stats.joined_room(idx, room_i, micros(t0.elapsed()), shared.now_us());

    let mut live = Live::new(&shared, idx, room_i, room_uri);
    if let Err(e) = live.run(&mut ua).await {
        stats.error(&user.name, &e);
    }
    drop(live);
    stop(&shared, &mut ua).await;
    stats.retransmissions.fetch_add(ua.retransmitted, Relaxed);
    stats.session_down();
}

/// The room URI of room `room_i` from the template.
fn room_uri(shared: &Shared, room_i: usize) -> String {
    let cfg = &shared.cfg;
    let jid = &cfg.rooms[room_i];
    let (room, service) = jid.split_once('@').unwrap_or((jid, &cfg.muc_domain));
    fill(&cfg.sip_room_uri, room, service, "")
}

/// The bound of one login step.
fn step_deadline(shared: &Shared) -> Instant {
    (Instant::now() + shared.cfg.timeout().min(TIMER_F)).min(shared.hard_deadline)
}

/// Opens the socket and registers.
async fn login(
    shared: &Shared,
    idx: usize,
    source: Option<std::net::IpAddr>,
) -> Result<Ua, ClientError> {
    let cfg = &shared.cfg;
    let user = &shared.users[idx];
    let conn = timeout_at(
        step_deadline(shared),
        SipConn::connect(shared.connect_for(idx).addr, source, cfg.sip_transport),
    )
    .await
    .unwrap_or_else(|_| Err(ClientError::new(ErrorKind::Timeout, "connect")))?;
    let mut ua = Ua::new(conn, &user.name, &user.password, &cfg.domain);
    let registrar = format!("sip:{}", cfg.domain);
    let r = ua
        .transact(
            Method::Register,
            &registrar,
            None,
            Some(EXPIRES),
            step_deadline(shared),
        )
        .await?;
    match r.status() {
        Some(200..=299) => Ok(ua),
        s => Err(ClientError::new(
            ErrorKind::Auth,
            format!("REGISTER: {} {}", s.unwrap_or(0), r.reason().unwrap_or("")),
        )),
    }
}

/// Creates (first user of the room) and joins the room.
async fn join(shared: &Shared, ua: &mut Ua, idx: usize, uri: &str) -> Result<(), ClientError> {
    let cfg = &shared.cfg;
    let room_i = idx % cfg.rooms.len();
    let jid = &cfg.rooms[room_i];
    let room = jid.split_once('@').map_or(jid.as_str(), |(r, _)| r);
    let nick = &shared.users[idx].name;
    let refused = |what: &str, r: &SipMessage| {
        ClientError::new(
            ErrorKind::Join,
            format!(
                "{what}: {} {}",
                r.status().unwrap_or(0),
                r.reason().unwrap_or("")
            ),
        )
    };
    if idx < cfg.rooms.len() {
        if !cfg.sip_create.is_empty() {
            let body = fill(&cfg.sip_create, room, &cfg.muc_domain, nick);
            let r = ua
                .transact(
                    Method::Message,
                    uri,
                    Some(body.as_bytes()),
                    None,
                    step_deadline(shared),
                )
                .await?;
            // 403: the room exists already.
            if !matches!(r.status(), Some(200..=299 | 403)) {
                return Err(refused("create", &r));
            }
        }
    } else {
        let mut ready = shared.room_ready[room_i].subscribe();
        let wait = (Instant::now() + cfg.timeout() * 4).min(shared.hard_deadline);
        let _ = timeout_at(wait, ready.wait_for(|r| *r)).await;
    }
    let body = fill(&cfg.sip_join, room, &cfg.muc_domain, nick);
    let r = ua
        .transact(
            Method::Message,
            uri,
            Some(body.as_bytes()),
            None,
            step_deadline(shared),
        )
        .await?;
    if !matches!(r.status(), Some(200..=299)) {
        return Err(refused("join", &r));
    }
    Ok(())
}

/// Ends the session: UDP agents unregister (answering the challenge), TCP closes.
async fn stop(shared: &Shared, ua: &mut Ua) {
    if shared.cfg.sip_transport == SipTransport::Udp {
        let registrar = format!("sip:{}", ua.domain);
        let until = (Instant::now() + UNREGISTER).min(shared.hard_deadline);
        let _ = ua
            .transact(Method::Register, &registrar, None, Some(0), until)
            .await;
    }
    ua.conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn templates() {
        assert_eq!(
            fill("sip:{room}@{muc_domain}", "r1", "conference.x", ""),
            "sip:r1@conference.x"
        );
        assert_eq!(fill("#join {nick}", "r", "d", "bob"), "#join bob");
    }
}
