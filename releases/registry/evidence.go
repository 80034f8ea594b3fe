package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Evidence pushed the OCI way. cosign, and oras attach, put signatures and
// attestations beside an image as referrers: manifests whose subject is the
// image. When such a manifest is pushed into a repository, and whenever a
// tag is pushed onto a manifest that has referrers, the evidence they carry
// is added to the tag's artifact with AddEvidence — the REST API's own path:
// the same role check, trusted keys, verification, content-addressed
// storage and admission. Per layer of a referrer:
//
//   - a cosign image signature (`cosign sign --registry-referrers-mode=oci-1-1`:
//     config media type signing.CosignSignatureArtifactType, layers of
//     signing.CosignSimpleSigningMediaType): the layer blob is the
//     simple-signing payload and its signing.CosignSignatureAnnotation the
//     signature; signing.CosignOCISignatureEvidence makes them one piece of
//     evidence, a signature;
//   - a DSSE envelope (signing.CosignDSSEMediaType, as cosign's referrer
//     layout for attestations and `oras attach` carry it): the blob is the
//     evidence, an attestation;
//   - either of them signed keylessly by cosign v2 (the layer carries a
//     signing.CosignCertificateAnnotation, with the chain, Rekor bundle and
//     RFC 3161 timestamp annotations): signing.CosignOCIKeylessEvidence
//     makes the blob and its annotations one piece of keyless evidence, a
//     signature or an attestation, verified against the trusted roots and
//     identities. Should it be refused, the layer is tried once more as
//     keyed evidence, which is what it was before keyless evidence counted:
//     `cosign sign --key --certificate` attaches a certificate too;
//   - a Sigstore bundle (`cosign attest|sign --new-bundle-format`, keyed or
//     keyless): the blob is the evidence, a signature or an attestation as
//     it verifies.
//
// Other layers are ignored. Evidence that does not verify (an untrusted
// key, a bad signature, another subject) counts for nothing and stores
// nothing, but the push succeeds — a registry stores any referrer — and
// the refusal is logged at warn level. Evidence already recorded for the
// artifact is skipped before it is verified again, so pushing a referrer
// or a tag twice changes nothing.

// MaxSimpleSigningPayload bounds the cosign simple-signing payload read
// from a signature layer. cosign's are a few hundred bytes; annotations
// given with `cosign sign -a` make them a little longer.
const MaxSimpleSigningPayload = 64 << 10

// maxReferrersImported bounds the referrers of one manifest looked at when
// a tag is pushed onto it.
const maxReferrersImported = 1000

// referrerEvidence is one piece of evidence found in a referrer.
type referrerEvidence struct {
	// layer is the layer it came from (for the log).
	layer digest.Digest
	// kind is what it must verify as; "" accepts either (a bundle).
	kind catalog.EvidenceKind
	body []byte
	// keyed is the keyed reading of a keyless cosign layer, tried if body
	// is refused; nil otherwise.
	keyed []byte
}

// referrerManifest is what is read of a referrer: its artifact type, the
// config's media type (cosign's signature artifact type lives there) and
// the layers with their annotations.
type referrerManifest struct {
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
}

// importReferrerEvidence adds the evidence of referrer m (body: its bytes),
// just pushed by p, to every tag of m's repository that points at m's
// subject, and marks m verified when all of it counts. Nothing it finds
// fails the push; see the rules above.
func (s *Service) importReferrerEvidence(ctx context.Context, p access.Principal, m Manifest, body []byte) {
	if m.Subject == "" {
		return
	}
	ctx = context.WithoutCancel(ctx) // the manifest is stored: finish the import
	layers, recorded := s.importSubjectEvidence(ctx, p, m, body)
	s.markIfVerified(ctx, p, m, layers, recorded)
}

// importSubjectEvidence adds the evidence of m to every tag pointing at
// m.Subject and returns m's layers and those whose evidence is recorded.
func (s *Service) importSubjectEvidence(ctx context.Context, p access.Principal, m Manifest, body []byte) ([]digest.Digest, map[digest.Digest]bool) {
	tags, err := s.manifests.TagsPointingAt(ctx, m.Repository, m.Subject)
	if err != nil {
		s.log.Warn("referrer evidence: listing the subject's tags failed", "repository", m.Repository, "referrer", m.Digest, "subject", m.Subject, "err", err)
		return nil, nil
	}
	if len(tags) == 0 {
		return nil, nil // imported when a tag comes to point at the subject
	}
	evidence, layers := s.referrerEvidence(ctx, m, body)
	recorded := map[digest.Digest]bool{}
	for _, t := range tags {
		for l := range s.addReferrerEvidence(ctx, p, m, t.Name, evidence) {
			recorded[l] = true
		}
	}
	return layers, recorded
}

