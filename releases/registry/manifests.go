package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dmlproject/dml/internal/strictjson"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestDoc is what the registry reads of any manifest it accepts:
// image manifests and indexes, OCI and Docker schema 2 alike. Unknown
// fields are allowed (the spec lets manifests carry more).
type manifestDoc struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

var knownManifestTypes = map[string]bool{
	MediaTypeOCIManifest: true, MediaTypeOCIIndex: true,
	MediaTypeDockerManifest: true, MediaTypeDockerManifestList: true,
}

// ParseManifest reads a manifest body as the registry stores it: its media
// type (from the body, else from contentType), the artifact type the
// referrers API reports, its subject, annotations and references. The
// returned Manifest has no repository, digest, size or creator yet.
func ParseManifest(body []byte, contentType string) (Manifest, error) {
	var doc manifestDoc
	// A manifest is content-addressed and read by many clients: one that
	// names a key twice could list other layers to another parser.
	if err := strictjson.Unmarshal(body, &doc); err != nil {
		return Manifest{}, fmt.Errorf("%w: not a JSON manifest: %v", ErrManifestInvalid, err)
	}
	ct, err := names.ParseContentType(contentType)
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", ErrManifestInvalid, err)
	}
	if err := checkMediaTypes("the manifest", doc.MediaType, doc.ArtifactType); err != nil {
		return Manifest{}, err
	}
	mt := doc.MediaType
	switch {
	case mt == "" && ct == "":
		return Manifest{}, fmt.Errorf("%w: neither the manifest nor its Content-Type names a media type", ErrManifestInvalid)
	case mt == "":
		mt = ct
	case knownManifestTypes[ct] && ct != mt:
		// A generic Content-Type (application/json) is tolerated; naming
		// another manifest type is a contradiction.
		return Manifest{}, fmt.Errorf("%w: Content-Type %s does not match the manifest's mediaType %s", ErrManifestInvalid, ct, mt)
	}
	if !knownManifestTypes[mt] {
		return Manifest{}, fmt.Errorf("%w: manifest media type %q (accepted: OCI image manifest and index, Docker schema 2 manifest and manifest list)", ErrUnsupported, mt)
	}
	if doc.SchemaVersion != 2 {
		return Manifest{}, fmt.Errorf("%w: schemaVersion is %d, not 2", ErrManifestInvalid, doc.SchemaVersion)
	}
	m := Manifest{MediaType: mt, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
	switch mt {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if doc.Config == nil {
			return Manifest{}, fmt.Errorf("%w: an image manifest needs a config", ErrManifestInvalid)
		}
		if len(doc.Manifests) > 0 {
			return Manifest{}, fmt.Errorf("%w: an image manifest has no manifests list", ErrManifestInvalid)
		}
		if err := checkDescriptor("config", *doc.Config); err != nil {
			return Manifest{}, err
		}
		m.Refs = append(m.Refs, ManifestRef{Kind: RefConfig, Digest: doc.Config.Digest, Size: doc.Config.Size})
		for i, l := range doc.Layers {
			if err := checkDescriptor(fmt.Sprintf("layer %d", i), l); err != nil {
				return Manifest{}, err
			}
			m.Refs = append(m.Refs, ManifestRef{Kind: RefLayer, Digest: l.Digest, Size: l.Size, External: len(l.URLs) > 0})
		}
		if m.ArtifactType == "" {
			m.ArtifactType = doc.Config.MediaType
		}
	default: // an index or manifest list
		if doc.Config != nil || len(doc.Layers) > 0 {
			return Manifest{}, fmt.Errorf("%w: an index has no config or layers", ErrManifestInvalid)
		}
		for i, c := range doc.Manifests {
			if err := checkDescriptor(fmt.Sprintf("manifest %d", i), c); err != nil {
				return Manifest{}, err
			}
			m.Refs = append(m.Refs, ManifestRef{Kind: RefManifest, Digest: c.Digest, Size: c.Size})
		}
	}
	if doc.Subject != nil {
		if err := checkDescriptor("subject", *doc.Subject); err != nil {
			return Manifest{}, err
		}
		m.Subject, m.subjectSize = doc.Subject.Digest, doc.Subject.Size
	}
	return m, nil
}

