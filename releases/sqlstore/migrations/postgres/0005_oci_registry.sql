-- The OCI registry (see migrations/sqlite/0005): manifests, their
-- references, tags (each also an artifact), blob links and chunked upload
-- sessions.

CREATE TABLE oci_manifests (
    repository    TEXT COLLATE "C" NOT NULL,
    digest        TEXT COLLATE "C" NOT NULL,
    media_type    TEXT COLLATE "C" NOT NULL,
    size          BIGINT NOT NULL,
    artifact_type TEXT COLLATE "C" NOT NULL,
    subject       TEXT COLLATE "C",
    annotations   TEXT COLLATE "C",
    created_by    TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);

CREATE INDEX oci_manifests_subject ON oci_manifests (repository, subject);

CREATE TABLE oci_manifest_refs (
    repository TEXT COLLATE "C" NOT NULL,
    manifest   TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    ref        TEXT COLLATE "C" NOT NULL,
    external   BIGINT NOT NULL,
    PRIMARY KEY (repository, manifest, kind, ref),
    FOREIGN KEY (repository, manifest) REFERENCES oci_manifests (repository, digest)
);

CREATE INDEX oci_manifest_refs_ref ON oci_manifest_refs (repository, ref);

CREATE TABLE oci_tags (
    repository TEXT COLLATE "C" NOT NULL,
    tag        TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    updated_by TEXT COLLATE "C" NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository, tag),
    FOREIGN KEY (repository, digest) REFERENCES oci_manifests (repository, digest),
    FOREIGN KEY (repository, tag) REFERENCES artifacts (name, version)
);

CREATE INDEX oci_tags_digest ON oci_tags (repository, digest);

CREATE TABLE oci_blob_links (
    repository TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest, created_by)
);

CREATE INDEX oci_blob_links_digest ON oci_blob_links (digest, repository);

CREATE TABLE oci_uploads (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    repository   TEXT COLLATE "C" NOT NULL,
    received     BIGINT NOT NULL,
    chunks       BIGINT NOT NULL,
    sha256_state BYTEA  NOT NULL,
    sha512_state BYTEA  NOT NULL,
    owner        TEXT COLLATE "C" NOT NULL,
    started_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE INDEX oci_uploads_updated ON oci_uploads (updated_at);
