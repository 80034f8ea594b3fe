-- Signed, tested artifacts: the keys an administrator trusts, the policy
-- that says what an artifact needs, the verified evidence attached to each
-- version, and the latest admission decision about it.
--
-- Documents (policy, predicates, receipts) are TEXT kept byte for byte:
-- signatures and the audit log's hashes cover exact bytes, and
-- re-encoding JSON would change them.

-- Keys are revoked, never deleted, so an ID names one key forever and
-- evidence verified by a since-revoked key still says which key it was.
CREATE TABLE trust_keys (
    id             TEXT   NOT NULL PRIMARY KEY,
    public_key_pem TEXT   NOT NULL,
    algorithm      TEXT   NOT NULL,
    comment        TEXT   NOT NULL,
    created_by     TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_by     TEXT   NOT NULL DEFAULT ''
);

-- Every change to the policy is a new row; the highest version is current
-- and older ones explain past decisions (Admission.PolicyVersion).
CREATE TABLE trust_policies (
    version    BIGINT NOT NULL PRIMARY KEY,
    document   TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per evidence blob per version: the same bytes may vouch for two
-- versions that share a digest. The row keeps what verification
-- established, so the policy can be re-evaluated without re-verifying.
CREATE TABLE evidence (
    artifact_name    TEXT   NOT NULL,
    artifact_version TEXT   NOT NULL,
    digest           TEXT   NOT NULL,
    artifact_digest  TEXT   NOT NULL,
    kind             TEXT   NOT NULL,
    format           TEXT   NOT NULL,
    media_type       TEXT   NOT NULL,
    size             BIGINT NOT NULL,
    key_id           TEXT   NOT NULL,
    predicate_type   TEXT   NOT NULL,
    predicate        TEXT,
    created_by       TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (artifact_name, artifact_version, digest),
    FOREIGN KEY (artifact_name, artifact_version) REFERENCES artifacts (name, version)
);

-- The latest admission decision, one column per field of
-- releases.Admission; all NULL until the first decision. Lists are JSON
-- text as elsewhere, the receipt is the signed envelope as issued.
ALTER TABLE artifacts ADD COLUMN admission_state          TEXT;
ALTER TABLE artifacts ADD COLUMN admission_rule           TEXT;
ALTER TABLE artifacts ADD COLUMN admission_unmet          TEXT;
ALTER TABLE artifacts ADD COLUMN admission_reason         TEXT;
ALTER TABLE artifacts ADD COLUMN admission_policy_version BIGINT;
ALTER TABLE artifacts ADD COLUMN admission_evidence       TEXT;
ALTER TABLE artifacts ADD COLUMN admission_receipt        TEXT;
ALTER TABLE artifacts ADD COLUMN admission_decided_at     BIGINT;
