-- The OCI registry (/v2/). A repository is an artifact name and a tag is a
-- version: every tag has its row in artifacts (created, moved and deleted
-- with it), so REST and OCI share one catalogue. Manifest bytes, like every
-- blob, are in the blob store under their digest; these tables say which
-- repository holds what.

-- Manifests per repository. artifact_type is what the referrers API
-- reports (the manifest's artifactType, or an image's config media type);
-- subject is NULL when the manifest has none; annotations is JSON text or
-- NULL.
CREATE TABLE oci_manifests (
    repository    TEXT   NOT NULL,
    digest        TEXT   NOT NULL,
    media_type    TEXT   NOT NULL,
    size          BIGINT NOT NULL,
    artifact_type TEXT   NOT NULL,
    subject       TEXT,
    annotations   TEXT,
    created_by    TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);

-- The referrers API: manifests of a repository by subject.
CREATE INDEX oci_manifests_subject ON oci_manifests (repository, subject);

-- What each manifest refers to: its config and layers, or an index's
-- child manifests. external marks layers with URLs (non-distributable),
-- which are not pushed. Walking these rows upwards from a digest finds the
-- tags that reach it, which decide who may pull it and whether it may be
-- deleted.
CREATE TABLE oci_manifest_refs (
    repository TEXT   NOT NULL,
    manifest   TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    ref        TEXT   NOT NULL,
    external   BIGINT NOT NULL,
    PRIMARY KEY (repository, manifest, kind, ref),
    FOREIGN KEY (repository, manifest) REFERENCES oci_manifests (repository, digest)
);

CREATE INDEX oci_manifest_refs_ref ON oci_manifest_refs (repository, ref);

-- Tags. Each is also the artifact (repository, tag): the foreign keys keep
-- a tag from outliving its artifact or its manifest.
CREATE TABLE oci_tags (
    repository TEXT   NOT NULL,
    tag        TEXT   NOT NULL,
    digest     TEXT   NOT NULL,
    updated_by TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository, tag),
    FOREIGN KEY (repository, digest) REFERENCES oci_manifests (repository, digest),
    FOREIGN KEY (repository, tag) REFERENCES artifacts (name, version)
);

CREATE INDEX oci_tags_digest ON oci_tags (repository, digest);

-- Blobs pushed or mounted into a repository, one row per principal that
-- did so: a blob is in the repository while any row holds it, and "who
-- pushed it" is part of who may pull it.
CREATE TABLE oci_blob_links (
    repository TEXT   NOT NULL,
    digest     TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest, created_by)
);

-- Cross-repository mounts without a source: repositories by blob.
CREATE INDEX oci_blob_links_digest ON oci_blob_links (digest, repository);

-- Chunked uploads in progress. The chunks are staging objects of the blob
-- store (uploads/ID/N); received is the byte count so far and the hash
-- states are the marshalled SHA-256 and SHA-512 digests of those bytes, so
-- an upload survives a restart and its digest is known without re-reading
-- it. Sessions not updated for the configured age are swept.
CREATE TABLE oci_uploads (
    id           TEXT   NOT NULL PRIMARY KEY,
    repository   TEXT   NOT NULL,
    received     BIGINT NOT NULL,
    chunks       BIGINT NOT NULL,
    sha256_state BLOB   NOT NULL,
    sha512_state BLOB   NOT NULL,
    owner        TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE INDEX oci_uploads_updated ON oci_uploads (updated_at);
