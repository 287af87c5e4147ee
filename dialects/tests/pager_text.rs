//! The pager's plain-text side: formatting of posts, notices and replies, body splitting,
//! `message/cpim` parsing, and the text SIP occupants get for room events.

use palaver_core::engine::{
    DeliveryFlags, OccupantPresence, PresenceKind, PrivateMessage, RoomEvent, RoomEventKind,
    StatusCodes,
};
use palaver_core::model::{Affiliation, Role, StoredMessage, UserId};
use palaver_dialects::pager::text::{
    event_text, format_history, format_members, format_post, format_rooms, format_topic, hhmm_utc,
    notice_banned, notice_joined, notice_kicked, notice_left, notice_nick_changed, notice_role,
    notice_topic, parse_cpim, split_body, Protocol, RoomView, CONTENT_TYPE,
};
use proptest::prelude::*;
use std::sync::Arc;

#[test]
fn posts_and_notices() {
    assert_eq!(CONTENT_TYPE, "text/plain; charset=UTF-8");
    assert_eq!(format_post("alice", "hi there"), "alice: hi there");
    assert_eq!(notice_joined("alice"), "*** alice has joined");
    assert_eq!(notice_left("alice"), "*** alice has left");
    assert_eq!(
        notice_nick_changed("alice", "al"),
        "*** alice is now known as al"
    );
    assert_eq!(notice_kicked("bob", None, None), "*** bob was kicked");
    assert_eq!(
        notice_kicked("bob", Some("alice"), Some("spam")),
        "*** bob was kicked by alice (spam)"
    );
    assert_eq!(
        notice_banned("bob", Some(""), Some("flood")),
        "*** bob was banned (flood)"
    );
    assert_eq!(
        notice_topic("alice", "Lunch"),
        "*** alice changed the topic to: Lunch"
    );
    assert_eq!(notice_topic("alice", ""), "*** alice cleared the topic");
    assert_eq!(notice_topic("", "x"), "*** The topic is now: x");
    assert_eq!(notice_topic("", ""), "*** The topic was cleared");
    assert_eq!(
        format_topic("alice", "Lunch"),
        "*** Topic: Lunch (set by alice)"
    );
    assert_eq!(format_topic("", "Lunch"), "*** Topic: Lunch");
    assert_eq!(format_topic("alice", ""), "*** No topic is set");
    assert_eq!(
        notice_role("bob", Role::Moderator),
        "*** bob is now a moderator"
    );
    assert_eq!(
        notice_role("bob", Role::Visitor),
        "*** bob is now a visitor (cannot post)"
    );
}

#[test]
fn members_list() {
    assert_eq!(format_members(&[]), "No one is in the room.");
    assert_eq!(
        format_members(&[("solo", Role::Participant, Protocol::Sip)]),
        "1 member:\nsolo (SIP)"
    );
    let list = format_members(&[
        ("carol", Role::Visitor, Protocol::Sip),
        ("Bob", Role::Participant, Protocol::Xmpp),
        ("alice", Role::Moderator, Protocol::Xmpp),
    ]);
    assert_eq!(
        list,
        "3 members:\nalice (moderator, XMPP)\nBob (XMPP)\ncarol (visitor, SIP)"
    );
}

#[test]
fn rooms_by_category() {
    assert_eq!(format_rooms(&[]), "No rooms.");
    let rooms = format_rooms(&[
        ("", "misc", "", 0),
        ("Work", "ops", "Operations", 2),
        ("Social", "lobby", "Main lobby", 5),
        ("Work", "dev", "dev", 1),
    ]);
    assert_eq!(
        rooms,
        "Rooms:\n[Social]\n  lobby (5) - Main lobby\n[Work]\n  dev (1)\n  ops (2) - Operations\n\
         [Other]\n  misc (0)"
    );
}

#[test]
fn history_lines() {
    assert_eq!(format_history(&[]), "No messages yet.");
    assert_eq!(
        format_history(&[("09:05", "alice", "hi"), ("09:06", "bob", "hello\nall")]),
        "[09:05] alice: hi\n[09:06] bob: hello\nall"
    );
    assert_eq!(hhmm_utc(0), "00:00");
    assert_eq!(hhmm_utc(((13 * 60 + 7) * 60 + 59) * 1000 + 999), "13:07");
    assert_eq!(hhmm_utc(86_400_000 * 20_000 + 60_000), "00:01");
    assert_eq!(hhmm_utc(-60_000), "23:59");
    assert_eq!(hhmm_utc(i64::MIN).len(), 5);
    assert_eq!(hhmm_utc(i64::MAX).len(), 5);
}

