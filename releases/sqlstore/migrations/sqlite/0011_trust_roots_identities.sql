-- Keyless signing: the Sigstore trusted roots an administrator installs,
-- and the workload identities (OIDC issuer, subject, certificate claims)
-- that may sign evidence as keys do.

-- Keys and identities are both signers, named in a policy's keys lists,
-- so their ids are one namespace: every signer id is a row here, inserted
-- in the transaction that adds the key or the identity, and the primary
-- key refuses a second signer of either kind under an id already taken
-- (also when two are added at once). Revoked signers keep their ids.
CREATE TABLE trust_signers (
    id   TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL
);
INSERT INTO trust_signers (id, kind) SELECT id, 'key' FROM trust_keys;

-- A trusted root is an id and its revocation; its trusted_root.json
-- documents are versions (a PUT of new content makes the next one), kept
-- byte for byte so that past verifications can be explained.
CREATE TABLE trust_roots (
    id         TEXT   NOT NULL PRIMARY KEY,
    version    BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT   NOT NULL DEFAULT ''
);

CREATE TABLE trust_root_versions (
    id         TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    document   TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id, version),
    FOREIGN KEY (id) REFERENCES trust_roots (id)
);

-- subject or subject_regexp is set, never both ('' for the other);
-- claims is a JSON object of certificate extension names to values.
CREATE TABLE trust_identities (
    id             TEXT   NOT NULL PRIMARY KEY,
    root           TEXT   NOT NULL,
    issuer         TEXT   NOT NULL,
    subject        TEXT   NOT NULL,
    subject_regexp TEXT   NOT NULL,
    claims         TEXT   NOT NULL,
    created_by     TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_by     TEXT   NOT NULL DEFAULT '',
    FOREIGN KEY (id) REFERENCES trust_signers (id),
    FOREIGN KEY (root) REFERENCES trust_roots (id)
);