// checkDescriptor checks what a descriptor must be on its own: a valid
// digest, a size that is not negative, and media types (when given) in
// the RFC 6838 grammar. Whether the size is the blob's is checked against
// the repository (checkManifestRefs).
func checkDescriptor(what string, d ocispec.Descriptor) error {
	if err := store.ValidateDigest(d.Digest); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrManifestInvalid, what, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: %s: negative size", ErrManifestInvalid, what)
	}
	return checkMediaTypes(what, d.MediaType, d.ArtifactType)
}

// checkMediaTypes checks the mediaType and artifactType of a manifest or
// descriptor, when they are given.
func checkMediaTypes(what, mediaType, artifactType string) error {
	for _, f := range []struct{ name, value string }{{"mediaType", mediaType}, {"artifactType", artifactType}} {
		if f.value == "" {
			continue
		}
		if err := names.ValidateMediaType(f.value); err != nil {
			return fmt.Errorf("%w: %s: %s: %w", ErrManifestInvalid, what, f.name, err)
		}
	}
	return nil
}

// PushManifestRequest is a manifest PUT.
type PushManifestRequest struct {
	Repository string
	// Reference is a tag or a digest.
	Reference   string
	ContentType string
	// Body is the manifest, at most MaxManifestSize bytes.
	Body []byte
	// Tags are more tags to point at the manifest (the ?tag= parameters
	// of a push by digest).
	Tags []string
}

// PushManifest stores a manifest in a repository and points its tags (the
// reference when it is a tag, and req.Tags) and their artifacts at it. A digest reference
// must be the body's digest, in its algorithm; a tag names the body's
// SHA-256. Everything the manifest refers to must already be in the
// repository and pullable by p. Signatures and attestations pushed as
// referrers become evidence of the tags of their subject
// (registry_evidence.go).
func (s *Service) PushManifest(ctx context.Context, p access.Principal, req PushManifestRequest) (Manifest, error) {
	if err := canPush(p); err != nil {
		return Manifest{}, err
	}
	if err := names.ValidateName(req.Repository); err != nil {
		return Manifest{}, err
	}
	if len(req.Body) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("%w: manifests are at most %d bytes", store.ErrTooLarge, MaxManifestSize)
	}
	tag, d, err := parseReference(req.Reference)
	if err != nil {
		return Manifest{}, err
	}
	tags := slices.Clone(req.Tags)
	if tag != "" {
		tags = append([]string{tag}, tags...)
	}
	for _, t := range tags {
		if err := names.ValidateVersion(t); err != nil {
			return Manifest{}, err
		}
	}
	alg := digest.SHA256
	if d != "" {
		alg = d.Algorithm()
	}
	actual := alg.FromBytes(req.Body)
	if d != "" && actual != d {
		return Manifest{}, fmt.Errorf("%w: the manifest hashes to %s, not %s", store.ErrDigestMismatch, actual, d)
	}
	m, err := ParseManifest(req.Body, req.ContentType)
	if err != nil {
		return Manifest{}, err
	}
	m.Repository, m.Digest, m.Size, m.CreatedBy, m.CreatedAt = req.Repository, actual, int64(len(req.Body)), p.Name, s.now()
	if err := s.checkTagQuota(ctx, m, tags); err != nil {
		return Manifest{}, err
	}
	if err := s.checkManifestRefs(ctx, p, m); err != nil {
		return Manifest{}, err
	}
	if len(tags) == 0 {
		release, err := s.storeManifest(ctx, p, m, req.Body)
		if err != nil {
			return Manifest{}, err
		}
		defer release()
		if _, err := PutManifest(ctx, s.manifests, p.Actor(), m, TagChange{}); err != nil {
			return Manifest{}, err
		}
		s.importReferrerEvidence(ctx, p, m, req.Body)
		return m, nil
	}
	// One change per tag: each tag is an artifact of its own.
	results, err := s.tagManifest(ctx, p, m, req.Body, tags)
	for i, res := range results {
		tag := tags[i]
		// Referrers pushed before the tag carry evidence for it; pushing
		// the tag again retries what did not verify then.
		s.importTagEvidence(ctx, p, m.Repository, tag, m.Digest)
		s.importCosignTagsOf(ctx, p, m.Repository, tag, m.Digest)
		s.importCosignTagEvidence(ctx, p, m, tag, req.Body)
		if res.TagChanged {
			s.log.Info("manifest tagged", "repository", m.Repository, "tag", tag, "digest", m.Digest, "by", p.Name)
			if _, err := s.catalog.Evaluate(ctx, p.Actor(), m.Repository, tag); err != nil {
				s.log.Warn("admission evaluation after tag push failed", "name", m.Repository, "version", tag, "err", err)
			}
		}
	}
	if err != nil {
		return Manifest{}, err
	}
	s.importReferrerEvidence(ctx, p, m, req.Body)
	return m, nil
}

