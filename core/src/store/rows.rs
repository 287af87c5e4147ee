//! What the SQLite and PostgreSQL backends share: the SQL text (both use `$N` placeholders and
//! the same schema), the values bound for each record, the mapping of result rows back to model
//! types, and the translation of database errors into `StoreError`.
//!
//! Only the hot path (`append_messages`) and connection setup differ between the backends, so
//! everything here is written once and the backends stay thin. A backend binds a `Vec<Val>` with
//! its own small `bind_vals` and reads rows through [`RowGet`].
//!
//! The SIP tables (digest credentials of users, registrations) have their share in
//! `rows_sip.rs`, the files table in `rows_files.rs`.

use crate::model::*;
use crate::store::rows_sip::{sip_digest_from_row, sip_digest_vals};
use crate::store::{StoreError, StoreResult};
use std::borrow::Cow;
use std::fmt::Write as _;

/// One value to bind, independent of the backend.
#[derive(Debug, Clone)]
pub(in crate::store) enum Val<'a> {
    I64(i64),
    Bool(bool),
    Text(Cow<'a, str>),
    OptText(Option<Cow<'a, str>>),
    OptI64(Option<i64>),
    Bytes(&'a [u8]),
}

pub(in crate::store) fn text(s: &str) -> Val<'_> {
    Val::Text(Cow::Borrowed(s))
}

// ---- SQL (identical on both backends) ----

macro_rules! user_cols {
    () => {
        "user_id, sha1_salt, sha1_iter, sha1_stored, sha1_server, \
         sha256_salt, sha256_iter, sha256_stored, sha256_server, \
         sip_realm, sip_ha1_md5, sip_ha1_sha256, created_at"
    };
}
macro_rules! category_cols {
    () => {
        "id, name, description, creators, members, created_at"
    };
}
macro_rules! room_cols {
    () => {
        "id, name, category_id, title, description, persistent, public, members_only, moderated, \
         password, max_users, whois, allow_pm, allow_invites, occupants_change_subject, logged, \
         history_length, subject, subject_nick, locked, created_at"
    };
}
macro_rules! message_cols {
    () => {
        "room_id, seq, stanza_id, origin_id, sender, nick, occupant_id, body, extra, ts"
    };
}

/// Binds: [`user_vals`].
pub(in crate::store) const INSERT_USER: &str = concat!(
    "INSERT INTO users (",
    user_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);
/// [`INSERT_USER`] that skips a user who exists already (bulk import).
pub(in crate::store) const INSERT_USER_IF_ABSENT: &str = concat!(
    "INSERT INTO users (",
    user_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (user_id) DO NOTHING"
);
/// Binds: the first [`USER_UPDATE_VALS`] of [`user_vals`] (created_at is kept as stored).
pub(in crate::store) const UPDATE_USER: &str = "UPDATE users SET sha1_salt = $2, sha1_iter = $3, \
     sha1_stored = $4, sha1_server = $5, sha256_salt = $6, sha256_iter = $7, sha256_stored = $8, \
     sha256_server = $9, sip_realm = $10, sip_ha1_md5 = $11, sip_ha1_sha256 = $12 \
     WHERE user_id = $1";
/// How many of [`user_vals`] `UPDATE_USER` binds: all but the trailing `created_at`.
pub(in crate::store) const USER_UPDATE_VALS: usize = 12;
pub(in crate::store) const DELETE_USER: &str = "DELETE FROM users WHERE user_id = $1";
pub(in crate::store) const GET_USER: &str =
    concat!("SELECT ", user_cols!(), " FROM users WHERE user_id = $1");
pub(in crate::store) const LIST_USERS: &str = "SELECT user_id FROM users ORDER BY user_id";

/// Binds: [`category_vals`].
pub(in crate::store) const INSERT_CATEGORY: &str = "INSERT INTO categories \
     (id, name, name_key, description, creators, members, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// Binds: [`category_vals`].
pub(in crate::store) const UPDATE_CATEGORY: &str =
    "UPDATE categories SET name = $2, name_key = $3, \
     description = $4, creators = $5, members = $6, created_at = $7 WHERE id = $1";
pub(in crate::store) const DELETE_CATEGORY: &str = "DELETE FROM categories WHERE id = $1";
pub(in crate::store) const GET_CATEGORY: &str = concat!(
    "SELECT ",
    category_cols!(),
    " FROM categories WHERE id = $1"
);
pub(in crate::store) const GET_CATEGORY_BY_NAME: &str = concat!(
    "SELECT ",
    category_cols!(),
    " FROM categories WHERE name_key = $1"
);
pub(in crate::store) const LIST_CATEGORIES: &str = concat!(
    "SELECT ",
    category_cols!(),
    " FROM categories ORDER BY name, id"
);

/// Binds: [`room_vals`] then created_at ($20).
pub(in crate::store) const INSERT_ROOM: &str =
    "INSERT INTO rooms (name, category_id, title, description, \
     persistent, public, members_only, moderated, password, max_users, whois, allow_pm, \
     allow_invites, occupants_change_subject, logged, history_length, subject, subject_nick, \
     locked, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
     $15, $16, $17, $18, $19, $20) RETURNING id";
