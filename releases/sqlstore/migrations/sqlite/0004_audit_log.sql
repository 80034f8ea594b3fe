-- The tamper-evident audit log (releases/auditlog): one record per event,
-- appended in the event's own transaction, and the RFC 6962 Merkle tree
-- over the records. Events recorded before this migration are appended to
-- the log, oldest first, by its Go step (backfillAuditLog) in the same
-- transaction: SQL cannot compute the hashes.
--
-- idx is the record's position in the log: 0, 1, 2... with no gaps, even
-- where event seq has some. record is the canonical encoding
-- (auditlog.Encode), the exact bytes the tree hashes; subject is copied out
-- of it so that the records of one artifact or release are an index lookup.
CREATE TABLE audit_records (
    idx       BIGINT NOT NULL PRIMARY KEY,
    event_seq BIGINT NOT NULL UNIQUE REFERENCES events (seq),
    subject   TEXT   NOT NULL,
    record    TEXT   NOT NULL
);

CREATE INDEX audit_records_subject ON audit_records (subject, idx);

-- The tree's stored hashes (golang.org/x/mod/sumdb/tlog): id is the stored
-- hash index, tlog.StoredHashIndex(level, n). Appending record n writes
-- the hashes tlog.StoredHashes returns at ids StoredHashIndex(0, n) and
-- up; roots and proofs read at most a few dozen of them.
CREATE TABLE audit_hashes (
    id   BIGINT NOT NULL PRIMARY KEY,
    hash BLOB   NOT NULL CHECK (length(hash) = 32)
);

-- Like events, the log is append-only. A rewrite would be detected by
-- anyone holding a signed checkpoint; this stops one by mistake.
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_hashes_no_update BEFORE UPDATE ON audit_hashes
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_hashes_no_delete BEFORE DELETE ON audit_hashes
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