// checkTagQuota refuses, before the manifest is stored, tags that would
// create versions past a quota of the repository: each new tag is a
// version of the manifest's size (usage counts it so).
func (s *Service) checkTagQuota(ctx context.Context, m Manifest, tags []string) error {
	var created int64
	for _, t := range tags {
		_, err := s.catalogStore.GetArtifact(ctx, m.Repository, t)
		switch {
		case errors.Is(err, errdef.ErrNotFound):
			created++
		case err != nil:
			return err
		}
	}
	if created == 0 {
		return nil
	}
	_, err := s.quotas.CheckPush(ctx, m.Repository, created*m.Size, created, nil)
	return err
}

// storeManifest writes the manifest's bytes to the blob store (repairing
// a corrupt copy) and holds them against gc: call release once the
// manifest is recorded.
func (s *Service) storeManifest(ctx context.Context, p access.Principal, m Manifest, body []byte) (release func(), err error) {
	_, release, err = s.blobs.Ingest(ctx, p.Actor(), bytes.NewReader(body), store.IngestOptions{Digest: m.Digest, Size: m.Size})
	if err != nil {
		return nil, fmt.Errorf("storing manifest %s: %w", ociRef(m.Repository, m.Digest), err)
	}
	return release, nil
}

// tagManifest stores m and points each of tags at it. It holds the
// admission locks of all the tags (in order, so that two pushes cannot
// deadlock) while it decides whether every tag may move to m and until
// the tags are recorded: so no admission decided for an old manifest
// lands on the new one, and a push refused for any tag (an admitted or
// released artifact, another publisher's tag, a REST version) writes
// nothing, not even the manifest's bytes. It returns the results of the
// tags it pointed at m, in the order of tags, up to the first failure.
func (s *Service) tagManifest(ctx context.Context, p access.Principal, m Manifest, body []byte, tags []string) ([]ManifestPutResult, error) {
	locked := slices.Clone(tags)
	slices.Sort(locked)
	for _, tag := range slices.Compact(locked) {
		defer s.catalog.LockVersion(m.Repository, tag)()
	}
	for _, tag := range tags {
		if _, err := s.checkTagMove(ctx, p, m, tag); err != nil {
			return nil, err
		}
	}
	release, err := s.storeManifest(ctx, p, m, body)
	if err != nil {
		return nil, err
	}
	defer release()
	results := make([]ManifestPutResult, 0, len(tags))
	for _, tag := range tags {
		res, err := s.putTag(ctx, p, m, tag)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// putTag points tag at m, the tag's lock held. The compare-and-set fails
// only if another replica moved the tag between the check and the write;
// decide again then.
func (s *Service) putTag(ctx context.Context, p access.Principal, m Manifest, tag string) (ManifestPutResult, error) {
	for range 3 {
		cur, err := s.checkTagMove(ctx, p, m, tag)
		if err != nil {
			return ManifestPutResult{}, err
		}
		res, err := PutManifest(ctx, s.manifests, p.Actor(), m, TagChange{Tag: tag, Expect: cur, Guard: s.guard(p)})
		if errors.Is(err, errdef.ErrConflict) && !errors.Is(err, ErrImmutable) {
			continue
		}
		return res, err
	}
	return ManifestPutResult{}, fmt.Errorf("%w: tag %s:%s keeps moving; try again", errdef.ErrConflict, m.Repository, tag)
}

// checkTagMove refuses pointing tag at m when its artifact may not change
// (mayChangeArtifact), or when the version exists without a tag (pushed
// over REST) and holds other bytes; it returns where the tag points now
// ("" for nowhere).
func (s *Service) checkTagMove(ctx context.Context, p access.Principal, m Manifest, tag string) (digest.Digest, error) {
	cur, err := s.manifests.Tag(ctx, m.Repository, tag)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		a, err := s.catalogStore.GetArtifact(ctx, m.Repository, tag)
		if err == nil && a.Digest != m.Digest {
			return "", fmt.Errorf("%w: %s:%s holds %s, not %s", catalog.ErrVersionExists, m.Repository, tag, a.Digest, m.Digest)
		}
		if err != nil && !errors.Is(err, errdef.ErrNotFound) {
			return "", err
		}
		return "", nil
	case err != nil:
		return "", err
	}
	if cur.Digest != m.Digest {
		a, err := s.catalogStore.GetArtifact(ctx, m.Repository, tag)
		if err != nil {
			return "", err
		}
		if err := mayChangeArtifact(ctx, s.reads(), p, a); err != nil {
			return "", fmt.Errorf("tag %s:%s points at %s: %w", m.Repository, tag, cur.Digest, err)
		}
	}
	return cur.Digest, nil
}

// checkManifestRefs requires every reference of m (except external
// layers) to be in m's repository, pullable by p, and of the size its
// descriptor gives (store.ErrSizeMismatch, the spec's SIZE_INVALID); and
// the subject, when the repository holds it and p may pull it, to be of
// its descriptor's size too. A size is compared only once p may pull the
// thing, so a refusal reveals no size.
func (s *Service) checkManifestRefs(ctx context.Context, p access.Principal, m Manifest) error {
	seen := map[ManifestRef]bool{}
	for _, r := range m.Refs {
		if r.External || seen[r] {
			continue
		}
		seen[r] = true
		var (
			pushers []string
			size    int64
		)
		if r.Kind == RefManifest {
			child, err := s.manifests.Manifest(ctx, m.Repository, r.Digest)
			if errors.Is(err, errdef.ErrNotFound) {
				return fmt.Errorf("%w: manifest %s", ErrManifestBlobUnknown, r.Digest)
			}
			if err != nil {
				return err
			}
			pushers, size = []string{child.CreatedBy}, child.Size
		} else {
			links, err := s.links.BlobLinks(ctx, m.Repository, r.Digest)
			if err != nil {
				return err
			}
			if len(links) == 0 {
				return fmt.Errorf("%w: %s %s", ErrManifestBlobUnknown, r.Kind, r.Digest)
			}
			pushers, size = pushersOf(links), links[0].Size
		}
		if err := s.authorizeRegistryRead(ctx, p, m.Repository, r.Digest, pushers); err != nil {
			return fmt.Errorf("the manifest refers to %s: %w", r.Digest, err)
		}
		if r.Size != size {
			return fmt.Errorf("%w: the manifest gives %s %s a size of %d bytes; it is %d", store.ErrSizeMismatch, r.Kind, r.Digest, r.Size, size)
		}
	}
	if m.Subject == "" {
		return nil
	}
	subject, err := s.manifests.Manifest(ctx, m.Repository, m.Subject)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		return nil // a subject may come after its referrers
	case err != nil:
		return err
	}
	err = s.authorizeRegistryRead(ctx, p, m.Repository, m.Subject, []string{subject.CreatedBy})
	switch {
	case isDenial(err):
		return nil // not p's to know
	case err != nil:
		return err
	case subject.Size != m.subjectSize:
		return fmt.Errorf("%w: the manifest gives its subject %s a size of %d bytes; it is %d", store.ErrSizeMismatch, m.Subject, m.subjectSize, subject.Size)
	}
	return nil
}

