package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
)

// The image, its signature and its attestation as the real cosign v2.6.2
// pushed them (testdata/cosign-oci), signed with testdata/cosign/cosign.key.
const (
	imageRepo   = "payments/api"
	imageDigest = digest.Digest("sha256:83821f6877f98621c3eb3add77bfd52de7267ef4ba0b8454fa3d641e6da9e2bc")
	testResult  = domaintest.TestResult
)

// logRecorder keeps the records logged at warn level and above.
type logRecorder struct {
	mu      sync.Mutex
	records []string
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *logRecorder) WithGroup(string) slog.Handler                { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, b.String())
	return nil
}

func (r *logRecorder) warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

// evidenceEnv is a service with the trusted key "ci", ciPolicy and a
// publisher, its warnings recorded.
type evidenceEnv struct {
	t     *testing.T
	ctx   context.Context
	env   *domaintest.Env
	svc   *releases.DML
	meta  *sqlstore.DB
	pub   access.Principal
	admin access.Principal
	logs  *logRecorder
}

func newEvidenceEnv(t *testing.T) *evidenceEnv {
	t.Helper()
	logs := &logRecorder{}
	env := domaintest.NewEnv(t, func(c *releases.Config) { c.Logger = slog.New(logs) })
	env.TrustCI()
	return &evidenceEnv{t: t, ctx: env.Ctx, env: env, svc: env.DML, meta: env.Meta, pub: env.Principal("pipeline", nil, access.RolePublisher), admin: env.Admin, logs: logs}
}

// principal issues a token and returns its principal.
func (e *evidenceEnv) principal(name string, envs []string, roles ...access.Role) access.Principal {
	e.t.Helper()
	return e.env.Principal(name, envs, roles...)
}

// as returns the env acting as publisher p.
func (e *evidenceEnv) as(p access.Principal) *evidenceEnv {
	c := *e
	c.pub = p
	return &c
}

