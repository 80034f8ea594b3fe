package blobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
)

// Integrity of stored blobs (integrity.go): what the catalogue knows of
// each blob's health, and how the garbage collector and writers keep out
// of each other's way (gc.go).

// ErrBlobCorrupt: a stored blob does not hash to its digest (or is not its
// size). It is store.ErrCorrupt: the store finds it, the domain marks the
// blob and refuses it until it is repaired. The API answers it with 500
// BLOB_CORRUPT, which blames the server, never the client.
var ErrBlobCorrupt = store.ErrCorrupt

// ErrBlobCollecting: the garbage collector is deleting the blob a write is
// about to refer to. Writers wait for it to finish (see claimBlob).
var ErrBlobCollecting = fmt.Errorf("%w: blob is being garbage-collected", errdef.ErrConflict)

// Blob events. Their subject is the digest. A blob found corrupt and one
// repaired change what the DML serves, and one collected is bytes gone
// for good, so each is in the audit log; recording that a blob verified is
// not (it changes nothing an auditor needs).
const (
	// ActionBlobCorrupt: {reason, source}. source is "read" (a download
	// found it) or "fsck".
	ActionBlobCorrupt = "blob.corrupt"
	// ActionBlobRepaired: {source}: "push" (the same bytes pushed again)
	// or "fsck" (the bytes were put back by other means and verified).
	ActionBlobRepaired = "blob.repaired"
	// ActionBlobCollected: {size}: gc deleted an unreferenced blob.
	ActionBlobCollected = "blob.collected"
)

// BlobIntegrity is what the catalogue knows of one stored blob.
type BlobIntegrity struct {
	Digest digest.Digest `json:"digest"`
	// VerifiedState is the fingerprint of the backend object
	// (store.Info.Fingerprint) when its bytes last hashed to Digest, and
	// VerifiedAt when that was; "" while never verified or marked corrupt.
	// An object whose fingerprint differs has been written since: Range
	// requests, which cannot check what they serve, verify it first.
	VerifiedState string    `json:"verifiedState,omitempty"`
	VerifiedAt    time.Time `json:"verifiedAt,omitzero"`
	// CorruptAt is set while the blob is marked corrupt; every request
	// for it is refused until it is repaired.
	CorruptAt     *time.Time `json:"corruptAt,omitempty"`
	CorruptReason string     `json:"corruptReason,omitempty"`
}

// Corrupt reports whether the blob is marked corrupt.
func (b BlobIntegrity) Corrupt() bool { return b.CorruptAt != nil }

// BlobRef is a digest the catalogue refers to, with the size it records
// for it (-1 where it records none, as for the refs of a manifest).
type BlobRef struct {
	Digest digest.Digest
	Size   int64
}

// BlobHolder is one catalogue entry that refers to a blob.
type BlobHolder struct {
	// Kind is "artifact", "evidence", "release" (a release's artifact),
	// "release-manifest" (a release's sealed manifest), "oci-manifest",
	// "oci-ref" (a manifest's config, layer or child) or "oci-link" (a
	// blob pushed or mounted into a repository).
	Kind string
	// Name says which: "name:version", "release:NAME", "repo@digest"
	// or "repo".
	Name string
}

func (h BlobHolder) String() string { return h.Kind + " " + h.Name }

// Store is the persistence of blob integrity and of the coordination
// between gc and writers.
//
// A blob is referenced while the catalogue names its digest: an artifact,
// a piece of evidence, an artifact of a release, a sealed release
// manifest, an OCI manifest, a manifest's config, layer or child (not
// external layers), or a blob link. Tags are not counted apart: a tag
// points at a manifest, which is referenced as such.
type Store interface {
	// BlobIntegrity returns what is known of d; a zero record (Digest set,
	// no error) when nothing is.
	BlobIntegrity(ctx context.Context, d digest.Digest) (BlobIntegrity, error)
	// UpdateIntegrity loads d's record in a write transaction (a zero
	// record, Digest set, when there is none) and calls decide with it and
	// at (zero: now); decide returns the record to store instead (nil:
	// none) and the event to record with it at that time (no Action:
	// none), or an error, which is returned as it is and stores nothing.
	// RecordVerified and MarkCorrupt are the decisions.
	UpdateIntegrity(ctx context.Context, actor access.Actor, d digest.Digest, at time.Time, decide func(rec BlobIntegrity, at time.Time) (*BlobIntegrity, audit.Change, error)) error

	// BlobReferenced reports whether the catalogue refers to d.
	BlobReferenced(ctx context.Context, d digest.Digest) (bool, error)
	// ReferencedBlobs lists up to limit distinct (digest, size) pairs the
	// catalogue refers to that sort after the given one, ordered by
	// digest then size. A zero after starts at the beginning.
	ReferencedBlobs(ctx context.Context, after BlobRef, limit int) ([]BlobRef, error)
	// BlobHolders lists up to limit catalogue entries that refer to d,
	// ordered by kind and name.
	BlobHolders(ctx context.Context, d digest.Digest, limit int) ([]BlobHolder, error)

	// ClaimBlob records claim id, made at at: a writer is about to refer
	// to d. allow is called in the same transaction with the start of a
	// deletion of d under way (nil: none is); its error is returned as it
	// is and records nothing. Claiming an id again renews it.
	ClaimBlob(ctx context.Context, id string, d digest.Digest, at time.Time, allow func(deletionStarted *time.Time) error) error
	// DropBlobClaim removes a claim; dropping an unknown one is not an error.
	DropBlobClaim(ctx context.Context, id string) error
	// BeginBlobDeletion reads, in one write transaction, whether the
	// catalogue refers to d and when each claim on d was made, and if
	// decide says so records that d is about to be deleted (begun at at),
	// drops the claims and returns true; otherwise it records nothing.
	BeginBlobDeletion(ctx context.Context, d digest.Digest, at time.Time, decide func(referenced bool, claims []time.Time) bool) (bool, error)
	// EndBlobDeletion ends a deletion. When deleted, it forgets d's
	// integrity record and records ActionBlobCollected ({size}).
	EndBlobDeletion(ctx context.Context, actor access.Actor, d digest.Digest, deleted bool, size int64) error
}

