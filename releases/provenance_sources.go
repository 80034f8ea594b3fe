package releases

import (
	"context"

	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/opencontainers/go-digest"
	"golang.org/x/mod/sumdb/tlog"
)

// ProvenanceSources is what a provenance document is built from. It is
// read by an auditor or admin only.
type ProvenanceSources struct {
	Artifact  Artifact
	Evidence  []Evidence
	Contents  map[digest.Digest][]byte
	TrustKeys []TrustKey
	Releases  []lifecycle.Release
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
	if err := audit.RequireAuditor(p); err != nil {
		return ProvenanceSources{}, err
	}
	a, err := s.Catalog.Artifact(ctx, name, version)
	if err != nil {
		return ProvenanceSources{}, err
	}
	src := ProvenanceSources{Artifact: a, Contents: map[digest.Digest][]byte{}, Manifests: map[digest.Digest][]byte{}, Hashes: s.meta.Audit().AuditHashes(ctx)}
	if src.Evidence, err = s.meta.Catalog().ListEvidence(ctx, name, version); err != nil {
		return src, err
	}
	subjects := []string{name + ":" + version}
	keyIDs := map[string]bool{}
	for _, e := range src.Evidence {
		b, err := s.Blobs.ReadVerified(ctx, p.Actor(), e.Digest, MaxEvidenceSize)
		if err != nil {
			return src, err
		}
		src.Contents[e.Digest] = b
		keyIDs[e.KeyID] = true
	}
	keys, err := s.meta.Trust().TrustKeys(ctx)
	if err != nil {
		return src, err
	}
	for _, k := range keys {
		if keyIDs[k.ID] {
			src.TrustKeys = append(src.TrustKeys, k)
			subjects = append(subjects, k.ID)
		}
	}
	if src.Releases, err = s.meta.Releases().ReleasesContaining(ctx, name, version); err != nil {
		return src, err
	}
	for _, r := range src.Releases {
		subjects = append(subjects, "release:"+r.Name)
		if r.ManifestDigest != "" {
			_, b, err := s.Releases.ReleaseManifest(ctx, r.Name)
			if err != nil {
				return src, err
			}
			src.Manifests[r.ManifestDigest] = b
		}
	}
	if src.Entries, err = s.meta.Audit().AuditEntriesFor(ctx, subjects); err != nil {
		return src, err
	}
	src.Checkpoint, src.CheckpointState, err = s.Audit.SignCheckpoint(ctx)
	return src, err
}
