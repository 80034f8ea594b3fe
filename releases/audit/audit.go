package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/defaults"
	"golang.org/x/mod/sumdb/tlog"
)

// Service reads the audit log (checkpoints, entries, proofs) and keeps the
// access log.
type Service struct {
	store  Store
	access AccessStore
	// logKey signs checkpoints; logOrigin is their first line.
	logKey    *auditlog.LogKey
	logOrigin string
	log       *slog.Logger
	now       func() time.Time
	// verify keeps what the server's checks of its own log found
	// (verify.go).
	verify verifier
}

// New returns the audit service over the log's store and the access log's,
// signing checkpoints with logKey under the origin line origin. A nil log
// keeps it silent, a nil now is the wall clock.
func New(st Store, access AccessStore, logKey *auditlog.LogKey, origin string, log *slog.Logger, now func() time.Time) (*Service, error) {
	if logKey == nil || logKey.Signer == nil {
		return nil, errors.New("audit: a checkpoint signing key is required")
	}
	if origin == "" {
		return nil, errors.New("audit: a checkpoint origin is required")
	}
	return &Service{store: st, access: access, logKey: logKey, logOrigin: origin, log: defaults.Logger(log), now: defaults.Clock(now)}, nil
}

// RequireAuditor refuses everyone but auditors and admins: the audit log,
// and what is assembled from it, is theirs to read.
func RequireAuditor(p access.Principal) error {
	if !p.Has(access.RoleAuditor, access.RoleAdmin) {
		return fmt.Errorf("%w: reading the audit log needs the auditor or admin role", errdef.ErrDenied)
	}
	return nil
}

// LogVerifierKey is the note verifier key of the audit log.
func (s *Service) LogVerifierKey() string { return s.logKey.VerifierKey }

// Checkpoint signs the current size and root of the audit log.
func (s *Service) Checkpoint(ctx context.Context, p access.Principal) ([]byte, auditlog.Checkpoint, error) {
	if err := RequireAuditor(p); err != nil {
		return nil, auditlog.Checkpoint{}, err
	}
	return s.SignCheckpoint(ctx)
}

// SignCheckpoint signs the current size and root of the audit log, for
// the domain's own use (provenance documents); Checkpoint is the same for
// a principal.
func (s *Service) SignCheckpoint(ctx context.Context) ([]byte, auditlog.Checkpoint, error) {
	size, err := s.store.AuditSize(ctx)
	if err != nil {
		return nil, auditlog.Checkpoint{}, err
	}
	hr := s.store.AuditHashes(ctx)
	if size > 0 {
		if _, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, size-1)}); err != nil {
			// Records without hashes (written behind the server's back)
			// are not part of the tree: sign the hashed prefix, which the
			// auditor's tools then compare record by record.
			s.log.Error("audit log has records without Merkle hashes", "records", size)
			size = int64(sort.Search(int(size), func(i int) bool {
				_, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(i))})
				return err != nil
			}))
		}
	}
	c := auditlog.Checkpoint{Origin: s.logOrigin, Size: size}
	if size > 0 {
		if c.Root, err = tlog.TreeHash(c.Size, hr); err != nil {
			return nil, auditlog.Checkpoint{}, fmt.Errorf("audit tree hash: %w", err)
		}
	}
	msg, err := auditlog.Sign(c, s.logKey.Signer)
	if err != nil {
		return nil, auditlog.Checkpoint{}, err
	}
	s.checkpointSigned()
	return msg, c, nil
}

// AuditEntries streams records start… (limit <= 0: to the end).
func (s *Service) AuditEntries(ctx context.Context, p access.Principal, start, limit int64, fn func(AuditEntry) error) error {
	if err := RequireAuditor(p); err != nil {
		return err
	}
	if start < 0 {
		return fmt.Errorf("%w: start must not be negative", errdef.ErrInvalidInput)
	}
	return s.store.AuditEntries(ctx, start, limit, fn)
}

// InclusionProof proves that record index is in the tree of the given size.
func (s *Service) InclusionProof(ctx context.Context, p access.Principal, index, size int64) (tlog.RecordProof, error) {
	if err := RequireAuditor(p); err != nil {
		return nil, err
	}
	if err := s.checkSizes(ctx, index+1, size); err != nil {
		return nil, err
	}
	return tlog.ProveRecord(size, index, s.store.AuditHashes(ctx))
}

// ConsistencyProof proves that the tree of size from is a prefix of the
// tree of size to.
func (s *Service) ConsistencyProof(ctx context.Context, p access.Principal, from, to int64) (tlog.TreeProof, error) {
	if err := RequireAuditor(p); err != nil {
		return nil, err
	}
	if from < 1 {
		return nil, fmt.Errorf("%w: from must be at least 1", errdef.ErrInvalidInput)
	}
	if err := s.checkSizes(ctx, from, to); err != nil {
		return nil, err
	}
	return tlog.ProveTree(to, from, s.store.AuditHashes(ctx))
}

// checkSizes requires 1 <= lo <= hi <= log size.
func (s *Service) checkSizes(ctx context.Context, lo, hi int64) error {
	size, err := s.store.AuditSize(ctx)
	if err != nil {
		return err
	}
	if lo < 1 || lo > hi || hi > size {
		return fmt.Errorf("%w: sizes must satisfy 0 <= index < size <= %d (the log size), and from <= to", errdef.ErrInvalidInput, size)
	}
	return nil
}