// The rules of the integrity record and of gc's coordination with
// writers. Each decides inside the store's transaction of the change.

// RecordVerified records through st that d hashed correctly while its
// backend object had the fingerprint state. A blob marked corrupt is
// repaired by it: the mark is cleared and ActionBlobRepaired ({source})
// recorded, and repaired is true; otherwise nothing is recorded.
func RecordVerified(ctx context.Context, st Store, actor access.Actor, d digest.Digest, state, source string, at time.Time) (repaired bool, err error) {
	if state == "" || source == "" {
		return false, fmt.Errorf("%w: a verified blob needs its state and source", errdef.ErrInvalidInput)
	}
	err = st.UpdateIntegrity(ctx, actor, d, at, func(rec BlobIntegrity, at time.Time) (*BlobIntegrity, audit.Change, error) {
		next := &BlobIntegrity{Digest: d, VerifiedState: state, VerifiedAt: at}
		if !rec.Corrupt() {
			return next, audit.Change{}, nil
		}
		repaired = true
		change, err := event(ActionBlobRepaired, struct {
			Source string `json:"source"`
		}{source})
		return next, change, err
	})
	return repaired && err == nil, err
}

// MarkCorrupt marks d corrupt through st, forgetting its verified state,
// and records ActionBlobCorrupt ({reason, source}); a blob marked already
// stays as it is (marked=false, nothing recorded).
func MarkCorrupt(ctx context.Context, st Store, actor access.Actor, d digest.Digest, reason, source string, at time.Time) (marked bool, err error) {
	if reason == "" || source == "" {
		return false, fmt.Errorf("%w: a corrupt blob needs a reason and a source", errdef.ErrInvalidInput)
	}
	err = st.UpdateIntegrity(ctx, actor, d, at, func(rec BlobIntegrity, at time.Time) (*BlobIntegrity, audit.Change, error) {
		if rec.Corrupt() {
			return nil, audit.Change{}, nil
		}
		marked = true
		change, err := event(ActionBlobCorrupt, struct {
			Reason string `json:"reason"`
			Source string `json:"source"`
		}{reason, source})
		return &BlobIntegrity{Digest: d, CorruptAt: &at, CorruptReason: reason}, change, err
	})
	return marked && err == nil, err
}

// Claim records claim id on d through st (see Store.ClaimBlob), unless a
// deletion of d begun at or after deletionsAfter is under way:
// ErrBlobCollecting. An older one is a collector that died; it is
// ignored.
func Claim(ctx context.Context, st Store, id string, d digest.Digest, at, deletionsAfter time.Time) error {
	return st.ClaimBlob(ctx, id, d, at, func(started *time.Time) error {
		if started != nil && !started.Before(deletionsAfter) {
			return fmt.Errorf("%w: %s, since %s", ErrBlobCollecting, d, started.Format(time.RFC3339Nano))
		}
		return nil
	})
}

// BeginDeletion records through st that d is about to be deleted, and
// returns true — unless the catalogue refers to d or a claim made at or
// after claimsAfter holds it (false, nothing recorded). Older claims were
// left by writers that died.
func BeginDeletion(ctx context.Context, st Store, d digest.Digest, at, claimsAfter time.Time) (bool, error) {
	return st.BeginBlobDeletion(ctx, d, at, func(referenced bool, claims []time.Time) bool {
		if referenced {
			return false
		}
		for _, c := range claims {
			if !c.Before(claimsAfter) {
				return false
			}
		}
		return true
	})
}

// event is the event action with details v.
func event(action string, v any) (audit.Change, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return audit.Change{}, fmt.Errorf("%s details: %w", action, err)
	}
	return audit.Change{Action: action, Details: b}, nil
}
