package blobs

import (
	"context"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/access"
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
	// RecordBlobVerified stores that d hashed correctly while its backend
	// object had the fingerprint state. When d was marked corrupt it
	// clears the mark and records ActionBlobRepaired ({source}), returning
	// repaired=true; otherwise it records nothing.
	RecordBlobVerified(ctx context.Context, actor access.Actor, d digest.Digest, state, source string, at time.Time) (repaired bool, err error)
	// MarkBlobCorrupt marks d corrupt (forgetting its verified state) and
	// records ActionBlobCorrupt ({reason, source}); marked=false and no
	// event when it was marked already.
	MarkBlobCorrupt(ctx context.Context, actor access.Actor, d digest.Digest, reason, source string, at time.Time) (marked bool, err error)

	// BlobReferenced reports whether the catalogue refers to d.
	BlobReferenced(ctx context.Context, d digest.Digest) (bool, error)
	// ReferencedBlobs lists up to limit distinct (digest, size) pairs the
	// catalogue refers to that sort after the given one, ordered by
	// digest then size. A zero after starts at the beginning.
	ReferencedBlobs(ctx context.Context, after BlobRef, limit int) ([]BlobRef, error)
	// BlobHolders lists up to limit catalogue entries that refer to d,
	// ordered by kind and name.
	BlobHolders(ctx context.Context, d digest.Digest, limit int) ([]BlobHolder, error)

	// ClaimBlob records claim id: a writer is about to refer to d. A
	// claim made at or after claimsAfter keeps BeginBlobDeletion from
	// deleting d until DropBlobClaim. It fails with ErrBlobCollecting
	// while a deletion of d begun at or after deletionsAfter is under way
	// (an older one is a collector that died: it is ignored). Claiming an
	// id again renews it.
	ClaimBlob(ctx context.Context, id string, d digest.Digest, at, deletionsAfter time.Time) error
	// DropBlobClaim removes a claim; dropping an unknown one is not an error.
	DropBlobClaim(ctx context.Context, id string) error
	// BeginBlobDeletion records, in one transaction with the checks, that
	// d is about to be deleted, and returns true — unless the catalogue
	// refers to d or a claim made at or after claimsAfter holds it
	// (false, nothing recorded).
	BeginBlobDeletion(ctx context.Context, d digest.Digest, at, claimsAfter time.Time) (bool, error)
	// EndBlobDeletion ends a deletion. When deleted, it forgets d's
	// integrity record and records ActionBlobCollected ({size}).
	EndBlobDeletion(ctx context.Context, actor access.Actor, d digest.Digest, deleted bool, size int64) error
}
