-- Token expiry and last use, and the access log (see
-- migrations/sqlite/0010). The access log is not the audit log: it is
-- pruned and has no append-only triggers. Its seq is an identity like
-- events', but inserts are not serialised (a refusal or a download takes
-- no lock), so a record may commit after one with a higher seq.
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;

CREATE TABLE access_log (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time       BIGINT  NOT NULL,
    principal  TEXT COLLATE "C" NOT NULL,
    token_id   TEXT COLLATE "C" NOT NULL,
    method     TEXT COLLATE "C" NOT NULL,
    route      TEXT COLLATE "C" NOT NULL,
    path       TEXT COLLATE "C" NOT NULL,
    status     INTEGER NOT NULL,
    outcome    TEXT COLLATE "C" NOT NULL,
    code       TEXT COLLATE "C" NOT NULL,
    message    TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    version    TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    remote     TEXT COLLATE "C" NOT NULL
);

CREATE INDEX access_log_time ON access_log (time);
CREATE INDEX access_log_principal ON access_log (principal, seq);
CREATE INDEX access_log_subject ON access_log (subject, seq);
CREATE INDEX access_log_name ON access_log (name, seq);
