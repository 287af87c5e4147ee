//! Ids and archives on rooms: XEP-0359 stanza-ids assigned by the room, XEP-0313 MAM queries
//! on the room, XEP-0421 occupant ids. Each is N-A unless the room advertises the feature.

use super::enter::two_in_room;
use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::session::Session;
use crate::suite::xml::{is_groupchat_body, presence_from, NS_MAM, NS_OCCUPANT_ID, NS_SID};
use anyhow::{bail, ensure, Result};
use palaver_dialects::xmpp::element::Element;

const NS_FORWARD: &str = "urn:xmpp:forward:0";

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "sid.room.stanza-id",
            clause: "XEP-0359 §3",
            description: "MUST: groupchat messages carry <stanza-id/> with by = the room JID (N-A unless advertised)",
            needs: &[],
            run: stanza_id,
        },
        Case {
            id: "mam.room.query",
            clause: "XEP-0313 §4",
            description: "MUST: a MAM query on the room returns the posted messages in order, then <fin/> (N-A unless advertised)",
            needs: &[],
            run: mam_query,
        },
        Case {
            id: "mam.room.result-id-is-stanza-id",
            clause: "XEP-0313 §5.1.2, XEP-0359",
            description: "MUST: a MAM result's id is the stanza-id the room gave the message (N-A unless both advertised)",
            needs: &[],
            run: mam_result_id,
        },
        Case {
            id: "occupant-id.room.presence-and-message",
            clause: "XEP-0421 §4",
            description: "MUST: presences and messages carry the same <occupant-id/> for an occupant (N-A unless advertised)",
            needs: &[],
            run: occupant_id,
        },
    ]
}

/// Whether the room advertises `feature` in its disco#info.
async fn room_has(s: &mut Session, room: &str, feature: &str) -> Result<bool> {
    Ok(s.disco_features(room).await?.iter().any(|f| f == feature))
}

/// The stanza-id the room put on `m` (by = room), if any.
fn room_stanza_id(m: &Element, room: &str) -> Option<String> {
    m.children_named("stanza-id", NS_SID)
        .find(|s| s.attr("by").is_some_and(|b| b.eq_ignore_ascii_case(room)))
        .and_then(|s| s.attr("id").map(str::to_string))
}

fn stanza_id(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = two_in_room(&cx).await?;
        if !room_has(&mut a, &room, NS_SID).await? {
            a.close().await;
            b.close().await;
            return Ok(Outcome::NotApplicable(format!(
                "{NS_SID} not advertised by the room"
            )));
        }
        let mine = a.say(&room, "with an id").await;
        let theirs = b
            .recv("alice's message", |e| {
                is_groupchat_body(e, &room, "with an id")
            })
            .await;
        a.close().await;
        b.close().await;
        let (mine, theirs) = (mine?, theirs?);
        let (x, y) = (room_stanza_id(&mine, &room), room_stanza_id(&theirs, &room));
        ensure!(
            x.is_some(),
            "no stanza-id by {room} on the reflection: {mine}"
        );
        ensure!(
            y.is_some(),
            "no stanza-id by {room} on the broadcast: {theirs}"
        );
        ensure!(
            x == y,
            "different stanza-ids for one message: {x:?} / {y:?}"
        );
        Ok(Outcome::Pass)
    })
}