/// Binds: [`room_vals`] then the room id ($20).
pub(in crate::store) const UPDATE_ROOM: &str =
    "UPDATE rooms SET name = $1, category_id = $2, title = $3, \
     description = $4, persistent = $5, public = $6, members_only = $7, moderated = $8, \
     password = $9, max_users = $10, whois = $11, allow_pm = $12, allow_invites = $13, \
     occupants_change_subject = $14, logged = $15, history_length = $16, subject = $17, \
     subject_nick = $18, locked = $19 WHERE id = $20";
pub(in crate::store) const DELETE_ROOM: &str = "DELETE FROM rooms WHERE id = $1";
pub(in crate::store) const GET_ROOM: &str =
    concat!("SELECT ", room_cols!(), " FROM rooms WHERE name = $1");
pub(in crate::store) const GET_ROOM_BY_ID: &str =
    concat!("SELECT ", room_cols!(), " FROM rooms WHERE id = $1");
pub(in crate::store) const LIST_ROOMS: &str =
    concat!("SELECT ", room_cols!(), " FROM rooms ORDER BY name");

/// Binds: room, user, affiliation, reason.
pub(in crate::store) const UPSERT_AFFILIATION: &str = "INSERT INTO affiliations \
     (room_id, user_id, affiliation, reason) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (room_id, user_id) DO UPDATE \
     SET affiliation = excluded.affiliation, reason = excluded.reason";
pub(in crate::store) const DELETE_AFFILIATION: &str =
    "DELETE FROM affiliations WHERE room_id = $1 AND user_id = $2";
pub(in crate::store) const LIST_AFFILIATIONS: &str = "SELECT user_id, affiliation, reason \
     FROM affiliations WHERE room_id = $1 ORDER BY user_id";

/// The columns of `messages`, in the order [`message_from_row`] and the inserts use.
pub(in crate::store) const MESSAGE_COLS: &str = message_cols!();
pub(in crate::store) const LAST_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room_id = $1";
pub(in crate::store) const MESSAGE_BY_STANZA_ID: &str = concat!(
    "SELECT ",
    message_cols!(),
    " FROM messages WHERE room_id = $1 AND stanza_id = $2 ORDER BY seq LIMIT 1"
);

// ---- values bound for records ----

/// `user_id`, the SHA-1 then the SHA-256 credential (salt, iterations, stored, server key),
/// the SIP digest (realm, HA1 MD5, HA1 SHA-256; NULLs when absent), `created_at`.
pub(in crate::store) fn user_vals(u: &UserRecord) -> Vec<Val<'_>> {
    let mut v = vec![text(u.user.as_str())];
    for c in [&u.scram_sha1, &u.scram_sha256] {
        v.extend([
            Val::Bytes(&c.salt),
            Val::I64(i64::from(c.iterations)),
            Val::Bytes(&c.stored_key),
            Val::Bytes(&c.server_key),
        ]);
    }
    v.extend(sip_digest_vals(u.sip_digest.as_ref()));
    v.push(Val::I64(u.created_at));
    v
}

