-- Single sign-on (releases/access/sso.go). A person's session is a token
-- marked with the provider identity it was issued to; '' for machines'
-- tokens. Events (and so audit records) name that identity too.
ALTER TABLE tokens ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN actor_issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN actor_subject TEXT NOT NULL DEFAULT '';

-- A sign-in lists the earlier sessions of the same person.
CREATE INDEX tokens_identity ON tokens (issuer, subject, created_at);
