-- Releases as one JSON document each, the release_artifacts index, and
-- retired artifacts (see migrations/sqlite/0003).

CREATE TABLE releases (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    state      TEXT COLLATE "C" NOT NULL,
    revision   BIGINT NOT NULL,
    document   TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX releases_state ON releases (state, name);

CREATE TABLE release_artifacts (
    release_name     TEXT COLLATE "C" NOT NULL,
    artifact_name    TEXT COLLATE "C" NOT NULL,
    artifact_version TEXT COLLATE "C" NOT NULL,
    digest           TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (release_name, artifact_name, artifact_version),
    FOREIGN KEY (release_name) REFERENCES releases (name)
);

CREATE INDEX release_artifacts_artifact ON release_artifacts (artifact_name, artifact_version);

ALTER TABLE artifacts ADD COLUMN retired_at BIGINT;
ALTER TABLE artifacts ADD COLUMN retired_by TEXT COLLATE "C" NOT NULL DEFAULT '';
