package releases

import (
	"context"
	"encoding/json"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/trust"
)

// ReleaseTx is what a change of a release (Metadata.ModifyRelease) may
// read besides the release: reads inside the transaction that stores the
// change, so what a rule checked is what the change commits on.
type ReleaseTx interface {
	// GetArtifact returns ErrNotFound when name+version is unknown.
	GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error)
}

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

	// CreateRelease stores a new release with Revision 1 and records
	// "release.created"; ErrConflict if the name is taken.
	CreateRelease(ctx context.Context, actor Actor, r Release) (Release, error)
	// GetRelease returns ErrNotFound for an unknown name.
	GetRelease(ctx context.Context, name string) (Release, error)
	// ListReleases returns one page ordered by name and the next cursor.
	ListReleases(ctx context.Context, f ReleaseFilter) ([]Release, string, error)
	// ModifyRelease changes release name inside one write transaction:
	// it loads the release, calls fn once with it, and stores what fn left
	// in it with Revision+1, UpdatedAt now and one event with
	// change.Action and change.Details — all in that transaction. Changes
	// of one release are serialised (a row lock, or the single writer of
	// SQLite), so fn decides on the release as it is committed: no other
	// change can come between, and none is ever refused for contention.
	// fn reads anything else it needs through tx, inside the same
	// transaction. An error from fn is returned as it is and stores
	// nothing; a change without an Action stores nothing and returns the
	// release as loaded. Name, CreatedBy and CreatedAt stay as stored (a
	// changed Name is ErrInvalidInput). ErrNotFound for an unknown name.
	ModifyRelease(ctx context.Context, actor Actor, name string, fn func(tx ReleaseTx, r *Release) (ReleaseChange, error)) (Release, error)
	// UpdateRelease replaces the stored release if its revision is still
	// r.Revision (compare-and-set; ErrConflict otherwise), stores it with
	// Revision+1, and records one event with change.Action and
	// change.Details. The artifact index follows r.Artifacts. The domain
	// changes releases with ModifyRelease; this serves imports and tools
	// that hold a whole release.
	UpdateRelease(ctx context.Context, actor Actor, r Release, change ReleaseChange) (Release, error)
	// ReleasesContaining lists the releases that include name:version.
	ReleasesContaining(ctx context.Context, name, version string) ([]Release, error)
	// SetSetting stores a JSON value under key (replacing it) and records
	// "settings.set"; Setting returns it, ErrNotFound if never set.
	SetSetting(ctx context.Context, actor Actor, key string, value json.RawMessage) (Setting, error)
	Setting(ctx context.Context, key string) (Setting, error)

	// The audit log over the recorded events, and the access log.
	Audit() audit.Store
	AccessLog() audit.AccessStore

	// Blob integrity and gc coordination.
	Blobs() blobs.Store

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}