// markIfVerified marks referrer m verified when every one of its layers
// carried evidence now recorded for a tag of its subject: it is then
// served, with those layers, to whoever may pull the subject, and becomes
// immutable with it. A referrer with any other layer (an SBOM, a copy of
// a real signature next to something else) stays its pusher's: evidence
// vouches for the layers that hold it, not for what travels beside them.
func (s *Service) markIfVerified(ctx context.Context, p access.Principal, m Manifest, layers []digest.Digest, recorded map[digest.Digest]bool) {
	if m.Subject == "" || m.Verified || len(layers) == 0 {
		return
	}
	for _, l := range layers {
		if !recorded[l] {
			return
		}
	}
	if err := s.manifests.MarkReferrerVerified(ctx, p.Actor(), m.Repository, m.Digest); err != nil {
		s.log.Warn("referrer evidence: marking the referrer verified failed", "repository", m.Repository, "referrer", m.Digest, "err", err)
		return
	}
	s.log.Info("referrer verified", "repository", m.Repository, "referrer", m.Digest, "subject", m.Subject)
}

// importTagEvidence adds the evidence of the referrers of d, the manifest
// tag points at, to the tag's artifact: a tag pushed onto an image signed
// (by digest) beforehand.
func (s *Service) importTagEvidence(ctx context.Context, p access.Principal, repo, tag string, d digest.Digest) {
	ctx = context.WithoutCancel(ctx)
	refs, err := s.manifests.Referrers(ctx, repo, d, "")
	if err != nil {
		s.log.Warn("referrer evidence: listing referrers failed", "repository", repo, "tag", tag, "digest", d, "err", err)
		return
	}
	if len(refs) > maxReferrersImported {
		s.log.Warn("referrer evidence: too many referrers; only the first are imported", "repository", repo, "tag", tag, "digest", d, "referrers", len(refs), "imported", maxReferrersImported)
		refs = refs[:maxReferrersImported]
	}
	for _, m := range refs {
		body, err := s.readBlob(ctx, m.Digest, MaxManifestSize)
		if err != nil {
			s.log.Warn("referrer evidence: reading a referrer failed", "repository", repo, "referrer", m.Digest, "err", err)
			continue
		}
		evidence, layers := s.referrerEvidence(ctx, m, body)
		s.markIfVerified(ctx, p, m, layers, s.addReferrerEvidence(ctx, p, m, tag, evidence))
	}
}

// referrerEvidence reads the evidence referrer m carries, layer by layer,
// and returns it with the digests of all of m's layers. Layers that cannot
// be read are logged and left out of the evidence.
func (s *Service) referrerEvidence(ctx context.Context, m Manifest, body []byte) (evidence []referrerEvidence, layers []digest.Digest) {
	var doc referrerManifest
	if err := json.Unmarshal(body, &doc); err != nil {
		// PushManifest parsed it already; this is corruption.
		s.log.Warn("referrer evidence: unreadable referrer", "repository", m.Repository, "referrer", m.Digest, "err", err)
		return nil, nil
	}
	cosignSig := doc.ArtifactType == signing.CosignSignatureArtifactType ||
		(doc.Config != nil && doc.Config.MediaType == signing.CosignSignatureArtifactType)
	for _, l := range doc.Layers {
		layers = append(layers, l.Digest)
		ev, ok, err := s.layerEvidence(ctx, l, cosignSig)
		switch {
		case err != nil:
			s.log.Warn("referrer evidence does not count", "repository", m.Repository, "referrer", m.Digest, "layer", l.Digest, "mediaType", l.MediaType, "err", err)
		case ok:
			evidence = append(evidence, ev)
		}
	}
	return evidence, layers
}