// ManifestContent is a manifest ready to be served.
type ManifestContent struct {
	Manifest Manifest
	// Reader serves the manifest's bytes; close it when done.
	Reader *blobs.BlobReader
}

// OpenManifest resolves a tag or digest of repo, authorises p to pull it
// and opens its bytes (see OpenContent).
func (s *Service) OpenManifest(ctx context.Context, p access.Principal, repo, reference string) (ManifestContent, error) {
	if err := names.ValidateName(repo); err != nil {
		return ManifestContent{}, err
	}
	tag, d, err := parseReference(reference)
	if err != nil {
		return ManifestContent{}, err
	}
	if tag != "" {
		t, err := s.manifests.Tag(ctx, repo, tag)
		if errors.Is(err, errdef.ErrNotFound) {
			return ManifestContent{}, fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repo, tag)
		}
		if err != nil {
			return ManifestContent{}, err
		}
		d = t.Digest
	}
	m, err := s.manifests.Manifest(ctx, repo, d)
	if errors.Is(err, errdef.ErrNotFound) {
		return ManifestContent{}, fmt.Errorf("%w: %s", ErrManifestUnknown, ociRef(repo, d))
	}
	if err != nil {
		return ManifestContent{}, err
	}
	if err := s.authorizeRegistryRead(ctx, p, repo, d, []string{m.CreatedBy}); err != nil {
		return ManifestContent{}, err
	}
	r, err := s.blobs.Open(ctx, p.Actor(), m.Digest, m.Size)
	if err != nil {
		return ManifestContent{}, err
	}
	return ManifestContent{Manifest: m, Reader: r}, nil
}

