-- Integrity of stored blobs and gc's coordination with writers (see
-- migrations/sqlite/0007).

CREATE TABLE blob_integrity (
    digest         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    verified_state TEXT COLLATE "C" NOT NULL,
    verified_at    BIGINT,
    corrupt_at     BIGINT,
    corrupt_reason TEXT COLLATE "C" NOT NULL
);

CREATE TABLE blob_claims (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    digest     TEXT COLLATE "C" NOT NULL,
    claimed_at BIGINT NOT NULL
);

CREATE INDEX blob_claims_digest ON blob_claims (digest, claimed_at);

CREATE TABLE blob_deletions (
    digest     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    started_at BIGINT NOT NULL
);

-- The sealed manifest a release names inside its document, read out by a
-- generated column (SQLite: a virtual json_extract column) to be indexed.
ALTER TABLE releases ADD COLUMN manifest_digest TEXT COLLATE "C"
    GENERATED ALWAYS AS ((document::jsonb) ->> 'manifestDigest') STORED;
CREATE INDEX releases_manifest_digest ON releases (manifest_digest);
CREATE INDEX evidence_digest ON evidence (digest);
CREATE INDEX release_artifacts_digest ON release_artifacts (digest);
CREATE INDEX oci_manifests_digest ON oci_manifests (digest);
CREATE INDEX oci_manifest_refs_digest ON oci_manifest_refs (ref);