// layerEvidence makes the evidence of one referrer layer; ok is false for
// a layer that carries none. cosignSig says the referrer is a cosign
// signature artifact.
func (s *Service) layerEvidence(ctx context.Context, l ocispec.Descriptor, cosignSig bool) (ev referrerEvidence, ok bool, err error) {
	ev.layer = l.Digest
	switch {
	case l.MediaType == signing.CosignSimpleSigningMediaType || (cosignSig && l.Annotations[signing.CosignSignatureAnnotation] != ""):
		sig := l.Annotations[signing.CosignSignatureAnnotation]
		if sig == "" {
			return ev, false, fmt.Errorf("%w: a cosign signature layer without the %s annotation", errdef.ErrInvalidInput, signing.CosignSignatureAnnotation)
		}
		payload, err := s.readLayer(ctx, l, MaxSimpleSigningPayload)
		if err != nil {
			return ev, false, err
		}
		ev.kind = catalog.EvidenceSignature
		keyed, keyedErr := signing.CosignOCISignatureEvidence(payload, sig)
		if !signing.IsCosignOCIKeyless(l.Annotations) {
			ev.body = keyed
			return ev, keyedErr == nil, keyedErr
		}
		if ev.body, err = signing.CosignOCIKeylessEvidence(signing.CosignSimpleSigningMediaType, payload, l.Annotations); err != nil {
			return ev, false, err
		}
		ev.keyed = keyed
	case l.MediaType == signing.CosignDSSEMediaType:
		blob, err := s.readLayer(ctx, l, catalog.MaxEvidenceSize)
		if err != nil {
			return ev, false, err
		}
		ev.kind, ev.body = catalog.EvidenceAttestation, blob
		if signing.IsCosignOCIKeyless(l.Annotations) {
			if ev.body, err = signing.CosignOCIKeylessEvidence(signing.CosignDSSEMediaType, blob, l.Annotations); err != nil {
				return ev, false, err
			}
			ev.keyed = blob
		}
	case strings.HasPrefix(l.MediaType, "application/vnd.dev.sigstore.bundle"):
		if ev.body, err = s.readLayer(ctx, l, catalog.MaxEvidenceSize); err != nil {
			return ev, false, err
		}
	default:
		return ev, false, nil
	}
	return ev, true, nil
}

// readLayer reads a layer blob of at most limit bytes.
func (s *Service) readLayer(ctx context.Context, l ocispec.Descriptor, limit int64) ([]byte, error) {
	if l.Size > limit {
		return nil, fmt.Errorf("%w: layer %s is %d bytes; evidence layers are read up to %d", store.ErrTooLarge, l.Digest, l.Size, limit)
	}
	data, err := s.readBlob(ctx, l.Digest, limit)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != l.Size {
		return nil, fmt.Errorf("%w: layer %s is %d bytes, not %d as its descriptor says", ErrManifestInvalid, l.Digest, len(data), l.Size)
	}
	return data, nil
}

// readBlob reads a whole blob of at most limit bytes, verified: the
// server reads it on its own account (serverActor marks it if it is
// corrupt).
func (s *Service) readBlob(ctx context.Context, d digest.Digest, limit int64) ([]byte, error) {
	return s.blobs.ReadVerified(ctx, access.ServerActor, d, limit)
}

// addReferrerEvidence adds each piece of evidence of referrer m to the
// artifact repo:tag through AddEvidence, skipping what the artifact has,
// and returns the layers whose evidence the artifact now holds.
func (s *Service) addReferrerEvidence(ctx context.Context, p access.Principal, m Manifest, tag string, evidence []referrerEvidence) map[digest.Digest]bool {
	recorded := map[digest.Digest]bool{}
	if len(evidence) == 0 {
		return recorded
	}
	known, err := s.catalogStore.ListEvidence(ctx, m.Repository, tag)
	if err != nil {
		s.log.Warn("referrer evidence: listing the artifact's evidence failed", "name", m.Repository, "version", tag, "err", err)
		return recorded
	}
	have := make(map[digest.Digest]bool, len(known))
	for _, e := range known {
		have[e.Digest] = true
	}
	for _, ev := range evidence {
		if ev.keyed != nil && have[signing.EvidenceDigest(ev.keyed)] {
			recorded[ev.layer] = true // counted as keyed before
			continue
		}
		err := s.addLayerEvidence(ctx, p, m, tag, ev.layer, ev.kind, ev.body, have)
		if err != nil && ev.keyed != nil && signing.ReasonOf(err) != "" {
			// A keyless layer refused: it may be signed with a trusted key.
			err = s.addLayerEvidence(ctx, p, m, tag, ev.layer, ev.kind, ev.keyed, have)
		}
		if err == nil {
			recorded[ev.layer] = true
		}
	}
	return recorded
}

