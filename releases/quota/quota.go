package quota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
)

// Quota limits the artifacts whose names start with Prefix (a plain
// string prefix: "payments/" covers "payments/api", "payments" also
// covers "payments-legacy"). A limit of 0 is no limit. Every quota whose
// prefix a name starts with applies to it.
type Quota struct {
	Prefix       string    `json:"prefix"`
	MaxBytes     int64     `json:"maxBytes"`
	MaxArtifacts int64     `json:"maxArtifacts"`
	UpdatedBy    string    `json:"updatedBy"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Usage is what a prefix holds.
type Usage struct {
	Bytes     int64 `json:"bytes"`
	Artifacts int64 `json:"artifacts"`
}

// Event actions; the subject is "quota:PREFIX".
const (
	// ActionQuotaSet: {prefix, maxBytes, maxArtifacts}.
	ActionQuotaSet = "quota.set"
	// ActionQuotaDeleted: {prefix}.
	ActionQuotaDeleted = "quota.deleted"
)

// ErrQuotaExceeded refuses a push that would take a prefix past its
// quota. Every refusal is an *ExceededError, which says which limit.
var ErrQuotaExceeded = errors.New("quota exceeded")

// ExceededError says which quota a push would exceed: Limit is "bytes"
// or "artifacts", Max its value, Used what the prefix holds, Requested
// what the push adds (-1: bytes not declared, refused while streaming).
type ExceededError struct {
	Prefix    string
	Limit     string
	Max       int64
	Used      int64
	Requested int64
}

func (e *ExceededError) Error() string {
	req := fmt.Sprint(e.Requested)
	if e.Requested < 0 {
		req = "more"
	}
	return fmt.Sprintf("%s: prefix %q allows %d %s, holds %d, the push adds %s", ErrQuotaExceeded, e.Prefix, e.Max, e.Limit, e.Used, req)
}

func (e *ExceededError) Unwrap() error { return ErrQuotaExceeded }

// Reader reads quotas and usage; inside a store's transaction, Usage
// also holds other writers to the prefix off until the commit.
type Reader interface {
	ListQuotas(ctx context.Context) ([]Quota, error)
	Usage(ctx context.Context, prefix string) (Usage, error)
}

// Store is the persistence of quotas. Every mutating method records its
// event in the same transaction.
type Store interface {
	Reader
	// PutQuota creates or replaces q and records ActionQuotaSet.
	PutQuota(ctx context.Context, actor access.Actor, q Quota) (Quota, error)
	// DeleteQuota records ActionQuotaDeleted; errdef.ErrNotFound if
	// there is no quota for prefix.
	DeleteQuota(ctx context.Context, actor access.Actor, prefix string) error
}

// Validate refuses a quota that could not be applied as written.
func (q Quota) Validate() error {
	var errs []error
	if q.Prefix == "" || len(q.Prefix) > 255 || strings.ContainsFunc(q.Prefix, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		errs = append(errs, fmt.Errorf("prefix %q must be 1-255 printable ASCII characters (artifact names are)", q.Prefix))
	}
	if q.MaxBytes < 0 || q.MaxArtifacts < 0 {
		errs = append(errs, errors.New("limits must not be negative (0 is no limit)"))
	}
	if q.MaxBytes == 0 && q.MaxArtifacts == 0 {
		errs = append(errs, errors.New("a quota needs maxBytes or maxArtifacts"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: quota: %w", errdef.ErrInvalidInput, err)
	}
	return nil
}

// Applying returns the quotas that apply to name.
func Applying(quotas []Quota, name string) []Quota {
	var out []Quota
	for _, q := range quotas {
		if strings.HasPrefix(name, q.Prefix) {
			out = append(out, q)
		}
	}
	return out
}

// Check is the rule: adding bytes (-1: not known yet, checked as 0 here)
// and artifacts versions to name must keep every quota that applies to it
// within its limits, read through r. It returns the first quota it would
// exceed as an *ExceededError.
func Check(ctx context.Context, r Reader, name string, bytes, artifacts int64) error {
	quotas, err := r.ListQuotas(ctx)
	if err != nil {
		return err
	}
	for _, q := range Applying(quotas, name) {
		used, err := r.Usage(ctx, q.Prefix)
		if err != nil {
			return err
		}
		if err := within(q, used, bytes, artifacts); err != nil {
			return err
		}
	}
	return nil
}

func within(q Quota, used Usage, bytes, artifacts int64) error {
	if q.MaxArtifacts > 0 && artifacts > 0 && used.Artifacts+artifacts > q.MaxArtifacts {
		return &ExceededError{Prefix: q.Prefix, Limit: "artifacts", Max: q.MaxArtifacts, Used: used.Artifacts, Requested: artifacts}
	}
	if q.MaxBytes > 0 && bytes > 0 && used.Bytes+bytes > q.MaxBytes {
		return &ExceededError{Prefix: q.Prefix, Limit: "bytes", Max: q.MaxBytes, Used: used.Bytes, Requested: bytes}
	}
	return nil
}

// Budget is how many more bytes name may take, and the quota that says
// so (nil and -1: no byte limit applies). A quota already past its limit
// leaves a budget of 0.
func Budget(ctx context.Context, r Reader, name string) (int64, *ExceededError, error) {
	quotas, err := r.ListQuotas(ctx)
	if err != nil {
		return -1, nil, err
	}
	left, limiting := int64(-1), (*ExceededError)(nil)
	for _, q := range Applying(quotas, name) {
		if q.MaxBytes == 0 {
			continue
		}
		used, err := r.Usage(ctx, q.Prefix)
		if err != nil {
			return -1, nil, err
		}
		if l := max(0, q.MaxBytes-used.Bytes); left < 0 || l < left {
			left, limiting = l, &ExceededError{Prefix: q.Prefix, Limit: "bytes", Max: q.MaxBytes, Used: used.Bytes, Requested: -1}
		}
	}
	return left, limiting, nil
}

// LimitReader reads r but fails with exceeded once more than n bytes
// come: a stream of undeclared length stops the moment it would take
// its prefix past the quota, and the store discards what it staged.
func LimitReader(r io.Reader, n int64, exceeded *ExceededError) io.Reader {
	return &limitReader{r: r, left: n, err: exceeded}
}

type limitReader struct {
	r    io.Reader
	left int64
	err  *ExceededError
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.err
	}
	// Read one byte past the budget, so that a body of exactly the
	// budget ends cleanly and one byte more fails.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, l.err
	}
	return n, err
}

// Service keeps the quotas.
type Service struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns the quota service; every argument is required.
func New(st Store, log *slog.Logger, now func() time.Time) (*Service, error) {
	if st == nil || log == nil || now == nil {
		return nil, errors.New("quota: a store, a logger and a clock are required")
	}
	return &Service{store: st, log: log, now: now}, nil
}

func needAdmin(p access.Principal, what string) error {
	if !p.Has(access.RoleAdmin) {
		return fmt.Errorf("%w: %s needs the admin role", errdef.ErrDenied, what)
	}
	return nil
}

// Reader reads the quotas and their usage as stored (outside any
// change's transaction).
func (s *Service) Reader() Reader { return s.store }

// Listed is a quota with what its prefix holds now.
type Listed struct {
	Quota
	Usage Usage
}

// Quotas lists every quota with its usage (admins).
func (s *Service) Quotas(ctx context.Context, p access.Principal) ([]Listed, error) {
	if err := needAdmin(p, "reading quotas"); err != nil {
		return nil, err
	}
	qs, err := s.store.ListQuotas(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(qs))
	for _, q := range qs {
		u, err := s.store.Usage(ctx, q.Prefix)
		if err != nil {
			return nil, err
		}
		out = append(out, Listed{Quota: q, Usage: u})
	}
	return out, nil
}

// Quota returns one quota with its usage (admins).
func (s *Service) Quota(ctx context.Context, p access.Principal, prefix string) (Listed, error) {
	list, err := s.Quotas(ctx, p)
	if err != nil {
		return Listed{}, err
	}
	for _, l := range list {
		if l.Prefix == prefix {
			return l, nil
		}
	}
	return Listed{}, fmt.Errorf("quota %q: %w", prefix, errdef.ErrNotFound)
}

// SetQuota creates or replaces a quota (admins), audited. A quota lower
// than what the prefix holds is allowed: it refuses new pushes until
// enough is deleted.
func (s *Service) SetQuota(ctx context.Context, p access.Principal, q Quota) (Quota, error) {
	if err := needAdmin(p, "setting a quota"); err != nil {
		return Quota{}, err
	}
	if err := q.Validate(); err != nil {
		return Quota{}, err
	}
	q.UpdatedBy, q.UpdatedAt = p.Name, s.now()
	stored, err := s.store.PutQuota(ctx, p.Actor(), q)
	if err == nil {
		s.log.Info("quota set", "prefix", q.Prefix, "maxBytes", q.MaxBytes, "maxArtifacts", q.MaxArtifacts, "by", p.Name)
	}
	return stored, err
}

// DeleteQuota deletes a quota (admins), audited.
func (s *Service) DeleteQuota(ctx context.Context, p access.Principal, prefix string) error {
	if err := needAdmin(p, "deleting a quota"); err != nil {
		return err
	}
	if err := s.store.DeleteQuota(ctx, p.Actor(), prefix); err != nil {
		return err
	}
	s.log.Info("quota deleted", "prefix", prefix, "by", p.Name)
	return nil
}

// CheckPush checks, before any byte is stored, that a new version of name
// of size bytes (-1: not declared) fits every quota, and returns the body
// to store: body itself, or, when the size is not declared and a byte
// quota applies, body limited to the budget left.
func (s *Service) CheckPush(ctx context.Context, name string, size, artifacts int64, body io.Reader) (io.Reader, error) {
	if err := names.ValidateName(name); err != nil {
		return nil, err
	}
	if err := Check(ctx, s.store, name, size, artifacts); err != nil {
		return nil, err
	}
	if size >= 0 || body == nil {
		return body, nil
	}
	left, exceeded, err := Budget(ctx, s.store, name)
	if err != nil || exceeded == nil {
		return body, err
	}
	return LimitReader(body, left, exceeded), nil
}

// CheckUpload is CheckPush for a chunk of an OCI blob upload into name
// that holds already bytes: the whole blob so far plus this chunk (size,
// -1 when not declared) must fit; an undeclared chunk is cut off where
// the budget ends. A blob is no version: it counts against bytes only.
func (s *Service) CheckUpload(ctx context.Context, name string, already, size int64, body io.Reader) (io.Reader, error) {
	if size >= 0 {
		return s.CheckPush(ctx, name, already+size, 0, body)
	}
	if err := names.ValidateName(name); err != nil {
		return nil, err
	}
	left, exceeded, err := Budget(ctx, s.store, name)
	if err != nil || exceeded == nil {
		return body, err
	}
	if left < already {
		exceeded.Requested = already
		return nil, exceeded
	}
	return LimitReader(body, left-already, exceeded), nil
}
