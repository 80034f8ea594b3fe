-- Release management: a release is one JSON document (the marshalled
-- releases.Release, with its approvals, deployments and review), replaced
-- whole on every change under compare-and-set on revision. The columns
-- beside it are copies of document fields that queries filter and order
-- by; the document is what callers get back.
CREATE TABLE releases (
    name       TEXT   NOT NULL PRIMARY KEY,
    state      TEXT   NOT NULL,
    revision   BIGINT NOT NULL,
    document   TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Listing by state walks this index in name order, the same order as the
-- keyset cursor.
CREATE INDEX releases_state ON releases (state, name);

-- The artifacts of each release, rewritten from the document on every
-- change, so that "which releases include name:version" (retiring an
-- artifact, auditing a digest) is an index lookup, not a scan of every
-- document. digest is the one the artifact had when it was attached.
CREATE TABLE release_artifacts (
    release_name     TEXT NOT NULL,
    artifact_name    TEXT NOT NULL,
    artifact_version TEXT NOT NULL,
    digest           TEXT NOT NULL,
    PRIMARY KEY (release_name, artifact_name, artifact_version),
    FOREIGN KEY (release_name) REFERENCES releases (name)
);

CREATE INDEX release_artifacts_artifact ON release_artifacts (artifact_name, artifact_version);

-- A retired artifact stays (releases that include it still name its
-- bytes), but no new release may include it. NULL until retired; as with
-- trust keys, who retired it is '' until then.
ALTER TABLE artifacts ADD COLUMN retired_at BIGINT;
ALTER TABLE artifacts ADD COLUMN retired_by TEXT NOT NULL DEFAULT '';
