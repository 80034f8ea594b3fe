-- Trusted roots (versions of trusted_root.json), workload identities, and
-- the one namespace of signer ids that keys and identities share (see
-- migrations/sqlite/0011).
CREATE TABLE trust_signers (
    id   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL
);
INSERT INTO trust_signers (id, kind) SELECT id, 'key' FROM trust_keys;

CREATE TABLE trust_roots (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    version    BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT COLLATE "C" NOT NULL DEFAULT ''
);

CREATE TABLE trust_root_versions (
    id         TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    document   TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id, version),
    FOREIGN KEY (id) REFERENCES trust_roots (id)
);

CREATE TABLE trust_identities (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    root           TEXT COLLATE "C" NOT NULL,
    issuer         TEXT COLLATE "C" NOT NULL,
    subject        TEXT COLLATE "C" NOT NULL,
    subject_regexp TEXT COLLATE "C" NOT NULL,
    claims         TEXT COLLATE "C" NOT NULL,
    created_by     TEXT COLLATE "C" NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_by     TEXT COLLATE "C" NOT NULL DEFAULT '',
    FOREIGN KEY (id) REFERENCES trust_signers (id),
    FOREIGN KEY (root) REFERENCES trust_roots (id)
);
