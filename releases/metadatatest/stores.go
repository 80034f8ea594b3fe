package metadatatest

import (
	"context"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/opencontainers/go-digest"
)

// The suites exercise an adapter through the store it gives each concept
// (releases.Metadata: Tokens(), Catalog(), …) and through the domain's
// rules that run over those stores. store bundles them, so that a test
// that spans concepts — an artifact, its evidence, the events both record
// — reads as calls on one value.
type (
	tokenStore    = access.Store
	trustStore    = trust.Store
	catalogue     = catalog.Store
	releaseStore  = lifecycle.Store
	auditStore    = audit.Store
	accessLog     = audit.AccessStore
	blobStore     = blobs.Store
	linkStore     = registry.BlobLinkStore
	manifestStore = registry.ManifestStore
	uploadStore   = registry.UploadStore
)

type store struct {
	tokenStore
	trustStore
	catalogue
	releaseStore
	auditStore
	accessLog
	blobStore
	linkStore
	manifestStore
	uploadStore
	meta releases.Metadata
}

func newStore(m releases.Metadata) store {
	return store{
		tokenStore: m.Tokens(), trustStore: m.Trust(), catalogue: m.Catalog(), releaseStore: m.Releases(),
		auditStore: m.Audit(), accessLog: m.AccessLog(), blobStore: m.Blobs(),
		linkStore: m.Links(), manifestStore: m.Manifests(), uploadStore: m.Uploads(),
		meta: m,
	}
}

// Ping and Close are the adapter's own.
func (s store) Ping(ctx context.Context) error { return s.meta.Ping(ctx) }
func (s store) Close() error                   { return s.meta.Close() }

// The catalogue's rules over the adapter: the suite checks the adapter
// through the domain functions that decide inside its transactions, with
// the signatures the adapter's methods had when the rules were its own.

func (s store) CreateArtifact(ctx context.Context, actor access.Actor, a catalog.Artifact) (catalog.Artifact, bool, error) {
	return catalog.CreateArtifact(ctx, s.catalogue, actor, a)
}

func (s store) SetAdmission(ctx context.Context, actor access.Actor, name, version string, from catalog.ArtifactState, adm catalog.Admission) (catalog.Artifact, error) {
	return catalog.SetAdmission(ctx, s.catalogue, actor, name, version, from, adm)
}

func (s store) AddEvidence(ctx context.Context, actor access.Actor, e catalog.Evidence) (bool, error) {
	return catalog.AddEvidence(ctx, s.catalogue, actor, e)
}

// CreateRelease stores r as it is: the adapter builds it inside its
// transaction from what the domain reads there, and r reads nothing.
func (s store) CreateRelease(ctx context.Context, actor access.Actor, r lifecycle.Release) (lifecycle.Release, error) {
	return s.releaseStore.CreateRelease(ctx, actor, func(lifecycle.ReleaseTx) (lifecycle.Release, error) { return r, nil })
}

func (s store) UpdateRelease(ctx context.Context, actor access.Actor, r lifecycle.Release, change lifecycle.ReleaseChange) (lifecycle.Release, error) {
	return lifecycle.UpdateRelease(ctx, s.releaseStore, actor, r, change)
}

// The registry's rules over the adapter, as above.

func (s store) PutManifest(ctx context.Context, actor access.Actor, m registry.Manifest, t registry.TagChange) (registry.ManifestPutResult, error) {
	return registry.PutManifest(ctx, s.manifestStore, actor, m, t)
}

func (s store) DeleteTag(ctx context.Context, actor access.Actor, repo, tag string, expect digest.Digest) error {
	return registry.DeleteTag(ctx, s.manifestStore, actor, repo, tag, expect, nil)
}

func (s store) DeleteManifest(ctx context.Context, actor access.Actor, repo string, d digest.Digest) ([]string, error) {
	return registry.DeleteManifest(ctx, s.manifestStore, actor, repo, d, nil)
}

func (s store) UnlinkBlob(ctx context.Context, actor access.Actor, repo string, d digest.Digest, createdBy string) (int, error) {
	return registry.UnlinkBlob(ctx, s.linkStore, actor, repo, d, createdBy)
}

func (s store) UpdateUpload(ctx context.Context, u registry.UploadSession, offset int64, chunks int) error {
	return registry.UpdateUpload(ctx, s.uploadStore, u, offset, chunks)
}

// The rules of blob integrity and of gc's claims over the adapter, as
// above.

func (s store) RecordBlobVerified(ctx context.Context, actor access.Actor, d digest.Digest, state, source string, at time.Time) (bool, error) {
	return blobs.RecordVerified(ctx, s.blobStore, actor, d, state, source, at)
}

func (s store) MarkBlobCorrupt(ctx context.Context, actor access.Actor, d digest.Digest, reason, source string, at time.Time) (bool, error) {
	return blobs.MarkCorrupt(ctx, s.blobStore, actor, d, reason, source, at)
}

func (s store) ClaimBlob(ctx context.Context, id string, d digest.Digest, at, deletionsAfter time.Time) error {
	return blobs.Claim(ctx, s.blobStore, id, d, at, deletionsAfter)
}

func (s store) BeginBlobDeletion(ctx context.Context, d digest.Digest, at, claimsAfter time.Time) (bool, error) {
	return blobs.BeginDeletion(ctx, s.blobStore, d, at, claimsAfter)
}
