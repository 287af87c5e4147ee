//! The pager `#command` parser: a table of every command and alias, every error, help text
//! coverage, and no panics on arbitrary input.

use palaver_dialects::pager::command::{
    command_words, help_text, parse_command, CommandError, PagerCommand, MAX_HISTORY,
};
use proptest::prelude::*;
use PagerCommand as C;

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn parses_every_command_and_alias() {
    let table: Vec<(&str, PagerCommand)> = vec![
        ("#join", C::Join { nick: None }),
        (
            "#join alice",
            C::Join {
                nick: Some(s("alice")),
            },
        ),
        (
            "#join   alice smith  \r\n",
            C::Join {
                nick: Some(s("alice smith")),
            },
        ),
        (
            "#join \"  bob \"",
            C::Join {
                nick: Some(s("bob")),
            },
        ),
        (
            "#JOIN Alice",
            C::Join {
                nick: Some(s("Alice")),
            },
        ),
        ("#join\r\n", C::Join { nick: None }),
        (
            "#join\tcarol",
            C::Join {
                nick: Some(s("carol")),
            },
        ),
        ("#leave", C::Leave),
        ("#exit", C::Leave),
        ("#Exit\r\n", C::Leave),
        ("#nick alicia", C::Nick(s("alicia"))),
        ("#nick Zoë 😀", C::Nick(s("Zoë 😀"))),
        ("#members", C::Members),
        ("#who", C::Members),
        ("#list", C::Members),
        ("#WHO", C::Members),
        ("#topic", C::Topic(None)),
        ("#topic Lunch at noon", C::Topic(Some(s("Lunch at noon")))),
        (
            "#subject  new\nlines ok ",
            C::Topic(Some(s("new\nlines ok"))),
        ),
        ("#history", C::History(None)),
        ("#history 20", C::History(Some(20))),
        ("#history 007", C::History(Some(7))),
        ("#history 100000", C::History(Some(MAX_HISTORY))),
        (
            "#history 99999999999999999999",
            C::History(Some(MAX_HISTORY)),
        ),
        (
            "#invite sip:bob@example.com",
            C::Invite(s("sip:bob@example.com")),
        ),
        (
            "#invite xmpp:bob@example.com",
            C::Invite(s("xmpp:bob@example.com")),
        ),
        (
            "#invite sips:bob@example.com;transport=tls",
            C::Invite(s("sips:bob@example.com;transport=tls")),
        ),
        (
            "#invite <SIP:bob@example.com>",
            C::Invite(s("SIP:bob@example.com")),
        ),
        (
            "#invite bob@example.com",
            C::Invite(s("sip:bob@example.com")),
        ),
        (
            "#add sip:bob@example.com",
            C::Invite(s("sip:bob@example.com")),
        ),
        ("#accept", C::Accept),
        ("#reject", C::Reject),
        ("#deny", C::Reject),
        ("#rooms", C::Rooms),
        ("#files", C::Files),
        (
            "#create dev",
            C::Create {
                name: s("dev"),
                private: false,
                category: None,
            },
        ),
        (
            "#create dev private",
            C::Create {
                name: s("dev"),
                private: true,
                category: None,
            },
        ),
        (
            "#create dev PRIVATE Engineering",
            C::Create {
                name: s("dev"),
                private: true,
                category: Some(s("Engineering")),
            },
        ),
        (
            "#create dev Big  Team private",
            C::Create {
                name: s("dev"),
                private: true,
                category: Some(s("Big Team")),
            },
        ),
        (
            "#create dev public Work",
            C::Create {
                name: s("dev"),
                private: false,
                category: Some(s("Work")),
            },
        ),
        (
            "#create dev Work",
            C::Create {
                name: s("dev"),
                private: false,
                category: Some(s("Work")),
            },
        ),
        ("#destroy", C::Destroy),
        (
            "#remove bob",
            C::Remove {
                nick: s("bob"),
                reason: None,
            },
        ),
        (
            "#remove bob spamming the room",
            C::Remove {
                nick: s("bob"),
                reason: Some(s("spamming the room")),
            },
        ),
        (
            "#remove \"bob smith\" rude",
            C::Remove {
                nick: s("bob smith"),
                reason: Some(s("rude")),
            },
        ),
        (
            "#kick bob",
            C::Remove {
                nick: s("bob"),
                reason: None,
            },
        ),
        ("#help", C::Help),
        ("#help join", C::Help),
        ("#HeLp", C::Help),
        ("hello", C::Post(s("hello"))),
        ("hello\r\n", C::Post(s("hello"))),
        ("  indented #join\n\n", C::Post(s("  indented #join"))),
        ("two\nlines \r\n", C::Post(s("two\nlines "))),
        ("##join", C::Post(s("#join"))),
        ("##", C::Post(s("#"))),
        ("## hashtag\r\n", C::Post(s("# hashtag"))),
        ("###", C::Post(s("##"))),
    ];
    for (body, want) in table {
        assert_eq!(parse_command(body), Ok(want), "body {body:?}");
    }
}

