//! `#rooms` (public rooms by category, with live occupant counts) and `#create` (a new
//! persistent room owned by the sender, public or private, in a category the sender may create
//! rooms in; the creator joins it at once).

use super::bindings::Target;
use super::commands::Outcome;
use super::occupant;
use super::SipService;
use palaver_core::engine::{validate_room_name, EngineError, RoomError};
use palaver_core::model::RoomConfig;
use palaver_core::UserId;
use palaver_dialects::pager::text::format_rooms;
use std::collections::HashMap;
use std::sync::Arc;

/// `#rooms`.
pub async fn rooms(svc: &SipService, _user: &UserId) -> Outcome {
    let engine = &svc.ctx.engine;
    let (rooms, categories) = match (
        engine.list_rooms().await,
        svc.ctx.store.list_categories().await,
    ) {
        (Ok(r), Ok(c)) => (r, c),
        _ => return Outcome::room_error(RoomError::Internal),
    };
    let names: HashMap<uuid::Uuid, String> =
        categories.into_iter().map(|c| (c.id, c.name)).collect();
    let visible: Vec<_> = rooms
        .iter()
        .filter(|r| r.config.public && !r.locked)
        .collect();
    let rows: Vec<(&str, &str, &str, u32)> = visible
        .iter()
        .map(|r| {
            let category = r
                .category
                .and_then(|id| names.get(&id))
                .map_or("", String::as_str);
            (
                category,
                r.name.as_str(),
                r.config.title.as_str(),
                r.occupants,
            )
        })
        .collect();
    Outcome::ok_text(format_rooms(&rows))
}

/// `#create name [private] [category]`.
pub async fn create(
    svc: &Arc<SipService>,
    user: &UserId,
    name: &str,
    private: bool,
    category: Option<&str>,
    via: &Target,
) -> Outcome {
    let Ok(name) = validate_room_name(name) else {
        return Outcome::failed(
            400,
            "Bad Room Name",
            format!("{name} is not a valid room name."),
        );
    };
    if !svc.ctx.config.rooms.allow_client_room_creation {
        return Outcome::failed(
            403,
            "Not Allowed",
            "Rooms are created by the administrator on this server.",
        );
    }
    let store = &svc.ctx.store;
    let category_name = category
        .map(str::to_string)
        .or_else(|| svc.ctx.config.default_category().map(str::to_string));
    let category = match category_name {
        Some(c) => match store.get_category_by_name(&c).await {
            Ok(Some(found)) => Some(found),
            Ok(None) => {
                return Outcome::failed(
                    404,
                    "No Such Category",
                    format!("There is no category {c}."),
                )
            }
            Err(_) => return Outcome::room_error(RoomError::Internal),
        },
        None => None,
    };
    if let Some(c) = &category {
        if !c.may_create(user) {
            return Outcome::failed(
                403,
                "Not Allowed",
                format!("You may not create rooms in category {}.", c.name),
            );
        }
    }
    let config = RoomConfig {
        title: name.clone(),
        persistent: true,
        public: !private,
        members_only: private,
        history_length: svc.ctx.config.rooms.history_on_join,
        ..RoomConfig::default()
    };
    match svc
        .ctx
        .engine
        .create_room(&name, config, category.as_ref(), Some(user))
        .await
    {
        Ok(_) => {}
        Err(EngineError::Store(palaver_core::StoreError::AlreadyExists)) => {
            return Outcome::failed(
                403,
                "Room Exists",
                format!("The room {name} already exists."),
            );
        }
        Err(EngineError::Room(e)) => return Outcome::room_error(e),
        Err(EngineError::Store(e)) => {
            tracing::error!(error = %e, "cannot create room");
            return Outcome::room_error(RoomError::Internal);
        }
    }
    tracing::info!(room = %name, owner = %user, private, "room created over SIP");
    match occupant::join(svc, user, &name, user.local(), via.clone()).await {
        Ok(()) => Outcome::ok_text(format!("Created the room {name}: {}", svc.room_uri(&name))),
        Err(e) => Outcome::room_error(e),
    }
}

/// How many files `#files` lists (the newest).
const FILES_LISTED: u32 = 20;

/// `#files`: the room's newest files with fresh download links, one per line.
pub async fn files(svc: &SipService, room: &str) -> Outcome {
    let Some(files) = svc.ctx.files.clone() else {
        return Outcome::ok_text("File upload is not enabled on this server.".to_string());
    };
    let listed = match svc.ctx.store.get_room(room).await {
        Ok(Some(r)) => svc.ctx.store.room_files(r.id, FILES_LISTED).await,
        Ok(None) => return Outcome::room_error(RoomError::ItemNotFound),
        Err(_) => return Outcome::room_error(RoomError::Internal),
    };
    let Ok(listed) = listed else {
        return Outcome::room_error(RoomError::Internal);
    };
    if listed.is_empty() {
        return Outcome::ok_text(format!("No files have been posted to {room}."));
    }
    let mut text = format!("Files posted to {room} (newest first):");
    for f in &listed {
        text.push_str(&format!(
            "\n{} ({} bytes, {}): {}",
            crate::files::token::clean_name(&f.name),
            f.size,
            f.uploader.as_str(),
            files.download_url(f.id, &f.name)
        ));
    }
    Outcome::ok_text(text)
}
