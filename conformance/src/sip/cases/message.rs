//! The server's answers to requests (RFC 3261 §8.2, RFC 3428): a room's MESSAGE answered
//! 2xx, an unknown body type 415 with Accept, an unknown room 404, Max-Forwards 0 on a request
//! to be relayed 483, OPTIONS 200 with Allow, an unsupported method 405 with Allow, a
//! malformed request 400, an oversized post 413, an unknown event package 489.

use crate::sip::room::{arrives, close, in_room, is_2xx, user, Room};
use crate::sip::{SCase, SCtx};
use crate::sipua::{Transport, Ua};
use crate::suite::case::{boxed, CaseFuture, Outcome};
use anyhow::{ensure, Result};
use palaver_dialects::sip::{Method, SipMessage};

pub fn cases() -> Vec<SCase> {
    vec![
        SCase {
            id: "sip.message.room-2xx",
            clause: "RFC 3428 §7",
            description: "MUST: a text/plain MESSAGE an occupant sends to its room is accepted with a final 2xx (200 or 202)",
            run: room_2xx,
        },
        SCase {
            id: "sip.message.unsupported-type-415",
            clause: "RFC 3261 §8.2.3; RFC 3428 §7",
            description: "MUST: a MESSAGE whose Content-Type the server does not understand gets 415 with an Accept header",
            run: unsupported_type,
        },
        SCase {
            id: "sip.message.unknown-room-404",
            clause: "RFC 3261 §8.2.2.1",
            description: "SHOULD: a MESSAGE to a room URI that names no room gets 404 Not Found",
            run: unknown_room,
        },
        SCase {
            id: "sip.message.oversized-413",
            clause: "RFC 3261 §21.4.11, §21.5.7",
            description: "SHOULD: a 40 000-byte post the server will not take gets 413 (or 513) and reaches nobody (N-A when accepted, or when over UDP nothing answers)",
            run: oversized,
        },
        SCase {
            id: "sip.relay.max-forwards-483",
            clause: "RFC 3261 §16.3",
            description: "MUST: a MESSAGE with Max-Forwards: 0 to a registered user (to be relayed) gets 483 and is not relayed (N-A when the server relays nothing to users)",
            run: max_forwards,
        },
        SCase {
            id: "sip.options.allow-200",
            clause: "RFC 3261 §11.2",
            description: "SHOULD: OPTIONS to the domain gets 200 with an Allow header that lists MESSAGE",
            run: options,
        },
        SCase {
            id: "sip.method.unsupported-405",
            clause: "RFC 3261 §8.2.1",
            description: "MUST: a method the server does not support (PUBLISH, REFER or UPDATE, absent from its OPTIONS Allow) gets 405 with Allow (N-A when all are allowed)",
            run: unsupported_method,
        },
        SCase {
            id: "sip.malformed.400",
            clause: "RFC 3261 §21.4.1, §20.22",
            description: "SHOULD: a MESSAGE with an unparsable Max-Forwards value gets 400 Bad Request",
            run: malformed,
        },
        SCase {
            id: "sip.subscribe.unknown-event-489",
            clause: "RFC 6665 §4.2.1.1, §8.3.2",
            description: "SHOULD: a SUBSCRIBE to a room for an event package the server does not support gets 489 Bad Event",
            run: unknown_event,
        },
    ]
}

fn room_2xx(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, true, |cx, _a, b, room| {
        Box::pin(async move {
            let code = b.message(&room.uri, &cx.unique("hello")).await?;
            ensure!(is_2xx(code), "the post was answered {code}");
            Ok(Outcome::Pass)
        })
    }))
}

fn unsupported_type(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, true, |_cx, _a, b, room| {
        Box::pin(async move {
            let body = Some(("application/x-conformance-unknown", &b"\x01\x02"[..]));
            let r = b.request(Method::Message, &room.uri, &[], body).await?;
            ensure!(r.status() == Some(415), "answered {:?}", r.status());
            ensure!(r.header("Accept").is_some(), "415 without Accept");
            Ok(Outcome::Pass)
        })
    }))
}

fn unknown_room(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let mut a = user(&cx, 0).await?;
        let uri = cx.room_uri(&format!("nosuch-{:012x}", rand::random::<u64>() >> 16));
        let code = a.message(&uri, "hello").await;
        close(a).await;
        let code = code?;
        ensure!(code == 404, "MESSAGE to {uri} answered {code}");
        Ok(Outcome::Pass)
    })
}

fn oversized(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, true, |cx, a, b, room| {
        Box::pin(async move {
            let marker = cx.unique("big");
            let text = format!("{marker} {}", "x".repeat(40_000));
            let code = match b.message(&room.uri, &text).await {
                Ok(code) => code,
                // A 40 kB datagram may be lost on the way (IP fragments): nothing to judge.
                Err(e) if cx.config.sip.transport == Transport::Udp => {
                    return Ok(Outcome::NotApplicable(format!("no answer over UDP: {e:#}")));
                }
                Err(e) => return Err(e),
            };
            if is_2xx(code) {
                return Ok(Outcome::NotApplicable(
                    "the server accepts 40 000-byte posts".into(),
                ));
            }
            ensure!(matches!(code, 413 | 513), "the post was answered {code}");
            ensure!(
                !arrives(a, room, &marker).await?,
                "the refused post was delivered"
            );
            Ok(Outcome::Pass)
        })
    }))
}