// DeleteManifest deletes a tag (reference is a tag) or a manifest with
// every tag pointing at it (reference is a digest). Admitted content is
// refused, and so is content another publisher pushed, unless p is an
// admin.
func (s *Service) DeleteManifest(ctx context.Context, p access.Principal, repo, reference string) error {
	if err := canPush(p); err != nil {
		return err
	}
	if err := names.ValidateName(repo); err != nil {
		return err
	}
	tag, d, err := parseReference(reference)
	if err != nil {
		return err
	}
	if tag != "" {
		return s.deleteTag(ctx, p, repo, tag)
	}
	m, err := s.manifests.Manifest(ctx, repo, d)
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrManifestUnknown, ociRef(repo, d))
	}
	if err != nil {
		return err
	}
	if err := refuseIfAdmitted(ctx, s.reads(), repo, d); err != nil {
		return err
	}
	if !p.Has(access.RoleAdmin) && m.CreatedBy != p.Name {
		return fmt.Errorf("%w: %s was pushed by %s; only they or an admin may delete it", errdef.ErrDenied, ociRef(repo, d), m.CreatedBy)
	}
	tags, err := s.manifests.TagsPointingAt(ctx, repo, d)
	if err != nil {
		return err
	}
	// Hold the admission locks of the tags going away (in order, so two
	// deletes cannot deadlock), as a tag move does.
	for _, t := range tags {
		defer s.catalog.LockVersion(repo, t.Name)()
		a, err := s.catalogStore.GetArtifact(ctx, repo, t.Name)
		if err != nil {
			return err
		}
		if err := mayChangeArtifact(ctx, s.reads(), p, a); err != nil {
			return err
		}
	}
	deleted, err := DeleteManifest(ctx, s.manifests, p.Actor(), repo, d, s.guard(p))
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrManifestUnknown, ociRef(repo, d))
	}
	if err != nil {
		return err
	}
	s.log.Info("manifest deleted", "repository", repo, "digest", d, "tags", deleted, "by", p.Name)
	return nil
}

