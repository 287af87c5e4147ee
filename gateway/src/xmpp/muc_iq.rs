//! IQs to the MUC service, to rooms and to occupants: disco#info/#items (XEP-0030 with
//! muc#roominfo), the owner's configuration form and destruction (XEP-0045 §10), admin lists
//! of affiliations and roles (§8–§9), ping and self-ping (XEP-0199, XEP-0410).

use super::dispatch::reply_error;
use super::session::{Completion, Session};
use super::stanza_error::{error_element, result_for, room_error_element};
use palaver_core::engine::{Engine, RoomCommand, RoomError, RoomInfo};
use palaver_core::{Affiliation, Role, UserId, Whois};
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::jid::Jid;
use palaver_dialects::xmpp::muc::forms::{apply_config_form, config_form, roominfo_form};
use palaver_dialects::xmpp::ns;
use std::sync::Arc;

fn feature(var: &str) -> Element {
    Element::new("feature", ns::DISCO_INFO).with_attr("var", var)
}

fn is_get(el: &Element) -> bool {
    el.attr("type") == Some("get")
}

fn is_set(el: &Element) -> bool {
    el.attr("type") == Some("set")
}

/// Runs `work` off the main loop; its element (or error) becomes the reply.
fn spawn_reply<F>(session: &mut Session, el: &Element, work: F)
where
    F: std::future::Future<Output = Result<Element, RoomError>> + Send + 'static,
{
    let original = el.clone();
    let from = session.svc.muc_domain.clone();
    let me = session.jid_str.clone();
    session.pending.push(Box::pin(async move {
        let el = match work.await {
            Ok(reply) => reply,
            Err(e) => room_error_element(&original, &from, &me, &e),
        };
        Completion::Send(el.to_bytes(ns::CLIENT))
    }));
}

/// IQs to `conference.<domain>` itself.
pub async fn service_iq(session: &mut Session, el: &Element) {
    if !(is_get(el) || is_set(el)) {
        return;
    }
    let Some(q) = el.children().next() else {
        return;
    };
    let me = session.jid_str.clone();
    let muc = session.svc.muc_domain.clone();
    let reply = result_for(el, &muc, &me);
    match (q.ns.as_str(), q.name.as_str(), is_get(el)) {
        (ns::DISCO_INFO, "query", true) if q.attr("node").is_none() => {
            let mut query = Element::new("query", ns::DISCO_INFO).with_child(
                Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", "conference")
                    .with_attr("type", "text")
                    .with_attr("name", "Chat rooms"),
            );
            for f in [
                ns::DISCO_INFO,
                ns::DISCO_ITEMS,
                ns::MUC,
                ns::PING,
                ns::OCCUPANT_ID,
                ns::MUC_STABLE_ID,
                ns::SELF_PING,
            ] {
                query.append_child(feature(f));
            }
            super::upload::muc_service_info(session, &mut query);
            session.send_el(&reply.with_child(query));
        }
        (ns::DISCO_ITEMS, "query", true) if q.attr("node").is_none() => {
            let engine = session.svc.ctx.engine.clone();
            spawn_reply(session, el, async move {
                let rooms = engine.list_rooms().await.map_err(|_| RoomError::Internal)?;
                let mut query = Element::new("query", ns::DISCO_ITEMS);
                for r in rooms.iter().filter(|r| r.config.public && !r.locked) {
                    let name = if r.config.title.is_empty() {
                        r.name.as_str()
                    } else {
                        r.config.title.as_str()
                    };
                    query.append_child(
                        Element::new("item", ns::DISCO_ITEMS)
                            .with_attr("jid", format!("{}@{muc}", r.name))
                            .with_attr("name", name),
                    );
                }
                Ok(reply.with_child(query))
            });
        }
        (ns::PING, "ping", true) => session.send_el(&reply),
        _ => reply_error(session, el, "cancel", "service-unavailable", None),
    }
}

/// disco#info of a room (XEP-0045 §6.4) with its muc#roominfo form.
fn room_disco_info(info: &RoomInfo) -> Element {
    let c = &info.config;
    let name = if c.title.is_empty() {
        info.name.as_str()
    } else {
        c.title.as_str()
    };
    let mut query = Element::new("query", ns::DISCO_INFO).with_child(
        Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", "conference")
            .with_attr("type", "text")
            .with_attr("name", name),
    );
    let pick = |b: bool, yes: &'static str, no: &'static str| if b { yes } else { no };
    for f in [
        ns::DISCO_INFO,
        ns::MUC,
        ns::MAM,
        ns::MAM_EXTENDED,
        ns::SID,
        ns::OCCUPANT_ID,
        ns::MUC_STABLE_ID,
        ns::SELF_PING,
        pick(c.persistent, "muc_persistent", "muc_temporary"),
        pick(c.public, "muc_public", "muc_hidden"),
        pick(c.members_only, "muc_membersonly", "muc_open"),
        pick(c.moderated, "muc_moderated", "muc_unmoderated"),
        pick(
            c.whois == Whois::Anyone,
            "muc_nonanonymous",
            "muc_semianonymous",
        ),
        pick(
            c.password.is_some(),
            "muc_passwordprotected",
            "muc_unsecured",
        ),
    ] {
        query.append_child(feature(f));
    }
    query.append_child(roominfo_form(c, &info.subject, info.occupants));
    query
}

