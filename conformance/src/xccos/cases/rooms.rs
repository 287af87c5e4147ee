//! Joining rooms (`cmd:join`, `cmd:bjoin`: members as `uib` plus `aib` id lists), leaving
//! them (`cmd:part`) and the notices other occupants get (`ntc:join`, `ntc:part`).

use super::info::search;
use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::xccos::envelope::{chanib, chanid, data_children, is_notice, resp_code, show};
use crate::xccos::session::{close_pair, join_pair, open_pair, XSession};
use crate::xccos::{XCase, XCtx};
use anyhow::{ensure, Context as _, Result};
use palaver_dialects::xmpp::element::Element;

pub fn cases() -> Vec<XCase> {
    vec![
        XCase {
            id: "xccos.join.members",
            clause: "MS-XCCOSIP (cmd:join)",
            description: "MUST: rpl:join 200 names the channel (data/chanib/@uri) and its occupants: every aib id is a data/uib, at least the two present",
            run: join_members,
        },
        XCase {
            id: "xccos.join.self-listed",
            clause: "MS-XCCOSIP (cmd:join)",
            description: "MUST: the joining user is among the members of rpl:join by its own SIP address",
            run: join_self,
        },
        XCase {
            id: "xccos.join.again-ok",
            clause: "MS-XCCOSIP (cmd:join)",
            description: "SHOULD: joining a room the session is already in is answered 200 again with the room (pidgin-sipe's rejoin)",
            run: join_again,
        },
        XCase {
            id: "xccos.join.unknown-channel-error",
            clause: "MS-XCCOSIP (cmd:join)",
            description: "MUST: joining a channel that does not exist gets rpl:join with a code other than 200; the session goes on",
            run: join_unknown,
        },
        XCase {
            id: "xccos.bjoin.one-room",
            clause: "MS-XCCOSIP (cmd:bjoin)",
            description: "MUST: cmd:bjoin of the room is answered rpl:bjoin 200 naming it in data/chanib",
            run: bjoin_one,
        },
        XCase {
            id: "xccos.bjoin.two-rooms",
            clause: "MS-XCCOSIP (cmd:bjoin)",
            description: "MUST: cmd:bjoin of two rooms names both in rpl:bjoin (N-A with a single public room)",
            run: bjoin_two,
        },
        XCase {
            id: "xccos.part.reply",
            clause: "MS-XCCOSIP (cmd:part)",
            description: "MUST: cmd:part is answered rpl:part 200 with data/chanib/@uri of the room",
            run: part_reply,
        },
        XCase {
            id: "xccos.ntc.join",
            clause: "MS-XCCOSIP (ntc:join)",
            description: "MUST: an occupant gets ntc:join with data/uib[@uri]/aib[@domain,@value] naming the room when another user joins",
            run: ntc_join,
        },
        XCase {
            id: "xccos.ntc.part",
            clause: "MS-XCCOSIP (ntc:part)",
            description: "MUST: an occupant gets ntc:part with data/chanib[@uri=room]/uib[@uri] when another user parts",
            run: ntc_part,
        },
        XCase {
            id: "xccos.ntc.part-on-bye",
            clause: "MS-XCCOSIP (ntc:part)",
            description: "SHOULD: an occupant whose session ends with BYE leaves its rooms: the others get ntc:part",
            run: ntc_part_bye,
        },
    ]
}

/// (`uib` id, uri) pairs.
type Uibs = Vec<(String, String)>;

/// The `uib` entries of a join reply and the ids the room's `aib` entries list.
fn members(rpl: &Element, chan: &str) -> Result<(Uibs, Vec<String>)> {
    let uibs: Uibs = data_children(rpl, "uib")
        .iter()
        .filter_map(|u| Some((u.attr("id")?.to_string(), u.attr("uri")?.to_string())))
        .collect();
    let room = data_children(rpl, "chanib")
        .into_iter()
        .find(|c| c.attr("uri").is_some_and(|u| u.eq_ignore_ascii_case(chan)))
        .with_context(|| format!("no data/chanib for {chan}: {}", show(rpl)))?;
    let mut ids: Vec<String> = room
        .children()
        .filter(|a| a.name == "aib")
        .filter_map(|a| a.attr("value"))
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    Ok((uibs, ids))
}

fn join_members(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b) = open_pair(&cx).await?;
        let room = cx.config.room.clone();
        let got = async {
            a.join(&room).await?;
            b.join(&room).await
        }
        .await;
        close_pair(a, b).await;
        let rpl = got?;
        let (uibs, ids) = members(&rpl, &cx.config.chan())?;
        for id in &ids {
            ensure!(
                uibs.iter().any(|(u, _)| u == id),
                "aib lists id {id} with no data/uib: {}",
                show(&rpl)
            );
        }
        ensure!(
            ids.len() >= 2,
            "fewer than two members listed: {}",
            show(&rpl)
        );
        Ok(Outcome::Pass)
    })
}

fn join_self(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut a = XSession::open(&cx, 0).await?;
        let got = a.join(&cx.config.room).await;
        a.close().await;
        let rpl = got?;
        let (uibs, ids) = members(&rpl, &cx.config.chan())?;
        let me = cx.user(0).aor();
        let mine = uibs
            .iter()
            .find(|(_, uri)| uri.eq_ignore_ascii_case(&me))
            .with_context(|| format!("{me} not among the uib entries: {}", show(&rpl)))?;
        ensure!(
            ids.contains(&mine.0),
            "{me} (id {}) not in an aib of the room",
            mine.0
        );
        Ok(Outcome::Pass)
    })
}

