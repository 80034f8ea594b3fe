package metadatatest

import (
	"context"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/releases/trust"
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
