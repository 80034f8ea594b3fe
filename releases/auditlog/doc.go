// Package auditlog is the format of dml's tamper-evident audit log: the
// canonical record encoding, the RFC 6962 Merkle tree over records
// (golang.org/x/mod/sumdb/tlog), signed checkpoints in the signed-note
// format (golang.org/x/mod/sumdb/note), and a streaming verifier that
// recomputes the tree from the records alone.
//
// It has no dependency on the database or HTTP, so the server (which
// appends) and an auditor's offline tools (which verify) share exactly one
// definition of what is hashed and signed.
package auditlog
