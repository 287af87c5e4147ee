//! The files share of `rows.rs`: the `files` table (metadata of files posted to rooms; the
//! bytes are in the file store) and the `secrets` table (keys a pool shares). Same rules as `rows.rs`: SQL text identical on both
//! backends, values bound as [`Val`]s, rows read through [`RowGet`].

use super::rows::{corrupt, text, user_id, RowGet, Val};
use crate::model::*;
use crate::store::StoreResult;
use std::borrow::Cow;

macro_rules! file_cols {
    () => {
        "id, room_id, uploader, name, mime, size, sha256, created_at"
    };
}

/// Binds: [`file_vals`].
pub(in crate::store) const INSERT_FILE: &str = concat!(
    "INSERT INTO files (",
    file_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
/// Binds: id.
pub(in crate::store) const GET_FILE: &str =
    concat!("SELECT ", file_cols!(), " FROM files WHERE id = $1");
/// Binds: room, id. Only a file not yet posted anywhere gets a room.
pub(in crate::store) const SET_FILE_ROOM: &str =
    "UPDATE files SET room_id = $1 WHERE id = $2 AND room_id IS NULL";
/// Binds: room, limit. Newest first.
pub(in crate::store) const ROOM_FILES: &str = concat!(
    "SELECT ",
    file_cols!(),
    " FROM files WHERE room_id = $1 ORDER BY created_at DESC, id LIMIT $2"
);
/// Binds: id. Returns the deleted row.
pub(in crate::store) const DELETE_FILE: &str =
    concat!("DELETE FROM files WHERE id = $1 RETURNING ", file_cols!());
/// Binds: sha256.
pub(in crate::store) const COUNT_BLOB_REFS: &str = "SELECT COUNT(*) FROM files WHERE sha256 = $1";
/// Binds: uploader.
pub(in crate::store) const UPLOADER_BYTES: &str =
    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE uploader = $1";

/// Binds: name, value. Keeps an existing secret.
pub(in crate::store) const INSERT_SECRET: &str =
    "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
/// Binds: name.
pub(in crate::store) const GET_SECRET: &str = "SELECT value FROM secrets WHERE name = $1";

/// The columns of `files`, in `file_cols!` order.
pub(in crate::store) fn file_vals(f: &FileRecord) -> StoreResult<Vec<Val<'_>>> {
    let size = i64::try_from(f.size).map_err(|_| corrupt("size", f.size))?;
    Ok(vec![
        Val::Text(Cow::Owned(f.id.to_string())),
        match f.room {
            Some(r) => Val::I64(r),
            None => Val::OptI64(None),
        },
        text(f.uploader.as_str()),
        text(&f.name),
        text(&f.mime),
        Val::I64(size),
        text(&f.sha256),
        Val::I64(f.created_at),
    ])
}

pub(in crate::store) fn file_from_row(r: &impl RowGet) -> StoreResult<FileRecord> {
    let size = r.i64("size")?;
    Ok(FileRecord {
        id: r.uuid("id")?,
        room: r.opt_i64("room_id")?,
        uploader: user_id(r.text("uploader")?, "uploader")?,
        name: r.text("name")?,
        mime: r.text("mime")?,
        size: u64::try_from(size).map_err(|_| corrupt("size", size))?,
        sha256: r.text("sha256")?,
        created_at: r.i64("created_at")?,
    })
}
