-- Files posted to rooms: one row per upload, written once its bytes are in the file store
-- (kept column-for-column identical to migrations/postgres/0003_files.sql). The bytes live
-- content-addressed in the file store under sha256; several rows may share one blob.
CREATE TABLE files (
    -- a UUID: the upload slot's id, part of the download URL
    id          TEXT    NOT NULL PRIMARY KEY,
    -- the room the file was posted to; NULL until it is posted (XEP-0363 slots are asked
    -- of the upload service, not of a room)
    room_id     INTEGER NULL REFERENCES rooms (id) ON DELETE CASCADE,
    -- the bare JID of the uploader
    uploader    TEXT    NOT NULL,
    -- the name the client gave, as given (sanitised only when served)
    name        TEXT    NOT NULL,
    -- the Content-Type the client gave
    mime        TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    -- 64 lowercase hex digits: the blob in the file store
    sha256      TEXT    NOT NULL,
    -- ms since the Unix epoch
    created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX files_room ON files (room_id, created_at);
CREATE INDEX files_uploader ON files (uploader);
CREATE INDEX files_sha256 ON files (sha256);

-- Secrets every node of a pool shares, made once by whichever node needs one first (e.g.
-- 'files': the key that signs upload and download URLs, so any node serves a URL another
-- node signed).
CREATE TABLE secrets (
    name   TEXT NOT NULL PRIMARY KEY,
    value  BLOB NOT NULL
) STRICT;
