package retention

import (
	"context"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/opencontainers/go-digest"
)

// Event actions of retention. Policies' subject is "retention-policy:ID";
// a deleted version's is "name:version", as its push's was.
const (
	// ActionPolicySet: {id, pattern, keepAdmitted,
	// deleteQuarantinedAfterDays, deleteRejectedAfterDays}.
	ActionPolicySet = "retention.policy.set"
	// ActionPolicyDeleted: {id, pattern}.
	ActionPolicyDeleted = "retention.policy.deleted"
	// ActionArtifactDeleted: {name, version, digest, size, state, policy,
	// reason}. It is the catalogue's (fsck settles an admission a
	// deletion follows).
	ActionArtifactDeleted = catalog.ActionArtifactDeleted
)

// Store is the persistence of retention. Every mutating method records
// its event in the same transaction as its change.
type Store interface {
	// ListPolicies returns every policy, ordered by ID.
	ListPolicies(ctx context.Context) ([]Policy, error)
	// PutPolicy creates or replaces policy p.ID and records
	// ActionPolicySet; it returns the policy as stored.
	PutPolicy(ctx context.Context, actor access.Actor, p Policy) (Policy, error)
	// DeletePolicy deletes policy id and records ActionPolicyDeleted;
	// errdef.ErrNotFound if there is none.
	DeletePolicy(ctx context.Context, actor access.Actor, id string) error

	// Versions lists up to limit artifact versions ordered by (name,
	// version), after the given pair ("" "": from the start), each with
	// whether a release names it and whether an OCI tag is it.
	Versions(ctx context.Context, afterName, afterVersion string, limit int) ([]Version, error)
	// DeleteVersion reads name:version in a write transaction, locked
	// against every change that decides on it (a release taking it, a
	// tag, an admission), with whether a release names it and whether an
	// OCI tag is it, and calls decide with it; decide's error is returned
	// as it is and deletes nothing. Otherwise the version and its
	// evidence records are deleted and decide's event recorded, in that
	// transaction; the digests of the deleted evidence are returned (the
	// first presentations of their claims stay: they never change).
	// errdef.ErrNotFound if the version is unknown.
	DeleteVersion(ctx context.Context, actor access.Actor, name, version string, decide func(v Version) (audit.Change, error)) (evidence []digest.Digest, err error)

	// TryLease takes the lease name for holder until until, if no one
	// holds it, its holder's time ran out at now, or holder holds it
	// (a renewal); it reports whether holder has it.
	TryLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	// DropLease gives up holder's lease name; one not held is no error.
	DropLease(ctx context.Context, name, holder string) error
}