/// IQs to `room@conference.<domain>`.
pub async fn room_iq(session: &mut Session, el: &Element, to: &Jid) {
    if !(is_get(el) || is_set(el)) {
        return;
    }
    let Some(q) = el.children().next().cloned() else {
        return;
    };
    let room: Arc<str> = Arc::from(to.local.as_str());
    let engine = session.svc.ctx.engine.clone();
    let reply = result_for(el, &session.svc.muc_domain, &session.jid_str);
    let actor = session.user.clone();
    let client = session.client_id;
    match (q.ns.as_str(), q.name.as_str(), is_get(el)) {
        (ns::DISCO_INFO, "query", true) if q.attr("node").is_none() => {
            spawn_reply(session, el, async move {
                let info = engine
                    .room_info(&room)
                    .await
                    .ok_or(RoomError::ItemNotFound)?;
                Ok(reply.with_child(room_disco_info(&info)))
            })
        }
        (ns::DISCO_ITEMS, "query", true) => spawn_reply(session, el, async move {
            engine
                .room_info(&room)
                .await
                .ok_or(RoomError::ItemNotFound)?;
            Ok(reply.with_child(Element::new("query", ns::DISCO_ITEMS)))
        }),
        (ns::PING, "ping", true) => spawn_reply(session, el, async move {
            engine
                .room_info(&room)
                .await
                .ok_or(RoomError::ItemNotFound)?;
            Ok(reply)
        }),
        (ns::VCARD, "vCard", true) => spawn_reply(session, el, async move {
            engine
                .room_info(&room)
                .await
                .ok_or(RoomError::ItemNotFound)?;
            Ok(reply.with_child(Element::new("vCard", ns::VCARD)))
        }),
        (ns::MUC_OWNER, "query", true) => spawn_reply(session, el, async move {
            let config = engine
                .ask(&room, |reply| RoomCommand::GetConfig {
                    actor_user: actor,
                    reply,
                })
                .await?;
            Ok(reply
                .with_child(Element::new("query", ns::MUC_OWNER).with_child(config_form(&config))))
        }),
        (ns::MUC_OWNER, "query", false) => {
            spawn_reply(session, el, owner_set(engine, room, actor, q, reply))
        }
        (ns::MUC_ADMIN, "query", true) => {
            spawn_reply(session, el, admin_get(engine, room, actor, q, reply))
        }
        (ns::MUC_ADMIN, "query", false) => spawn_reply(
            session,
            el,
            admin_set(engine, room, actor, client, q, reply),
        ),
        _ => reply_error(session, el, "cancel", "service-unavailable", None),
    }
}

async fn owner_set(
    engine: Engine,
    room: Arc<str>,
    actor: UserId,
    q: Element,
    reply: Element,
) -> Result<Element, RoomError> {
    if let Some(d) = q.get_child("destroy", ns::MUC_OWNER) {
        let reason = d.child_text("reason", ns::MUC_OWNER).unwrap_or_default();
        let alternate = d.attr("jid").map(str::to_string);
        destroy(&engine, &room, actor, reason, alternate).await?;
        return Ok(reply);
    }
    let Some(x) = q.get_child("x", ns::DATA_FORMS) else {
        return Err(RoomError::BadRequest(
            "expected a data form or <destroy/>".into(),
        ));
    };
    let current = engine
        .ask(&room, |reply| RoomCommand::GetConfig {
            actor_user: actor.clone(),
            reply,
        })
        .await?;
    if x.attr("type") == Some("cancel") {
        let info = engine
            .room_info(&room)
            .await
            .ok_or(RoomError::ItemNotFound)?;
        if info.locked {
            // Cancelling the initial configuration destroys the new room (XEP-0045 §10.1.2).
            destroy(&engine, &room, actor, String::new(), None).await?;
        }
        return Ok(reply);
    }
    let config =
        apply_config_form(&current, x).map_err(|e| RoomError::BadRequest(e.to_string()))?;
    engine
        .ask(&room, |reply| RoomCommand::SetConfig {
            actor_user: actor,
            config,
            reply,
        })
        .await?;
    Ok(reply)
}

async fn destroy(
    engine: &Engine,
    room: &str,
    actor_user: UserId,
    reason: String,
    alternate: Option<String>,
) -> Result<(), RoomError> {
    engine
        .ask(room, |reply| RoomCommand::Destroy {
            actor_user,
            reason,
            alternate,
            reply,
        })
        .await
}

