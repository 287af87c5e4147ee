//! Posts across protocols (XEP-0045 §7.4 on the XMPP side, RFC 3428 MESSAGE on the SIP side):
//! XMPP to SIP with the author's nick, SIP to XMPP from room/nick, each delivered once, XML
//! special characters and non-ASCII UTF-8 kept both ways; private messages to a SIP
//! occupant (§7.5).

use super::{CrossCase, CrossCtx, Scene};
use crate::cross::pager::Inbound;
use crate::cross::room::OWNER;
use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::suite::xml::{attr, is_groupchat_body};
use anyhow::{ensure, Result};
use palaver_dialects::xmpp::element::Element;

pub fn cases() -> Vec<CrossCase> {
    vec![
        CrossCase {
            id: "cross.message.xmpp-to-sip",
            clause: "XEP-0045 §7.4; RFC 3428 §4",
            description: "MUST: an XMPP groupchat message reaches the SIP occupant as a text/plain (or message/cpim) MESSAGE from the room URI carrying the author's nick and the text",
            needs_third: false,
            run: xmpp_to_sip,
        },
        CrossCase {
            id: "cross.message.sip-to-xmpp",
            clause: "RFC 3428 §7; XEP-0045 §7.4",
            description: "MUST: a SIP post answered 2xx reaches XMPP occupants as type groupchat from room/nick of the SIP occupant with the text",
            needs_third: false,
            run: sip_to_xmpp,
        },
        CrossCase {
            id: "cross.message.sip-post-once",
            clause: "XEP-0045 §7.4; pager convention",
            description: "MUST: XMPP occupants get a SIP post exactly once, and the SIP author gets it back at most once",
            needs_third: false,
            run: sip_post_once,
        },
        CrossCase {
            id: "cross.private.xmpp-to-sip",
            clause: "XEP-0045 §7.5; pager convention",
            description: "MUST: a private message (type chat) to room/nick of the SIP occupant reaches it as a MESSAGE containing the text",
            needs_third: false,
            run: private_to_sip,
        },
        CrossCase {
            id: "cross.message.utf8-markup",
            clause: "XEP-0045 §7.4; RFC 3261 §7.4.1",
            description: "MUST: text with XML special characters and non-ASCII UTF-8 arrives unchanged XMPP to SIP and SIP to XMPP",
            needs_third: false,
            run: utf8_markup,
        },
    ]
}

/// Text with XML special characters, quotes and non-ASCII UTF-8 (2-, 3- and 4-byte).
const TRICKY: &str = "<b>&amp; \"quoted\" 'x' é ✓ 日本 🎉</b>";

/// The owner posts `text` over XMPP; returns the MESSAGE the SIP occupant gets with it.
async fn owner_to_sip(s: &mut Scene, text: &str) -> Result<Inbound> {
    let r = s.owner.say(&s.room.jid, text).await?;
    ensure!(r.attr("type") != Some("error"), "posting failed: {r}");
    let wanted = text.to_string();
    s.sip
        .recv(&s.room, "the XMPP post", move |m| m.body.contains(&wanted))
        .await
}

/// The SIP occupant posts `text` (2xx required); returns the groupchat the owner gets.
async fn sip_to_owner(s: &mut Scene, text: &str) -> Result<Element> {
    s.sip.send_ok(&s.room, text).await?;
    let room = s.room.jid.clone();
    s.owner
        .recv("the SIP post as groupchat", |e| {
            is_groupchat_body(e, &room, text)
        })
        .await
}

fn xmpp_to_sip(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let text = cx.unique("from xmpp");
        with_scene!(Scene::open(&cx, &[]), |s| {
            let m = owner_to_sip(s, &text).await?;
            let ctype = m.content_type.as_deref().unwrap_or_default();
            ensure!(
                ctype.eq_ignore_ascii_case("text/plain")
                    || ctype.eq_ignore_ascii_case("message/cpim"),
                "Content-Type {ctype:?}, expected text/plain or message/cpim"
            );
            let named = m.display.as_deref() == Some(OWNER) || m.body.starts_with(OWNER);
            ensure!(
                named,
                "the author's nick {OWNER} is neither the From display name nor the start of the body: {:?}",
                m.body
            );
            Ok(Outcome::Pass)
        })
    })
}

fn sip_to_xmpp(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let text = cx.unique("from sip");
        with_scene!(Scene::open(&cx, &[]), |s| {
            let m = sip_to_owner(s, &text).await?;
            let from = s.room.occupant(&s.nick);
            ensure!(
                m.attr("from") == Some(from.as_str()),
                "not from {from}: {m}"
            );
            Ok(Outcome::Pass)
        })
    })
}

fn sip_post_once(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let text = cx.unique("once");
        let marker = cx.unique("marker");
        with_scene!(Scene::open(&cx, &[]), |s| {
            sip_to_owner(s, &text).await?;
            // The owner's next post is a marker: what came before it has all arrived.
            let before = s.owner_marker(&marker).await?;
            let room = s.room.jid.clone();
            let copies = before
                .iter()
                .filter(|e| is_groupchat_body(e, &room, &text))
                .count();
            ensure!(
                copies == 0,
                "the XMPP occupant got the SIP post {} times",
                copies + 1
            );
            let echoes = s.sip.count_until(&s.room, &text, &marker).await?;
            ensure!(echoes <= 1, "the SIP author got its post {echoes} times");
            Ok(Outcome::Pass)
        })
    })
}

fn private_to_sip(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let text = cx.unique("private");
        with_scene!(Scene::open(&cx, &[]), |s| {
            let to = s.room.occupant(&s.nick);
            s.owner
                .send(&format!(
                    "<message type='chat' to='{}'><body>{}</body></message>",
                    attr(&to),
                    attr(&text)
                ))
                .await?;
            s.sip
                .recv(&s.room, "the private message", |m| m.body.contains(&text))
                .await?;
            Ok(Outcome::Pass)
        })
    })
}

fn utf8_markup(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let to_sip = format!("{} {TRICKY}", cx.unique("x2s"));
        let to_xmpp = format!("{} {TRICKY}", cx.unique("s2x"));
        with_scene!(Scene::open(&cx, &[]), |s| {
            owner_to_sip(s, &to_sip).await?;
            sip_to_owner(s, &to_xmpp).await?;
            Ok(Outcome::Pass)
        })
    })
}
