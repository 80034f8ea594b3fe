-- Webhooks and their outbox (see migrations/sqlite/0014). Dispatchers of
-- several replicas claim deliveries with FOR UPDATE SKIP LOCKED and a
-- lease; enqueueing is serialised by an advisory lock.
CREATE TABLE webhooks (
    id           TEXT COLLATE "C" PRIMARY KEY,
    url          TEXT COLLATE "C" NOT NULL,
    filter       TEXT COLLATE "C" NOT NULL,
    secret       BYTEA  NOT NULL,
    created_by   TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    event_cursor BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT COLLATE "C" NOT NULL,
    event_type      TEXT COLLATE "C" NOT NULL,
    body            TEXT COLLATE "C" NOT NULL,
    state           TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT COLLATE "C" NOT NULL DEFAULT '',
    last_attempt_at BIGINT,
    next_attempt_at BIGINT,
    delivered_at    BIGINT,
    created_at      BIGINT  NOT NULL,
    lease_owner     TEXT COLLATE "C" NOT NULL DEFAULT '',
    lease_until     BIGINT  NOT NULL DEFAULT 0,
    redelivery_of   BIGINT
);

CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook_id, state, id);
