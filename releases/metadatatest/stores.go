package metadatatest

import (
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
)

// The suites exercise an adapter through the store it gives each concept
// (releases.Metadata: Tokens(), Catalog(), …) and through the domain's
// rules that run over those stores. store bundles them, so that a test
// that spans concepts — an artifact, its evidence, the events both record
// — reads as calls on one value.
type (
	legacy       = releases.Metadata
	tokenStore   = access.Store
	auditStore   = audit.Store
	accessLog    = audit.AccessStore
	blobStore    = blobs.Store
	trustStore   = trust.Store
	catalogue    = catalog.Store
	releaseStore = lifecycle.Store
)

type store struct {
	legacy
	tokenStore
	auditStore
	accessLog
	blobStore
	trustStore
	catalogue
	releaseStore
}

func newStore(m releases.Metadata) store {
	return store{legacy: m, tokenStore: m.Tokens(), auditStore: m.Audit(), accessLog: m.AccessLog(), blobStore: m.Blobs(), trustStore: m.Trust(), catalogue: m.Catalog(), releaseStore: m.Releases()}
}
