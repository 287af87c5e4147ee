//! RFC 4575 conference-info documents: structure checked by parsing the output back with the
//! crate's XML parser, escaping of hostile nicks and subjects, and partial updates.

use palaver_core::model::Role;
use palaver_dialects::pager::conference_info::{
    full_document, partial_document, ConfUser, ConferenceState, EndpointStatus, UserChange,
    UserState, CONTENT_TYPE, NS,
};
use palaver_dialects::xmpp::element::Element;
use proptest::prelude::*;

fn user(entity: &str, nick: &str, role: Role, status: EndpointStatus) -> ConfUser {
    ConfUser {
        entity: entity.into(),
        display_text: nick.into(),
        role,
        status,
    }
}

fn parse(doc: &str) -> Element {
    assert!(
        doc.starts_with("<?xml version='1.0' encoding='UTF-8'?>"),
        "{doc}"
    );
    match Element::parse(doc.as_bytes()) {
        Ok(root) => root,
        Err(e) => panic!("{e:?} in {doc}"),
    }
}

fn child<'a>(el: &'a Element, name: &str) -> &'a Element {
    el.get_child(name, NS)
        .unwrap_or_else(|| panic!("no <{name}> in {el}"))
}

#[test]
fn full_document_structure() {
    assert_eq!(CONTENT_TYPE, "application/conference-info+xml");
    assert_eq!(NS, "urn:ietf:params:xml:ns:conference-info");
    let state = ConferenceState {
        entity: "sip:lobby@conference.example.com".into(),
        display_text: "The Lobby".into(),
        subject: "Lunch <at> noon & \"more\"".into(),
        users: vec![
            user(
                "sip:alice@example.com",
                "alice",
                Role::Moderator,
                EndpointStatus::Connected,
            ),
            user(
                "xmpp:bob@example.com",
                "<b&o'b\">",
                Role::Participant,
                EndpointStatus::Connected,
            ),
            user(
                "sip:carol@example.com",
                "carol",
                Role::None,
                EndpointStatus::Disconnected,
            ),
        ],
    };
    let doc = full_document(&state, 7);
    let root = parse(&doc);
    assert!(root.is("conference-info", NS));
    assert_eq!(
        root.attr("entity"),
        Some("sip:lobby@conference.example.com")
    );
    assert_eq!(root.attr("state"), Some("full"));
    assert_eq!(root.attr("version"), Some("7"));
    let names: Vec<&str> = root.children().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["conference-description", "conference-state", "users"]
    );
    let desc = child(&root, "conference-description");
    assert_eq!(
        desc.child_text("display-text", NS).as_deref(),
        Some("The Lobby")
    );
    assert_eq!(
        desc.child_text("subject", NS).as_deref(),
        Some("Lunch <at> noon & \"more\"")
    );
    let cstate = child(&root, "conference-state");
    assert_eq!(cstate.child_text("user-count", NS).as_deref(), Some("3"));
    assert_eq!(cstate.child_text("active", NS).as_deref(), Some("true"));
    let users: Vec<&Element> = child(&root, "users").children().collect();
    assert_eq!(users.len(), 3);
    assert!(users.iter().all(|u| u.is("user", NS)));
    assert_eq!(users[0].attr("entity"), Some("sip:alice@example.com"));
    assert_eq!(users[0].attr("state"), Some("full"));
    assert_eq!(
        users[0].child_text("display-text", NS).as_deref(),
        Some("alice")
    );
    let roles = child(users[0], "roles");
    assert_eq!(roles.child_text("entry", NS).as_deref(), Some("moderator"));
    let endpoint = child(users[0], "endpoint");
    assert_eq!(endpoint.attr("entity"), Some("sip:alice@example.com"));
    assert_eq!(
        endpoint.child_text("status", NS).as_deref(),
        Some("connected")
    );
    // Order of a user's children follows the RFC 4575 schema.
    let order: Vec<&str> = users[0].children().map(|c| c.name.as_str()).collect();
    assert_eq!(order, ["display-text", "roles", "endpoint"]);
    // Escaping: the hostile nick round-trips.
    assert_eq!(users[1].attr("entity"), Some("xmpp:bob@example.com"));
    assert_eq!(
        users[1].child_text("display-text", NS).as_deref(),
        Some("<b&o'b\">")
    );
    assert!(!doc.contains("<b&o"));
    assert_eq!(
        child(users[1], "roles").child_text("entry", NS).as_deref(),
        Some("participant")
    );
    // Role::None: no roles element; disconnected endpoint.
    assert!(users[2].get_child("roles", NS).is_none());
    assert_eq!(
        child(users[2], "endpoint")
            .child_text("status", NS)
            .as_deref(),
        Some("disconnected")
    );
}