// blob pushes data into repo and returns its descriptor.
func (e *evidenceEnv) blob(repo string, data []byte, mediaType string) ocispec.Descriptor {
	e.t.Helper()
	d := digest.FromBytes(data)
	if _, err := e.svc.Registry.PushBlob(e.ctx, e.pub, repo, d, bytes.NewReader(data), int64(len(data))); err != nil {
		e.t.Fatalf("push blob %s: %v", d, err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// manifest pushes a manifest under ref (a tag or its digest).
func (e *evidenceEnv) manifest(repo, ref string, body []byte) registry.Manifest {
	e.t.Helper()
	m, err := e.svc.Registry.PushManifest(e.ctx, e.pub, registry.PushManifestRequest{Repository: repo, Reference: ref, ContentType: ocispec.MediaTypeImageManifest, Body: body})
	if err != nil {
		e.t.Fatalf("push manifest %s:%s: %v", repo, ref, err)
	}
	return m
}

// realImage pushes the image cosign signed, under tag ("" for by digest).
func (e *evidenceEnv) realImage(repo, tag string) {
	e.t.Helper()
	e.blob(repo, domaintest.Fixture(e.t, "cosign-oci/image-config.json"), ocispec.MediaTypeImageConfig)
	e.blob(repo, domaintest.Fixture(e.t, "cosign-oci/image-layer.tar"), ocispec.MediaTypeImageLayer)
	if tag == "" {
		tag = imageDigest.String()
	}
	e.manifest(repo, tag, domaintest.Fixture(e.t, "cosign-oci/image-manifest.json"))
}

// realReferrer pushes one of the referrers the real cosign pushed, with
// its blobs: "signature" or "bundle-attestation".
func (e *evidenceEnv) realReferrer(repo, which string) {
	e.t.Helper()
	switch which {
	case "signature":
		e.blob(repo, domaintest.Fixture(e.t, "cosign-oci/signature-config.json"), signing.CosignSignatureArtifactType)
		e.blob(repo, domaintest.Fixture(e.t, "cosign-oci/signature-payload.json"), signing.CosignSimpleSigningMediaType)
	case "bundle-attestation":
		e.blob(repo, domaintest.Fixture(e.t, "cosign-oci/empty-config.json"), ocispec.MediaTypeEmptyJSON)
		e.blob(repo, domaintest.Fixture(e.t, "cosign-oci/bundle-attestation.sigstore.json"), catalog.MediaTypeBundle)
	default:
		e.t.Fatalf("no fixture referrer %q", which)
	}
	body := domaintest.Fixture(e.t, "cosign-oci/"+which+"-manifest.json")
	e.manifest(repo, digest.FromBytes(body).String(), body)
}

// realAttTag pushes what the real `cosign attest` pushed: a manifest
// without a subject, tagged sha256-HEX.att after the image it is about.
func (e *evidenceEnv) realAttTag(repo string) {
	e.t.Helper()
	e.blob(repo, domaintest.Fixture(e.t, "cosign-oci/attestation-config.json"), ocispec.MediaTypeImageConfig)
	e.blob(repo, domaintest.Fixture(e.t, "cosign-oci/attestation.dsse.json"), signing.CosignDSSEMediaType)
	e.manifest(repo, "sha256-"+imageDigest.Encoded()+".att", domaintest.Fixture(e.t, "cosign-oci/attestation-manifest.json"))
}

// referrer pushes a referrer of subject laid out as cosign lays out its
// own (an empty config whose artifactType is the manifest's, the given
// layers) and returns its digest.
func (e *evidenceEnv) referrer(repo string, subject digest.Digest, artifactType string, layers ...ocispec.Descriptor) digest.Digest {
	e.t.Helper()
	cfg := e.blob(repo, []byte("{}"), ocispec.MediaTypeEmptyJSON)
	cfg.ArtifactType = artifactType
	body, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       cfg,
		Layers:       layers,
		Subject:      &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: 397},
		Annotations:  map[string]string{"org.opencontainers.image.created": "2026-11-25T19:06:24Z"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.manifest(repo, digest.FromBytes(body).String(), body).Digest
}

// signatureLayer pushes a cosign simple-signing payload naming signed and
// returns its layer, signed by sv.
func (e *evidenceEnv) signatureLayer(repo string, sv signature.Signer, signed digest.Digest) ocispec.Descriptor {
	e.t.Helper()
	payload := []byte(`{"critical":{"identity":{"docker-reference":"127.0.0.1/` + repo + `"},"image":{"docker-manifest-digest":"` +
		signed.String() + `"},"type":"cosign container image signature"},"optional":null}`)
	sig, err := signing.SignBlobCosign(sv, bytes.NewReader(payload))
	if err != nil {
		e.t.Fatal(err)
	}
	l := e.blob(repo, payload, signing.CosignSimpleSigningMediaType)
	l.Annotations = map[string]string{signing.CosignSignatureAnnotation: sig}
	return l
}

// attestationLayer pushes a test-result DSSE envelope about subject,
// signed by sv, as a layer.
func (e *evidenceEnv) attestationLayer(repo string, sv signature.Signer, subject digest.Digest) ocispec.Descriptor {
	e.t.Helper()
	env, err := signing.AttestBlob(sv, repo, subject, testResult, domaintest.Fixture(e.t, "cosign/test-result-passed.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.blob(repo, env, signing.CosignDSSEMediaType)
}

func (e *evidenceEnv) evidence(repo, tag string) []catalog.Evidence {
	e.t.Helper()
	list, err := e.svc.Catalog.ListEvidence(e.ctx, repo, tag)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func (e *evidenceEnv) state(repo, tag string) catalog.ArtifactState {
	e.t.Helper()
	a, err := e.svc.Catalog.Artifact(e.ctx, repo, tag)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.State
}

func (e *evidenceEnv) eventCount() int {
	e.t.Helper()
	events, err := e.meta.Audit().Events(e.ctx, 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(events)
}

func ciSigner(t *testing.T) signature.SignerVerifier {
	t.Helper()
	sv, err := signing.LoadCosignPrivateKey(domaintest.Fixture(t, "cosign/cosign.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

// evidenceSummary is what a test expects of one piece of evidence.
type evidenceSummary struct {
	Kind          catalog.EvidenceKind
	Format        string
	KeyID         string
	PredicateType string
}

func summarize(list []catalog.Evidence) []evidenceSummary {
	out := make([]evidenceSummary, len(list))
	for i, e := range list {
		out[i] = evidenceSummary{e.Kind, e.Format, e.KeyID, e.PredicateType}
	}
	slices.SortFunc(out, func(a, b evidenceSummary) int { return strings.Compare(string(a.Kind), string(b.Kind)) })
	return out
}

var (
	cosignSignature   = evidenceSummary{catalog.EvidenceSignature, string(signing.FormatCosignOCI), "ci", ""}
	bundleAttestation = evidenceSummary{catalog.EvidenceAttestation, string(signing.FormatBundle), "ci", testResult}
	dsseAttestation   = evidenceSummary{catalog.EvidenceAttestation, string(signing.FormatDSSE), "ci", testResult}
)

// TestReferrerEvidence: signatures and attestations pushed as referrers
// count as evidence for the tags of their subject, verified with the
// trust policy; what does not verify counts for nothing, stores nothing,
// and does not fail the push.
func TestReferrerEvidence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(e *evidenceEnv)
		// tags of imageRepo pointing at the image, all of which must end
		// with want and state.
		tags  []string
		want  []evidenceSummary
		state catalog.ArtifactState
		// warning, when set, must be logged.
		warning string
	}{
		{"real cosign signature and bundle attestation admit the tag", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.realReferrer(imageRepo, "signature")
			e.realReferrer(imageRepo, "bundle-attestation")
		}, []string{"1.0.0"}, []evidenceSummary{bundleAttestation, cosignSignature}, catalog.StateAdmitted, ""},

		{"real cosign attest (tag sha256-HEX.att) and signature admit the tag", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.realReferrer(imageRepo, "signature")
			e.realAttTag(imageRepo)
		}, []string{"1.0.0"}, []evidenceSummary{dsseAttestation, cosignSignature}, catalog.StateAdmitted, ""},

		{"a cosign .att tag pushed before the image tag is imported when it is pushed", func(e *evidenceEnv) {
			e.realImage(imageRepo, "")
			e.realAttTag(imageRepo)
			e.realReferrer(imageRepo, "signature")
			e.manifest(imageRepo, "1.0.0", domaintest.Fixture(e.t, "cosign-oci/image-manifest.json"))
		}, []string{"1.0.0"}, []evidenceSummary{dsseAttestation, cosignSignature}, catalog.StateAdmitted, ""},

		{"referrers pushed before the tag are imported when it is pushed", func(e *evidenceEnv) {
			e.realImage(imageRepo, "")
			e.realReferrer(imageRepo, "signature")
			e.realReferrer(imageRepo, "bundle-attestation")
			e.manifest(imageRepo, "1.0.0", domaintest.Fixture(e.t, "cosign-oci/image-manifest.json"))
		}, []string{"1.0.0"}, []evidenceSummary{bundleAttestation, cosignSignature}, catalog.StateAdmitted, ""},

		{"every tag of the subject gets the evidence", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.manifest(imageRepo, "latest", domaintest.Fixture(e.t, "cosign-oci/image-manifest.json"))
			e.realReferrer(imageRepo, "signature")
		}, []string{"1.0.0", "latest"}, []evidenceSummary{cosignSignature}, catalog.StateQuarantined, ""},

		{"cosign-layout DSSE attestation and signature made with the ci key", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			sv := ciSigner(e.t)
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, e.signatureLayer(imageRepo, sv, imageDigest))
			e.referrer(imageRepo, imageDigest, "application/vnd.in-toto+json", e.attestationLayer(imageRepo, sv, imageDigest))
		}, []string{"1.0.0"}, []evidenceSummary{dsseAttestation, cosignSignature}, catalog.StateAdmitted, ""},

		{"a signature by an untrusted key counts for nothing", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, e.signatureLayer(imageRepo, testkeys.Signer(e.t), imageDigest))
		}, []string{"1.0.0"}, nil, catalog.StateQuarantined, "reason=untrusted_key"},

		{"an attestation by an untrusted key counts for nothing", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.referrer(imageRepo, imageDigest, "application/vnd.in-toto+json", e.attestationLayer(imageRepo, testkeys.Signer(e.t), imageDigest))
		}, []string{"1.0.0"}, nil, catalog.StateQuarantined, "reason=untrusted_key"},

		{"a trusted signature of another image counts for nothing", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			other := digest.FromString("another image")
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, e.signatureLayer(imageRepo, ciSigner(e.t), other))
		}, []string{"1.0.0"}, nil, catalog.StateQuarantined, "reason=subject_mismatch"},

		{"a signature layer whose annotation is not a signature counts for nothing", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			l := e.signatureLayer(imageRepo, ciSigner(e.t), imageDigest)
			l.Annotations[signing.CosignSignatureAnnotation] = "not base64!"
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, l)
		}, []string{"1.0.0"}, nil, catalog.StateQuarantined, "referrer evidence does not count"},

		{"a signature pushed as a referrer in another repository does not count here", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.realImage("payments/mirror", "1.0.0")
			e.realReferrer("payments/mirror", "signature")
		}, []string{"1.0.0"}, nil, catalog.StateQuarantined, ""},

		{"layers that carry no evidence are ignored", func(e *evidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.referrer(imageRepo, imageDigest, "application/vnd.example.sbom", e.blob(imageRepo, []byte(`{"spdxVersion":"SPDX-2.3"}`), "application/spdx+json"))
		}, []string{"1.0.0"}, nil, catalog.StateQuarantined, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEvidenceEnv(t)
			tc.steps(e)
			for _, tag := range tc.tags {
				if got := summarize(e.evidence(imageRepo, tag)); !slices.Equal(got, tc.want) {
					t.Errorf("%s evidence %+v; want %+v", tag, got, tc.want)
				}
				if got := e.state(imageRepo, tag); got != tc.state {
					t.Errorf("%s is %s; want %s", tag, got, tc.state)
				}
			}
			warnings := strings.Join(e.logs.warnings(), "\n")
			if tc.warning == "" && warnings != "" {
				t.Errorf("unexpected warnings:\n%s", warnings)
			}
			if tc.warning != "" && !strings.Contains(warnings, tc.warning) {
				t.Errorf("warnings do not mention %q:\n%s", tc.warning, warnings)
			}
		})
	}
}

