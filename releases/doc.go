// Package releases is the DML's domain: artifacts and their admission,
// principals and tokens, and (later) releases, gates, approvals,
// deployments, reviews and the audit log.
//
// The OCI registry (registry*.go) is the same catalogue seen through the
// distribution spec: repositories are artifact names, tags are versions.
//
// Stored bytes are checked after they were written too (integrity*.go):
// reads verify, corrupt blobs are marked and refused until a push of the
// same bytes repairs them; fsck.go and gc.go check and clean the whole
// store (maintenance.go).
//
// It depends on store (blob bytes) and signing (verification), never on
// HTTP. Persistence goes through the Metadata interface; releases/sqlstore
// implements it over SQLite (and, later, PostgreSQL) and
// releases/metadatatest is the conformance suite every implementation runs.
package releases
