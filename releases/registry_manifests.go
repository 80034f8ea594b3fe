package releases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"slices"

	"github.com/dmlproject/dml/internal/strictjson"
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
	ct := contentType
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		ct = mt
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
		m.Refs = append(m.Refs, ManifestRef{Kind: RefConfig, Digest: doc.Config.Digest})
		for i, l := range doc.Layers {
			if err := checkDescriptor(fmt.Sprintf("layer %d", i), l); err != nil {
				return Manifest{}, err
			}
			m.Refs = append(m.Refs, ManifestRef{Kind: RefLayer, Digest: l.Digest, External: len(l.URLs) > 0})
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
			m.Refs = append(m.Refs, ManifestRef{Kind: RefManifest, Digest: c.Digest})
		}
	}
	if doc.Subject != nil {
		if err := checkDescriptor("subject", *doc.Subject); err != nil {
			return Manifest{}, err
		}
		m.Subject = doc.Subject.Digest
	}
	return m, nil
}

func checkDescriptor(what string, d ocispec.Descriptor) error {
	if err := store.ValidateDigest(d.Digest); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrManifestInvalid, what, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: %s: negative size", ErrManifestInvalid, what)
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
func (s *Service) PushManifest(ctx context.Context, p Principal, req PushManifestRequest) (Manifest, error) {
	reg, err := s.reg()
	if err != nil {
		return Manifest{}, err
	}
	if err := canPush(p); err != nil {
		return Manifest{}, err
	}
	if err := ValidateName(req.Repository); err != nil {
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
		if err := ValidateVersion(t); err != nil {
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
	if err := s.checkManifestRefs(ctx, reg, p, m); err != nil {
		return Manifest{}, err
	}
	if _, err := s.blobs.Ingest(ctx, bytes.NewReader(req.Body), store.IngestOptions{Digest: m.Digest, Size: m.Size}); err != nil {
		return Manifest{}, fmt.Errorf("storing manifest %s: %w", ociRef(m.Repository, m.Digest), err)
	}
	if len(tags) == 0 {
		if _, err := reg.PutManifest(ctx, p.Actor(), m, TagChange{}); err != nil {
			return Manifest{}, err
		}
		s.importReferrerEvidence(ctx, reg, p, m, req.Body)
		return m, nil
	}
	// One change per tag: each tag is an artifact of its own.
	for _, tag := range tags {
		res, err := s.tagManifest(ctx, reg, p, m, tag)
		if err != nil {
			return Manifest{}, err
		}
		// Referrers pushed before the tag carry evidence for it; pushing
		// the tag again retries what did not verify then.
		s.importTagEvidence(ctx, reg, p, m.Repository, tag, m.Digest)
		s.importCosignTagsOf(ctx, reg, p, m.Repository, tag, m.Digest)
		s.importCosignTagEvidence(ctx, reg, p, m, tag, req.Body)
		if res.TagChanged {
			s.log.Info("manifest tagged", "repository", m.Repository, "tag", tag, "digest", m.Digest, "by", p.Name)
			if _, err := s.evaluate(ctx, p.Actor(), m.Repository, tag); err != nil {
				s.log.Warn("admission evaluation after tag push failed", "name", m.Repository, "version", tag, "err", err)
			}
		}
	}
	s.importReferrerEvidence(ctx, reg, p, m, req.Body)
	return m, nil
}

// tagManifest stores m and points tag at it, deciding about a tag that
// moves under the artifact's admission lock, so that no admission decided
// for the old manifest lands on the new one.
func (s *Service) tagManifest(ctx context.Context, reg RegistryStore, p Principal, m Manifest, tag string) (ManifestPutResult, error) {
	unlock := s.admitting.Lock(m.Repository + ":" + tag)
	defer unlock()
	// The compare-and-set fails only if another replica moved the tag
	// between the read and the write; decide again then.
	for range 3 {
		cur, err := reg.Tag(ctx, m.Repository, tag)
		switch {
		case errors.Is(err, ErrNotFound):
			cur = Tag{}
		case err != nil:
			return ManifestPutResult{}, err
		}
		if cur.Digest != "" && cur.Digest != m.Digest {
			a, err := s.meta.GetArtifact(ctx, m.Repository, tag)
			if err != nil {
				return ManifestPutResult{}, err
			}
			if err := s.mayChangeArtifact(ctx, p, a); err != nil {
				return ManifestPutResult{}, fmt.Errorf("tag %s:%s points at %s: %w", m.Repository, tag, cur.Digest, err)
			}
		}
		res, err := reg.PutManifest(ctx, p.Actor(), m, TagChange{Tag: tag, Expect: cur.Digest})
		if errors.Is(err, ErrConflict) && !errors.Is(err, ErrImmutable) {
			continue
		}
		return res, err
	}
	return ManifestPutResult{}, fmt.Errorf("%w: tag %s:%s keeps moving; try again", ErrConflict, m.Repository, tag)
}

// checkManifestRefs requires every reference of m (except external
// layers) to be in m's repository and pullable by p.
func (s *Service) checkManifestRefs(ctx context.Context, reg RegistryStore, p Principal, m Manifest) error {
	seen := map[digest.Digest]bool{}
	for _, r := range m.Refs {
		if r.External || seen[r.Digest] {
			continue
		}
		seen[r.Digest] = true
		var pushers []string
		if r.Kind == RefManifest {
			child, err := reg.Manifest(ctx, m.Repository, r.Digest)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%w: manifest %s", ErrManifestBlobUnknown, r.Digest)
			}
			if err != nil {
				return err
			}
			pushers = []string{child.CreatedBy}
		} else {
			links, err := reg.BlobLinks(ctx, m.Repository, r.Digest)
			if err != nil {
				return err
			}
			if len(links) == 0 {
				return fmt.Errorf("%w: %s %s", ErrManifestBlobUnknown, r.Kind, r.Digest)
			}
			pushers = pushersOf(links)
		}
		if err := s.authorizeRegistryRead(ctx, reg, p, m.Repository, r.Digest, pushers); err != nil {
			return fmt.Errorf("the manifest refers to %s: %w", r.Digest, err)
		}
	}
	return nil
}

// ManifestContent is a manifest ready to be served.
type ManifestContent struct {
	Manifest Manifest
	// Reader serves the manifest's bytes; close it when done.
	Reader *store.ReadSeeker
}

// OpenManifest resolves a tag or digest of repo, authorises p to pull it
// and opens its bytes lazily.
func (s *Service) OpenManifest(ctx context.Context, p Principal, repo, reference string) (ManifestContent, error) {
	reg, err := s.reg()
	if err != nil {
		return ManifestContent{}, err
	}
	if err := ValidateName(repo); err != nil {
		return ManifestContent{}, err
	}
	tag, d, err := parseReference(reference)
	if err != nil {
		return ManifestContent{}, err
	}
	if tag != "" {
		t, err := reg.Tag(ctx, repo, tag)
		if errors.Is(err, ErrNotFound) {
			return ManifestContent{}, fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repo, tag)
		}
		if err != nil {
			return ManifestContent{}, err
		}
		d = t.Digest
	}
	m, err := reg.Manifest(ctx, repo, d)
	if errors.Is(err, ErrNotFound) {
		return ManifestContent{}, fmt.Errorf("%w: %s", ErrManifestUnknown, ociRef(repo, d))
	}
	if err != nil {
		return ManifestContent{}, err
	}
	if err := s.authorizeRegistryRead(ctx, reg, p, repo, d, []string{m.CreatedBy}); err != nil {
		return ManifestContent{}, err
	}
	return ManifestContent{Manifest: m, Reader: s.blobs.ReadSeeker(ctx, m.Digest, m.Size)}, nil
}

// DeleteManifest deletes a tag (reference is a tag) or a manifest with
// every tag pointing at it (reference is a digest). Admitted content is
// refused, and so is content another publisher pushed, unless p is an
// admin.
func (s *Service) DeleteManifest(ctx context.Context, p Principal, repo, reference string) error {
	reg, err := s.reg()
	if err != nil {
		return err
	}
	if err := canPush(p); err != nil {
		return err
	}
	if err := ValidateName(repo); err != nil {
		return err
	}
	tag, d, err := parseReference(reference)
	if err != nil {
		return err
	}
	if tag != "" {
		return s.deleteTag(ctx, reg, p, repo, tag)
	}
	m, err := reg.Manifest(ctx, repo, d)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrManifestUnknown, ociRef(repo, d))
	}
	if err != nil {
		return err
	}
	if err := s.refuseIfAdmitted(ctx, reg, repo, d); err != nil {
		return err
	}
	if !p.Has(RoleAdmin) && m.CreatedBy != p.Name {
		return fmt.Errorf("%w: %s was pushed by %s; only they or an admin may delete it", ErrDenied, ociRef(repo, d), m.CreatedBy)
	}
	tags, err := reg.TagsPointingAt(ctx, repo, d)
	if err != nil {
		return err
	}
	// Hold the admission locks of the tags going away (in order, so two
	// deletes cannot deadlock), as a tag move does.
	for _, t := range tags {
		defer s.admitting.Lock(repo + ":" + t.Name)()
		a, err := s.meta.GetArtifact(ctx, repo, t.Name)
		if err != nil {
			return err
		}
		if err := s.mayChangeArtifact(ctx, p, a); err != nil {
			return err
		}
	}
	deleted, err := reg.DeleteManifest(ctx, p.Actor(), repo, d)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrManifestUnknown, ociRef(repo, d))
	}
	if err != nil {
		return err
	}
	s.log.Info("manifest deleted", "repository", repo, "digest", d, "tags", deleted, "by", p.Name)
	return nil
}

