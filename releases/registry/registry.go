package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/defaults"
	"github.com/dmlproject/dml/releases/internal/keyed"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The OCI registry's rules, the same as the REST API's:
//
//   - Pushing (blobs, manifests, tags) needs the publisher or admin role.
//   - Pulling a manifest or blob of a repository is allowed to admins and
//     auditors; to the publisher who pushed it (a blob's link, a manifest's
//     creator); and otherwise only through a tag: a principal may pull what
//     can be reached from a tag whose artifact it may read by the REST rules
//     (authorizeRead: quarantined content only for its publisher, admitted
//     content for publishers, release managers and approvers, deployers only
//     within a release authorised for their environment). "Reached" follows
//     a manifest to its config, layers and child manifests — content the
//     tag's digest covers — and a subject to its verified referrers and
//     their layers: evidence that verified against a trusted key
//     (markIfVerified). So a deployer that may pull an image may also pull
//     its layers and verify its signatures, but nothing else anybody hung
//     on it: an unverified referrer, its layers and the config of any
//     referrer (which no evidence covers) stay with their pusher, admins
//     and auditors. The empty JSON blob ({}, the config of most
//     artifacts) carries nothing and is served to any principal.
//   - A manifest may only refer to blobs and manifests of its repository
//     that its pusher may pull, so nobody gains access to content by
//     referring to its digest.
//   - Admitted content is immutable: its tag never moves, and neither the
//     manifest nor anything reachable from it (as above: never an
//     unverified referrer) can be deleted (ErrImmutable). Quarantined
//     tags, and what is reachable from no admitted tag, may be deleted by
//     their publisher or an admin; a tag's artifact goes with it, and the
//     audit log keeps it all.
//   - Metadata is readable by any principal, as artifact metadata is on
//     the REST API: tag lists, and the referrers each principal may pull
//     (a listing advertises nothing its reader would be refused).

// Service is the OCI registry over the catalogue.
type Service struct {
	links        BlobLinkStore
	manifests    ManifestStore
	uploads      UploadStore
	catalog      *catalog.Service
	catalogStore catalog.Store
	releases     lifecycle.Store
	blobs        *blobs.Service
	quotas       *quota.Service
	log          *slog.Logger
	now          func() time.Time
	// uploading serialises the requests of one chunked upload in this
	// process. It saves work: two requests of one upload racing would
	// otherwise both write a chunk, and the session's compare-and-set
	// would refuse the second. That compare-and-set is the guard across
	// replicas (UpdateUpload, under the session's row lock): of two PATCHes
	// at two replicas one is accepted; if the other's bytes overwrote the
	// accepted chunk, the commit's verification refuses the upload
	// (ErrUploadInvalid) — never a blob other than the one named.
	uploading keyed.Mutex
}

// Config is what the registry is built from.
type Config struct {
	Links     BlobLinkStore
	Manifests ManifestStore
	Uploads   UploadStore
	// Catalog decides admission and reads of the tags' artifacts;
	// CatalogStore is read for them directly.
	Catalog      *catalog.Service
	CatalogStore catalog.Store
	// Releases is read for the releases that keep an artifact as they
	// recorded it.
	Releases lifecycle.Store
	Blobs    *blobs.Service
	// Quotas are checked before a blob's or a new tag's bytes are stored.
	Quotas *quota.Service
	// Log nil: silent. Now nil: the wall clock.
	Log *slog.Logger
	Now func() time.Time
}

// New returns the registry.
func New(cfg Config) (*Service, error) {
	if cfg.Links == nil || cfg.Manifests == nil || cfg.Uploads == nil || cfg.Catalog == nil || cfg.CatalogStore == nil || cfg.Releases == nil || cfg.Blobs == nil || cfg.Quotas == nil {
		return nil, errors.New("registry: its three stores, the catalogue and its store, the releases' store, the blob service and the quotas are required")
	}
	return &Service{
		links: cfg.Links, manifests: cfg.Manifests, uploads: cfg.Uploads,
		catalog: cfg.Catalog, catalogStore: cfg.CatalogStore, releases: cfg.Releases, blobs: cfg.Blobs, quotas: cfg.Quotas,
		log: defaults.Logger(cfg.Log), now: defaults.Clock(cfg.Now),
	}, nil
}

// canPush refuses principals that may not push.
func canPush(p access.Principal) error {
	if !p.Has(access.RolePublisher, access.RoleAdmin) {
		return fmt.Errorf("%w: pushing needs the publisher or admin role", errdef.ErrDenied)
	}
	return nil
}

// ociRef names a manifest or blob of a repository in messages.
func ociRef(repo string, d digest.Digest) string { return repo + "@" + d.String() }

// reachLimit bounds the tags consulted to decide a pull or a delete. The
// first readable tag decides a pull; a digest reachable from more tags
// than this is refused (pull) rather than looked at further.
const reachLimit = 100

// isDenial reports whether err is one of authorizeRead's refusals (as
// opposed to a failure to decide).
func isDenial(err error) bool {
	return errors.Is(err, catalog.ErrNotAdmitted) || errors.Is(err, access.ErrNotAuthorizedForEnv) || errors.Is(err, errdef.ErrDenied)
}

