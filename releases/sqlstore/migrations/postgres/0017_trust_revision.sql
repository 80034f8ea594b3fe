-- The trust revision: one number that every change of trust raises in the
-- transaction that makes it — a key, a trusted root or an identity added,
-- replaced or revoked, a policy set. Admission keeps the parsed policy and
-- the loaded verifiers in memory, keyed by this number, and reads it
-- (one row) inside the transaction that decides: a change committed by
-- any process sharing the database is seen by the next decision. The row
-- is written by the first change (none: revision 0), so that a database
-- no dml has changed stays empty (a metadata copy's target must be).
CREATE TABLE trust_revision (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    revision BIGINT  NOT NULL
);