/// Posts two messages as alice, queries the room archive; returns the reflections and the
/// forwarded messages with their result ids. `None` when the room does not advertise MAM.
async fn archive(cx: &Ctx) -> Result<Option<(String, Vec<Element>, Vec<(String, Element)>)>> {
    let mut a = cx.login(0).await?;
    let room = cx.room();
    a.create(&room, "alice", &[]).await?;
    if !room_has(&mut a, &room, NS_MAM).await? {
        a.close().await;
        return Ok(None);
    }
    let mut posted = Vec::new();
    for body in ["mam 1", "mam 2"] {
        posted.push(a.say(&room, body).await?);
    }
    let id = a.id();
    a.send(&format!(
        "<iq type='set' id='{id}' to='{}'><query xmlns='{NS_MAM}' queryid='{id}'/></iq>",
        crate::suite::xml::attr(&room)
    ))
    .await?;
    let got = a
        .collect("the MAM query's result", |e| {
            e.name == "iq" && e.attr("id") == Some(id.as_str())
        })
        .await;
    a.close().await;
    let got = got?;
    let Some(end) = got.last() else {
        bail!("no answer to the MAM query");
    };
    ensure!(
        end.attr("type") == Some("result"),
        "MAM query refused: {end}"
    );
    ensure!(end.get_child("fin", NS_MAM).is_some(), "no <fin/> in {end}");
    let results = got
        .iter()
        .filter_map(|m| {
            let r = m.get_child("result", NS_MAM)?;
            if r.attr("queryid") != Some(id.as_str()) {
                return None;
            }
            let fwd = r.get_child("forwarded", NS_FORWARD)?;
            let inner = fwd.children().find(|c| c.name == "message")?;
            Some((r.attr("id").unwrap_or_default().to_string(), inner.clone()))
        })
        .collect();
    Ok(Some((room, posted, results)))
}

fn mam_query(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let Some((_, _, results)) = archive(&cx).await? else {
            return Ok(Outcome::NotApplicable(format!(
                "{NS_MAM} not advertised by the room"
            )));
        };
        let bodies: Vec<_> = results
            .iter()
            .filter_map(|(_, m)| crate::client::body_text(m))
            .collect();
        ensure!(
            bodies.ends_with(&["mam 1", "mam 2"]),
            "archived bodies {bodies:?}, expected to end with mam 1, mam 2"
        );
        ensure!(
            results.iter().all(|(id, _)| !id.is_empty()),
            "a <result/> without id"
        );
        Ok(Outcome::Pass)
    })
}

fn mam_result_id(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let Some((room, posted, results)) = archive(&cx).await? else {
            return Ok(Outcome::NotApplicable(format!(
                "{NS_MAM} not advertised by the room"
            )));
        };
        let sids: Vec<_> = posted.iter().map(|m| room_stanza_id(m, &room)).collect();
        if sids.iter().any(Option::is_none) {
            return Ok(Outcome::NotApplicable(
                "the room assigns no stanza-ids".into(),
            ));
        }
        for (sid, body) in sids.iter().flatten().zip(["mam 1", "mam 2"]) {
            let found = results
                .iter()
                .find(|(_, m)| crate::client::body_text(m) == Some(body));
            let Some((rid, _)) = found else {
                bail!("{body:?} not in the archive");
            };
            ensure!(rid == sid, "{body:?}: result id {rid} but stanza-id {sid}");
        }
        Ok(Outcome::Pass)
    })
}

fn occupant_id(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, got) = two_in_room(&cx).await?;
        if !room_has(&mut a, &room, NS_OCCUPANT_ID).await? {
            a.close().await;
            b.close().await;
            return Ok(Outcome::NotApplicable(format!(
                "{NS_OCCUPANT_ID} not advertised by the room"
            )));
        }
        let alice = format!("{room}/alice");
        let msg = async {
            a.say(&room, "who am I").await?;
            b.recv("alice's message", |e| {
                is_groupchat_body(e, &room, "who am I")
            })
            .await
        }
        .await;
        a.close().await;
        b.close().await;
        let msg = msg?;
        let oid = |e: &Element| {
            e.get_child("occupant-id", NS_OCCUPANT_ID)
                .and_then(|o| o.attr("id").map(str::to_string))
        };
        let Some(p) = got.iter().find(|e| presence_from(e, &alice)) else {
            bail!("no presence of {alice}");
        };
        let (x, y) = (oid(p), oid(&msg));
        ensure!(x.is_some(), "no occupant-id in {p}");
        ensure!(x == y, "occupant-id differs: presence {x:?}, message {y:?}");
        Ok(Outcome::Pass)
    })
}
