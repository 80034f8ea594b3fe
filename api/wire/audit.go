package wire

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// The audit log's key and checkpoint are text, and its entries NDJSON of
// the log's own canonical records (releases/auditlog); the proofs are
// these.

// InclusionProof answers GET /audit/proofs/inclusion?index=&size=: the
// proof that record Index is in the tree of Size records, each hash in
// base64. (The server sends the keys sorted, as here.)
type InclusionProof struct {
	Index int64    `json:"index"`
	Proof []string `json:"proof"`
	Size  int64    `json:"size"`
}

// ConsistencyProof answers GET /audit/proofs/consistency?from=&to=: the
// proof that the tree of From records is a prefix of the tree of To, each
// hash in base64.
type ConsistencyProof struct {
	From  int64    `json:"from"`
	Proof []string `json:"proof"`
	To    int64    `json:"to"`
}

// AccessRecord is one entry of the access log: a refused request or a
// content download.
type AccessRecord struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	TokenID   string    `json:"tokenId"`
	Method    string    `json:"method"`
	// Route is the route as the access matrix names it ("GET
	// /v2/{name}/blobs/{digest}"); Path is the request's own.
	Route  string `json:"route"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	// Outcome is served, aborted, failed, unauthorized, denied or
	// conflict.
	Outcome string `json:"outcome"`
	// Code and Message are the error's, for refusals.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Subject is what the request was about, in the audit log's terms:
	// "name:version", "name@digest", "release:NAME", or an id.
	Subject string        `json:"subject,omitempty"`
	Name    string        `json:"name,omitempty"`
	Version string        `json:"version,omitempty"`
	Digest  digest.Digest `json:"digest,omitempty"`
	// Remote is the client's address as the server saw it.
	Remote string `json:"remote,omitempty"`
}

// AccessPage is one page of GET /audit/access, oldest first. (The server
// sends the keys sorted, as here.)
type AccessPage struct {
	NextCursor string         `json:"nextCursor"`
	Records    []AccessRecord `json:"records"`
}