fn bad(body: &str) -> String {
    match parse_command(body) {
        Err(CommandError::BadArgument(msg)) => msg,
        other => panic!("{body:?}: expected BadArgument, got {other:?}"),
    }
}

#[test]
fn rejects_bad_arguments_with_helpful_messages() {
    let table: &[(&str, &str)] = &[
        ("#nick", "#nick <name>"),
        ("#nick   \r\n", "#nick <name>"),
        ("#join \"\"", "empty"),
        ("#join \"bob", "closing quote"),
        ("#join \"bob\" extra", "after the quoted"),
        ("#nick a\u{7}b", "control"),
        ("#history abc", "#history [n]"),
        ("#history -5", "#history [n]"),
        ("#history 0", "at least one"),
        ("#history 1 2", "#history [n]"),
        ("#invite", "#invite <"),
        ("#invite bob", "full address"),
        ("#invite sip:", "full address"),
        ("#invite sip:@example.com", "full address"),
        ("#invite sip:bob@", "full address"),
        ("#invite mailto:bob@example.com", "sip:, sips: and xmpp:"),
        ("#invite sip:bob@example.com lobby", "one address"),
        ("#invite <sip:bob@example.com", "full address"),
        ("#create", "room name"),
        ("#create a/b", "room name"),
        ("#create a@b", "room name"),
        ("#create a\u{1}b", "room name"),
        ("#remove", "nickname"),
        ("#remove \"\" x", "nickname"),
        ("#remove \"bob", "closing quote"),
        ("#leave lobby", "takes no arguments"),
        ("#exit now", "#leave"),
        ("#members x", "takes no arguments"),
        ("#who x", "#members"),
        ("#list x", "#members"),
        ("#accept x", "takes no arguments"),
        ("#reject x", "takes no arguments"),
        ("#deny x", "#reject"),
        ("#rooms x", "takes no arguments"),
        ("#destroy lobby", "takes no arguments"),
        ("#topic a\u{0}b", "control"),
        ("#remove bob a\u{1b}b", "control"),
    ];
    for (body, needle) in table {
        let msg = bad(body);
        assert!(msg.contains(needle), "{body:?}: {msg:?} lacks {needle:?}");
    }
    let long = "n".repeat(65);
    assert!(bad(&format!("#nick {long}")).contains("too long"));
    assert_eq!(
        parse_command(&format!("#nick {}", "é".repeat(64))),
        Ok(C::Nick("é".repeat(64)))
    );
    assert!(bad(&format!("#topic {}", "t".repeat(1025))).contains("too long"));
    assert!(bad(&format!("#remove bob {}", "r".repeat(257))).contains("too long"));
    assert!(bad(&format!("#create {}", "r".repeat(65))).contains("at most"));
    assert!(bad(&format!("#create r {}", "c".repeat(65))).contains("too long"));
    assert!(bad(&format!("#invite sip:b@{}", "d".repeat(300))).contains("not valid"));
}

