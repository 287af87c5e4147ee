-- SIP: digest credentials on users and the registrar's location service (kept
-- column-for-column identical to migrations/postgres/0002_sip.sql).

-- HA1 = H(user ":" realm ":" password) as lowercase hex, for realm sip_realm. All three are
-- NULL for accounts whose password was set before this migration (`palaver user passwd`).
ALTER TABLE users ADD COLUMN sip_realm TEXT NULL;
ALTER TABLE users ADD COLUMN sip_ha1_md5 TEXT NULL;
ALTER TABLE users ADD COLUMN sip_ha1_sha256 TEXT NULL;

-- One row per registered Contact binding (RFC 3261 §10). Deleting a user deletes its bindings.
CREATE TABLE registrations (
    user_id     TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    -- the Contact URI
    contact     TEXT    NOT NULL,
    -- +sip.instance (RFC 5626) or ''
    instance    TEXT    NOT NULL,
    -- 'udp' | 'tcp' | 'tls'
    transport   TEXT    NOT NULL,
    -- ip:port the REGISTER came from
    source      TEXT    NOT NULL,
    -- pool node id ('' while single-node)
    node        TEXT    NOT NULL,
    call_id     TEXT    NOT NULL,
    cseq        INTEGER NOT NULL,
    -- ms since the Unix epoch
    expires_at  INTEGER NOT NULL,
    user_agent  TEXT    NOT NULL,
    PRIMARY KEY (user_id, contact)
) STRICT;

CREATE INDEX registrations_expires_at ON registrations (expires_at);