/// `id, name, name_key, description, creators, members, created_at`.
pub(in crate::store) fn category_vals(c: &Category) -> StoreResult<Vec<Val<'_>>> {
    Ok(vec![
        Val::Text(Cow::Owned(c.id.to_string())),
        text(&c.name),
        Val::Text(Cow::Owned(name_key(&c.name))),
        text(&c.description),
        Val::Text(Cow::Owned(encode_principals(&c.creators)?)),
        Val::Text(Cow::Owned(encode_principals(&c.members)?)),
        Val::I64(c.created_at),
    ])
}

/// The 19 columns from `name` to `locked` (see `INSERT_ROOM`); the name is lowercased.
pub(in crate::store) fn room_vals(r: &RoomRecord) -> Vec<Val<'_>> {
    let c = &r.config;
    vec![
        Val::Text(Cow::Owned(r.name.to_lowercase())),
        Val::OptText(r.category.map(|id| Cow::Owned(id.to_string()))),
        text(&c.title),
        text(&c.description),
        Val::Bool(c.persistent),
        Val::Bool(c.public),
        Val::Bool(c.members_only),
        Val::Bool(c.moderated),
        Val::OptText(c.password.as_deref().map(Cow::Borrowed)),
        Val::I64(i64::from(c.max_users)),
        text(whois_str(c.whois)),
        Val::Bool(c.allow_private_messages),
        Val::Bool(c.allow_invites),
        Val::Bool(c.occupants_may_change_subject),
        Val::Bool(c.logged),
        Val::I64(i64::from(c.history_length)),
        text(&r.subject),
        text(&r.subject_nick),
        Val::Bool(r.locked),
    ]
}

/// The case-insensitive key of a category name.
pub(in crate::store) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn whois_str(w: Whois) -> &'static str {
    match w {
        Whois::Moderators => "moderators",
        Whois::Anyone => "anyone",
    }
}

/// Newline-separated principals. Refuses (as `Corrupt`) a list that would not read back equal,
/// so a row that cannot be loaded is never written.
fn encode_principals(list: &[Principal]) -> StoreResult<String> {
    let mut s = String::new();
    for (i, p) in list.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = write!(s, "{p}");
    }
    if decode_principals(&s).ok().as_deref() != Some(list) {
        return Err(StoreError::Corrupt(format!(
            "principal list {list:?} cannot be stored"
        )));
    }
    Ok(s)
}

fn decode_principals(s: &str) -> StoreResult<Vec<Principal>> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(|l| Principal::parse(l).ok_or_else(|| corrupt("principal", l)))
        .collect()
}

// ---- history ----

/// What a history statement reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum HistoryRead {
    /// The rows, ordered by seq, at most `limit`.
    Rows,
    /// `COUNT(*)` of the matching rows.
    Count,
    /// The lowest and the highest matching seq (both NULL when nothing matches): two index
    /// probes, whatever the size of the range.
    Bounds,
}

/// Above this many candidate rows (by seq arithmetic) a count without a sender filter is
/// taken from the seq bounds instead of `COUNT(*)`, which would read every row: XEP-0059
/// lets `<count/>` be approximate, and it is exact unless seqs have gaps (a failed commit).
pub(in crate::store) const EXACT_COUNT_LIMIT: i64 = 10_000;

