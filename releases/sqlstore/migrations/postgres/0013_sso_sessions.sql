-- Single sign-on sessions and the identity of events' actors (see
-- migrations/sqlite/0013).
ALTER TABLE tokens ADD COLUMN issuer TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN subject TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN actor_issuer TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN actor_subject TEXT COLLATE "C" NOT NULL DEFAULT '';

CREATE INDEX tokens_identity ON tokens (issuer, subject, created_at);