func (s *Service) deleteTag(ctx context.Context, p access.Principal, repo, tag string) error {
	unlock := s.catalog.LockVersion(repo, tag)
	defer unlock()
	t, err := s.manifests.Tag(ctx, repo, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repo, tag)
	}
	if err != nil {
		return err
	}
	a, err := s.catalogStore.GetArtifact(ctx, repo, tag)
	if err != nil {
		return err
	}
	if err := mayChangeArtifact(ctx, s.reads(), p, a); err != nil {
		return err
	}
	if err := DeleteTag(ctx, s.manifests, p.Actor(), repo, tag, t.Digest, s.guard(p)); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repo, tag)
		}
		return err
	}
	s.log.Info("tag deleted", "repository", repo, "tag", tag, "digest", t.Digest, "by", p.Name)
	return nil
}

// TagList is one page of a repository's tags.
type TagList struct {
	Tags []string
	// More is set when tags follow the last one listed.
	More bool
}

// Tags lists at most n tags of repo after last (n above MaxPageSize is
// MaxPageSize: the page then says More, and the client follows it). n is
// the spec's: 0 asks for an empty list, a negative n is
// ErrPaginationNumberInvalid; last must be a tag ("" starts at the
// beginning), or it is ErrTagInvalid.
func (s *Service) Tags(ctx context.Context, repo, last string, n int) (TagList, error) {
	if err := names.ValidateName(repo); err != nil {
		return TagList{}, err
	}
	if n < 0 {
		return TagList{}, fmt.Errorf("%w: n is %d; it must be a non-negative integer", ErrPaginationNumberInvalid, n)
	}
	if last != "" {
		if err := names.ValidateVersion(last); err != nil {
			return TagList{}, fmt.Errorf("%w: last: %w", ErrTagInvalid, err)
		}
	}
	n = min(n, names.MaxPageSize)
	known, err := s.manifests.RepositoryKnown(ctx, repo)
	if err != nil {
		return TagList{}, err
	}
	if !known {
		return TagList{}, fmt.Errorf("%w: %s", ErrNameUnknown, repo)
	}
	if n == 0 {
		return TagList{Tags: []string{}}, nil
	}
	tags, err := s.manifests.Tags(ctx, repo, last, n)
	if err != nil {
		return TagList{}, err
	}
	list := TagList{Tags: tags}
	if len(tags) == n {
		// A full page: say whether another follows.
		next, err := s.manifests.Tags(ctx, repo, tags[n-1], 1)
		if err != nil {
			return TagList{}, err
		}
		list.More = len(next) > 0
	}
	return list, nil
}

// Referrers lists the manifests of repo whose subject is subject, filtered
// by artifactType when it is set, that p may pull: a listing advertises
// nothing its reader would be refused (another publisher's unverified
// referrer is listed to its pusher, admins and auditors only). The
// subject need not exist.
func (s *Service) Referrers(ctx context.Context, p access.Principal, repo string, subject digest.Digest, artifactType string) ([]Manifest, error) {
	if err := names.ValidateName(repo); err != nil {
		return nil, err
	}
	if err := store.ValidateDigest(subject); err != nil {
		return nil, err
	}
	list, err := s.manifests.Referrers(ctx, repo, subject, artifactType)
	if err != nil {
		return nil, err
	}
	if p.Has(access.RoleAdmin, access.RoleAuditor) {
		return slices.Clip(list), nil
	}
	readable := list[:0]
	for _, m := range list {
		err := s.authorizeRegistryRead(ctx, p, repo, m.Digest, []string{m.CreatedBy})
		switch {
		case err == nil:
			readable = append(readable, m)
		case !isDenial(err):
			return nil, err
		}
	}
	return slices.Clip(readable), nil
}