// addLayerEvidence adds body, the evidence of one layer of referrer m, to
// the artifact repo:tag unless have holds its digest, and records it in
// have. A refusal is logged and returned.
func (s *Service) addLayerEvidence(ctx context.Context, p access.Principal, m Manifest, tag string, layer digest.Digest, kind catalog.EvidenceKind, body []byte, have map[digest.Digest]bool) error {
	d := signing.EvidenceDigest(body)
	if have[d] {
		return nil
	}
	e, _, err := s.catalog.AddEvidence(ctx, p, catalog.EvidenceRequest{Name: m.Repository, Version: tag, Kind: kind, Body: body})
	if err != nil {
		s.log.Warn("referrer evidence does not count", "name", m.Repository, "version", tag, "referrer", m.Digest, "layer", layer,
			"reason", evidenceRefusal(err), "err", err)
		return err
	}
	have[d] = true
	s.log.Info("referrer evidence added", "name", m.Repository, "version", tag, "referrer", m.Digest, "layer", layer,
		"kind", e.Kind, "format", e.Format, "key", e.KeyID, "digest", e.Digest)
	return nil
}

// evidenceRefusal names why evidence was refused, for the log.
func evidenceRefusal(err error) string {
	if r := signing.ReasonOf(err); r != "" {
		return string(r)
	}
	if errors.Is(err, catalog.ErrWrongEvidenceKind) {
		return "wrong_kind"
	}
	if errors.Is(err, catalog.ErrEvidenceReplayed) {
		return "replayed"
	}
	return "error"
}

// cosign's tag-based layout, which `cosign attest` (and `cosign sign`
// without --registry-referrers-mode=oci-1-1) still uses: the signatures or
// attestations of image sha256:HEX are a manifest tagged sha256-HEX.sig or
// sha256-HEX.att in the image's repository, with no subject. Such a
// manifest counts as a referrer of that image.
var cosignTagRE = regexp.MustCompile(`^sha256-([0-9a-f]{64})\.(sig|att)$`)

// cosignTagSubject returns the image a cosign tag is about.
func cosignTagSubject(tag string) (digest.Digest, bool) {
	m := cosignTagRE.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	return digest.NewDigestFromEncoded(digest.SHA256, m[1]), true
}

// importCosignTagEvidence imports the evidence of manifest m (body: its
// bytes), just pushed under cosign tag, into the image's tags.
func (s *Service) importCosignTagEvidence(ctx context.Context, p access.Principal, m Manifest, tag string, body []byte) {
	subject, ok := cosignTagSubject(tag)
	if !ok || m.Subject != "" {
		return
	}
	// Imported, never marked verified: a cosign tag has no subject in the
	// registry, so it is reached through its own tag only.
	m.Subject = subject
	s.importSubjectEvidence(context.WithoutCancel(ctx), p, m, body)
}

// importCosignTagsOf imports, into tag (pointing at d), the evidence of
// d's cosign tags pushed before it.
func (s *Service) importCosignTagsOf(ctx context.Context, p access.Principal, repo, tag string, d digest.Digest) {
	if d.Algorithm() != digest.SHA256 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, suffix := range []string{".sig", ".att"} {
		t, err := s.manifests.Tag(ctx, repo, "sha256-"+d.Encoded()+suffix)
		if err != nil {
			continue // none (or unreadable: the next push retries)
		}
		m, err := s.manifests.Manifest(ctx, repo, t.Digest)
		if err != nil {
			continue
		}
		body, err := s.readBlob(ctx, m.Digest, MaxManifestSize)
		if err != nil {
			s.log.Warn("referrer evidence: reading a cosign tag failed", "repository", repo, "tag", t.Name, "err", err)
			continue
		}
		m.Subject = d
		evidence, _ := s.referrerEvidence(ctx, m, body)
		s.addReferrerEvidence(ctx, p, m, tag, evidence)
	}
}
