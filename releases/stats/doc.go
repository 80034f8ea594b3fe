// Package stats counts what the DML holds now, for monitoring: artifact
// versions by state and the oldest still in quarantine, the blobs the
// metadata refers to, the audit log's size, the webhook outbox's backlog
// and the gates that wait for an approval. It reads; it changes nothing,
// and it knows nothing of Prometheus (api/ exports a Snapshot as metrics).
package stats