#[test]
fn empty_room_and_empty_description() {
    let state = ConferenceState {
        entity: "sip:empty@conference.example.com".into(),
        display_text: String::new(),
        subject: String::new(),
        users: vec![],
    };
    let root = parse(&full_document(&state, 0));
    assert_eq!(root.attr("version"), Some("0"));
    assert_eq!(child(&root, "conference-description").children().count(), 0);
    assert_eq!(
        child(&root, "conference-state")
            .child_text("user-count", NS)
            .as_deref(),
        Some("0")
    );
    assert_eq!(child(&root, "users").children().count(), 0);
}

#[test]
fn partial_document_structure() {
    let changes = vec![
        UserChange {
            state: UserState::Added,
            user: user(
                "xmpp:dave@example.com",
                "dave & co",
                Role::Visitor,
                EndpointStatus::Connected,
            ),
        },
        UserChange {
            state: UserState::Partial,
            user: user(
                "sip:alice@example.com",
                "alicia",
                Role::Moderator,
                EndpointStatus::Connected,
            ),
        },
        UserChange {
            state: UserState::Deleted,
            user: user(
                "sip:bob@example.com",
                "bob",
                Role::Participant,
                EndpointStatus::Disconnected,
            ),
        },
    ];
    let doc = partial_document("sip:lobby@conference.example.com", &changes, u32::MAX);
    let root = parse(&doc);
    assert!(root.is("conference-info", NS));
    assert_eq!(root.attr("state"), Some("partial"));
    assert_eq!(root.attr("version"), Some("4294967295"));
    let names: Vec<&str> = root.children().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["users"]);
    let users_el = child(&root, "users");
    assert_eq!(users_el.attr("state"), Some("partial"));
    let users: Vec<&Element> = users_el.children().collect();
    assert_eq!(users.len(), 3);
    assert_eq!(users[0].attr("state"), Some("full"));
    assert_eq!(
        users[0].child_text("display-text", NS).as_deref(),
        Some("dave & co")
    );
    assert_eq!(
        child(users[0], "roles").child_text("entry", NS).as_deref(),
        Some("visitor")
    );
    assert_eq!(users[1].attr("state"), Some("partial"));
    assert_eq!(child(users[1], "endpoint").attr("state"), Some("partial"));
    assert_eq!(users[2].attr("entity"), Some("sip:bob@example.com"));
    assert_eq!(users[2].attr("state"), Some("deleted"));
    assert_eq!(users[2].children.len(), 0);
}

proptest! {
    #[test]
    fn any_text_gives_well_formed_documents(
        nick in any::<String>(),
        subject in any::<String>(),
        entity in any::<String>(),
    ) {
        let state = ConferenceState {
            entity: entity.clone(),
            display_text: nick.clone(),
            subject: subject.clone(),
            users: vec![user(&entity, &nick, Role::Participant, EndpointStatus::Connected)],
        };
        let full = full_document(&state, 1);
        prop_assert!(Element::parse(full.as_bytes()).is_ok(), "{}", full);
        let partial = partial_document(
            &entity,
            &[UserChange { state: UserState::Partial, user: state.users[0].clone() }],
            2,
        );
        prop_assert!(Element::parse(partial.as_bytes()).is_ok(), "{}", partial);
    }

    #[test]
    fn printable_nicks_round_trip(nick in "[^\u{0}-\u{1f}\u{7f}\u{fffe}\u{ffff}]{1,64}") {
        let state = ConferenceState {
            entity: "sip:r@c.example".into(),
            display_text: String::new(),
            subject: String::new(),
            users: vec![user("sip:u@example", &nick, Role::Participant, EndpointStatus::Connected)],
        };
        let doc = full_document(&state, 1);
        let root = Element::parse(doc.as_bytes());
        prop_assert!(root.is_ok());
        let root = root.unwrap_or_else(|_| Element::new("x", ""));
        let text = root
            .get_child("users", NS)
            .and_then(|u| u.get_child("user", NS))
            .and_then(|u| u.child_text("display-text", NS));
        prop_assert_eq!(text.as_deref(), Some(nick.as_str()));
    }
}
