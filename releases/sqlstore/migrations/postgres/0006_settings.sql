-- Settings admins change at run time (see migrations/sqlite/0006).
CREATE TABLE settings (
    key        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value      TEXT COLLATE "C" NOT NULL,
    updated_by TEXT COLLATE "C" NOT NULL,
    updated_at BIGINT NOT NULL
);
