-- Tokens may expire; last use is bookkeeping written at most once a minute
-- per token (releases.Service.Authenticate), never an audited change.
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;

-- The access log: refused requests and content downloads. It is not the
-- audit log — no Merkle hashes, no append-only triggers — because it is
-- pruned (a maximum age and a maximum number of records), and because it
-- records reads, which change nothing. Text columns are '' when unknown.
-- seq: see events (AUTOINCREMENT never reuses a value, so a cursor stays
-- valid after the oldest records are pruned).
CREATE TABLE access_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    time       BIGINT  NOT NULL,
    principal  TEXT    NOT NULL,
    token_id   TEXT    NOT NULL,
    method     TEXT    NOT NULL,
    route      TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    outcome    TEXT    NOT NULL,
    code       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    remote     TEXT    NOT NULL
);

-- Pruning by age and "since" queries walk time; the filters of
-- GET /api/v1/audit/access walk their column in seq (page) order.
CREATE INDEX access_log_time ON access_log (time);
CREATE INDEX access_log_principal ON access_log (principal, seq);
CREATE INDEX access_log_subject ON access_log (subject, seq);
CREATE INDEX access_log_name ON access_log (name, seq);