fn max_forwards(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let mut a = user(&cx, 0).await?;
        let mut b = match user(&cx, 1).await {
            Ok(b) => b,
            Err(e) => {
                close(a).await;
                return Err(e);
            }
        };
        let got = relay_mf0(&cx, &mut a, &mut b).await;
        close(b).await;
        close(a).await;
        got
    })
}

async fn relay_mf0(cx: &SCtx, a: &mut Ua, b: &mut Ua) -> Result<Outcome> {
    let text = cx.unique("hop");
    let bob = cx.user(1).aor();
    let r = a
        .request(
            Method::Message,
            &bob,
            &[("Max-Forwards", "0")],
            Some(("text/plain", text.as_bytes())),
        )
        .await?;
    let status = r.status().unwrap_or(0);
    let wait = b.timeout.min(std::time::Duration::from_secs(2));
    let relayed = b
        .message_within(wait, "the relayed MESSAGE", |m| m.body.contains(&text))
        .await?
        .is_some();
    ensure!(
        !relayed,
        "the MESSAGE with Max-Forwards: 0 was relayed (answered {status})"
    );
    match status {
        483 => Ok(Outcome::Pass),
        403 | 404 | 405 | 416 | 480 | 501 | 604 => Ok(Outcome::NotApplicable(format!(
            "the server does not relay MESSAGE to users (answered {status})"
        ))),
        s => Ok(Outcome::Fail(format!("answered {s}, not 483"))),
    }
}

/// OPTIONS to the domain as a registered user; the response.
async fn options_of(cx: &SCtx, ua: &mut Ua) -> Result<SipMessage> {
    let uri = format!("sip:{}", cx.config.domain);
    ua.request(
        Method::Options,
        &uri,
        &[("Accept", "application/sdp")],
        None,
    )
    .await
}

fn options(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let mut a = user(&cx, 0).await?;
        let r = options_of(&cx, &mut a).await;
        close(a).await;
        let r = r?;
        ensure!(r.status() == Some(200), "OPTIONS answered {:?}", r.status());
        let allow = r.allow();
        ensure!(
            allow.iter().any(|m| m.eq_ignore_ascii_case("MESSAGE")),
            "Allow {allow:?} does not list MESSAGE"
        );
        Ok(Outcome::Pass)
    })
}

fn unsupported_method(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let mut a = user(&cx, 0).await?;
        let got = method_405(&cx, &mut a).await;
        close(a).await;
        got
    })
}

async fn method_405(cx: &SCtx, a: &mut Ua) -> Result<Outcome> {
    let r = options_of(cx, a).await?;
    let allow: Vec<String> = r.allow().iter().map(|m| m.to_ascii_uppercase()).collect();
    if allow.is_empty() {
        return Ok(Outcome::NotApplicable("OPTIONS gave no Allow".into()));
    }
    let candidates = [
        (Method::Publish, "PUBLISH"),
        (Method::Refer, "REFER"),
        (Method::Update, "UPDATE"),
    ];
    let Some((method, name)) = candidates
        .into_iter()
        .find(|(_, n)| !allow.iter().any(|a| a == n))
    else {
        return Ok(Outcome::NotApplicable(format!("Allow lists {allow:?}")));
    };
    let uri = format!("sip:{}", cx.config.domain);
    let headers: &[(&str, &str)] = match method {
        Method::Publish => &[("Event", "presence"), ("Expires", "60")],
        Method::Refer => &[("Refer-To", "<sip:nobody@invalid>")],
        _ => &[],
    };
    let r = a.request(method, &uri, headers, None).await?;
    ensure!(r.status() == Some(405), "{name} answered {:?}", r.status());
    ensure!(!r.allow().is_empty(), "405 without Allow");
    Ok(Outcome::Pass)
}

fn malformed(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let mut a = user(&cx, 0).await?;
        let uri = format!("sip:{}", cx.config.domain);
        let r = a
            .request(
                Method::Message,
                &uri,
                &[("Max-Forwards", "many")],
                Some(("text/plain", &b"malformed"[..])),
            )
            .await;
        close(a).await;
        let status = r?.status();
        ensure!(status == Some(400), "answered {status:?}");
        Ok(Outcome::Pass)
    })
}

fn unknown_event(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |_cx, a, _b, room: &Room| {
        Box::pin(async move {
            let (r, d) = a
                .subscribe(&room.uri, "x-conformance-unknown", 60, None)
                .await?;
            if let Some(mut d) = d {
                let _ = a.resubscribe(&mut d, "x-conformance-unknown", 0).await;
            }
            ensure!(r.status() == Some(489), "answered {:?}", r.status());
            Ok(Outcome::Pass)
        })
    }))
}
