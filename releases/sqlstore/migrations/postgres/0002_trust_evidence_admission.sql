-- Trusted keys, policy versions, verified evidence and the latest
-- admission decision (see migrations/sqlite/0002).

CREATE TABLE trust_keys (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    public_key_pem TEXT COLLATE "C" NOT NULL,
    algorithm      TEXT COLLATE "C" NOT NULL,
    comment        TEXT COLLATE "C" NOT NULL,
    created_by     TEXT COLLATE "C" NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_by     TEXT COLLATE "C" NOT NULL DEFAULT ''
);

CREATE TABLE trust_policies (
    version    BIGINT NOT NULL PRIMARY KEY,
    document   TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE evidence (
    artifact_name    TEXT COLLATE "C" NOT NULL,
    artifact_version TEXT COLLATE "C" NOT NULL,
    digest           TEXT COLLATE "C" NOT NULL,
    artifact_digest  TEXT COLLATE "C" NOT NULL,
    kind             TEXT COLLATE "C" NOT NULL,
    format           TEXT COLLATE "C" NOT NULL,
    media_type       TEXT COLLATE "C" NOT NULL,
    size             BIGINT NOT NULL,
    key_id           TEXT COLLATE "C" NOT NULL,
    predicate_type   TEXT COLLATE "C" NOT NULL,
    predicate        TEXT COLLATE "C",
    created_by       TEXT COLLATE "C" NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (artifact_name, artifact_version, digest),
    FOREIGN KEY (artifact_name, artifact_version) REFERENCES artifacts (name, version)
);

ALTER TABLE artifacts ADD COLUMN admission_state          TEXT COLLATE "C";
ALTER TABLE artifacts ADD COLUMN admission_rule           TEXT COLLATE "C";
ALTER TABLE artifacts ADD COLUMN admission_unmet          TEXT COLLATE "C";
ALTER TABLE artifacts ADD COLUMN admission_reason         TEXT COLLATE "C";
ALTER TABLE artifacts ADD COLUMN admission_policy_version BIGINT;
ALTER TABLE artifacts ADD COLUMN admission_evidence       TEXT COLLATE "C";
ALTER TABLE artifacts ADD COLUMN admission_receipt        TEXT COLLATE "C";
ALTER TABLE artifacts ADD COLUMN admission_decided_at     BIGINT;