// TestReferrerEvidenceIdempotent: pushing the same referrer or the same
// tag again adds no evidence and records nothing.
func TestReferrerEvidenceIdempotent(t *testing.T) {
	e := newEvidenceEnv(t)
	e.realImage(imageRepo, "1.0.0")
	e.realReferrer(imageRepo, "signature")
	if n := len(e.evidence(imageRepo, "1.0.0")); n != 1 {
		t.Fatalf("%d pieces of evidence after the signature; want 1", n)
	}
	before := e.eventCount()
	e.realReferrer(imageRepo, "signature")
	e.manifest(imageRepo, "1.0.0", domaintest.Fixture(t, "cosign-oci/image-manifest.json"))
	if n := len(e.evidence(imageRepo, "1.0.0")); n != 1 {
		t.Errorf("%d pieces of evidence after pushing again; want 1", n)
	}
	if after := e.eventCount(); after != before {
		t.Errorf("pushing the same referrer and tag again recorded %d events", after-before)
	}
}

// TestReferrerEvidenceStored: the stored cosign signature evidence is one
// self-contained document that verifies again, offline, from its bytes.
func TestReferrerEvidenceStored(t *testing.T) {
	e := newEvidenceEnv(t)
	e.realImage(imageRepo, "1.0.0")
	e.realReferrer(imageRepo, "signature")
	list := e.evidence(imageRepo, "1.0.0")
	if len(list) != 1 {
		t.Fatalf("%d pieces of evidence; want 1", len(list))
	}
	if list[0].MediaType != signing.MediaTypeCosignOCISignature || list[0].ArtifactDigest != imageDigest {
		t.Errorf("evidence %+v; want media type %s about %s", list[0], signing.MediaTypeCosignOCISignature, imageDigest)
	}
	_, rc, err := e.svc.Catalog.OpenEvidence(e.ctx, e.pub, imageRepo, "1.0.0", list[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	key, err := signing.LoadPublicKey("ci", domaintest.Fixture(t, "cosign/cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	ve, err := signing.VerifyEvidence([]*signing.PublicKey{key}, imageDigest, body.Bytes(), nil)
	if err != nil || ve.Kind != signing.KindSignature || ve.Digest != list[0].Digest {
		t.Errorf("stored evidence verifies as %+v, %v", ve, err)
	}
}

// TestReferrerEvidenceRefusedStoresNothing: a signature that does not
// verify leaves no evidence bytes in the blob store and no event beyond
// the push of the referrer itself.
func TestReferrerEvidenceRefusedStoresNothing(t *testing.T) {
	e := newEvidenceEnv(t)
	e.realImage(imageRepo, "1.0.0")
	l := e.signatureLayer(imageRepo, testkeys.Signer(t), imageDigest)
	rc, err := e.svc.Blobs.Store().Open(e.ctx, l.Digest, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	var payload bytes.Buffer
	_, err = payload.ReadFrom(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	would, err := signing.CosignOCISignatureEvidence(payload.Bytes(), l.Annotations[signing.CosignSignatureAnnotation])
	if err != nil {
		t.Fatal(err)
	}
	before := e.eventCount()
	e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, l) // the empty config and the manifest
	if ok, err := e.svc.Blobs.Store().Exists(e.ctx, signing.EvidenceDigest(would)); err != nil || ok {
		t.Errorf("refused evidence is in the blob store (%v)", err)
	}
	events, err := e.meta.Audit().Events(e.ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range events[before:] {
		actions = append(actions, ev.Action)
	}
	if !slices.Equal(actions, []string{registry.ActionOCIBlobPushed, registry.ActionOCIManifestPushed}) {
		t.Errorf("events %q; want only the referrer's config and manifest pushes", actions)
	}
}
