package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// maxTextResponse bounds a key or checkpoint answer.
const maxTextResponse = 64 << 10

func (c *Client) text(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, header: http.Header{"Accept": {"text/plain"}}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxTextResponse))
}

// AuditKey returns the audit log's note verifier key.
func (c *Client) AuditKey(ctx context.Context) ([]byte, error) {
	return c.text(ctx, "/api/v1/audit/key")
}

// AuditCheckpoint returns the latest signed checkpoint (a signed note).
func (c *Client) AuditCheckpoint(ctx context.Context) ([]byte, error) {
	return c.text(ctx, "/api/v1/audit/checkpoint")
}

// ServerPublicKey returns the server's signing public key (PEM).
func (c *Client) ServerPublicKey(ctx context.Context) ([]byte, error) {
	return c.text(ctx, "/api/v1/keys/server")
}

// AuditEntries opens a stream of limit records from start: one canonical
// record per line. The caller closes it.
func (c *Client) AuditEntries(ctx context.Context, start, limit int64) (io.ReadCloser, error) {
	q := url.Values{"start": {strconv.FormatInt(start, 10)}, "limit": {strconv.FormatInt(limit, 10)}}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/audit/entries", query: q, header: http.Header{"Accept": {"application/x-ndjson"}}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

type proofJSON struct {
	Proof []string `json:"proof"`
}

func decodeHashes(in []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d: not a base64 SHA-256 hash", i)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// InclusionProof fetches the proof that record index is in the tree of size.
func (c *Client) InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	var p proofJSON
	q := url.Values{"index": {strconv.FormatInt(index, 10)}, "size": {strconv.FormatInt(size, 10)}}
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit/proofs/inclusion", query: q}, &p, http.StatusOK); err != nil {
		return nil, err
	}
	return decodeHashes(p.Proof)
}

// ConsistencyProof fetches the proof that the tree of size from is a
// prefix of the tree of size to.
func (c *Client) ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	var p proofJSON
	q := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit/proofs/consistency", query: q}, &p, http.StatusOK); err != nil {
		return nil, err
	}
	return decodeHashes(p.Proof)
}

// Provenance returns the provenance document of an artifact version, as
// the server wrote it (JSON).
func (c *Client) Provenance(ctx context.Context, name, version string) ([]byte, error) {
	path, err := artifactPath(name, version, "provenance")
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse))
}

// AccessRecord is one entry of the access log: a refused request or a
// content download.
type AccessRecord struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	TokenID   string    `json:"tokenId"`
	Method    string    `json:"method"`
	Route     string    `json:"route"`
	Path      string    `json:"path"`
	Status    int       `json:"status"`
	// Outcome is served, aborted, unauthorized, denied or conflict.
	Outcome string `json:"outcome"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Subject string `json:"subject,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Remote  string `json:"remote,omitempty"`
}

// AccessFilter selects access records. Zero fields select everything.
type AccessFilter struct {
	// Subject: an artifact name (every version and digest of it), or
	// exactly name:version, name@digest, release:NAME.
	Subject   string
	Principal string
	Since     time.Time
	// Limit is the page size; 0 lets the server choose.
	Limit  int
	Cursor string
}

// AccessPage is one page of the access log.
type AccessPage struct {
	Records    []AccessRecord `json:"records"`
	NextCursor string         `json:"nextCursor"`
}

// AccessLog returns one page of the access log, oldest first (auditors
// and admins).
func (c *Client) AccessLog(ctx context.Context, f AccessFilter) (AccessPage, error) {
	q := url.Values{}
	if f.Subject != "" {
		q.Set("subject", f.Subject)
	}
	if f.Principal != "" {
		q.Set("principal", f.Principal)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	var page AccessPage
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit/access", query: q}, &page, http.StatusOK)
	return page, err
}

// AllAccessRecords yields every record the filter selects, following
// cursors from f.Cursor on; it stops at the first error, which it yields.
func (c *Client) AllAccessRecords(ctx context.Context, f AccessFilter) iter.Seq2[AccessRecord, error] {
	return allPages(f.Cursor, func(cursor string) ([]AccessRecord, string, error) {
		f.Cursor = cursor
		page, err := c.AccessLog(ctx, f)
		return page.Records, page.NextCursor, err
	})
}