func (s *Service) deleteTag(ctx context.Context, reg RegistryStore, p Principal, repo, tag string) error {
	unlock := s.admitting.Lock(repo + ":" + tag)
	defer unlock()
	t, err := reg.Tag(ctx, repo, tag)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repo, tag)
	}
	if err != nil {
		return err
	}
	a, err := s.meta.GetArtifact(ctx, repo, tag)
	if err != nil {
		return err
	}
	if err := s.mayChangeArtifact(ctx, p, a); err != nil {
		return err
	}
	if err := reg.DeleteTag(ctx, p.Actor(), repo, tag, t.Digest); err != nil {
		if errors.Is(err, ErrNotFound) {
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

// Tags lists the tags of repo after last, at most n (0: MaxPageSize).
func (s *Service) Tags(ctx context.Context, repo, last string, n int) (TagList, error) {
	reg, err := s.reg()
	if err != nil {
		return TagList{}, err
	}
	if err := ValidateName(repo); err != nil {
		return TagList{}, err
	}
	if n < 0 || n > MaxPageSize {
		return TagList{}, fmt.Errorf("%w: n must be between 1 and %d", ErrInvalidInput, MaxPageSize)
	}
	if n == 0 {
		n = MaxPageSize
	}
	known, err := reg.RepositoryKnown(ctx, repo)
	if err != nil {
		return TagList{}, err
	}
	if !known {
		return TagList{}, fmt.Errorf("%w: %s", ErrNameUnknown, repo)
	}
	tags, err := reg.Tags(ctx, repo, last, n)
	if err != nil {
		return TagList{}, err
	}
	list := TagList{Tags: tags}
	if len(tags) == n {
		// A full page: say whether another follows.
		next, err := reg.Tags(ctx, repo, tags[n-1], 1)
		if err != nil {
			return TagList{}, err
		}
		list.More = len(next) > 0
	}
	return list, nil
}

// Referrers lists the manifests of repo whose subject is subject, filtered
// by artifactType when it is set. The subject need not exist.
func (s *Service) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]Manifest, error) {
	reg, err := s.reg()
	if err != nil {
		return nil, err
	}
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	if err := store.ValidateDigest(subject); err != nil {
		return nil, err
	}
	list, err := reg.Referrers(ctx, repo, subject, artifactType)
	if err != nil {
		return nil, err
	}
	return slices.Clip(list), nil
}
