package signing

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"
)

// simpleSigning makes the payload `cosign sign` signs for the image
// manifest d, with the same field order and "optional":null.
func simpleSigning(t testing.TB, d digest.Digest, typ string) []byte {
	t.Helper()
	var p simpleSigningPayload
	p.Critical.Identity.DockerReference = "registry.example/payments/api"
	p.Critical.Image.DockerManifestDigest = string(d)
	p.Critical.Type = typ
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedOCIEvidence signs payload with signer and wraps it, as the registry
// would when cosign pushes the signature.
func signedOCIEvidence(t testing.TB, signer signature.Signer, payload []byte) []byte {
	t.Helper()
	sig, err := SignBlobCosign(signer, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := CosignOCISignatureEvidence(payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestCosignOCISignatureKeyTypes(t *testing.T) {
	manifest := digest.SHA256.FromString(`{"schemaVersion":2}`)
	payload := simpleSigning(t, manifest, CosignSignatureType)
	for _, gk := range generateKeys(t) {
		t.Run(gk.name, func(t *testing.T) {
			key := mustKey(t, "k", gk.pubPEM)
			evidence := signedOCIEvidence(t, gk.signer, payload)

			// Every key type, Ed25519 included, verifies from the evidence
			// alone: the content is never read.
			forbidden := failingReader{t, true, bytes.NewReader(nil)}
			ev, err := VerifyEvidence([]*PublicKey{ciKey(t), key}, manifest, evidence, forbidden)
			if err != nil {
				t.Fatalf("VerifyEvidence: %v", err)
			}
			want := VerifiedEvidence{Kind: KindSignature, Format: FormatCosignOCI, KeyID: "k", Digest: EvidenceDigest(evidence)}
			if ev.Kind != want.Kind || ev.Format != want.Format || ev.KeyID != want.KeyID || ev.Digest != want.Digest || ev.PredicateType != "" {
				t.Fatalf("evidence = %+v, want %+v", ev, want)
			}
			if _, err := VerifyEvidenceWithKey(key, manifest, evidence, nil); err != nil {
				t.Fatalf("VerifyEvidenceWithKey: %v", err)
			}
			_, err = VerifyEvidence([]*PublicKey{ciKey(t)}, manifest, evidence, nil)
			wantReason(t, err, UntrustedKey)
		})
	}
}

func TestCosignOCISignatureEvidenceCanonical(t *testing.T) {
	payload := simpleSigning(t, artifactDigest, CosignSignatureType)
	sig, err := SignBlobCosign(ciSigner(t), bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	want, err := CosignOCISignatureEvidence(payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"mediaType":"application/vnd.dml.cosign.oci-signature.v1+json","payload":"` +
		base64.StdEncoding.EncodeToString(payload) + `","signature":"` + sig + `"}`
	if string(want) != wantJSON {
		t.Fatalf("evidence = %s, want %s", want, wantJSON)
	}
	raw, _ := base64.StdEncoding.DecodeString(sig)
	for name, s := range map[string]string{
		"unpadded":       base64.RawStdEncoding.EncodeToString(raw),
		"URL-safe":       base64.URLEncoding.EncodeToString(raw),
		"surrounding ws": "\n " + sig + "\n",
	} {
		got, err := CosignOCISignatureEvidence(payload, s)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %s, %v; want the same bytes as the padded signature", name, got, err)
		}
	}
}

func TestCosignOCISignatureRefusals(t *testing.T) {
	ci := ciKey(t)
	sv := ciSigner(t)
	payload := simpleSigning(t, artifactDigest, CosignSignatureType)
	good := signedOCIEvidence(t, sv, payload)
	edit := func(f func(m map[string]any)) []byte { return editJSON(t, good, f) }

	// signRaw signs any payload, including ones the constructor refuses.
	signRaw := func(payload []byte) []byte {
		sig, err := SignBlobCosign(sv, bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(cosignOCISignature{MediaType: MediaTypeCosignOCISignature,
			Payload: base64.StdEncoding.EncodeToString(payload), Signature: sig})
		return b
	}
	other := signRaw(simpleSigning(t, otherDigest, CosignSignatureType))
	critical := func(d digest.Digest) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(simpleSigning(t, d, CosignSignatureType), &m); err != nil {
			t.Fatal(err)
		}
		return string(m["critical"])
	}

	tests := []struct {
		name     string
		evidence []byte
		trusted  []*PublicKey
		want     Reason
		wantKey  string // KeyID the error names
	}{
		{"payload about another manifest", other, []*PublicKey{ci}, SubjectMismatch, "ci"},
		{"tampered payload", edit(func(m map[string]any) {
			m["payload"] = base64.StdEncoding.EncodeToString(simpleSigning(t, otherDigest, CosignSignatureType))
		}), []*PublicKey{ci}, UntrustedKey, ""},
		{"payload tampered by one byte", edit(func(m map[string]any) {
			m["payload"] = base64.StdEncoding.EncodeToString(append(bytes.Clone(payload), ' '))
		}), []*PublicKey{ci}, UntrustedKey, ""},
		{"tampered signature", edit(func(m map[string]any) {
			m["signature"] = flipBase64(t, m["signature"].(string))
		}), []*PublicKey{ci}, UntrustedKey, ""},
		{"untrusted key", good, []*PublicKey{untrustedKey(t)}, UntrustedKey, ""},
		{"no trusted key", good, nil, UntrustedKey, ""},
		{"wrong payload type", signRaw(simpleSigning(t, artifactDigest, "atomic container signature")), []*PublicKey{ci}, Malformed, "ci"},
		{"payload without digest", signRaw([]byte(`{"critical":{"type":"cosign container image signature"}}`)), []*PublicKey{ci}, Malformed, "ci"},
		{"signed payload that is not JSON", signRaw([]byte("not json")), []*PublicKey{ci}, Malformed, "ci"},
		{"signed payload naming a key twice", signRaw(appendKey(simpleSigning(t, otherDigest, CosignSignatureType), `"critical":`+critical(artifactDigest))), []*PublicKey{ci}, Malformed, "ci"},
		{"unknown field", edit(func(m map[string]any) { m["certificate"] = "MIIB" }), []*PublicKey{ci}, Malformed, ""},
		{"bad base64 payload", edit(func(m map[string]any) { m["payload"] = "%%%" }), []*PublicKey{ci}, Malformed, ""},
		{"bad base64 signature", edit(func(m map[string]any) { m["signature"] = "%%%" }), []*PublicKey{ci}, Malformed, ""},
		{"missing signature", edit(func(m map[string]any) { delete(m, "signature") }), []*PublicKey{ci}, Malformed, ""},
		{"missing payload", edit(func(m map[string]any) { delete(m, "payload") }), []*PublicKey{ci}, Malformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := VerifyEvidence(tt.trusted, artifactDigest, tt.evidence, nil)
			ve := wantReason(t, err, tt.want)
			if ev.KeyID != "" {
				t.Errorf("refused evidence names key %q", ev.KeyID)
			}
			if ve.KeyID != tt.wantKey {
				t.Errorf("error names key %q, want %q", ve.KeyID, tt.wantKey)
			}
			if ve.Format != FormatCosignOCI {
				t.Errorf("format = %q, want %q", ve.Format, FormatCosignOCI)
			}
			if ve.Err == nil || !strings.Contains(err.Error(), string(tt.want)) {
				t.Errorf("error %q does not say why", err)
			}
		})
	}

	// JSON that does not parse is not recognised as any format.
	for name, evidence := range map[string][]byte{
		"malformed JSON": []byte(`{"mediaType":"application/vnd.dml.cosign.oci-signature.v1+json","payload":`),
		"trailing data":  append(bytes.Clone(good), []byte(` {}`)...),
		"a key twice":    appendKey(good, `"payload":"e30="`),
	} {
		_, err := VerifyEvidence([]*PublicKey{ci}, artifactDigest, evidence, nil)
		if ve := wantReason(t, err, Malformed); ve.Format != "" {
			t.Errorf("%s: format %q", name, ve.Format)
		}
	}

	t.Run("named key", func(t *testing.T) {
		_, err := VerifyEvidenceWithKey(untrustedKey(t), artifactDigest, good, nil)
		if ve := wantReason(t, err, BadSignature); ve.KeyID != "other" {
			t.Errorf("KeyID = %q, want other", ve.KeyID)
		}
	})

	t.Run("constructor", func(t *testing.T) {
		sig, _ := SignBlobCosign(sv, bytes.NewReader(payload))
		for name, args := range map[string]struct {
			payload []byte
			sig     string
		}{
			"signature not base64":  {payload, "not base64!"},
			"empty signature":       {payload, ""},
			"empty payload":         {nil, sig},
			"payload not JSON":      {[]byte("hello"), sig},
			"wrong payload type":    {simpleSigning(t, artifactDigest, "atomic container signature"), sig},
			"payload has no digest": {[]byte(`{"critical":{"type":"cosign container image signature"}}`), sig},
		} {
			_, err := CosignOCISignatureEvidence(args.payload, args.sig)
			if ve := wantReason(t, err, Malformed); ve.Format != FormatCosignOCI {
				t.Errorf("%s: format %q", name, ve.Format)
			}
		}
	})
}

// These tests use what the real cosign v2.6.2 pushed to a registry (see
// testdata/cosign-oci/README.md).

const ociFixtureDir = "../testdata/cosign-oci"

// imageDigest is the digest of image-manifest.json, the signed image.
const imageDigest = digest.Digest("sha256:83821f6877f98621c3eb3add77bfd52de7267ef4ba0b8454fa3d641e6da9e2bc")

func ociFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ociFixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type ociDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
}

type ociManifest struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       ociDescriptor     `json:"config"`
	Layers       []ociDescriptor   `json:"layers"`
	Subject      *ociDescriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// TestCosignOCIFixtures checks the fixture set is what a registry held:
// every blob a manifest names is there with its digest and size, and every
// referrer's subject is the image.
func TestCosignOCIFixtures(t *testing.T) {
	entries, err := os.ReadDir(ociFixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[digest.Digest][]byte{}
	for _, e := range entries {
		b := ociFixture(t, e.Name())
		blobs[digest.SHA256.FromBytes(b)] = b
	}
	if _, ok := blobs[imageDigest]; !ok || digest.SHA256.FromBytes(ociFixture(t, "image-manifest.json")) != imageDigest {
		t.Fatalf("image-manifest.json is not %s", imageDigest)
	}
	for _, name := range []string{"image-manifest.json", "signature-manifest.json", "attestation-manifest.json",
		"bundle-attestation-manifest.json", "bundle-signature-manifest.json"} {
		var m ociManifest
		if err := json.Unmarshal(ociFixture(t, name), &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, d := range append([]ociDescriptor{m.Config}, m.Layers...) {
			if b, ok := blobs[d.Digest]; !ok || int64(len(b)) != d.Size {
				t.Errorf("%s: blob %s (%d bytes) is not in the fixtures", name, d.Digest, d.Size)
			}
		}
		if m.Subject != nil && (m.Subject.Digest != imageDigest || m.Subject.Size != int64(len(blobs[imageDigest]))) {
			t.Errorf("%s: subject %+v, want the image", name, m.Subject)
		}
	}
}

func TestCosignOCISignatureFromCosign(t *testing.T) {
	var m ociManifest
	if err := json.Unmarshal(ociFixture(t, "signature-manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	// cosign v2 marks the referrer by its config media type and sets no
	// top-level artifactType.
	if m.Config.MediaType != CosignSignatureArtifactType || m.ArtifactType != "" || m.Subject == nil || m.Subject.Digest != imageDigest {
		t.Fatalf("signature manifest = %+v", m)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != CosignSimpleSigningMediaType {
		t.Fatalf("layers = %+v", m.Layers)
	}
	payload := ociFixture(t, "signature-payload.json")
	if digest.SHA256.FromBytes(payload) != m.Layers[0].Digest {
		t.Fatal("signature-payload.json is not the layer blob")
	}
	sig := m.Layers[0].Annotations[CosignSignatureAnnotation]
	if sig != string(ociFixture(t, "signature-payload.sig")) {
		t.Fatal("the annotation is not what --output-signature wrote")
	}

	evidence, err := CosignOCISignatureEvidence(payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	ci, other := ciKey(t), untrustedKey(t)
	ev, err := VerifyEvidence([]*PublicKey{other, ci}, imageDigest, evidence, nil)
	if err != nil {
		t.Fatalf("VerifyEvidence: %v", err)
	}
	if ev.Kind != KindSignature || ev.Format != FormatCosignOCI || ev.KeyID != "ci" || ev.Digest != EvidenceDigest(evidence) {
		t.Fatalf("evidence = %+v", ev)
	}

	_, err = VerifyEvidence([]*PublicKey{ci}, artifactDigest, evidence, nil)
	if ve := wantReason(t, err, SubjectMismatch); ve.KeyID != "ci" || !strings.Contains(ve.Error(), string(imageDigest)) {
		t.Errorf("SubjectMismatch = %v", ve)
	}
	_, err = VerifyEvidence([]*PublicKey{other}, imageDigest, evidence, nil)
	wantReason(t, err, UntrustedKey)
	_, err = VerifyEvidenceWithKey(other, imageDigest, evidence, nil)
	wantReason(t, err, BadSignature)
}

func TestCosignOCIAttestationsFromCosign(t *testing.T) {
	trusted := []*PublicKey{untrustedKey(t), ciKey(t)}
	tests := []struct {
		manifest, layer string
		layerMediaType  string
		format          Format
		kind            Kind
		predicateType   string
	}{
		// cosign attest: a DSSE layer in a manifest tagged sha256-HEX.att.
		{"attestation-manifest.json", "attestation.dsse.json", CosignDSSEMediaType, FormatDSSE, KindAttestation, PredicateTestResult},
		// cosign attest --new-bundle-format: a referrer holding a bundle.
		{"bundle-attestation-manifest.json", "bundle-attestation.sigstore.json", "application/vnd.dev.sigstore.bundle.v0.3+json", FormatBundle, KindAttestation, PredicateTestResult},
		// cosign sign --new-bundle-format signs a statement with an
		// empty predicate of type https://sigstore.dev/cosign/sign/v1:
		// cosign v3's signature, which counts as one (issue 12), with no
		// predicate.
		{"bundle-signature-manifest.json", "bundle-signature.sigstore.json", "application/vnd.dev.sigstore.bundle.v0.3+json", FormatBundle, KindSignature, ""},
	}
	for _, tt := range tests {
		t.Run(tt.layer, func(t *testing.T) {
			var m ociManifest
			if err := json.Unmarshal(ociFixture(t, tt.manifest), &m); err != nil {
				t.Fatal(err)
			}
			layer := ociFixture(t, tt.layer)
			if len(m.Layers) != 1 || m.Layers[0].MediaType != tt.layerMediaType || m.Layers[0].Digest != digest.SHA256.FromBytes(layer) {
				t.Fatalf("layers = %+v", m.Layers)
			}
			ev, err := VerifyEvidence(trusted, imageDigest, layer, nil)
			if err != nil {
				t.Fatalf("VerifyEvidence: %v", err)
			}
			if ev.Kind != tt.kind || ev.Format != tt.format || ev.KeyID != "ci" || ev.PredicateType != tt.predicateType {
				t.Fatalf("evidence = %+v", ev)
			}
			if tt.predicateType == PredicateTestResult {
				assertSameJSON(t, ev.Predicate, fixture(t, "test-result-passed.json"))
			}
			_, err = VerifyEvidence(trusted, artifactDigest, layer, nil)
			wantReason(t, err, SubjectMismatch)
		})
	}
}