/// Builds the statement for a history query. `$1` is the room. Returns `None` for a row query
/// with `limit == 0` (nothing to read).
///
/// Time filters are turned into seq bounds — "seq from the first message at or after
/// `start`" — found with one probe of the `(room_id, ts)` index, so every statement walks the
/// primary key `(room_id, seq)` in order and reads only the rows it returns, however large
/// the archive. Rooms stamp messages with non-decreasing times (see the engine's post), so
/// the seq and time orders agree.
pub(in crate::store) fn history_sql(
    room: RoomId,
    q: &HistoryQuery,
    read: HistoryRead,
) -> Option<(String, Vec<Val<'_>>)> {
    if read == HistoryRead::Rows && q.limit == 0 {
        return None;
    }
    let mut vals = vec![Val::I64(room)];
    let mut filter = String::with_capacity(200);
    let seq_filters = [
        (q.after_seq.map(Val::I64), "seq >"),
        (q.before_seq.map(Val::I64), "seq <"),
    ];
    for (val, op) in seq_filters {
        if let Some(val) = val {
            vals.push(val);
            let _ = write!(filter, " AND {op} ${}", vals.len());
        }
    }
    if let Some(start) = q.start {
        vals.push(Val::I64(start));
        let _ = write!(
            filter,
            " AND seq >= (SELECT seq FROM messages WHERE room_id = $1 AND ts >= ${} \
             ORDER BY ts ASC, seq ASC LIMIT 1)",
            vals.len()
        );
    }
    if let Some(end) = q.end {
        vals.push(Val::I64(end));
        let _ = write!(
            filter,
            " AND seq <= (SELECT seq FROM messages WHERE room_id = $1 AND ts <= ${} \
             ORDER BY ts DESC, seq DESC LIMIT 1)",
            vals.len()
        );
    }
    if let Some(sender) = &q.sender {
        vals.push(text(sender.as_str()));
        let _ = write!(filter, " AND sender = ${}", vals.len());
    }
    let sql = match read {
        HistoryRead::Count => format!("SELECT COUNT(*) FROM messages WHERE room_id = $1{filter}"),
        HistoryRead::Bounds => format!(
            "SELECT (SELECT seq FROM messages WHERE room_id = $1{filter} ORDER BY seq ASC LIMIT 1), \
             (SELECT seq FROM messages WHERE room_id = $1{filter} ORDER BY seq DESC LIMIT 1)"
        ),
        HistoryRead::Rows => {
            let dir = if q.from_end { "DESC" } else { "ASC" };
            vals.push(Val::I64(i64::from(q.limit)));
            format!(
                "SELECT {MESSAGE_COLS} FROM messages WHERE room_id = $1{filter} \
                 ORDER BY seq {dir} LIMIT ${}",
                vals.len()
            )
        }
    };
    Some((sql, vals))
}

/// Puts rows read by a `from_end` query back in ascending order.
pub(in crate::store) fn finish_history(
    mut rows: Vec<StoredMessage>,
    q: &HistoryQuery,
) -> Vec<StoredMessage> {
    if q.from_end {
        rows.reverse();
    }
    rows
}

// ---- rows ----

/// Typed column access, mapping every failure to `StoreError::Corrupt`.
pub(in crate::store) trait RowGet {
    fn i64(&self, col: &str) -> StoreResult<i64>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn opt_i64(&self, col: &str) -> StoreResult<Option<i64>>;
    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>>;

    fn u32(&self, col: &str) -> StoreResult<u32> {
        let v = self.i64(col)?;
        u32::try_from(v).map_err(|_| corrupt(col, v))
    }
    fn uuid(&self, col: &str) -> StoreResult<uuid::Uuid> {
        let s = self.text(col)?;
        uuid::Uuid::parse_str(&s).map_err(|_| corrupt(col, &s))
    }
}

macro_rules! impl_row_get {
    ($row:ty) => {
        impl RowGet for $row {
            fn i64(&self, col: &str) -> StoreResult<i64> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt(col, e))
            }
            fn flag(&self, col: &str) -> StoreResult<bool> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt(col, e))
            }
            fn text(&self, col: &str) -> StoreResult<String> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt(col, e))
            }
            fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt(col, e))
            }
            fn opt_i64(&self, col: &str) -> StoreResult<Option<i64>> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt(col, e))
            }
            fn bytes(&self, col: &str) -> StoreResult<Vec<u8>> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt(col, e))
            }
        }
    };
}
impl_row_get!(sqlx::sqlite::SqliteRow);
impl_row_get!(sqlx::postgres::PgRow);

pub(in crate::store) fn corrupt(col: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{col}: {what}"))
}

pub(in crate::store) fn user_id(s: String, col: &str) -> StoreResult<UserId> {
    if s.is_empty() {
        return Err(corrupt(col, "empty user id"));
    }
    Ok(UserId(s))
}

pub(in crate::store) fn user_from_row(r: &impl RowGet) -> StoreResult<UserRecord> {
    let cred = |p: &str| -> StoreResult<ScramCredential> {
        Ok(ScramCredential {
            salt: r.bytes(&format!("{p}_salt"))?,
            iterations: r.u32(&format!("{p}_iter"))?,
            stored_key: r.bytes(&format!("{p}_stored"))?,
            server_key: r.bytes(&format!("{p}_server"))?,
        })
    };
    Ok(UserRecord {
        user: user_id(r.text("user_id")?, "user_id")?,
        scram_sha1: cred("sha1")?,
        scram_sha256: cred("sha256")?,
        sip_digest: sip_digest_from_row(r)?,
        created_at: r.i64("created_at")?,
    })
}

