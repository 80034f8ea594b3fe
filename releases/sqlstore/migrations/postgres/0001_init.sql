-- The PostgreSQL schema mirrors migrations/sqlite version for version: the
-- same tables, columns, keys and indexes, in this dialect's types. Times
-- are BIGINT Unix nanoseconds (UTC); lists and documents are JSON text,
-- stored byte for byte as written.
--
-- Every TEXT column is COLLATE "C": keys, names and cursors compare and
-- sort bytewise, as in SQLite and Go, whatever the database's default
-- collation (a locale's order would reorder pages and break the keyset
-- cursors).

CREATE TABLE artifacts (
    name       TEXT COLLATE "C" NOT NULL,
    version    TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    size       BIGINT NOT NULL,
    media_type TEXT COLLATE "C" NOT NULL,
    state      TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE INDEX artifacts_digest ON artifacts (digest);
CREATE INDEX artifacts_state ON artifacts (state, name, version);

CREATE TABLE tokens (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL,
    roles        TEXT COLLATE "C" NOT NULL,
    environments TEXT COLLATE "C" NOT NULL,
    secret_hash  TEXT COLLATE "C" NOT NULL UNIQUE,
    created_by   TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

-- An identity column never hands out a value twice, even for a rolled-back
-- or deleted row (SQLite: INTEGER PRIMARY KEY AUTOINCREMENT). Events are
-- inserted under the audit log's lock (recordEvent), so seq order is
-- commit order.
CREATE TABLE events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time           BIGINT NOT NULL,
    actor_token_id TEXT COLLATE "C" NOT NULL,
    actor_name     TEXT COLLATE "C" NOT NULL,
    action         TEXT COLLATE "C" NOT NULL,
    subject        TEXT COLLATE "C" NOT NULL,
    details        TEXT COLLATE "C"
);

-- The event stream is append-only for everyone, including someone with a
-- SQL shell and a bug. TG_ARGV[0] is what the refusal says; TRUNCATE,
-- which row triggers do not see, is refused by a statement trigger.
CREATE FUNCTION dml_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION dml_append_only('events are append-only');
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION dml_append_only('events are append-only');
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION dml_append_only('events are append-only');