// authorizeRegistryRead decides whether p may pull d from repo; pushers are
// the principals that pushed it (see the rules above).
func (s *Service) authorizeRegistryRead(ctx context.Context, p access.Principal, repo string, d digest.Digest, pushers []string) error {
	if p.Has(access.RoleAdmin, access.RoleAuditor) || d == ocispec.DescriptorEmptyJSON.Digest {
		return nil
	}
	if p.Has(access.RolePublisher) && slices.Contains(pushers, p.Name) {
		return nil
	}
	tags, err := s.manifests.TagsReaching(ctx, repo, d, reachLimit)
	if err != nil {
		return err
	}
	var denial error
	for _, t := range tags {
		a, err := s.catalogStore.GetArtifact(ctx, repo, t.Name)
		if errors.Is(err, errdef.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		err = s.catalog.AuthorizeRead(ctx, p, a)
		if err == nil {
			return nil
		}
		if !isDenial(err) {
			return err
		}
		denial = err
	}
	if denial != nil {
		return denial
	}
	return fmt.Errorf("%w: %s is reachable from no tag you may pull, and you did not push it", catalog.ErrNotAdmitted, ociRef(repo, d))
}

// reads are the Service's reads outside a change, in the shape of a
// change's (TagTx): the checks a change makes again inside its
// transaction are first made with these, so that a request is refused
// before anything is written (a manifest's bytes, a blob's).
func (s *Service) reads() TagTx { return storeReads{s} }

type storeReads struct{ s *Service }

func (r storeReads) GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error) {
	return r.s.catalogStore.GetArtifact(ctx, name, version)
}

func (r storeReads) TagsReaching(ctx context.Context, repo string, d digest.Digest, limit int) ([]Tag, error) {
	return r.s.manifests.TagsReaching(ctx, repo, d, limit)
}

func (r storeReads) ReleasesContaining(ctx context.Context, name, version string) ([]lifecycle.Release, error) {
	return r.s.releases.ReleasesContaining(ctx, name, version)
}

func (r storeReads) ListQuotas(ctx context.Context) ([]quota.Quota, error) {
	return r.s.quotas.Reader().ListQuotas(ctx)
}

func (r storeReads) Usage(ctx context.Context, prefix string) (quota.Usage, error) {
	return r.s.quotas.Reader().Usage(ctx, prefix)
}

// guard is the Service's check of an artifact a change of p moves or
// deletes, run inside the change's transaction (mayChangeArtifact).
func (s *Service) guard(p access.Principal) Guard {
	return func(ctx context.Context, tx TagTx, a catalog.Artifact) error { return mayChangeArtifact(ctx, tx, p, a) }
}

// refuseIfAdmitted fails with ErrImmutable when d is reachable from a tag
// whose artifact is admitted, as r sees them.
func refuseIfAdmitted(ctx context.Context, r TagTx, repo string, d digest.Digest) error {
	tags, err := r.TagsReaching(ctx, repo, d, reachLimit)
	if err != nil {
		return err
	}
	if len(tags) == reachLimit {
		return fmt.Errorf("%w: %s is reachable from more than %d tags", errdef.ErrConflict, ociRef(repo, d), reachLimit)
	}
	for _, t := range tags {
		a, err := r.GetArtifact(ctx, repo, t.Name)
		if errors.Is(err, errdef.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if a.State == catalog.StateAdmitted {
			return fmt.Errorf("%w: %s is part of %s:%s, which is admitted", ErrImmutable, ociRef(repo, d), repo, t.Name)
		}
	}
	return nil
}

// mayChangeArtifact refuses changing (moving, deleting) the artifact of a
// tag: admitted artifacts never change, an artifact that a release (not
// cancelled) includes stays as that release recorded it, and others change
// only by their publisher or an admin. The releases are read through r: a
// change's transaction, so that a release including the artifact and the
// change are decided one after the other, never both on the state before.
func mayChangeArtifact(ctx context.Context, r TagTx, p access.Principal, a catalog.Artifact) error {
	if a.State == catalog.StateAdmitted {
		return fmt.Errorf("%w: %s:%s is admitted", ErrImmutable, a.Name, a.Version)
	}
	if !p.Has(access.RoleAdmin) && a.CreatedBy != p.Name {
		return fmt.Errorf("%w: %s:%s was pushed by %s; only they or an admin may change it", errdef.ErrDenied, a.Name, a.Version, a.CreatedBy)
	}
	rels, err := r.ReleasesContaining(ctx, a.Name, a.Version)
	if err != nil {
		return err
	}
	for _, r := range rels {
		if r.State != lifecycle.ReleaseCancelled {
			return fmt.Errorf("%w: %s:%s is part of release %s (%s)", ErrImmutable, a.Name, a.Version, r.Name, r.State)
		}
	}
	return nil
}

// parseReference tells a manifest reference's digest from its tag.
func parseReference(ref string) (tag string, d digest.Digest, err error) {
	if strings.Contains(ref, ":") {
		d = digest.Digest(ref)
		if err := store.ValidateDigest(d); err != nil {
			return "", "", err
		}
		return "", d, nil
	}
	if err := names.ValidateVersion(ref); err != nil {
		return "", "", err
	}
	return ref, "", nil
}

func pushersOf(links []BlobLink) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.CreatedBy
	}
	return out
}
