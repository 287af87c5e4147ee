-- The compliance outbox: events waiting to be copied into the compliance database (see
-- core/src/compliance/drain.rs). Rows are pushed here by the server and deleted once the
-- compliance database has them, oldest id first. Kept identical to
-- migrations/postgres/0004_compliance_outbox.sql.
CREATE TABLE compliance_outbox (
    id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    -- ms since the Unix epoch
    at        INTEGER NOT NULL,
    room      TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    protocol  TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    -- JSON text
    detail    TEXT    NOT NULL
) STRICT;