pub(in crate::store) fn user_id_from_row(r: &impl RowGet) -> StoreResult<UserId> {
    user_id(r.text("user_id")?, "user_id")
}

pub(in crate::store) fn category_from_row(r: &impl RowGet) -> StoreResult<Category> {
    Ok(Category {
        id: r.uuid("id")?,
        name: r.text("name")?,
        description: r.text("description")?,
        creators: decode_principals(&r.text("creators")?)?,
        members: decode_principals(&r.text("members")?)?,
        created_at: r.i64("created_at")?,
    })
}

pub(in crate::store) fn room_from_row(r: &impl RowGet) -> StoreResult<RoomRecord> {
    let whois = match r.text("whois")?.as_str() {
        "moderators" => Whois::Moderators,
        "anyone" => Whois::Anyone,
        other => return Err(corrupt("whois", other)),
    };
    let category = match r.opt_text("category_id")? {
        None => None,
        Some(s) => Some(uuid::Uuid::parse_str(&s).map_err(|_| corrupt("category_id", &s))?),
    };
    Ok(RoomRecord {
        id: r.i64("id")?,
        name: r.text("name")?,
        category,
        config: RoomConfig {
            title: r.text("title")?,
            description: r.text("description")?,
            persistent: r.flag("persistent")?,
            public: r.flag("public")?,
            members_only: r.flag("members_only")?,
            moderated: r.flag("moderated")?,
            password: r.opt_text("password")?,
            max_users: r.u32("max_users")?,
            whois,
            allow_private_messages: r.flag("allow_pm")?,
            allow_invites: r.flag("allow_invites")?,
            occupants_may_change_subject: r.flag("occupants_change_subject")?,
            logged: r.flag("logged")?,
            history_length: r.u32("history_length")?,
        },
        subject: r.text("subject")?,
        subject_nick: r.text("subject_nick")?,
        locked: r.flag("locked")?,
        created_at: r.i64("created_at")?,
    })
}

pub(in crate::store) fn affiliation_from_row(r: &impl RowGet) -> StoreResult<AffiliationRecord> {
    let a = r.text("affiliation")?;
    let affiliation = match Affiliation::parse(&a) {
        Some(Affiliation::None) | None => return Err(corrupt("affiliation", a)),
        Some(x) => x,
    };
    Ok(AffiliationRecord {
        user: user_id(r.text("user_id")?, "user_id")?,
        affiliation,
        reason: r.text("reason")?,
    })
}

pub(in crate::store) fn message_from_row(r: &impl RowGet) -> StoreResult<StoredMessage> {
    Ok(StoredMessage {
        room_id: r.i64("room_id")?,
        seq: r.i64("seq")?,
        stanza_id: r.text("stanza_id")?,
        origin_id: r.text("origin_id")?,
        sender: user_id(r.text("sender")?, "sender")?,
        nick: r.text("nick")?,
        occupant_id: r.text("occupant_id")?,
        body: r.text("body")?,
        extra: r.opt_text("extra")?,
        ts: r.i64("ts")?,
    })
}

// ---- errors ----

fn db_kind(e: &sqlx::Error) -> Option<sqlx::error::ErrorKind> {
    e.as_database_error().map(|d| d.kind())
}

/// For inserts/updates of users, categories, rooms and affiliations: a unique violation is
/// `AlreadyExists`, a missing referenced row (room, category) is `NotFound`.
pub(in crate::store) fn write_err(e: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind::*;
    match db_kind(&e) {
        Some(UniqueViolation) => StoreError::AlreadyExists,
        Some(ForeignKeyViolation) => StoreError::NotFound,
        _ => StoreError::Db(e),
    }
}

/// For `append_messages`: a duplicate (room_id, seq) is `Conflict`, an unknown room `NotFound`.
pub(in crate::store) fn append_err(e: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind::*;
    match db_kind(&e) {
        Some(UniqueViolation) => StoreError::Conflict(format!("duplicate message seq: {e}")),
        Some(ForeignKeyViolation) => StoreError::NotFound,
        _ => StoreError::Db(e),
    }
}
