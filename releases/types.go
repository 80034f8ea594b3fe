package releases

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/opencontainers/go-digest"
)

// ErrVersionExists refuses other bytes for a version that exists.
var ErrVersionExists = errors.New("version exists with different content")

// ArtifactState is where an artifact stands in admission.
type ArtifactState string

const (
	StateQuarantined ArtifactState = "quarantined"
	StateAdmitted    ArtifactState = "admitted"
	StateRejected    ArtifactState = "rejected"
)

// Valid reports whether s is a known state.
func (s ArtifactState) Valid() bool {
	switch s {
	case StateQuarantined, StateAdmitted, StateRejected:
		return true
	}
	return false
}

// Artifact is name + version → one blob.
type Artifact struct {
	Name      string        `json:"name"`
	Version   string        `json:"version"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
	State     ArtifactState `json:"state"`
	CreatedBy string        `json:"createdBy"`
	CreatedAt time.Time     `json:"createdAt"`
	// Admission is the latest admission decision; nil until the first
	// evaluation.
	Admission *Admission `json:"admission,omitempty"`
	// RetiredAt is set once the artifact is retired: it stays, but no new
	// release may include it.
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
	RetiredBy string     `json:"retiredBy,omitempty"`
}

// ArtifactFilter selects artifacts for listing. Results are ordered by
// (name, version); Cursor is opaque and comes from the previous page.
type ArtifactFilter struct {
	Name   string
	State  ArtifactState
	Limit  int
	Cursor string
}

// ReleaseTx is what a change of a release (Metadata.ModifyRelease) may
// read besides the release: reads inside the transaction that stores the
// change, so what a rule checked is what the change commits on.
type ReleaseTx interface {
	// GetArtifact returns ErrNotFound when name+version is unknown.
	GetArtifact(ctx context.Context, name, version string) (Artifact, error)
}

// Metadata is the SQL-backed persistence of the domain. Every mutating
// method records exactly one Event in the same transaction as its change,
// and records none when it fails.
type Metadata interface {
	// CreateArtifact inserts a. If name+version exists with the same digest
	// it returns the stored artifact and created=false; with a different
	// digest it returns ErrVersionExists (wrapped) and the stored artifact.
	CreateArtifact(ctx context.Context, actor Actor, a Artifact) (stored Artifact, created bool, err error)
	// GetArtifact returns ErrNotFound when name+version is unknown.
	GetArtifact(ctx context.Context, name, version string) (Artifact, error)
	// ListArtifacts returns one page and the cursor of the next ("" at the end).
	ListArtifacts(ctx context.Context, f ArtifactFilter) ([]Artifact, string, error)

	// Tokens is the persistence of tokens.
	Tokens() access.Store

	// Trusted keys and policy versions.
	Trust() trust.Store

	// AddEvidence records verified evidence for an artifact version, and
	// in the same transaction, for each of e.Claims presented nowhere yet,
	// its ClaimPresentation (e's artifact, e.CreatedBy, e.CreatedAt).
	// Adding the same evidence digest to the same version again returns
	// created=false and records nothing. ErrNotFound if the artifact is unknown.
	AddEvidence(ctx context.Context, actor Actor, e Evidence) (created bool, err error)
	// ClaimPresentation returns where a claim was first presented;
	// ErrNotFound if it never was.
	ClaimPresentation(ctx context.Context, claim digest.Digest) (ClaimPresentation, error)
	// ListEvidence returns the evidence of one version, oldest first.
	ListEvidence(ctx context.Context, name, version string) ([]Evidence, error)
	// SetAdmission stores a decision and, when adm.State differs, moves the
	// artifact to it — only if the artifact is still in state from
	// (compare-and-set; ErrConflict otherwise). It records one
	// "admission.decided" event.
	SetAdmission(ctx context.Context, actor Actor, name, version string, from ArtifactState, adm Admission) (Artifact, error)

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
	// RetireArtifact marks an artifact retired and records
	// "artifact.retired"; ErrNotFound if unknown; retiring a retired
	// artifact is a no-op that records nothing.
	RetireArtifact(ctx context.Context, actor Actor, name, version string) (Artifact, error)

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
