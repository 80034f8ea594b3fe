// Package audit reads the DML's records: the tamper-evident audit log of
// every change (signed checkpoints, entries, inclusion and consistency
// proofs, for auditors and admins), and the access log of refusals and
// downloads, which changes nothing and is pruned, so it stays outside the
// Merkle log.
//
// Events are written by every concept's store, in the transaction of the
// change they record; this package defines them (Event, and Change, the
// event a domain decision hands its store) and reads them back through its
// Store. releases/auditlog is the tree, the record format and the offline
// verifier underneath.
package audit
