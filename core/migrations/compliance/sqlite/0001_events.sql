-- The compliance archive (its own database, never the main store). Append-only: every row
-- carries the SHA-256 of the previous row (`prev_hash`) and its own (`hash`), both 64 hex
-- digits; see core/src/compliance/chain.rs. Kept identical to ../postgres/0001_events.sql.
CREATE TABLE compliance_events (
    seq        INTEGER NOT NULL PRIMARY KEY,
    -- ms since the Unix epoch
    at         INTEGER NOT NULL,
    room       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    protocol   TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    -- JSON text
    detail     TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
) STRICT;

CREATE INDEX compliance_events_at ON compliance_events (at);
CREATE INDEX compliance_events_room ON compliance_events (room, seq);

-- One row: the last appended seq and hash (the writers' lock and the chain's tail).
CREATE TABLE compliance_head (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT    NOT NULL
) STRICT;
INSERT INTO compliance_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- One row: where the stored chain starts after purges (seq and hash of the last purged row).
CREATE TABLE compliance_chain_start (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT    NOT NULL
) STRICT;
INSERT INTO compliance_chain_start (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
