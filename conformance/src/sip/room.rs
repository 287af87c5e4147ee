//! What the SIP cases share: registered pager-mode users ([`user`]), a fresh room per case
//! created with `#create` ([`Room`]), a case body run with alice (the room's creator) and bob
//! (an occupant) in the room, then cleaned up ([`in_room`]), and small checks on statuses.

use super::SCtx;
use crate::sipua::{tracer, Inbound, Ua};
use crate::suite::case::Outcome;
use anyhow::{bail, Result};
use futures::future::BoxFuture;
use std::time::Duration;

/// A room a case created.
pub struct Room {
    pub uri: String,
}

/// Whether `status` is 2xx.
pub fn is_2xx(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A connected, registered pager-mode user agent of user `i` (REGISTER must get 200).
pub async fn user(cx: &SCtx, i: usize) -> Result<Ua> {
    let u = cx.user(i).clone();
    let mut ua = Ua::connect(tracer(cx), &cx.config.sip, &u.local, &u.password, &u.domain)
        .await?
        .pager();
    let code = ua.register().await?;
    if code != 200 {
        bail!("{}: REGISTER answered {code}", u.local);
    }
    Ok(ua)
}

/// Unregisters (errors ignored) and closes.
pub async fn close(mut ua: Ua) {
    let _ = ua.unregister().await;
    ua.close().await;
}

/// Sends `text` to `uri`, failing unless it is answered 2xx.
pub async fn send_ok(ua: &mut Ua, uri: &str, text: &str) -> Result<()> {
    let code = ua.message(uri, text).await?;
    if !is_2xx(code) {
        bail!("{}: MESSAGE {text:?} to {uri} answered {code}", ua.name);
    }
    Ok(())
}

/// The next MESSAGE from `room` whose body contains `text`.
pub async fn from_room(ua: &mut Ua, room: &Room, text: &str) -> Result<Inbound> {
    let uri = room.uri.clone();
    ua.wait_message(
        &format!("a MESSAGE from the room containing {text:?}"),
        |m| m.from == uri && m.body.contains(text),
    )
    .await
}

/// Whether a MESSAGE from `room` containing `text` reaches `ua` within a short wait.
pub async fn arrives(ua: &mut Ua, room: &Room, text: &str) -> Result<bool> {
    let wait = ua.timeout.min(Duration::from_secs(2));
    let uri = room.uri.clone();
    let got = ua
        .message_within(wait, "more", |m| m.from == uri && m.body.contains(text))
        .await?;
    Ok(got.is_some())
}

/// Whether a post `poster` makes to `room` (which must be answered 2xx) misses `watcher`.
pub async fn post_misses(
    cx: &SCtx,
    poster: &mut Ua,
    watcher: &mut Ua,
    room: &Room,
) -> Result<bool> {
    let text = cx.unique("post");
    send_ok(poster, &room.uri, &text).await?;
    Ok(!arrives(watcher, room, &text).await?)
}

/// `#create sipconf-<random>` by `ua`, which must be answered 2xx (the creator is then in it).
pub async fn create(cx: &SCtx, ua: &mut Ua) -> Result<Room> {
    let name = format!("sipconf-{:012x}", rand::random::<u64>() >> 16);
    let uri = cx.room_uri(&name);
    let code = ua.message(&uri, &format!("#create {name}")).await?;
    if !is_2xx(code) {
        bail!("#create {name} answered {code} (the cases need pager users to create rooms)");
    }
    Ok(Room { uri })
}

/// The body of a case run with alice (creator) and bob (joined) in a fresh room.
pub type Body =
    for<'a> fn(&'a SCtx, &'a mut Ua, &'a mut Ua, &'a Room) -> BoxFuture<'a, Result<Outcome>>;

/// Registers alice and bob, has alice create a room and bob `#join` it (2xx), runs `body`,
/// then destroys the room and unregisters both whatever the outcome.
pub async fn in_room(cx: SCtx, join_bob: bool, body: Body) -> Result<Outcome> {
    let mut a = user(&cx, 0).await?;
    let room = match create(&cx, &mut a).await {
        Ok(r) => r,
        Err(e) => {
            close(a).await;
            return Err(e);
        }
    };
    let mut b = match user(&cx, 1).await {
        Ok(b) => b,
        Err(e) => {
            destroy(&mut a, &room).await;
            close(a).await;
            return Err(e);
        }
    };
    let outcome = match join_bob {
        true => match send_ok(&mut b, &room.uri, "#join").await {
            Ok(()) => body(&cx, &mut a, &mut b, &room).await,
            Err(e) => Err(e),
        },
        false => body(&cx, &mut a, &mut b, &room).await,
    };
    destroy(&mut a, &room).await;
    close(b).await;
    close(a).await;
    outcome
}

/// `#destroy` of `room` by its creator (errors ignored).
pub async fn destroy(ua: &mut Ua, room: &Room) {
    let _ = ua.message(&room.uri, "#destroy").await;
}
