// Package provenance builds and verifies provenance documents: one JSON
// file holding everything the DML recorded about an artifact version — its
// evidence, admission receipt, releases with their approvals, sealed
// manifests, deployments and reviews — each item tied to an audit log
// record with an inclusion proof against one signed checkpoint.
//
// Verify needs no server: only the log's note verifier key, the server's
// public key and (optionally) the trusted signing keys. Changing any value
// in a document — a name, a digest, a time, a proof hash, a signature —
// makes verification fail.
package provenance
