// Package wire is the contract of the REST API (/api/v1): every JSON
// request and response body, the list pages and their cursors, the error
// body and the NDJSON events of fsck and gc. The server (package api)
// writes and reads these types and nothing else, and the Go client
// (api/client) decodes and sends the same types, so the two cannot drift.
//
// The types are plain data: they import nothing of the domain
// (releases/...), which maps its own types to them in the handlers, one
// place per resource. Their JSON is the API's, byte for byte: field order
// is declaration order, and where a list can be empty the server sends []
// or null as documented on the field. wire_test.go round-trips every type
// and checks that the client sees every field the server sends.
//
// Two bodies are documents the domain owns and signs rather than shapes
// of this API, and are served as the domain writes them: the records of
// the audit log (releases/auditlog, hashed into its Merkle tree) and
// provenance documents (releases/provenance, verified offline).
package wire
