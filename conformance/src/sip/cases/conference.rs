//! RFC 4575 conference events on a room (over RFC 6665): SUBSCRIBE answered 2xx with Expires,
//! the immediate NOTIFY (Subscription-State, Content-Type, a full `conference-info` with a
//! version), a later join and leave reflected with a higher version, unsubscribing and the
//! one-time fetch ending in `terminated`.

use crate::sip::room::{in_room, is_2xx, send_ok, Room};
use crate::sip::{SCase, SCtx};
use crate::sipua::{Dialog, Ua};
use crate::suite::case::{boxed, CaseFuture, Outcome};
use anyhow::{bail, ensure, Context as _, Result};
use palaver_dialects::sip::SipMessage;
use palaver_dialects::xmpp::element::Element;

const EVENT: &str = "conference";
const CONF_TYPE: &str = "application/conference-info+xml";

pub fn cases() -> Vec<SCase> {
    vec![
        SCase {
            id: "sip.conference.subscribe-2xx-expires",
            clause: "RFC 6665 §3.1.1, §4.2.1.1",
            description: "MUST: SUBSCRIBE to a room with Event: conference gets 200 (or 202) carrying an Expires header",
            run: subscribe_2xx,
        },
        SCase {
            id: "sip.conference.notify-immediate",
            clause: "RFC 6665 §4.2.1.2, §8.2.3",
            description: "MUST: a NOTIFY follows at once in the subscription's dialog with Event: conference and Subscription-State active (or pending)",
            run: notify_immediate,
        },
        SCase {
            id: "sip.conference.content-type",
            clause: "RFC 4575 §3.4",
            description: "MUST: the NOTIFY body is application/conference-info+xml",
            run: content_type,
        },
        SCase {
            id: "sip.conference.first-full",
            clause: "RFC 4575 §3.2, §5.2, §5.6",
            description: "MUST: the first NOTIFY carries a conference-info document with state=\"full\", a numeric version and the creator among its users",
            run: first_full,
        },
        SCase {
            id: "sip.conference.join-version-up",
            clause: "RFC 4575 §3.6, §5.1, §5.2, §5.6",
            description: "MUST: when another user joins, a NOTIFY with a higher version (partial or full) lists that user",
            run: join_version_up,
        },
        SCase {
            id: "sip.conference.leave-deleted",
            clause: "RFC 4575 §3.6, §5.1, §5.2, §5.6",
            description: "MUST: when an occupant leaves, a NOTIFY with a higher version marks that user state=\"deleted\" or is a full document without it",
            run: leave_deleted,
        },
        SCase {
            id: "sip.conference.unsubscribe-terminated",
            clause: "RFC 6665 §4.1.2.3, §4.2.1.4",
            description: "MUST: SUBSCRIBE with Expires: 0 in the subscription gets 2xx and a NOTIFY with Subscription-State terminated",
            run: unsubscribe,
        },
        SCase {
            id: "sip.conference.fetch",
            clause: "RFC 6665 §4.4.3",
            description: "MUST: an initial SUBSCRIBE with Expires: 0 (a fetch) gets 2xx and one NOTIFY with the state and Subscription-State terminated",
            run: fetch,
        },
    ]
}

/// SUBSCRIBE `room` (conference, 600 s), failing unless 2xx: the response and the dialog.
async fn subscribe(a: &mut Ua, room: &Room, expires: u32) -> Result<(SipMessage, Dialog)> {
    let (r, d) = a
        .subscribe(&room.uri, EVENT, expires, Some(CONF_TYPE))
        .await?;
    match d {
        Some(d) => Ok((r, d)),
        None => bail!("SUBSCRIBE answered {:?}", r.status()),
    }
}

/// The next NOTIFY of `d`.
async fn notify(a: &mut Ua, d: &Dialog, what: &str) -> Result<SipMessage> {
    a.wait_notify(d, what, |_| true).await
}

/// Subscribes and returns the first NOTIFY; the subscription is ended before returning.
async fn first_notify(a: &mut Ua, room: &Room) -> Result<SipMessage> {
    let (_, mut d) = subscribe(a, room, 600).await?;
    let n = notify(a, &d, "the first NOTIFY").await;
    let _ = a.resubscribe(&mut d, EVENT, 0).await;
    n
}

/// The root of a conference-info body.
fn document(n: &SipMessage) -> Result<Element> {
    let e = Element::parse(n.body()).map_err(|e| anyhow::anyhow!("body not XML: {e}"))?;
    ensure!(e.name == "conference-info", "root is <{}>", e.name);
    Ok(e)
}

fn version(e: &Element) -> Result<u64> {
    e.attr("version")
        .and_then(|v| v.trim().parse().ok())
        .context("conference-info without a numeric version")
}

/// The `<user/>` elements (under `<users/>`) naming `who` in their entity or display-text:
/// their `state` attributes (`full` when absent).
fn user_states(e: &Element, who: &str) -> Vec<String> {
    e.children()
        .filter(|c| c.name == "users")
        .flat_map(|u| u.children())
        .filter(|u| u.name == "user")
        .filter(|u| {
            u.attr("entity").is_some_and(|x| x.contains(who))
                || u.children()
                    .any(|d| d.name == "display-text" && d.text().contains(who))
        })
        .map(|u| u.attr("state").unwrap_or("full").to_string())
        .collect()
}

