-- palaver store schema, SQLite flavour (kept column-for-column identical to
-- migrations/postgres/0001_init.sql). Timestamps are milliseconds since the Unix epoch.
-- Booleans are INTEGER 0/1; uuids are TEXT (hyphenated, lowercase).

CREATE TABLE users (
    user_id        TEXT    NOT NULL PRIMARY KEY,
    sha1_salt      BLOB    NOT NULL,
    sha1_iter      INTEGER NOT NULL,
    sha1_stored    BLOB    NOT NULL,
    sha1_server    BLOB    NOT NULL,
    sha256_salt    BLOB    NOT NULL,
    sha256_iter    INTEGER NOT NULL,
    sha256_stored  BLOB    NOT NULL,
    sha256_server  BLOB    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE categories (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    -- lowercased name: makes the name unique case-insensitively
    name_key     TEXT    NOT NULL UNIQUE,
    description  TEXT    NOT NULL,
    -- newline-separated Principal strings
    creators     TEXT    NOT NULL,
    members      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- AUTOINCREMENT: the id of a deleted room is never handed out again.
CREATE TABLE rooms (
    id                         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name                       TEXT    NOT NULL UNIQUE,
    category_id                TEXT    NULL REFERENCES categories (id) ON DELETE SET NULL,
    title                      TEXT    NOT NULL,
    description                TEXT    NOT NULL,
    persistent                 INTEGER NOT NULL,
    public                     INTEGER NOT NULL,
    members_only               INTEGER NOT NULL,
    moderated                  INTEGER NOT NULL,
    password                   TEXT    NULL,
    max_users                  INTEGER NOT NULL,
    whois                      TEXT    NOT NULL,
    allow_pm                   INTEGER NOT NULL,
    allow_invites              INTEGER NOT NULL,
    occupants_change_subject   INTEGER NOT NULL,
    logged                     INTEGER NOT NULL,
    history_length             INTEGER NOT NULL,
    subject                    TEXT    NOT NULL,
    subject_nick               TEXT    NOT NULL,
    locked                     INTEGER NOT NULL,
    created_at                 INTEGER NOT NULL
) STRICT;

CREATE INDEX rooms_category ON rooms (category_id);

CREATE TABLE affiliations (
    room_id      INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL,
    affiliation  TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    PRIMARY KEY (room_id, user_id)
) STRICT;

CREATE TABLE messages (
    room_id      INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    stanza_id    TEXT    NOT NULL,
    origin_id    TEXT    NOT NULL,
    sender       TEXT    NOT NULL,
    nick         TEXT    NOT NULL,
    occupant_id  TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    extra        TEXT    NULL,
    ts           INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
) STRICT;

CREATE INDEX messages_stanza_id ON messages (room_id, stanza_id);
CREATE INDEX messages_ts ON messages (room_id, ts);