#[test]
fn unknown_commands_and_empty_bodies() {
    assert_eq!(
        parse_command("#modify bob admin"),
        Err(CommandError::Unknown(s("modify")))
    );
    assert_eq!(
        parse_command("#Frobnicate"),
        Err(CommandError::Unknown(s("Frobnicate")))
    );
    assert_eq!(
        parse_command("#"),
        Err(CommandError::Unknown(String::new()))
    );
    assert_eq!(
        parse_command("# hello"),
        Err(CommandError::Unknown(String::new()))
    );
    let long = format!("#{}", "x".repeat(500));
    match parse_command(&long) {
        Err(CommandError::Unknown(w)) => assert_eq!(w.chars().count(), 32),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_command("#a\u{1}b"),
        Err(CommandError::Unknown(s("a?b")))
    );
    let msg = CommandError::Unknown(s("modify")).to_string();
    assert!(
        msg.contains("#modify") && msg.contains("#help") && msg.contains("##"),
        "{msg}"
    );
    assert!(CommandError::Unknown(String::new())
        .to_string()
        .contains("lone '#'"));
    assert_eq!(parse_command("##\r\n"), Ok(C::Post(s("#"))));
    for body in ["", "\r\n", "   ", " \t\r\n", "\n\n"] {
        assert_eq!(parse_command(body), Err(CommandError::Empty), "{body:?}");
    }
    assert!(!CommandError::Empty.to_string().is_empty());
}

#[test]
fn help_lists_every_command_and_alias() {
    let help = help_text();
    for word in command_words() {
        assert!(
            help.contains(&format!("#{word}")),
            "help lacks #{word}:\n{help}"
        );
        // Every word the help mentions parses as a command (not Unknown).
        assert!(
            !matches!(
                parse_command(&format!("#{word}")),
                Err(CommandError::Unknown(_))
            ),
            "#{word}"
        );
    }
    // One line per command (15) plus the heading and the posting hint.
    assert_eq!(help.lines().count(), 17, "{help}");
    assert!(help.lines().skip(1).take(15).all(|l| l.contains(" - ")));
    assert!(help.contains("##"));
    assert!(help.contains("#members (or #who, #list) - "), "{help}");
    assert!(help.contains("#leave (or #exit) - "), "{help}");
    assert_eq!(command_words().count(), 22);
}

#[test]
fn command_names() {
    assert_eq!(parse_command("#who").map(|c| c.name()), Ok("members"));
    assert_eq!(parse_command("hi").map(|c| c.name()), Ok("post"));
    assert_eq!(parse_command("#kick x").map(|c| c.name()), Ok("remove"));
}

proptest! {
    #[test]
    fn never_panics(body in any::<String>()) {
        let _ = parse_command(&body);
    }

    #[test]
    fn never_panics_on_commands(word in "#[a-zA-Z]{0,8}", args in "[ \t\"<>@:a-z0-9\r\n\u{0}-\u{1f}é😀]{0,40}") {
        let body = format!("{word} {args}");
        // Nicks produced are always valid.
        if let Ok(C::Join { nick: Some(n) } | C::Nick(n) | C::Remove { nick: n, .. }) =
            parse_command(&body)
        {
            prop_assert!(!n.is_empty() && n.chars().count() <= 64);
            prop_assert!(!n.chars().any(char::is_control));
            prop_assert_eq!(n.trim(), n.as_str());
        }
    }

    #[test]
    fn plain_text_is_posted_verbatim(body in "[^#\r\n][^\u{0}]{0,60}") {
        let trimmed = body.trim_end_matches(['\r', '\n']);
        match parse_command(&body) {
            Ok(C::Post(text)) => prop_assert_eq!(text, trimmed),
            Err(CommandError::Empty) => prop_assert!(trimmed.trim().is_empty()),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn double_hash_escapes(text in "[^\r\n]{0,40}") {
        let body = format!("##{text}");
        match parse_command(&body) {
            Ok(C::Post(posted)) => prop_assert_eq!(posted, format!("#{text}")),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
