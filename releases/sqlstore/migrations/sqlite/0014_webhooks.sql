-- Webhooks and their outbox (releases/events). A webhook's event_cursor is
-- the last audit event (events.seq) examined for it: the dispatcher reads
-- the events after it, inserts the matching deliveries and moves the
-- cursor in one transaction, so a crash neither loses nor skips an event.
-- filter is the JSON {types, match, environments}; secret is the signing
-- secret sealed with a key derived from the server key, never plain.
CREATE TABLE webhooks (
    id           TEXT   PRIMARY KEY,
    url          TEXT   NOT NULL,
    filter       TEXT   NOT NULL,
    secret       BLOB   NOT NULL,
    created_by   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    event_cursor BIGINT NOT NULL
);

-- One row per event to send to one webhook, in id order per webhook: only
-- the oldest pending delivery of a webhook is sent (ordering). body is the
-- event's JSON as first enqueued, so every attempt sends the same bytes.
-- lease_owner/lease_until keep one dispatcher per delivery at a time.
-- Times are Unix nanoseconds; next_attempt_at is NULL once finished.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    last_attempt_at BIGINT,
    next_attempt_at BIGINT,
    delivered_at    BIGINT,
    created_at      BIGINT  NOT NULL,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     BIGINT  NOT NULL DEFAULT 0,
    redelivery_of   BIGINT
);

CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook_id, state, id);