#[test]
fn split_prefers_line_breaks_then_spaces() {
    assert!(split_body("", 10).is_empty());
    assert_eq!(split_body("short", 10), vec!["short"]);
    assert_eq!(split_body("exactly10!", 10), vec!["exactly10!"]);
    assert_eq!(
        split_body("line one\nline two\nline three", 20),
        vec!["line one\nline two\n", "line three"]
    );
    assert_eq!(
        split_body("aaaa bbbb cccc dddd", 10),
        vec!["aaaa bbbb ", "cccc dddd"]
    );
    assert_eq!(split_body("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    // Multi-byte characters are never cut.
    assert_eq!(split_body("ééé", 5), vec!["éé", "é"]);
    assert_eq!(split_body("😀😀", 5), vec!["😀", "😀"]);
    // Tiny limits are raised so one character always fits.
    assert_eq!(split_body("😀a", 1), vec!["😀", "a"]);
    // CRLF stays together on a hard cut.
    assert_eq!(split_body("abc\r\ndef", 4), vec!["abc", "\r\n", "def"]);
    // A newline early in the window loses to a space late in it.
    assert_eq!(split_body("a\nbbbbbbb ccc", 10), vec!["a\nbbbbbbb ", "ccc"]);
}

#[test]
fn cpim_bodies() {
    let body = "From: MR SANDERS <im:piglet@100akerwood.com>\r\n\
                To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n\
                DateTime: 2000-12-13T13:40:00-08:00\r\n\
                Subject: the weather will be fine today\r\n\
                \r\n\
                Content-Type: text/plain; charset=utf-8\r\n\
                Content-ID: <1234567890@foo.com>\r\n\
                \r\n\
                Here is the text of my message.\r\n";
    assert_eq!(
        parse_cpim(body),
        Some((
            "text/plain; charset=utf-8",
            "Here is the text of my message.\r\n"
        ))
    );
    // LF line ends, folded header, lower-case name, empty content.
    let lf = "From: <sip:a@b>\nNS: MyFeatures <mid:MessageFeatures@id.foo.com>\n\
              \tcontinued\n\ncontent-type: application/im-iscomposing+xml\n\n";
    assert_eq!(parse_cpim(lf), Some(("application/im-iscomposing+xml", "")));
    // No inner Content-Type: text/plain.
    assert_eq!(
        parse_cpim("From: a\n\n\nhello"),
        Some(("text/plain", "hello"))
    );
    for bad in [
        "",
        "hello world",
        "From: a\r\n",
        "From: a\r\n\r\nContent-Type: text/plain\r\n",
        "\r\nContent-Type: text/plain\r\n\r\nx",
        "not a header\r\n\r\nContent-Type: text/plain\r\n\r\nx",
        " folded first\n\n\nx",
        "Bad Name: x\n\n\nx",
        ": x\n\n\nx",
        "From: a\n\nContent-Type:\n\nx",
    ] {
        assert_eq!(parse_cpim(bad), None, "{bad:?}");
    }
}

fn presence(nick: &str, kind: PresenceKind, codes: StatusCodes) -> OccupantPresence {
    OccupantPresence {
        nick: nick.into(),
        user: UserId(format!("{nick}@example.com")),
        resource: "r".into(),
        protocol: palaver_core::engine::ClientProtocol::Xmpp,
        role: Role::Participant,
        affiliation: Affiliation::None,
        occupant_id: "id".into(),
        kind,
        payload: None,
        codes,
        new_nick: None,
        actor: None,
        reason: None,
    }
}

fn ev(kind: RoomEventKind) -> Arc<RoomEvent> {
    RoomEvent::new("lobby".into(), kind)
}

fn pres(p: OccupantPresence) -> Arc<RoomEvent> {
    ev(RoomEventKind::Presence(p))
}

fn message(nick: &str, body: &str, ts: i64, history: bool) -> Arc<RoomEvent> {
    ev(RoomEventKind::Message {
        message: Arc::new(StoredMessage {
            room_id: 1,
            seq: 1,
            stanza_id: "s".into(),
            origin_id: "o".into(),
            sender: UserId(format!("{nick}@example.com")),
            nick: nick.into(),
            occupant_id: "id".into(),
            body: body.into(),
            extra: None,
            ts,
        }),
        history,
    })
}

const OTHER: DeliveryFlags = DeliveryFlags {
    is_self: false,
    sees_real_address: false,
};
const SELF: DeliveryFlags = DeliveryFlags {
    is_self: true,
    sees_real_address: true,
};

fn self_code() -> StatusCodes {
    StatusCodes::empty().with(StatusCodes::SELF)
}

#[test]
fn event_text_for_every_event_kind() {
    use PresenceKind::{Available, Unavailable};
    let none = StatusCodes::empty();
    let text = |e: &Arc<RoomEvent>, f| event_text(e, f);
    // Presence.
    assert_eq!(text(&pres(presence("bob", Available, none)), OTHER), None);
    assert_eq!(text(&pres(presence("me", Available, none)), SELF), None);
    assert_eq!(
        text(&pres(presence("me", Available, self_code())), SELF).as_deref(),
        Some("*** You have joined lobby as me")
    );
    let created = self_code().with(StatusCodes::CREATED);
    assert_eq!(
        text(&pres(presence("me", Available, created)), SELF).as_deref(),
        Some("*** You created the room lobby and joined as me")
    );
    assert_eq!(
        text(&pres(presence("bob", Unavailable, none)), OTHER).as_deref(),
        Some("*** bob has left")
    );
    assert_eq!(
        text(&pres(presence("me", Unavailable, none)), SELF).as_deref(),
        Some("*** You have left lobby")
    );
    let mut nick = presence("bob", Unavailable, none.with(StatusCodes::NICK_CHANGED));
    nick.new_nick = Some("robert".into());
    assert_eq!(
        text(&pres(nick.clone()), OTHER).as_deref(),
        Some("*** bob is now known as robert")
    );
    assert_eq!(
        text(&pres(nick), SELF).as_deref(),
        Some("*** You are now known as robert")
    );
    let mut kick = presence("bob", Unavailable, none.with(StatusCodes::KICKED));
    kick.actor = Some("alice".into());
    kick.reason = Some("spam".into());
    assert_eq!(
        text(&pres(kick.clone()), OTHER).as_deref(),
        Some("*** bob was kicked by alice (spam)")
    );
    assert_eq!(
        text(&pres(kick), SELF).as_deref(),
        Some("*** You were kicked from lobby by alice (spam)")
    );
    let ban = presence("bob", Unavailable, none.with(StatusCodes::BANNED));
    assert_eq!(
        text(&pres(ban.clone()), OTHER).as_deref(),
        Some("*** bob was banned")
    );
    assert_eq!(
        text(&pres(ban), SELF).as_deref(),
        Some("*** You were banned from lobby")
    );
    let shut = presence("bob", Unavailable, self_code().with(StatusCodes::SHUTDOWN));
    assert_eq!(
        text(&pres(shut), SELF).as_deref(),
        Some("*** You were removed from lobby (the server is shutting down)")
    );
    let members = presence("bob", Unavailable, none.with(StatusCodes::MEMBERS_ONLY));
    assert_eq!(
        text(&pres(members), OTHER).as_deref(),
        Some("*** bob was removed from the room (the room is now members-only)")
    );
    let aff = presence(
        "bob",
        Unavailable,
        none.with(StatusCodes::AFFILIATION_CHANGED),
    );
    assert_eq!(
        text(&pres(aff.clone()), OTHER).as_deref(),
        Some("*** bob was removed from the room (affiliation changed)")
    );
    assert_eq!(
        text(&pres(aff), SELF).as_deref(),
        Some("*** You were removed from lobby (your affiliation changed)")
    );
    // Messages.
    assert_eq!(
        text(&message("alice", "hi", 0, false), OTHER).as_deref(),
        Some("alice: hi")
    );
    assert_eq!(
        text(
            &message("alice", "old", 3_600_000 * 10 + 60_000 * 5, true),
            OTHER
        )
        .as_deref(),
        Some("[10:05] alice: old")
    );
    // Subject, private, config, destroyed, notice.
    let subject = |nick: &str, subject: &str| {
        ev(RoomEventKind::Subject {
            nick: nick.into(),
            subject: subject.into(),
        })
    };
    assert_eq!(
        text(&subject("alice", "Lunch"), OTHER).as_deref(),
        Some("*** Topic: Lunch (set by alice)")
    );
    assert_eq!(text(&subject("", ""), OTHER), None);
    let pm = ev(RoomEventKind::Private(PrivateMessage {
        from_nick: "alice".into(),
        from_user: UserId("alice@example.com".into()),
        from_occupant_id: "id".into(),
        body: "psst".into(),
        extra: None,
        origin_id: "o".into(),
    }));
    assert_eq!(text(&pm, OTHER).as_deref(), Some("alice (private): psst"));
    let cfg = ev(RoomEventKind::ConfigChanged {
        codes: StatusCodes::empty()
            .with(StatusCodes::CONFIG_CHANGED)
            .with(StatusCodes::NOW_NON_ANONYMOUS)
            .with(StatusCodes::UNLOGGED),
    });
    assert_eq!(
        text(&cfg, OTHER).as_deref(),
        Some(
            "*** The room configuration changed: everyone can now see occupants' addresses, \
             the room is no longer logged"
        )
    );
    let plain_cfg = ev(RoomEventKind::ConfigChanged {
        codes: StatusCodes::empty().with(StatusCodes::CONFIG_CHANGED),
    });
    assert_eq!(
        text(&plain_cfg, OTHER).as_deref(),
        Some("*** The room configuration changed")
    );
    let destroyed = ev(RoomEventKind::Destroyed {
        reason: "moving".into(),
        alternate: Some("sip:new@conference.example.com".into()),
    });
    assert_eq!(
        text(&destroyed, SELF).as_deref(),
        Some(
            "*** The room lobby was destroyed (moving); try sip:new@conference.example.com instead"
        )
    );
    let quiet = ev(RoomEventKind::Destroyed {
        reason: String::new(),
        alternate: None,
    });
    assert_eq!(
        text(&quiet, SELF).as_deref(),
        Some("*** The room lobby was destroyed")
    );
    let notice = ev(RoomEventKind::Notice {
        text: "Subject set".into(),
    });
    assert_eq!(text(&notice, SELF).as_deref(), Some("*** Subject set"));
}

#[test]
fn room_view_follows_a_join_and_the_roster() {
    use PresenceKind::{Available, Unavailable};
    let none = StatusCodes::empty();
    let mut view = RoomView::new();
    let mut feed = |e: Arc<RoomEvent>, f| view.event_text(&e, f);
    // Join sequence: others' presence, our own, history, subject.
    assert_eq!(feed(pres(presence("bob", Available, none)), OTHER), None);
    assert_eq!(feed(pres(presence("alice", Available, none)), OTHER), None);
    assert_eq!(
        feed(pres(presence("me", Available, self_code())), SELF).as_deref(),
        Some("*** You have joined lobby as me\nAlso here: alice, bob")
    );
    assert_eq!(
        feed(message("bob", "earlier", 0, true), OTHER).as_deref(),
        Some("[00:00] bob: earlier")
    );
    let subject = |nick: &str, s: &str| {
        ev(RoomEventKind::Subject {
            nick: nick.into(),
            subject: s.into(),
        })
    };
    assert_eq!(
        feed(subject("bob", "Lunch"), OTHER).as_deref(),
        Some("*** Topic: Lunch (set by bob)")
    );
    // Live: a join, a presence update (silent), a role change, a post, our own post (silent).
    assert_eq!(
        feed(pres(presence("carol", Available, none)), OTHER).as_deref(),
        Some("*** carol has joined")
    );
    assert_eq!(feed(pres(presence("carol", Available, none)), OTHER), None);
    let mut promoted = presence("carol", Available, none);
    promoted.role = Role::Moderator;
    assert_eq!(
        feed(pres(promoted), OTHER).as_deref(),
        Some("*** carol is now a moderator")
    );
    assert_eq!(
        feed(message("carol", "hello", 0, false), OTHER).as_deref(),
        Some("carol: hello")
    );
    assert_eq!(feed(message("me", "mine", 0, false), OTHER), None);
    assert_eq!(
        feed(subject("carol", "Dinner"), OTHER).as_deref(),
        Some("*** carol changed the topic to: Dinner")
    );
    // The room moved to another pool node and took us back: our presence and the same
    // subject again, silent.
    assert_eq!(
        feed(pres(presence("me", Available, self_code())), SELF),
        None
    );
    assert_eq!(feed(subject("carol", "Dinner"), OTHER), None);
    // A nick change: the unavailable 303 speaks, the new nick's presence is silent.
    let mut rename = presence("bob", Unavailable, none.with(StatusCodes::NICK_CHANGED));
    rename.new_nick = Some("robert".into());
    assert_eq!(
        feed(pres(rename), OTHER).as_deref(),
        Some("*** bob is now known as robert")
    );
    assert_eq!(feed(pres(presence("robert", Available, none)), OTHER), None);
    // Our own nick change and role change.
    let mut me_rename = presence("me", Unavailable, none.with(StatusCodes::NICK_CHANGED));
    me_rename.new_nick = Some("me2".into());
    assert_eq!(
        feed(pres(me_rename), SELF).as_deref(),
        Some("*** You are now known as me2")
    );
    assert_eq!(feed(pres(presence("me2", Available, none)), SELF), None);
    assert_eq!(feed(message("me2", "mine", 0, false), OTHER), None);
    let mut voiceless = presence("me2", Available, none);
    voiceless.role = Role::Visitor;
    assert_eq!(
        feed(pres(voiceless), SELF).as_deref(),
        Some("*** You are now a visitor and cannot post")
    );
    // Someone leaves; we leave.
    assert_eq!(
        feed(pres(presence("alice", Unavailable, none)), OTHER).as_deref(),
        Some("*** alice has left")
    );
    assert_eq!(
        feed(pres(presence("me2", Unavailable, none)), SELF).as_deref(),
        Some("*** You have left lobby")
    );
    assert!(!view.is_joined());
    assert_eq!(view.occupants().count(), 0);
}

#[test]
fn room_view_alone_and_empty_topic() {
    let mut view = RoomView::new();
    let me = pres(presence("me", PresenceKind::Available, self_code()));
    assert_eq!(
        view.event_text(&me, SELF).as_deref(),
        Some("*** You have joined lobby as me\nNo one else is here.")
    );
    assert_eq!(view.nick(), Some("me"));
    assert_eq!(
        view.occupants().collect::<Vec<_>>(),
        vec![("me", Role::Participant)]
    );
    let empty = ev(RoomEventKind::Subject {
        nick: String::new(),
        subject: String::new(),
    });
    assert_eq!(view.event_text(&empty, OTHER), None);
    // A later clearing is announced.
    let cleared = ev(RoomEventKind::Subject {
        nick: "me".into(),
        subject: String::new(),
    });
    assert_eq!(
        view.event_text(&cleared, OTHER).as_deref(),
        Some("*** me cleared the topic")
    );
    let destroyed = ev(RoomEventKind::Destroyed {
        reason: String::new(),
        alternate: None,
    });
    assert!(view.event_text(&destroyed, SELF).is_some());
    assert!(!view.is_joined());
}

proptest! {
    #[test]
    fn split_never_exceeds_and_rejoins(text in any::<String>(), max in 4usize..64) {
        let parts = split_body(&text, max);
        for part in &parts {
            prop_assert!(part.len() <= max, "{} > {}", part.len(), max);
            prop_assert!(!part.is_empty());
        }
        prop_assert_eq!(parts.concat(), text);
    }

    #[test]
    fn split_with_lines_and_tiny_limits(text in "[a-z \n\r😀é]{0,200}", max in 0usize..12) {
        let parts = split_body(&text, max);
        for part in &parts {
            prop_assert!(part.len() <= max.max(4));
        }
        prop_assert_eq!(parts.concat(), text);
    }

    #[test]
    fn cpim_never_panics(body in any::<String>()) {
        let _ = parse_cpim(&body);
    }

    #[test]
    fn cpim_round_trip(content in any::<String>(), ctype in "[a-z]{1,8}/[a-z+.-]{1,12}") {
        let body = format!("From: <sip:a@b>\r\nTo: <sip:c@d>\r\n\r\nContent-Type: {ctype}\r\n\r\n{content}");
        prop_assert_eq!(parse_cpim(&body), Some((ctype.as_str(), content.as_str())));
    }
}
