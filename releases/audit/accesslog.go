package audit

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/opencontainers/go-digest"
)

// The access log records who was refused what, and who downloaded what:
// every 401, 403 and 409 answer and every content download, with the
// principal, the route and the artifact. It is kept apart from the audit
// log, which records changes and is tamper-evident: the access log records
// reads and refusals, which change nothing, and it is pruned (a maximum age
// and a maximum number of records), so it can neither be hashed into the
// Merkle tree nor promise to keep everything.

// AccessOutcome is how a recorded request ended.
type AccessOutcome string

const (
	// AccessServed: content was delivered.
	AccessServed AccessOutcome = "served"
	// AccessAborted: a download was cut off after its headers were sent.
	AccessAborted AccessOutcome = "aborted"
	// AccessFailed: a download answered with a server-side error before
	// any content (a corrupt blob, the blob store unreachable).
	AccessFailed AccessOutcome = "failed"
	// AccessUnauthorized: no valid token (401).
	AccessUnauthorized AccessOutcome = "unauthorized"
	// AccessDenied: the token may not do this (403).
	AccessDenied AccessOutcome = "denied"
	// AccessConflict: refused by policy or state (409).
	AccessConflict AccessOutcome = "conflict"
)

// AccessRecord is one entry of the access log. Text fields are "" when
// unknown.
type AccessRecord struct {
	Seq       int64
	Time      time.Time
	Principal string
	TokenID   string
	Method    string
	// Route is the route as the access matrix names it ("GET
	// /v2/{name}/blobs/{digest}"); Path is the request's own.
	Route   string
	Path    string
	Status  int
	Outcome AccessOutcome
	// Code and Message are the error's, for refusals.
	Code    string
	Message string
	// Subject is what the request was about, in the audit log's terms:
	// "name:version", "name@digest", "release:NAME", or an id.
	Subject string
	Name    string
	Version string
	Digest  digest.Digest
	// Remote is the client's address as the server saw it.
	Remote string
}

// AccessFilter selects access records. Zero fields select everything.
type AccessFilter struct {
	// Subject selects records about exactly this subject, or, for an
	// artifact name, about any version or digest of it.
	Subject   string
	Principal string
	// Since selects records at or after this time.
	Since time.Time
	// Limit is the page size (0: 100, at most names.MaxPageSize).
	Limit int
	// Cursor is the next cursor of the previous page.
	Cursor string
}

// AccessStore is the persistence of the access log. Its methods record no
// event in the audit log.
type AccessStore interface {
	// RecordAccess appends r; the store assigns Seq, and a zero Time
	// becomes the time of the call.
	RecordAccess(ctx context.Context, r AccessRecord) error
	// AccessRecords returns one page in the order recorded, and the cursor
	// of the next ("" on the last page).
	AccessRecords(ctx context.Context, f AccessFilter) ([]AccessRecord, string, error)
	// PruneAccess deletes the records older than before and, when keep is
	// positive, the oldest beyond the newest keep. It returns how many it
	// deleted, and deletes in bounded batches so that writers are never
	// held up for long.
	PruneAccess(ctx context.Context, before time.Time, keep int) (int, error)
}

// Bounds on what one access record holds: paths and messages come from
// clients, and the log must not become a way to fill the disk faster than
// one bounded row per request.
const (
	maxAccessText    = 1024
	maxAccessMessage = 512
)

// clip bounds s to about n bytes of valid UTF-8, cutting at a rune
// boundary and marking the cut.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// RecordAccess appends r to the access log, bounding its text fields.
// The caller (the HTTP layer) decides what is recorded.
func (s *Service) RecordAccess(ctx context.Context, r AccessRecord) error {
	if r.Time.IsZero() {
		r.Time = s.now()
	}
	for _, f := range []*string{&r.Principal, &r.TokenID, &r.Method, &r.Route, &r.Path, &r.Code, &r.Subject, &r.Name, &r.Version, &r.Remote} {
		*f = clip(*f, maxAccessText)
	}
	r.Message = clip(r.Message, maxAccessMessage)
	r.Digest = digest.Digest(clip(string(r.Digest), maxAccessText))
	return s.access.RecordAccess(ctx, r)
}

// AccessRecords returns one page of the access log (auditors and admins).
func (s *Service) AccessRecords(ctx context.Context, p access.Principal, f AccessFilter) ([]AccessRecord, string, error) {
	if !p.Has(access.RoleAuditor, access.RoleAdmin) {
		return nil, "", fmt.Errorf("%w: reading the access log needs the auditor or admin role", errdef.ErrDenied)
	}
	if f.Limit < 0 || f.Limit > names.MaxPageSize {
		return nil, "", fmt.Errorf("%w: limit must be between 1 and %d", errdef.ErrInvalidInput, names.MaxPageSize)
	}
	if len(f.Subject) > maxAccessText || len(f.Principal) > maxAccessText {
		return nil, "", fmt.Errorf("%w: subject and principal are at most %d bytes", errdef.ErrInvalidInput, maxAccessText)
	}
	return s.access.AccessRecords(ctx, f)
}

// PruneAccessLog applies the access log's retention: records older than
// maxAge go, and so do the oldest beyond maxRecords (0: no limit).
func (s *Service) PruneAccessLog(ctx context.Context, maxAge time.Duration, maxRecords int) (int, error) {
	if maxAge <= 0 || maxRecords < 0 {
		return 0, fmt.Errorf("%w: the access log's maximum age must be positive and its maximum size not negative", errdef.ErrInvalidInput)
	}
	n, err := s.access.PruneAccess(ctx, s.now().Add(-maxAge), maxRecords)
	if err != nil {
		return n, fmt.Errorf("pruning the access log: %w", err)
	}
	if n > 0 {
		s.log.Info("access log pruned", "records", n, "maxAge", maxAge, "maxRecords", maxRecords)
	}
	return n, nil
}
