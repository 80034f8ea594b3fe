package provenance

import (
	"context"
	"errors"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/opencontainers/go-digest"
	"golang.org/x/mod/sumdb/tlog"
)

// Sources is what a provenance document is built from. It is read by an
// auditor or admin only.
type Sources struct {
	Artifact  catalog.Artifact
	Evidence  []catalog.Evidence
	Contents  map[digest.Digest][]byte
	TrustKeys []trust.TrustKey
	// Roots (current versions) and Identities are those of the keyless
	// evidence.
	Roots      []trust.TrustedRoot
	Identities []trust.Identity
	// SHA512 is the artifact's SHA-512 digest, read when it has keyless
	// evidence.
	SHA512    digest.Digest
	Releases  []lifecycle.Release
	Manifests map[digest.Digest][]byte
	Entries   []audit.AuditEntry
	// Checkpoint is signed after the entries were read, so it covers them.
	Checkpoint      []byte
	CheckpointState auditlog.Checkpoint
	Hashes          tlog.HashReader
}

// Service gathers the sources of provenance documents.
type Service struct {
	catalog      *catalog.Service
	catalogStore catalog.Store
	trust        trust.Store
	releases     *lifecycle.Service
	releaseStore lifecycle.Store
	audit        *audit.Service
	auditStore   audit.Store
	blobs        *blobs.Service
}

// Config is what the provenance service reads.
type Config struct {
	Catalog      *catalog.Service
	CatalogStore catalog.Store
	Trust        trust.Store
	Releases     *lifecycle.Service
	ReleaseStore lifecycle.Store
	Audit        *audit.Service
	AuditStore   audit.Store
	Blobs        *blobs.Service
}

// New returns the provenance service.
func New(cfg Config) (*Service, error) {
	if cfg.Catalog == nil || cfg.CatalogStore == nil || cfg.Trust == nil || cfg.Releases == nil || cfg.ReleaseStore == nil ||
		cfg.Audit == nil || cfg.AuditStore == nil || cfg.Blobs == nil {
		return nil, errors.New("provenance: every service and store of Config is required")
	}
	return &Service{
		catalog: cfg.Catalog, catalogStore: cfg.CatalogStore, trust: cfg.Trust, releases: cfg.Releases,
		releaseStore: cfg.ReleaseStore, audit: cfg.Audit, auditStore: cfg.AuditStore, blobs: cfg.Blobs,
	}, nil
}

// Sources gathers everything recorded about an artifact version, the
// audit records about it, and a checkpoint covering them.
func (s *Service) Sources(ctx context.Context, p access.Principal, name, version string) (Sources, error) {
	if err := audit.RequireAuditor(p); err != nil {
		return Sources{}, err
	}
	a, err := s.catalog.Artifact(ctx, name, version)
	if err != nil {
		return Sources{}, err
	}
	src := Sources{Artifact: a, Contents: map[digest.Digest][]byte{}, Manifests: map[digest.Digest][]byte{}, Hashes: s.auditStore.AuditHashes(ctx)}
	if src.Evidence, err = s.catalogStore.ListEvidence(ctx, name, version); err != nil {
		return src, err
	}
	subjects := []string{name + ":" + version}
	keyIDs := map[string]bool{}
	for _, e := range src.Evidence {
		if e.Keyless != nil {
			continue // an identity, not a key
		}
		keyIDs[e.KeyID] = true
	}
	for _, e := range src.Evidence {
		b, err := s.blobs.ReadVerified(ctx, p.Actor(), e.Digest, catalog.MaxEvidenceSize)
		if err != nil {
			return src, err
		}
		src.Contents[e.Digest] = b
	}
	keys, err := s.trust.TrustKeys(ctx)
	if err != nil {
		return src, err
	}
	for _, k := range keys {
		if keyIDs[k.ID] {
			src.TrustKeys = append(src.TrustKeys, k)
			subjects = append(subjects, k.ID)
		}
	}
	if subjects, err = s.keylessSources(ctx, p, &src, subjects); err != nil {
		return src, err
	}
	if src.Releases, err = s.releaseStore.ReleasesContaining(ctx, name, version); err != nil {
		return src, err
	}
	for _, r := range src.Releases {
		subjects = append(subjects, "release:"+r.Name)
		if r.ManifestDigest != "" {
			_, b, err := s.releases.ReleaseManifest(ctx, r.Name)
			if err != nil {
				return src, err
			}
			src.Manifests[r.ManifestDigest] = b
		}
	}
	if src.Entries, err = s.auditStore.AuditEntriesFor(ctx, subjects); err != nil {
		return src, err
	}
	src.Checkpoint, src.CheckpointState, err = s.audit.SignCheckpoint(ctx)
	return src, err
}

// keylessSources adds the identities and trusted roots of src's keyless
// evidence, and the artifact's SHA-512, and returns subjects with the
// audit subjects of the identities and roots added.
func (s *Service) keylessSources(ctx context.Context, p access.Principal, src *Sources, subjects []string) ([]string, error) {
	ids, roots := map[string]bool{}, map[string]bool{}
	for _, e := range src.Evidence {
		if e.Keyless != nil {
			ids[e.KeyID], roots[e.Keyless.Root] = true, true
		}
	}
	if len(ids) == 0 {
		return subjects, nil
	}
	identities, err := s.trust.Identities(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range identities {
		if ids[id.ID] {
			src.Identities = append(src.Identities, id)
			subjects = append(subjects, id.ID)
		}
	}
	all, err := s.trust.TrustedRoots(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if roots[r.ID] {
			src.Roots = append(src.Roots, r)
			subjects = append(subjects, r.ID)
		}
	}
	if src.SHA512, err = s.catalog.SHA512(ctx, p.Actor(), src.Artifact); err != nil {
		return nil, err
	}
	return subjects, nil
}