fn join_again(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut a = XSession::open(&cx, 0).await?;
        let got = async {
            a.join(&cx.config.room).await?;
            a.join(&cx.config.room).await
        }
        .await;
        a.close().await;
        let rpl = got?;
        members(&rpl, &cx.config.chan())?;
        Ok(Outcome::Pass)
    })
}

fn join_unknown(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut a = XSession::open(&cx, 0).await?;
        let value = format!("no-such-room-{:012x}", rand::random::<u64>() >> 16);
        let domain = cx.config.domain.clone();
        let got = async {
            let rpl = a.ask("join", &chanid(0, &domain, &value)).await?;
            let after = a.ask_ok("getserverinfo", "").await;
            Ok::<_, anyhow::Error>((rpl, after))
        }
        .await;
        a.close().await;
        let (rpl, after) = got?;
        ensure!(
            resp_code(&rpl) != 200,
            "joined a channel that does not exist: {}",
            show(&rpl)
        );
        after.context("the session after the refused join")?;
        Ok(Outcome::Pass)
    })
}

fn bjoin_one(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut a = XSession::open(&cx, 0).await?;
        let domain = cx.config.domain.clone();
        let got = a
            .ask_ok("bjoin", &chanid(0, &domain, &cx.config.room))
            .await;
        a.close().await;
        let rpl = got?;
        members(&rpl, &cx.config.chan())?;
        Ok(Outcome::Pass)
    })
}

fn bjoin_two(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut a = XSession::open(&cx, 0).await?;
        let chan = cx.config.chan();
        let got: Result<Option<(Element, String)>> = async {
            let found = search(&mut a, "").await?;
            let Some(other) = found
                .iter()
                .filter_map(|c| c.attr("uri"))
                .find(|u| !u.eq_ignore_ascii_case(&chan))
                .map(str::to_string)
            else {
                return Ok(None);
            };
            let data = format!("{}{}", chanib(&chan), chanib(&other));
            Ok(Some((a.ask_ok("bjoin", &data).await?, other)))
        }
        .await;
        a.close().await;
        let Some((rpl, other)) = got? else {
            return Ok(Outcome::NotApplicable(
                "no second public room listed".into(),
            ));
        };
        members(&rpl, &chan)?;
        members(&rpl, &other)?;
        Ok(Outcome::Pass)
    })
}

fn part_reply(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut a = XSession::open(&cx, 0).await?;
        let chan = cx.config.chan();
        let got = async {
            a.join(&cx.config.room).await?;
            a.ask_ok("part", &chanib(&chan)).await
        }
        .await;
        a.close().await;
        let rpl = got?;
        ensure!(
            data_children(&rpl, "chanib")
                .iter()
                .any(|c| c.attr("uri").is_some_and(|u| u.eq_ignore_ascii_case(&chan))),
            "rpl:part without data/chanib/@uri {chan}: {}",
            show(&rpl)
        );
        Ok(Outcome::Pass)
    })
}

/// Whether `e` is an `ntc:join` naming `room` on `domain` and someone other than `me`.
fn join_notice(e: &Element, domain: &str, room: &str, me: &str) -> bool {
    is_notice(e, "join")
        && data_children(e, "uib").iter().any(|u| {
            u.attr("uri")
                .is_some_and(|x| !x.is_empty() && !x.eq_ignore_ascii_case(me))
                && u.children().any(|a| {
                    a.name == "aib"
                        && a.attr("domain")
                            .is_some_and(|d| d.eq_ignore_ascii_case(domain))
                        && a.attr("value")
                            .is_some_and(|v| v.eq_ignore_ascii_case(room))
                })
        })
}

/// Whether `e` is an `ntc:part` of `chan` naming someone other than `me`.
fn part_notice(e: &Element, chan: &str, me: &str) -> bool {
    is_notice(e, "part")
        && data_children(e, "chanib").iter().any(|c| {
            c.attr("uri").is_some_and(|u| u.eq_ignore_ascii_case(chan))
                && c.children().any(|u| {
                    u.name == "uib"
                        && u.attr("uri")
                            .is_some_and(|x| !x.is_empty() && !x.eq_ignore_ascii_case(me))
                })
        })
}

fn ntc_join(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b) = open_pair(&cx).await?;
        let (domain, room) = (cx.config.domain.clone(), cx.config.room.clone());
        let me = cx.user(0).aor();
        let got = async {
            join_pair(&mut a, &mut b, &room).await?;
            a.wait("ntc:join of bob", |e| join_notice(e, &domain, &room, &me))
                .await
        }
        .await;
        close_pair(a, b).await;
        got?;
        Ok(Outcome::Pass)
    })
}

fn ntc_part(cx: XCtx) -> CaseFuture {
    boxed(part_noticed(cx, false))
}

fn ntc_part_bye(cx: XCtx) -> CaseFuture {
    boxed(part_noticed(cx, true))
}

/// alice and bob join the room, bob leaves it (`cmd:part`, or his BYE when `by_bye`) and
/// alice must get the `ntc:part`.
async fn part_noticed(cx: XCtx, by_bye: bool) -> Result<Outcome> {
    let (mut a, b) = open_pair(&cx).await?;
    let chan = cx.config.chan();
    let me = cx.user(0).aor();
    let mut b = Some(b);
    let got = async {
        let bob = b.as_mut().context("bob's session")?;
        join_pair(&mut a, bob, &cx.config.room).await?;
        let what = if by_bye {
            if let Some(bob) = b.take() {
                bob.close().await;
            }
            "ntc:part after bob's BYE"
        } else {
            bob.ask_ok("part", &chanib(&chan)).await?;
            "ntc:part of bob"
        };
        a.wait(what, |e| part_notice(e, &chan, &me)).await
    }
    .await;
    a.close().await;
    if let Some(bob) = b {
        bob.close().await;
    }
    got?;
    Ok(Outcome::Pass)
}
