package releases

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dmlproject/dml/releases/lifecycle"
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

// WithRegistry sets the registry's persistence. Without it the service
// uses its Metadata when that implements RegistryStore.
func WithRegistry(r RegistryStore) ServiceOption { return func(s *Service) { s.registry = r } }

// RegistryEnabled reports whether the OCI registry has its persistence.
func (s *Service) RegistryEnabled() bool { return s.registry != nil }

func (s *Service) reg() (RegistryStore, error) {
	if s.registry == nil {
		return nil, fmt.Errorf("%w: this server's metadata store keeps no OCI registry", ErrUnsupported)
	}
	return s.registry, nil
}

// canPush refuses principals that may not push.
func canPush(p Principal) error {
	if !p.Has(RolePublisher, RoleAdmin) {
		return fmt.Errorf("%w: pushing needs the publisher or admin role", ErrDenied)
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
	return errors.Is(err, ErrNotAdmitted) || errors.Is(err, ErrNotAuthorizedForEnv) || errors.Is(err, ErrDenied)
}

// authorizeRegistryRead decides whether p may pull d from repo; pushers are
// the principals that pushed it (see the rules above).
func (s *Service) authorizeRegistryRead(ctx context.Context, reg RegistryStore, p Principal, repo string, d digest.Digest, pushers []string) error {
	if p.Has(RoleAdmin, RoleAuditor) || d == ocispec.DescriptorEmptyJSON.Digest {
		return nil
	}
	if p.Has(RolePublisher) && slices.Contains(pushers, p.Name) {
		return nil
	}
	tags, err := reg.TagsReaching(ctx, repo, d, reachLimit)
	if err != nil {
		return err
	}
	var denial error
	for _, t := range tags {
		a, err := s.meta.Catalog().GetArtifact(ctx, repo, t.Name)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		err = s.Catalog.AuthorizeRead(ctx, p, a)
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
	return fmt.Errorf("%w: %s is reachable from no tag you may pull, and you did not push it", ErrNotAdmitted, ociRef(repo, d))
}

// refuseIfAdmitted fails with ErrImmutable when d is reachable from a tag
// whose artifact is admitted.
func (s *Service) refuseIfAdmitted(ctx context.Context, reg RegistryStore, repo string, d digest.Digest) error {
	tags, err := reg.TagsReaching(ctx, repo, d, reachLimit)
	if err != nil {
		return err
	}
	if len(tags) == reachLimit {
		return fmt.Errorf("%w: %s is reachable from more than %d tags", ErrConflict, ociRef(repo, d), reachLimit)
	}
	for _, t := range tags {
		a, err := s.meta.Catalog().GetArtifact(ctx, repo, t.Name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if a.State == StateAdmitted {
			return fmt.Errorf("%w: %s is part of %s:%s, which is admitted", ErrImmutable, ociRef(repo, d), repo, t.Name)
		}
	}
	return nil
}

// mayChangeArtifact refuses changing (moving, deleting) the artifact of a
// tag: admitted artifacts never change, an artifact that a release (not
// cancelled) includes stays as that release recorded it, and others change
// only by their publisher or an admin.
func (s *Service) mayChangeArtifact(ctx context.Context, p Principal, a Artifact) error {
	if a.State == StateAdmitted {
		return fmt.Errorf("%w: %s:%s is admitted", ErrImmutable, a.Name, a.Version)
	}
	if !p.Has(RoleAdmin) && a.CreatedBy != p.Name {
		return fmt.Errorf("%w: %s:%s was pushed by %s; only they or an admin may change it", ErrDenied, a.Name, a.Version, a.CreatedBy)
	}
	rels, err := s.meta.Releases().ReleasesContaining(ctx, a.Name, a.Version)
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
	if err := ValidateVersion(ref); err != nil {
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