async fn admin_get(
    engine: Engine,
    room: Arc<str>,
    actor: UserId,
    q: Element,
    reply: Element,
) -> Result<Element, RoomError> {
    let item = q
        .get_child("item", ns::MUC_ADMIN)
        .ok_or(RoomError::BadRequest("expected <item/>".into()))?;
    let mut query = Element::new("query", ns::MUC_ADMIN);
    if let Some(aff) = item.attr("affiliation") {
        let aff =
            Affiliation::parse(aff).ok_or(RoomError::BadRequest("unknown affiliation".into()))?;
        let list = engine
            .ask(&room, |reply| RoomCommand::GetAffiliations {
                actor_user: actor,
                affiliation: aff,
                reply,
            })
            .await?;
        for a in list {
            query.append_child(
                Element::new("item", ns::MUC_ADMIN)
                    .with_attr("affiliation", a.affiliation.as_str())
                    .with_attr("jid", a.user.as_str()),
            );
        }
    } else if let Some(role) = item.attr("role") {
        let role = Role::parse(role).ok_or(RoomError::BadRequest("unknown role".into()))?;
        let list = engine
            .ask(&room, |reply| RoomCommand::GetRoles {
                actor_user: actor,
                role,
                reply,
            })
            .await?;
        for r in list {
            query.append_child(
                Element::new("item", ns::MUC_ADMIN)
                    .with_attr("affiliation", r.affiliation.as_str())
                    .with_attr("role", r.role.as_str())
                    .with_attr("nick", r.nick.as_str())
                    .with_attr("jid", r.user.as_str()),
            );
        }
    } else {
        return Err(RoomError::BadRequest(
            "item needs an affiliation or a role".into(),
        ));
    }
    Ok(reply.with_child(query))
}

async fn admin_set(
    engine: Engine,
    room: Arc<str>,
    actor: UserId,
    client: u64,
    q: Element,
    reply: Element,
) -> Result<Element, RoomError> {
    let items: Vec<&Element> = q.children_named("item", ns::MUC_ADMIN).collect();
    if items.is_empty() {
        return Err(RoomError::BadRequest("expected <item/>".into()));
    }
    for item in items {
        let reason = item.child_text("reason", ns::MUC_ADMIN);
        if let Some(role) = item.attr("role") {
            let role = Role::parse(role).ok_or(RoomError::BadRequest("unknown role".into()))?;
            let nick = item
                .attr("nick")
                .ok_or(RoomError::BadRequest("role changes need a nick".into()))?;
            let nick = nick.to_string();
            engine
                .ask(&room, |reply| RoomCommand::SetRole {
                    client,
                    nick,
                    role,
                    reason,
                    reply,
                })
                .await?;
        } else if let Some(aff) = item.attr("affiliation") {
            let affiliation = Affiliation::parse(aff)
                .ok_or(RoomError::BadRequest("unknown affiliation".into()))?;
            let jid = item.attr("jid").and_then(|j| Jid::parse(j).ok());
            let user = jid
                .and_then(|j| UserId::parse(&j.bare()))
                .ok_or(RoomError::BadRequest(
                    "affiliation changes need a jid".into(),
                ))?;
            let actor_user = actor.clone();
            engine
                .ask(&room, |reply| RoomCommand::SetAffiliation {
                    client,
                    actor_user,
                    user,
                    affiliation,
                    reason,
                    reply,
                })
                .await?;
        } else {
            return Err(RoomError::BadRequest(
                "item needs a role or an affiliation".into(),
            ));
        }
    }
    Ok(reply)
}

/// IQs to `room@conference.<domain>/nick`: self-ping is answered by the service.
pub async fn occupant_iq(session: &mut Session, el: &Element, to: &Jid) {
    if !(is_get(el) || is_set(el)) {
        return;
    }
    let room: Arc<str> = Arc::from(to.local.as_str());
    let in_room = session.joined.contains_key(&room);
    if el.get_child("ping", ns::PING).is_some() {
        let engine = session.svc.ctx.engine.clone();
        let client = session.client_id;
        let nick = to.resource.clone();
        let reply = result_for(el, &session.svc.muc_domain, &session.jid_str);
        let original = el.clone();
        let me = session.jid_str.clone();
        let muc = session.svc.muc_domain.clone();
        session.pending.push(Box::pin(async move {
            let answer = engine
                .ask(&room, |reply| RoomCommand::IsOccupant {
                    client,
                    nick,
                    reply,
                })
                .await;
            let el = match answer {
                Ok(true) => reply,
                _ if in_room => reply,
                _ => error_element(
                    &original,
                    &muc,
                    &me,
                    "cancel",
                    "not-acceptable",
                    Some("you are not in this room"),
                ),
            };
            Completion::Send(el.to_bytes(ns::CLIENT))
        }));
        return;
    }
    if !in_room {
        return reply_error(
            session,
            el,
            "cancel",
            "not-acceptable",
            Some("you are not in this room"),
        );
    }
    reply_error(session, el, "cancel", "service-unavailable", None)
}
