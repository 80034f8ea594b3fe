-- Times are BIGINT Unix nanoseconds (UTC): exact, sortable and portable.
-- Lists (roles, environments) and event details are JSON text, stored
-- byte for byte as written so that the audit log hashes what was recorded.

CREATE TABLE artifacts (
    name       TEXT   NOT NULL,
    version    TEXT   NOT NULL,
    digest     TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    media_type TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

-- Which versions point at a blob (pull by digest, garbage collection).
CREATE INDEX artifacts_digest ON artifacts (digest);
-- Listing by state walks this index in (name, version) order, the same
-- order as the keyset cursor.
CREATE INDEX artifacts_state ON artifacts (state, name, version);

CREATE TABLE tokens (
    id           TEXT   NOT NULL PRIMARY KEY,
    name         TEXT   NOT NULL,
    roles        TEXT   NOT NULL,
    environments TEXT   NOT NULL,
    -- Hex SHA-256 of the secret; the secret itself is never stored.
    secret_hash  TEXT   NOT NULL UNIQUE,
    created_by   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

-- INTEGER PRIMARY KEY AUTOINCREMENT is SQLite's identity column: seq is
-- never reused, even for a rolled-back or deleted row. (PostgreSQL: BIGINT
-- GENERATED ALWAYS AS IDENTITY.)
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    time           BIGINT NOT NULL,
    actor_token_id TEXT   NOT NULL,
    actor_name     TEXT   NOT NULL,
    action         TEXT   NOT NULL,
    subject        TEXT   NOT NULL,
    details        TEXT
);

-- The event stream is append-only for everyone, including someone with a
-- SQL shell and a bug; the audit log would detect a rewrite, this stops it.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
