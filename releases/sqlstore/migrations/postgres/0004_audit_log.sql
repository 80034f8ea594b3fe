-- The tamper-evident audit log (see migrations/sqlite/0004): one record
-- per event and the RFC 6962 tree's stored hashes. Its Go step
-- (backfillAuditLog) logs the events recorded before it, in the same
-- transaction. Appends are serialised by a transaction-level advisory lock
-- (recordEvent), so indexes are dense whichever connection appends.

CREATE TABLE audit_records (
    idx       BIGINT NOT NULL PRIMARY KEY,
    event_seq BIGINT NOT NULL UNIQUE REFERENCES events (seq),
    subject   TEXT COLLATE "C" NOT NULL,
    record    TEXT COLLATE "C" NOT NULL
);

CREATE INDEX audit_records_subject ON audit_records (subject, idx);

CREATE TABLE audit_hashes (
    id   BIGINT NOT NULL PRIMARY KEY,
    hash BYTEA  NOT NULL CHECK (octet_length(hash) = 32)
);

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION dml_append_only('the audit log is append-only');
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION dml_append_only('the audit log is append-only');
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION dml_append_only('the audit log is append-only');
CREATE TRIGGER audit_hashes_no_update BEFORE UPDATE ON audit_hashes
    FOR EACH ROW EXECUTE FUNCTION dml_append_only('the audit log is append-only');
CREATE TRIGGER audit_hashes_no_delete BEFORE DELETE ON audit_hashes
    FOR EACH ROW EXECUTE FUNCTION dml_append_only('the audit log is append-only');
CREATE TRIGGER audit_hashes_no_truncate BEFORE TRUNCATE ON audit_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION dml_append_only('the audit log is append-only');
