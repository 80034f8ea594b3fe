-- Integrity of stored blobs and the coordination of gc with writers
-- (releases/integrity_types.go). None of these rows is history: the audit
-- log keeps what happened (blob.corrupt, blob.repaired, blob.collected);
-- these say what holds now.

-- What is known of a blob's health. verified_state is the backend's
-- fingerprint of the object (size, modification time, ETag) when its bytes
-- last hashed to the digest, '' while unknown; corrupt_at is set (with the
-- reason) while the blob is marked corrupt and refused.
CREATE TABLE blob_integrity (
    digest         TEXT   NOT NULL PRIMARY KEY,
    verified_state TEXT   NOT NULL,
    verified_at    BIGINT,
    corrupt_at     BIGINT,
    corrupt_reason TEXT   NOT NULL
);

-- A writer's claim on a blob it is about to refer to: gc does not delete
-- a claimed blob. Claims live for the few milliseconds between a write's
-- look at the stored blob and the commit of its reference; old ones are
-- left by writers that died and are ignored.
CREATE TABLE blob_claims (
    id         TEXT   NOT NULL PRIMARY KEY,
    digest     TEXT   NOT NULL,
    claimed_at BIGINT NOT NULL
);

CREATE INDEX blob_claims_digest ON blob_claims (digest, claimed_at);

-- A deletion by gc under way: writers wait for it to end rather than
-- refer to a blob that is going.
CREATE TABLE blob_deletions (
    digest     TEXT   NOT NULL PRIMARY KEY,
    started_at BIGINT NOT NULL
);

-- "Is this digest referenced, and by what?" is asked per blob by gc and
-- fsck: each table that names a digest can answer it from an index. A
-- release names its sealed manifest only inside its document; the
-- column below reads it out (computed, so it can never disagree with the
-- document, and existing releases have it at once), to be indexed.
-- PostgreSQL: GENERATED ALWAYS AS ((document::jsonb)->>'manifestDigest') STORED.
ALTER TABLE releases ADD COLUMN manifest_digest TEXT
    GENERATED ALWAYS AS (json_extract(document, '$.manifestDigest')) VIRTUAL;
CREATE INDEX releases_manifest_digest ON releases (manifest_digest);
CREATE INDEX evidence_digest ON evidence (digest);
CREATE INDEX release_artifacts_digest ON release_artifacts (digest);
CREATE INDEX oci_manifests_digest ON oci_manifests (digest);
CREATE INDEX oci_manifest_refs_digest ON oci_manifest_refs (ref);
