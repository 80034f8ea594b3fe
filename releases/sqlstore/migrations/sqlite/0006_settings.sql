-- Settings admins change at run time (the default gate quorums). Each key
-- holds one JSON document, stored byte for byte; every change is an event.
CREATE TABLE settings (
    key        TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_by TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