fn subscribe_2xx(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |_cx, a, _b, room| {
        Box::pin(async move {
            let (r, mut d) = subscribe(a, room, 600).await?;
            let _ = a.resubscribe(&mut d, EVENT, 0).await;
            ensure!(r.expires().is_some(), "the 2xx has no Expires");
            Ok(Outcome::Pass)
        })
    }))
}

fn notify_immediate(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |_cx, a, _b, room| {
        Box::pin(async move {
            let n = first_notify(a, room).await?;
            let event = n.event().map(|e| e.package.to_ascii_lowercase());
            ensure!(event.as_deref() == Some(EVENT), "Event {event:?}");
            let state = n.subscription_state().map(|s| s.state.clone());
            ensure!(
                matches!(state.as_deref(), Some("active" | "pending")),
                "Subscription-State {state:?}"
            );
            Ok(Outcome::Pass)
        })
    }))
}

fn content_type(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |_cx, a, _b, room| {
        Box::pin(async move {
            let n = first_notify(a, room).await?;
            let ct = n.content_type().map(|c| c.essence.clone());
            ensure!(ct.as_deref() == Some(CONF_TYPE), "Content-Type {ct:?}");
            Ok(Outcome::Pass)
        })
    }))
}

fn first_full(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |cx, a, _b, room| {
        Box::pin(async move {
            let e = document(&first_notify(a, room).await?)?;
            ensure!(
                e.attr("state") == Some("full"),
                "state {:?}",
                e.attr("state")
            );
            version(&e)?;
            let me = &cx.user(0).local;
            ensure!(
                !user_states(&e, me).is_empty(),
                "{me} is not among the users"
            );
            Ok(Outcome::Pass)
        })
    }))
}

/// Subscribes, runs `act` (by bob), and returns the first NOTIFY after the first one whose
/// document satisfies `pred`, checking its version is higher.
async fn after(
    a: &mut Ua,
    room: &Room,
    what: &str,
    act: impl std::future::Future<Output = Result<()>>,
    pred: impl Fn(&Element) -> bool,
) -> Result<()> {
    let (_, mut d) = subscribe(a, room, 600).await?;
    let got = async {
        let first = version(&document(&notify(a, &d, "the first NOTIFY").await?)?)?;
        act.await?;
        let n = a
            .wait_notify(&d, what, |n| document(n).is_ok_and(|e| pred(&e)))
            .await?;
        let v = version(&document(&n)?)?;
        ensure!(
            v > first,
            "version {v} is not above the first NOTIFY's {first}"
        );
        Ok(())
    }
    .await;
    let _ = a.resubscribe(&mut d, EVENT, 0).await;
    got
}

fn join_version_up(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |cx, a, b, room| {
        Box::pin(async move {
            let bob = cx.user(1).local.clone();
            let act = send_ok(b, &room.uri, "#join");
            after(a, room, "a NOTIFY listing the joiner", act, |e| {
                user_states(e, &bob).iter().any(|s| s != "deleted")
            })
            .await?;
            Ok(Outcome::Pass)
        })
    }))
}

fn leave_deleted(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, true, |cx, a, b, room| {
        Box::pin(async move {
            let bob = cx.user(1).local.clone();
            let act = send_ok(b, &room.uri, "#leave");
            after(a, room, "a NOTIFY removing the leaver", act, |e| {
                let states = user_states(e, &bob);
                match e.attr("state") {
                    Some("full") => states.iter().all(|s| s == "deleted"),
                    _ => states.iter().any(|s| s == "deleted"),
                }
            })
            .await?;
            Ok(Outcome::Pass)
        })
    }))
}

fn terminated(n: &SipMessage) -> bool {
    n.subscription_state()
        .is_some_and(|s| s.state == "terminated")
}

fn unsubscribe(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |_cx, a, _b, room| {
        Box::pin(async move {
            let (_, mut d) = subscribe(a, room, 600).await?;
            notify(a, &d, "the first NOTIFY").await?;
            let r = a.resubscribe(&mut d, EVENT, 0).await?;
            let status = r.status().unwrap_or(0);
            ensure!(is_2xx(status), "SUBSCRIBE Expires: 0 answered {status}");
            a.wait_notify(
                &d,
                "a NOTIFY with Subscription-State terminated",
                terminated,
            )
            .await?;
            Ok(Outcome::Pass)
        })
    }))
}

fn fetch(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |_cx, a, _b, room| {
        Box::pin(async move {
            let (_, d) = subscribe(a, room, 0).await?;
            let n = notify(a, &d, "the fetch's NOTIFY").await?;
            ensure!(
                terminated(&n),
                "Subscription-State {:?}",
                n.subscription_state().map(|s| s.state.clone())
            );
            document(&n)?;
            Ok(Outcome::Pass)
        })
    }))
}
