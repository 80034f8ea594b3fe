package releases

import (
	"context"
	"fmt"
	"sort"

	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/opencontainers/go-digest"
	"golang.org/x/mod/sumdb/tlog"
)

// WithLogKey sets the audit log's checkpoint signing key and origin line.
// Without it the service makes an ephemeral key (tests only).
func WithLogKey(k *auditlog.LogKey, origin string) ServiceOption {
	return func(s *Service) { s.logKey, s.logOrigin = k, origin }
}

func (s *Service) requireAuditor(p Principal) error {
	if !p.Has(RoleAuditor, RoleAdmin) {
		return fmt.Errorf("%w: reading the audit log needs the auditor or admin role", ErrDenied)
	}
	return nil
}

// LogVerifierKey is the note verifier key of the audit log.
func (s *Service) LogVerifierKey() string { return s.logKey.VerifierKey }

// Checkpoint signs the current size and root of the audit log.
func (s *Service) Checkpoint(ctx context.Context, p Principal) ([]byte, auditlog.Checkpoint, error) {
	if err := s.requireAuditor(p); err != nil {
		return nil, auditlog.Checkpoint{}, err
	}
	return s.checkpoint(ctx)
}

func (s *Service) checkpoint(ctx context.Context) ([]byte, auditlog.Checkpoint, error) {
	size, err := s.meta.AuditSize(ctx)
	if err != nil {
		return nil, auditlog.Checkpoint{}, err
	}
	hr := s.meta.AuditHashes(ctx)
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
	return msg, c, nil
}

// AuditEntries streams records start… (limit <= 0: to the end).
func (s *Service) AuditEntries(ctx context.Context, p Principal, start, limit int64, fn func(AuditEntry) error) error {
	if err := s.requireAuditor(p); err != nil {
		return err
	}
	if start < 0 {
		return fmt.Errorf("%w: start must not be negative", ErrInvalidInput)
	}
	return s.meta.AuditEntries(ctx, start, limit, fn)
}

// InclusionProof proves that record index is in the tree of the given size.
func (s *Service) InclusionProof(ctx context.Context, p Principal, index, size int64) (tlog.RecordProof, error) {
	if err := s.requireAuditor(p); err != nil {
		return nil, err
	}
	if err := s.checkSizes(ctx, index+1, size); err != nil {
		return nil, err
	}
	return tlog.ProveRecord(size, index, s.meta.AuditHashes(ctx))
}

// ConsistencyProof proves that the tree of size from is a prefix of the
// tree of size to.
func (s *Service) ConsistencyProof(ctx context.Context, p Principal, from, to int64) (tlog.TreeProof, error) {
	if err := s.requireAuditor(p); err != nil {
		return nil, err
	}
	if from < 1 {
		return nil, fmt.Errorf("%w: from must be at least 1", ErrInvalidInput)
	}
	if err := s.checkSizes(ctx, from, to); err != nil {
		return nil, err
	}
	return tlog.ProveTree(to, from, s.meta.AuditHashes(ctx))
}

// checkSizes requires 1 <= lo <= hi <= log size.
func (s *Service) checkSizes(ctx context.Context, lo, hi int64) error {
	size, err := s.meta.AuditSize(ctx)
	if err != nil {
		return err
	}
	if lo < 1 || lo > hi || hi > size {
		return fmt.Errorf("%w: sizes must satisfy 0 <= index < size <= %d (the log size), and from <= to", ErrInvalidInput, size)
	}
	return nil
}

// ProvenanceSources is what a provenance document is built from. It is
// read by an auditor or admin only.
type ProvenanceSources struct {
	Artifact  Artifact
	Evidence  []Evidence
	Contents  map[digest.Digest][]byte
	TrustKeys []TrustKey
	Releases  []Release
	Manifests map[digest.Digest][]byte
	Entries   []AuditEntry
	// Checkpoint is signed after the entries were read, so it covers them.
	Checkpoint      []byte
	CheckpointState auditlog.Checkpoint
	Hashes          tlog.HashReader
}

// Provenance gathers everything recorded about an artifact version, the
// audit records about it, and a checkpoint covering them.
func (s *Service) Provenance(ctx context.Context, p Principal, name, version string) (ProvenanceSources, error) {
	if err := s.requireAuditor(p); err != nil {
		return ProvenanceSources{}, err
	}
	a, err := s.Artifact(ctx, name, version)
	if err != nil {
		return ProvenanceSources{}, err
	}
	src := ProvenanceSources{Artifact: a, Contents: map[digest.Digest][]byte{}, Manifests: map[digest.Digest][]byte{}, Hashes: s.meta.AuditHashes(ctx)}
	if src.Evidence, err = s.meta.ListEvidence(ctx, name, version); err != nil {
		return src, err
	}
	subjects := []string{name + ":" + version}
	keyIDs := map[string]bool{}
	for _, e := range src.Evidence {
		b, err := s.readVerified(ctx, p.Actor(), e.Digest, MaxEvidenceSize)
		if err != nil {
			return src, err
		}
		src.Contents[e.Digest] = b
		keyIDs[e.KeyID] = true
	}
	keys, err := s.meta.TrustKeys(ctx)
	if err != nil {
		return src, err
	}
	for _, k := range keys {
		if keyIDs[k.ID] {
			src.TrustKeys = append(src.TrustKeys, k)
			subjects = append(subjects, k.ID)
		}
	}
	if src.Releases, err = s.meta.ReleasesContaining(ctx, name, version); err != nil {
		return src, err
	}
	for _, r := range src.Releases {
		subjects = append(subjects, "release:"+r.Name)
		if r.ManifestDigest != "" {
			_, b, err := s.ReleaseManifest(ctx, r.Name)
			if err != nil {
				return src, err
			}
			src.Manifests[r.ManifestDigest] = b
		}
	}
	if src.Entries, err = s.meta.AuditEntriesFor(ctx, subjects); err != nil {
		return src, err
	}
	src.Checkpoint, src.CheckpointState, err = s.checkpoint(ctx)
	return src, err
}
