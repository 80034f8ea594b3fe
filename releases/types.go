package releases

import (
	"context"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
)

// Metadata is the SQL-backed persistence of the domain. Every mutating
// method records exactly one Event in the same transaction as its change,
// and records none when it fails.
type Metadata interface {
	// The catalogue: artifacts, evidence, admission.
	Catalog() catalog.Store

	// Tokens is the persistence of tokens.
	Tokens() access.Store

	// Trusted keys and policy versions.
	Trust() trust.Store

	// Releases, and the settings (gate defaults).
	Releases() lifecycle.Store

	// The audit log over the recorded events, and the access log.
	Audit() audit.Store
	AccessLog() audit.AccessStore

	// Blob integrity and gc coordination.
	Blobs() blobs.Store

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}
