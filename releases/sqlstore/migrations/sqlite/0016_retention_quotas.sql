-- Retention and quotas (issue 14).

-- Retention policies, one per ID; the pattern decides which artifact
-- names each governs (the most specific matching pattern wins, ranked in
-- the domain). A limit of 0 is no limit.
CREATE TABLE retention_policies (
    id                            TEXT   NOT NULL PRIMARY KEY,
    pattern                       TEXT   NOT NULL,
    keep_admitted                 BIGINT NOT NULL,
    delete_quarantined_after_days BIGINT NOT NULL,
    delete_rejected_after_days    BIGINT NOT NULL,
    updated_by                    TEXT   NOT NULL,
    updated_at                    BIGINT NOT NULL
);

-- Leases: work one replica at a time does (a retention run), held by a
-- random holder until expires_at, renewed while the work goes on. A row
-- rather than an advisory lock so that SQLite and PostgreSQL share it, and
-- a replica that dies frees it by letting it expire.
CREATE TABLE leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Quotas per artifact name prefix. A limit of 0 is no limit.
CREATE TABLE quotas (
    prefix        TEXT   NOT NULL PRIMARY KEY,
    max_bytes     BIGINT NOT NULL,
    max_artifacts BIGINT NOT NULL,
    updated_by    TEXT   NOT NULL,
    updated_at    BIGINT NOT NULL
);
