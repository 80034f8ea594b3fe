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

	"github.com/dmlproject/dml/api/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// Audit is the client of the audit log (its key, checkpoint, records and
// proofs) and of the access log. It is the auditlog.Source that
// auditlog.Verify checks the log through.
type Audit struct{ c *Client }

// maxTextResponse bounds a key or checkpoint answer.
const maxTextResponse = 64 << 10

func (x Audit) text(ctx context.Context, path string) ([]byte, error) {
	resp, err := x.c.do(ctx, request{method: http.MethodGet, path: path, header: http.Header{"Accept": {"text/plain"}}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxTextResponse))
}

// Key returns the audit log's note verifier key.
func (x Audit) Key(ctx context.Context) ([]byte, error) {
	return x.text(ctx, "/api/v1/audit/key")
}

// Checkpoint returns the latest signed checkpoint (a signed note).
func (x Audit) Checkpoint(ctx context.Context) ([]byte, error) {
	return x.text(ctx, "/api/v1/audit/checkpoint")
}

// Entries opens a stream of limit records from start: one canonical
// record per line. The caller closes it.
func (x Audit) Entries(ctx context.Context, start, limit int64) (io.ReadCloser, error) {
	q := url.Values{"start": {strconv.FormatInt(start, 10)}, "limit": {strconv.FormatInt(limit, 10)}}
	resp, err := x.c.do(ctx, request{method: http.MethodGet, path: "/api/v1/audit/entries", query: q, header: http.Header{"Accept": {"application/x-ndjson"}}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
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
func (x Audit) InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	var p wire.InclusionProof
	q := url.Values{"index": {strconv.FormatInt(index, 10)}, "size": {strconv.FormatInt(size, 10)}}
	if _, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit/proofs/inclusion", query: q}, &p, http.StatusOK); err != nil {
		return nil, err
	}
	return decodeHashes(p.Proof)
}

// ConsistencyProof fetches the proof that the tree of size from is a
// prefix of the tree of size to.
func (x Audit) ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	var p wire.ConsistencyProof
	q := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
	if _, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit/proofs/consistency", query: q}, &p, http.StatusOK); err != nil {
		return nil, err
	}
	return decodeHashes(p.Proof)
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

// AccessLog returns one page of the access log, oldest first (auditors
// and admins).
func (x Audit) AccessLog(ctx context.Context, f AccessFilter) (wire.AccessPage, error) {
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
	var page wire.AccessPage
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit/access", query: q}, &page, http.StatusOK)
	return page, err
}

// AllAccessRecords yields every record the filter selects, following
// cursors from f.Cursor on; it stops at the first error, which it yields.
func (x Audit) AllAccessRecords(ctx context.Context, f AccessFilter) iter.Seq2[wire.AccessRecord, error] {
	return allPages(f.Cursor, func(cursor string) ([]wire.AccessRecord, string, error) {
		f.Cursor = cursor
		page, err := x.AccessLog(ctx, f)
		return page.Records, page.NextCursor, err
	})
}
