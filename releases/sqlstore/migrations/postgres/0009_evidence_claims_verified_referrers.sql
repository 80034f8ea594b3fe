-- Where each claim of evidence was first presented, and verified
-- referrers (see migrations/sqlite/0009).
CREATE TABLE evidence_claims (
    claim            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    artifact_name    TEXT COLLATE "C" NOT NULL,
    artifact_version TEXT COLLATE "C" NOT NULL,
    presented_by     TEXT COLLATE "C" NOT NULL,
    presented_at     BIGINT NOT NULL
);

ALTER TABLE oci_manifests ADD COLUMN verified BIGINT NOT NULL DEFAULT 0;
