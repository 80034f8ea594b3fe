package registry_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testsigstore"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
)

const (
	ciIssuer  = "https://token.actions.example.test"
	ciRelease = "https://example.test/acme/payments/.github/workflows/release.yml@refs/heads/main"
)

// keylessEvidenceEnv is an evidenceEnv that also trusts a virtual Sigstore
// ("ci-sigstore") and its identity "payments-release", under a policy
// that wants a signature, and passing tests, from that identity.
type keylessEvidenceEnv struct {
	*evidenceEnv
	sigstore *testsigstore.Sigstore
}

func newKeylessEvidenceEnv(t *testing.T, policy string) *keylessEvidenceEnv {
	t.Helper()
	e := &keylessEvidenceEnv{evidenceEnv: newEvidenceEnv(t), sigstore: testsigstore.New(t)}
	if _, _, err := e.svc.Trust.PutTrustedRoot(e.ctx, e.admin, "ci-sigstore", e.sigstore.RootJSON); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Trust.AddIdentity(e.ctx, e.admin, trust.Identity{ID: "payments-release", Root: "ci-sigstore", Issuer: ciIssuer, Subject: ciRelease}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Trust.SetTrustPolicy(e.ctx, e.admin, []byte(policy)); err != nil {
		t.Fatal(err)
	}
	return e
}

// Policies naming the identity: a signature alone, or a signature and
// passing tests.
const (
	keylessSignaturePolicy = `{"rules":[{"match":"payments/*","signatures":{"keys":["payments-release"]}}]}`
	keylessPolicy          = `{"rules":[{"match":"payments/*","signatures":{"keys":["payments-release"]},
		"attestations":[{"predicateType":"` + testResult + `","keys":["payments-release"]}]}]}`
)

// push pushes a cosign layer's blob into repo and returns its descriptor,
// annotations included.
func (e *keylessEvidenceEnv) push(repo string, l testsigstore.CosignLayer) ocispec.Descriptor {
	e.t.Helper()
	d := e.blob(repo, l.Blob, l.MediaType)
	d.Annotations = l.Annotations
	return d
}

// signature is what keyless `cosign sign` (v2) pushes for image by
// subject: a signature layer.
func (e *keylessEvidenceEnv) signature(subject string, image digest.Digest) ocispec.Descriptor {
	e.t.Helper()
	payload := testsigstore.SimpleSigningPayload("127.0.0.1/"+imageRepo, image.String())
	return e.push(imageRepo, e.sigstore.CosignSign(e.t, subject, ciIssuer, payload, time.Now().Add(5*time.Minute)))
}

// testsPassed is what keyless `cosign attest` (v2) pushes for a passing
// test result about image by subject: a DSSE layer.
func (e *keylessEvidenceEnv) testsPassed(subject string, image digest.Digest) ocispec.Descriptor {
	e.t.Helper()
	st, err := json.Marshal(signing.Statement{
		Type:          signing.StatementV1,
		Subject:       []signing.Subject{{Name: "127.0.0.1/" + imageRepo, Digest: map[string]string{"sha256": image.Encoded()}}},
		PredicateType: testResult,
		Predicate:     json.RawMessage(domaintest.Fixture(e.t, "cosign/test-result-passed.json")),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.push(imageRepo, e.sigstore.CosignAttest(e.t, subject, ciIssuer, testResult, st, time.Now().Add(5*time.Minute)))
}

// attTag pushes layers as `cosign attest` (v2) does: a manifest without
// a subject, tagged sha256-HEX.att after the image.
func (e *keylessEvidenceEnv) attTag(image digest.Digest, layers ...ocispec.Descriptor) {
	e.t.Helper()
	cfg := e.blob(imageRepo, []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`), ocispec.MediaTypeImageConfig)
	body, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers})
	if err != nil {
		e.t.Fatal(err)
	}
	e.manifest(imageRepo, "sha256-"+image.Encoded()+".att", body)
}

var (
	keylessSignature   = evidenceSummary{catalog.EvidenceSignature, string(signing.FormatCosignOCIKeyless), "payments-release", ""}
	keylessAttestation = evidenceSummary{catalog.EvidenceAttestation, string(signing.FormatBundle), "payments-release", testResult}
)

// TestReferrerEvidenceKeyless: what keyless cosign v2 pushes — a signature
// referrer, an attestation tagged sha256-HEX.att — counts as evidence of
// the identity that signed it, verified against the trusted root; what
// another identity or another Sigstore signed counts for nothing.
func TestReferrerEvidenceKeyless(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  string
		steps   func(e *keylessEvidenceEnv)
		want    []evidenceSummary
		state   catalog.ArtifactState
		warning string
	}{
		{"a keyless cosign signature referrer admits the tag", keylessSignaturePolicy, func(e *keylessEvidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, e.signature(ciRelease, imageDigest))
		}, []evidenceSummary{keylessSignature}, catalog.StateAdmitted, ""},

		{"a keyless signature referrer and attestation tag admit the tag", keylessPolicy, func(e *keylessEvidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, e.signature(ciRelease, imageDigest))
			e.attTag(imageDigest, e.testsPassed(ciRelease, imageDigest))
		}, []evidenceSummary{keylessAttestation, keylessSignature}, catalog.StateAdmitted, ""},

		{"keyless evidence pushed before the tag is imported when it is pushed", keylessPolicy, func(e *keylessEvidenceEnv) {
			e.realImage(imageRepo, "")
			e.attTag(imageDigest, e.testsPassed(ciRelease, imageDigest))
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, e.signature(ciRelease, imageDigest))
			e.manifest(imageRepo, "1.0.0", domaintest.Fixture(e.t, "cosign-oci/image-manifest.json"))
		}, []evidenceSummary{keylessAttestation, keylessSignature}, catalog.StateAdmitted, ""},

		{"a keyless signature by another identity counts for nothing", keylessSignaturePolicy, func(e *keylessEvidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType,
				e.signature("https://example.test/acme/payments/.github/workflows/test.yml@refs/heads/main", imageDigest))
		}, nil, catalog.StateQuarantined, "reason=identity_mismatch"},

		{"a keyless signature of another image counts for nothing", keylessSignaturePolicy, func(e *keylessEvidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, e.signature(ciRelease, digest.FromString("another image")))
		}, nil, catalog.StateQuarantined, "reason=subject_mismatch"},

		{"a keyless signature from an untrusted Sigstore counts for nothing", keylessSignaturePolicy, func(e *keylessEvidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			e.sigstore = testsigstore.New(e.t)
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, e.signature(ciRelease, imageDigest))
		}, nil, catalog.StateQuarantined, "reason=certificate_untrusted"},

		{"a keyless signature with a tampered log entry counts for nothing", keylessSignaturePolicy, func(e *keylessEvidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			l := e.signature(ciRelease, imageDigest)
			var rb map[string]any
			if err := json.Unmarshal([]byte(l.Annotations[signing.CosignBundleAnnotation]), &rb); err != nil {
				e.t.Fatal(err)
			}
			p := rb["Payload"].(map[string]any)
			p["logIndex"] = p["logIndex"].(float64) + 1
			tampered, _ := json.Marshal(rb)
			l.Annotations[signing.CosignBundleAnnotation] = string(tampered)
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, l)
		}, nil, catalog.StateQuarantined, "reason=tlog_proof_invalid"},

		// `cosign sign --key --certificate` attaches a certificate to a
		// signature made with a trusted key: it still counts as keyed.
		{"a signature by the trusted key that carries a certificate counts as keyed", domaintest.CIPolicy, func(e *keylessEvidenceEnv) {
			e.realImage(imageRepo, "1.0.0")
			l := e.signatureLayer(imageRepo, ciSigner(e.t), imageDigest)
			keyless := e.signature(ciRelease, imageDigest)
			for _, k := range []string{signing.CosignCertificateAnnotation, signing.CosignChainAnnotation} {
				l.Annotations[k] = keyless.Annotations[k]
			}
			e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, l)
		}, []evidenceSummary{cosignSignature}, catalog.StateQuarantined, "reason=tlog_entry_missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newKeylessEvidenceEnv(t, tc.policy)
			tc.steps(e)
			if got := summarize(e.evidence(imageRepo, "1.0.0")); !slices.Equal(got, tc.want) {
				t.Errorf("evidence %+v; want %+v", got, tc.want)
			}
			if got := e.state(imageRepo, "1.0.0"); got != tc.state {
				t.Errorf("1.0.0 is %s; want %s", got, tc.state)
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

// TestReferrerEvidenceKeylessStored: the stored keyless signature is one
// document that verifies again, offline, from its bytes and the trusted
// root, and the same referrer pushed again adds nothing.
func TestReferrerEvidenceKeylessStored(t *testing.T) {
	e := newKeylessEvidenceEnv(t, keylessSignaturePolicy)
	e.realImage(imageRepo, "1.0.0")
	l := e.signature(ciRelease, imageDigest)
	e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, l)
	list := e.evidence(imageRepo, "1.0.0")
	if len(list) != 1 {
		t.Fatalf("%d pieces of evidence; want 1", len(list))
	}
	ev := list[0]
	if ev.Keyless == nil || ev.Keyless.Root != "ci-sigstore" || ev.Keyless.Subject != ciRelease || ev.ArtifactDigest != imageDigest {
		t.Errorf("evidence %+v, keyless %+v", ev, ev.Keyless)
	}
	if ev.MediaType != signing.MediaTypeCosignOCIKeylessSignature {
		t.Errorf("stored with media type %q; want %q", ev.MediaType, signing.MediaTypeCosignOCIKeylessSignature)
	}

	before := e.eventCount()
	e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, l)
	e.manifest(imageRepo, "1.0.0", domaintest.Fixture(t, "cosign-oci/image-manifest.json"))
	if n := len(e.evidence(imageRepo, "1.0.0")); n != 1 {
		t.Errorf("%d pieces of evidence after pushing again; want 1", n)
	}
	if after := e.eventCount(); after != before {
		t.Errorf("pushing the same referrer and tag again recorded %d events", after-before)
	}

	_, rc, err := e.svc.Catalog.OpenEvidence(e.ctx, e.pub, imageRepo, "1.0.0", ev.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	v, err := signing.NewKeylessVerifier(map[string]root.TrustedMaterial{"ci-sigstore": e.sigstore.Root},
		[]signing.Identity{{ID: "payments-release", Root: "ci-sigstore", Issuer: ciIssuer, Subject: ciRelease}})
	if err != nil {
		t.Fatal(err)
	}
	ve, err := v.Verify(signing.ArtifactDigests{SHA256: imageDigest}, body.Bytes())
	if err != nil || ve.Kind != signing.KindSignature || ve.Format != signing.FormatCosignOCIKeyless || ve.Digest != ev.Digest {
		t.Errorf("stored evidence verifies as %+v, %v", ve, err)
	}
}

// TestReferrerEvidenceKeyedWithCertificateAgain: a keyed signature that
// carries a certificate, counted as keyed once, is not tried as keyless
// again when its referrer or the tag is pushed again.
func TestReferrerEvidenceKeyedWithCertificateAgain(t *testing.T) {
	e := newKeylessEvidenceEnv(t, domaintest.CIPolicy)
	e.realImage(imageRepo, "1.0.0")
	l := e.signatureLayer(imageRepo, ciSigner(t), imageDigest)
	keyless := e.signature(ciRelease, imageDigest)
	for _, k := range []string{signing.CosignCertificateAnnotation, signing.CosignChainAnnotation} {
		l.Annotations[k] = keyless.Annotations[k]
	}
	e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, l)
	if got := summarize(e.evidence(imageRepo, "1.0.0")); !slices.Equal(got, []evidenceSummary{cosignSignature}) {
		t.Fatalf("evidence %+v; want the keyed signature", got)
	}
	events, warnings := e.eventCount(), len(e.logs.warnings())
	e.referrer(imageRepo, imageDigest, signing.CosignSignatureArtifactType, l)
	e.manifest(imageRepo, "1.0.0", domaintest.Fixture(t, "cosign-oci/image-manifest.json"))
	if n := len(e.evidence(imageRepo, "1.0.0")); n != 1 {
		t.Errorf("%d pieces of evidence after pushing again; want 1", n)
	}
	if after := e.eventCount(); after != events {
		t.Errorf("pushing again recorded %d events", after-events)
	}
	if w := e.logs.warnings(); len(w) != warnings {
		t.Errorf("pushing again logged %v", w[warnings:])
	}
}
