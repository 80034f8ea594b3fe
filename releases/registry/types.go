package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
)

// The OCI registry (/v2/) over the same catalogue: a repository is an
// artifact name and a tag is a version. A tag is an artifact whose digest
// is the manifest's; manifests, the blobs pushed into each repository and
// the upload sessions in progress are kept beside the artifacts.

// Manifest media types the registry stores. Docker's schema 2 types are
// accepted because crane, docker and skopeo still push them; schema 1 is
// not.
const (
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// MaxManifestSize is the largest manifest the registry accepts (4 MiB, the
// limit the distribution spec suggests and common registries apply).
const MaxManifestSize = 4 << 20

// Registry events, recorded like every other change. Tag-level events use
// the artifact's subject "name:version"; manifest and blob events use
// "name@digest". A tag pushed together with its new artifact is recorded as
// ActionArtifactPushed, exactly as a REST push, so the artifact's history
// starts the same way whichever API created it; so is a quarantined tag
// moved to another manifest (with "replaces": the digest it held), since
// the version then names new bytes. A version may thus have several
// pushes in the log: the last one is the current.
const (
	ActionOCIBlobPushed      = "oci.blob.pushed"
	ActionOCIBlobMounted     = "oci.blob.mounted"
	ActionOCIBlobDeleted     = "oci.blob.deleted"
	ActionOCIManifestPushed  = "oci.manifest.pushed"
	ActionOCIManifestDeleted = "oci.manifest.deleted"
	ActionOCITagPushed       = "oci.tag.pushed"
	ActionOCITagDeleted      = "oci.tag.deleted"
	// ActionOCIReferrerVerified: every layer of a referrer carried
	// verified evidence, so it is now served with its subject.
	ActionOCIReferrerVerified = "oci.referrer.verified"
)

// Registry errors. Each wraps the domain sentinel it refines, so code that
// only knows ErrNotFound or ErrInvalidInput still classifies them, while the
// OCI error table can name the spec's codes.
var (
	ErrBlobUnknown         = fmt.Errorf("%w: blob unknown to repository", errdef.ErrNotFound)
	ErrManifestUnknown     = fmt.Errorf("%w: manifest unknown", errdef.ErrNotFound)
	ErrNameUnknown         = fmt.Errorf("%w: repository name not known to registry", errdef.ErrNotFound)
	ErrUploadUnknown       = fmt.Errorf("%w: blob upload unknown", errdef.ErrNotFound)
	ErrManifestInvalid     = fmt.Errorf("%w: manifest invalid", errdef.ErrInvalidInput)
	ErrManifestBlobUnknown = fmt.Errorf("%w: manifest references a blob or manifest unknown to the repository", errdef.ErrInvalidInput)
	ErrUploadInvalid       = fmt.Errorf("%w: blob upload invalid", errdef.ErrInvalidInput)
	// ErrChunkOutOfOrder: a chunk that does not start where the upload ends.
	ErrChunkOutOfOrder = fmt.Errorf("%w: chunk out of order", store.ErrInvalidRange)
	// ErrUnsupported: a manifest media type (or a request) the registry
	// does not handle.
	ErrUnsupported = fmt.Errorf("%w: unsupported", errdef.ErrInvalidInput)
	// ErrImmutable: admitted content never changes, so its tag cannot move
	// and it cannot be deleted.
	ErrImmutable = fmt.Errorf("%w: admitted content is immutable", errdef.ErrConflict)
	// ErrPaginationNumberInvalid: a page size (tags/list?n=) that is not a
	// non-negative integer.
	ErrPaginationNumberInvalid = fmt.Errorf("%w: invalid number of results requested", errdef.ErrInvalidInput)
	// ErrTagInvalid: a tag given as a parameter (tags/list?last=) that is
	// not a tag.
	ErrTagInvalid = fmt.Errorf("%w: invalid tag", errdef.ErrInvalidInput)
)

// RefKind says how a manifest refers to another digest.
type RefKind string

const (
	RefConfig   RefKind = "config"   // an image manifest's config blob
	RefLayer    RefKind = "layer"    // an image manifest's layer blob
	RefManifest RefKind = "manifest" // an index's child manifest
)

// ManifestRef is one digest a manifest refers to.
type ManifestRef struct {
	Kind   RefKind       `json:"kind"`
	Digest digest.Digest `json:"digest"`
	// Size is the size the manifest's descriptor gives. PushManifest
	// checks it against what Digest names before storing anything; stores
	// need not keep it (a ref read back may have 0).
	Size int64 `json:"size,omitempty"`
	// External is set for layers with URLs (non-distributable layers),
	// which need not be pushed.
	External bool `json:"external,omitempty"`
}

// Manifest is a manifest stored in one repository. Its bytes are the blob
// Digest in the blob store.
type Manifest struct {
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	MediaType  string        `json:"mediaType"`
	Size       int64         `json:"size"`
	// ArtifactType is what the referrers API reports: the manifest's
	// artifactType, or an image manifest's config media type.
	ArtifactType string        `json:"artifactType,omitempty"`
	Subject      digest.Digest `json:"subject,omitempty"`
	// subjectSize is the size the subject's descriptor gives, checked on
	// a push like the refs' sizes (ParseManifest sets it).
	subjectSize int64
	Annotations map[string]string `json:"annotations,omitempty"`
	Refs        []ManifestRef     `json:"refs,omitempty"`
	// Verified is set on a referrer every layer of which carried evidence
	// that verified against a trusted key and was recorded for a tag of its
	// subject (MarkReferrerVerified; PutManifest stores every manifest
	// unverified). Only such referrers are reached from their subject
	// (TagsReaching).
	Verified  bool      `json:"verified,omitempty"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// Tag points a name in a repository at a manifest. Its artifact is
// Repository:Name.
type Tag struct {
	Repository string        `json:"repository"`
	Name       string        `json:"name"`
	Digest     digest.Digest `json:"digest"`
	UpdatedBy  string        `json:"updatedBy"`
	UpdatedAt  time.Time     `json:"updatedAt"`
}

// BlobLink records that a principal pushed (or mounted) a blob into a
// repository. A blob is in a repository while any link holds it.
type BlobLink struct {
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	Size       int64         `json:"size"`
	CreatedBy  string        `json:"createdBy"`
	CreatedAt  time.Time     `json:"createdAt"`
}

// UploadSession is a chunked blob upload in progress. The chunks are in the
// blob store (store.PutChunk); the session keeps where the upload stands and
// the running SHA-256 and SHA-512 states (hash.Hash marshalled with
// encoding.BinaryMarshaler), so an upload resumes after a restart without
// re-reading what it already received.
type UploadSession struct {
	ID         string `json:"id"`
	Repository string `json:"repository"`
	// Offset is the number of bytes received; Chunks the number of chunks
	// stored (chunk i is store.ChunkKey(ID, i)).
	Offset      int64     `json:"offset"`
	Chunks      int       `json:"chunks"`
	SHA256State []byte    `json:"-"`
	SHA512State []byte    `json:"-"`
	Owner       string    `json:"owner"`
	StartedAt   time.Time `json:"startedAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// TagChange asks PutManifest to point a tag at the manifest.
type TagChange struct {
	// Tag is the tag to set; "" sets none.
	Tag string
	// Expect is the digest the tag points at now ("" when it must not
	// exist): a compare-and-set, so a tag that moved meanwhile is
	// ErrConflict rather than overwritten.
	Expect digest.Digest
	// Guard, when set, also decides whether the tag's artifact may be
	// replaced when the tag moves (the Service's: who pushed it, whether
	// a release keeps it).
	Guard Guard
}

// Guard is a check of an artifact that a change moves or deletes, decided
// inside the change's transaction with what it reads there.
type Guard func(ctx context.Context, tx TagTx, a catalog.Artifact) error

// TagTx is what a change of the registry reads, inside its transaction,
// to decide whether it may happen.
type TagTx interface {
	// GetArtifact returns errdef.ErrNotFound when name+version is unknown.
	GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error)
	// TagsReaching is ManifestStore.TagsReaching as the transaction sees it.
	TagsReaching(ctx context.Context, repo string, d digest.Digest, limit int) ([]Tag, error)
	// ReleasesContaining lists the releases that include name:version.
	ReleasesContaining(ctx context.Context, name, version string) ([]lifecycle.Release, error)
	// The quotas and their usage as the transaction sees them (a new
	// tag is a new version); Usage holds the prefix to the commit.
	quota.Reader
}

// TagOp is what a tag's change writes.
type TagOp int

const (
	// TagKeep: the tag points at the manifest already; nothing changes.
	TagKeep TagOp = iota
	// TagCreate: a new tag, and its new artifact.
	TagCreate
	// TagAdopt: a new tag over the artifact of that version, which holds
	// the manifest already (pushed over REST).
	TagAdopt
	// TagMove: the tag moves to the manifest; its artifact is replaced —
	// admission and retirement cleared — and its evidence, which vouched
	// for other bytes, deleted.
	TagMove
)

// TagWrite is a tag's change as the domain decided it: the write, the
// tag's artifact as it is to be stored, and the event to record.
type TagWrite struct {
	Op       TagOp
	Artifact catalog.Artifact
	Change   audit.Change
}

// ManifestPutResult says what PutManifest changed.
type ManifestPutResult struct {
	// ManifestCreated is false when the repository already held the manifest.
	ManifestCreated bool
	// TagChanged is true when the tag was created or moved; Artifact is
	// then the tag's artifact as stored.
	TagChanged bool
	Artifact   catalog.Artifact
}

// BlobLinkStore keeps which blobs were pushed into which repository.
type BlobLinkStore interface {
	// LinkBlob records l and one event (ActionOCIBlobMounted when
	// mountedFrom is set, else ActionOCIBlobPushed); created=false and no
	// event when the principal had linked it already.
	LinkBlob(ctx context.Context, actor access.Actor, l BlobLink, mountedFrom string) (created bool, err error)
	// BlobLinks returns the links of d in repo (empty when it is not there).
	BlobLinks(ctx context.Context, repo string, d digest.Digest) ([]BlobLink, error)
	// RepositoriesWithBlob lists up to limit repositories holding d, ordered.
	RepositoriesWithBlob(ctx context.Context, d digest.Digest, limit int) ([]string, error)
	// UnlinkBlob removes the links of d in repo made by createdBy ("": all
	// of them) and records ActionOCIBlobDeleted; ErrNotFound when none.
	// decide runs first in the same transaction; its error is returned as
	// it is and removes nothing.
	UnlinkBlob(ctx context.Context, actor access.Actor, repo string, d digest.Digest, createdBy string, decide func(tx TagTx) error) (removed int, err error)
}

// ManifestStore keeps manifests and tags, and the artifacts tags create.
type ManifestStore interface {
	// PutManifest stores m in its repository (a no-op if it is there) and,
	// when tag is set, in the same transaction calls decide with the tag
	// as stored (zero when absent), the artifact of Repository:tag (nil
	// when absent) and what else it reads through tx, and writes what
	// decide returns with its event; an untagged manifest new to the
	// repository records ActionOCIManifestPushed. decide's error is
	// returned as it is and stores nothing. The rules of tags are the
	// domain's (registry.PutManifest).
	PutManifest(ctx context.Context, actor access.Actor, m Manifest, tag string, decide func(tx TagTx, cur Tag, a *catalog.Artifact) (TagWrite, error)) (ManifestPutResult, error)
	// Manifest returns a manifest of repo with its refs; ErrNotFound if absent.
	Manifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error)
	// Tag returns a tag; ErrNotFound if absent.
	Tag(ctx context.Context, repo, tag string) (Tag, error)
	// Tags lists up to limit tag names of repo after last, bytewise ordered.
	Tags(ctx context.Context, repo, last string, limit int) ([]string, error)
	// TagsPointingAt lists the tags of repo whose digest is d, ordered.
	TagsPointingAt(ctx context.Context, repo string, d digest.Digest) ([]Tag, error)
	// TagsReaching lists up to limit tags of repo from which d can be
	// reached through content and verified evidence: tags of d itself and
	// of the manifests that refer to d (as config, layer or child),
	// transitively; and, when d is a verified referrer or a layer of one,
	// the tags reaching its subject, through chains of verified
	// referrers. An unverified referrer, and what is reached only through
	// it (its layers, its config), reaches no tag of its subject, nor does
	// the config of a verified one. Pull and delete rules follow these
	// tags.
	TagsReaching(ctx context.Context, repo string, d digest.Digest, limit int) ([]Tag, error)
	// MarkReferrerVerified sets Verified on a manifest of repo and records
	// ActionOCIReferrerVerified; a no-op (no event) when it is set already,
	// ErrNotFound when the manifest is absent.
	MarkReferrerVerified(ctx context.Context, actor access.Actor, repo string, d digest.Digest) error
	// DeleteTag removes a tag and its artifact with the artifact's
	// evidence, recording ActionOCITagDeleted, if decide — called in the
	// same transaction with the tag and its artifact as stored — returns
	// nil; its error is returned as it is. ErrNotFound if the tag is
	// absent.
	DeleteTag(ctx context.Context, actor access.Actor, repo, tag string, decide func(tx TagTx, cur Tag, a catalog.Artifact) error) error
	// DeleteManifest removes a manifest, its refs and the tags pointing at
	// it (with their artifacts) and records ActionOCIManifestDeleted, if
	// decide — called in the same transaction with those tags and their
	// artifacts as stored — returns nil; its error is returned as it is.
	// It returns the tags removed. ErrNotFound if the manifest is absent.
	DeleteManifest(ctx context.Context, actor access.Actor, repo string, d digest.Digest, decide func(tx TagTx, tags []Tag, artifacts []catalog.Artifact) error) ([]string, error)
	// Referrers lists the manifests of repo whose subject is d, filtered by
	// artifact type when artifactType is set, ordered by digest.
	Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]Manifest, error)
	// RepositoryKnown reports whether repo holds any manifest, tag or blob.
	RepositoryKnown(ctx context.Context, repo string) (bool, error)
}

// UploadStore keeps chunked upload sessions. Sessions are working state,
// like the staging objects of the blob store: they record no events; the
// blob they produce is recorded when it is linked.
type UploadStore interface {
	// CreateUpload stores a new session; ErrConflict if the ID is taken.
	CreateUpload(ctx context.Context, u UploadSession) error
	// Upload returns a session; ErrNotFound if unknown.
	Upload(ctx context.Context, id string) (UploadSession, error)
	// UpdateUpload loads session id in a write transaction and stores
	// what next returns for it; next's error is returned as it is and
	// stores nothing. ErrNotFound if the session is gone.
	UpdateUpload(ctx context.Context, id string, next func(cur UploadSession) (UploadSession, error)) error
	// DeleteUpload removes a session; deleting an unknown one is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// StaleUploads lists up to limit sessions last updated before before.
	StaleUploads(ctx context.Context, before time.Time, limit int) ([]UploadSession, error)
}
