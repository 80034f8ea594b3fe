package signing

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/dmlproject/dml/internal/testsigstore"
)

// cosignImage is an image manifest, the artifact cosign signs in a
// registry.
var cosignImage = newKeylessArtifact(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`)

// cosignPayload is the simple-signing payload `cosign sign` signs for a.
func cosignPayload(a keylessArtifact) []byte {
	return testsigstore.SimpleSigningPayload("registry.example/payments/api", a.digests.SHA256.String())
}

// cosignStatement is an in-toto statement about a, as `cosign attest`
// makes it.
func cosignStatement(t *testing.T, a keylessArtifact) []byte {
	t.Helper()
	st, err := json.Marshal(Statement{
		Type:          StatementV1,
		Subject:       []Subject{{Name: "registry.example/payments/api", Digest: map[string]string{"sha256": a.digests.SHA256.Encoded()}}},
		PredicateType: PredicateSLSAProvenanceV1,
		Predicate:     json.RawMessage(`{"buildDefinition":{"buildType":"https://example.test/build"}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// keylessLayerEvidence makes the evidence of a keyless cosign layer.
func keylessLayerEvidence(t *testing.T, l testsigstore.CosignLayer) []byte {
	t.Helper()
	ev, err := CosignOCIKeylessEvidence(l.MediaType, l.Blob, l.Annotations)
	if err != nil {
		t.Fatalf("CosignOCIKeylessEvidence: %v", err)
	}
	return ev
}

// withAnnotation returns l with annotation k set to v ("" deletes it).
func withAnnotation(l testsigstore.CosignLayer, k, v string) testsigstore.CosignLayer {
	l.Annotations = maps.Clone(l.Annotations)
	if v == "" {
		delete(l.Annotations, k)
	} else {
		l.Annotations[k] = v
	}
	return l
}

// editRekorBundle returns l with its Rekor bundle annotation edited.
func editRekorBundle(t *testing.T, l testsigstore.CosignLayer, edit func(m map[string]any)) testsigstore.CosignLayer {
	t.Helper()
	return withAnnotation(l, CosignBundleAnnotation, string(editJSON(t, []byte(l.Annotations[CosignBundleAnnotation]), edit)))
}

// certificateKey is the public key of the layer's certificate.
func certificateKey(t *testing.T, l testsigstore.CosignLayer) *PublicKey {
	t.Helper()
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(l.Annotations[CosignCertificateAnnotation]))
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(certs[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return mustKey(t, "certificate-key", pemKey)
}

func TestCosignOCIKeylessAdmits(t *testing.T) {
	vs := newVirtualSigstore(t)
	logged := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	v := newKeylessVerifier(t, map[string]root.TrustedMaterial{"virtual": vs.root}, releaseIdentity())

	t.Run("image signature", func(t *testing.T) {
		payload := cosignPayload(cosignImage)
		layer := vs.CosignSign(t, testSubject, testIssuer, payload, logged)
		evidence := keylessLayerEvidence(t, layer)
		if !IsKeyless(evidence) {
			t.Fatal("IsKeyless = false for a keyless cosign image signature")
		}
		ev, err := v.Verify(cosignImage.digests, evidence)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if ev.Kind != KindSignature || ev.Format != FormatCosignOCIKeyless || ev.KeyID != "payments-release" || ev.Digest != EvidenceDigest(evidence) {
			t.Errorf("got kind %q format %q signer %q digest %s", ev.Kind, ev.Format, ev.KeyID, ev.Digest)
		}
		k := ev.Keyless
		if k == nil || k.Root != "virtual" || k.Issuer != testIssuer || k.Subject != testSubject || k.LogIndex != 1000 || !k.IntegratedTime.Equal(logged) {
			t.Errorf("keyless signer %+v, want logged at %s", k, logged)
		}
		// The claim is the payload signed with the certificate's key — the
		// claim of the same signature verified with that key as a keyed
		// cosign signature — not a signature over the image digest.
		want := claimOf(certificateKey(t, layer), claimSimpleSigning, payload)
		if len(ev.Claims) != 1 || ev.Claims[0] != want {
			t.Errorf("claims %v, want [%s]", ev.Claims, want)
		}
		keyed, err := CosignOCISignatureEvidence(payload, layer.Annotations[CosignSignatureAnnotation])
		if err != nil {
			t.Fatal(err)
		}
		kev, err := VerifyEvidence([]*PublicKey{certificateKey(t, layer)}, cosignImage.digests.SHA256, keyed, nil)
		if err != nil {
			t.Fatalf("the same signature, keyed: %v", err)
		}
		if kev.Claims[0] != want {
			t.Errorf("keyed claim %s, keyless %s: the same signature must make the same claim", kev.Claims[0], want)
		}
		// The TSA's timestamp, over the signature as cosign requests it,
		// is carried into the bundle and verifies there.
		var wrapped struct{ Bundle json.RawMessage }
		if err := json.Unmarshal(evidence, &wrapped); err != nil {
			t.Fatal(err)
		}
		b := &sgbundle.Bundle{}
		if err := b.UnmarshalJSON(wrapped.Bundle); err != nil {
			t.Fatal(err)
		}
		if stamps, _, err := verify.VerifySignedTimestamp(b, vs.root); err != nil || len(stamps) != 1 {
			t.Errorf("%d verified timestamps (%v), want 1", len(stamps), err)
		}
		// Without a trusted key, the keyed verifier does not take it.
		if _, err := VerifyEvidence([]*PublicKey{ciKey(t)}, cosignImage.digests.SHA256, evidence, nil); err == nil {
			t.Error("VerifyEvidence admitted keyless cosign evidence")
		}
	})

	t.Run("attestation", func(t *testing.T) {
		statement := cosignStatement(t, cosignImage)
		layer := vs.CosignAttest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, statement, logged)
		evidence := keylessLayerEvidence(t, layer)
		if !IsKeyless(evidence) {
			t.Fatal("IsKeyless = false for a keyless cosign attestation")
		}
		ev, err := v.Verify(cosignImage.digests, evidence)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if ev.Kind != KindAttestation || ev.Format != FormatBundle || ev.KeyID != "payments-release" || ev.PredicateType != PredicateSLSAProvenanceV1 {
			t.Errorf("got kind %q format %q signer %q predicate %q", ev.Kind, ev.Format, ev.KeyID, ev.PredicateType)
		}
		if k := ev.Keyless; k == nil || k.Subject != testSubject || !k.IntegratedTime.Equal(logged) {
			t.Errorf("keyless signer %+v", k)
		}
		want := claimOf(certificateKey(t, layer), claimDSSE, ssldsse.PAE(InTotoPayloadType, statement))
		if len(ev.Claims) != 1 || ev.Claims[0] != want {
			t.Errorf("claims %v, want [%s]", ev.Claims, want)
		}
	})
}

func TestCosignOCIKeylessRefusals(t *testing.T) {
	vs := newVirtualSigstore(t)
	otherCA := newVirtualSigstore(t)
	other := newKeylessArtifact(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{}]}`)
	soon := time.Now().Add(5 * time.Minute)
	roots := map[string]root.TrustedMaterial{"virtual": vs.root}
	evidence := func(l testsigstore.CosignLayer) []byte { return keylessLayerEvidence(t, l) }

	signed := vs.CosignSign(t, testSubject, testIssuer, cosignPayload(cosignImage), soon)
	attested := vs.CosignAttest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, cosignStatement(t, cosignImage), soon)
	tamperSET := func(l testsigstore.CosignLayer) []byte {
		return evidence(editRekorBundle(t, l, func(m map[string]any) { m["SignedEntryTimestamp"] = flipBase64(t, m["SignedEntryTimestamp"].(string)) }))
	}
	// Another image's payload under this signature: the signature is
	// not over it.
	swapped := signed
	swapped.Blob = cosignPayload(other)

	runKeylessRefusals(t, []keylessRefusal{
		{"signature: payload names another image", roots, releaseIdentity(), other.digests, evidence(signed), SubjectMismatch},
		{"attestation: statement about another image", roots, releaseIdentity(), other.digests, evidence(attested), SubjectMismatch},
		{"signature: tampered signed entry timestamp", roots, releaseIdentity(), cosignImage.digests, tamperSET(signed), TlogProofInvalid},
		{"attestation: tampered signed entry timestamp", roots, releaseIdentity(), cosignImage.digests, tamperSET(attested), TlogProofInvalid},
		{"signature: tampered integrated time", roots, releaseIdentity(), cosignImage.digests,
			evidence(editRekorBundle(t, signed, func(m map[string]any) {
				p := m["Payload"].(map[string]any)
				p["integratedTime"] = p["integratedTime"].(float64) + 1
			})), TlogProofInvalid},
		{"signature: another signer's identity", roots, releaseIdentity(), cosignImage.digests,
			evidence(vs.CosignSign(t, "https://example.test/acme/payments/.github/workflows/test.yml@refs/heads/main", testIssuer, cosignPayload(cosignImage), soon)), IdentityMismatch},
		{"attestation: another issuer", roots, releaseIdentity(), cosignImage.digests,
			evidence(vs.CosignAttest(t, testSubject, "https://accounts.example.test", PredicateSLSAProvenanceV1, cosignStatement(t, cosignImage), soon)), IdentityMismatch},
		{"signature: certificate from another CA", roots, releaseIdentity(), cosignImage.digests,
			evidence(otherCA.CosignSign(t, testSubject, testIssuer, cosignPayload(cosignImage), soon)), CertificateUntrusted},
		{"attestation: certificate from another CA", roots, releaseIdentity(), cosignImage.digests,
			evidence(otherCA.CosignAttest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, cosignStatement(t, cosignImage), soon)), CertificateUntrusted},
		{"signature: certificate expired at signing", roots, releaseIdentity(), cosignImage.digests,
			evidence(vs.CosignSign(t, testSubject, testIssuer, cosignPayload(cosignImage), time.Now().Add(30*time.Minute))), CertificateExpiredAtSigning},
		{"signature: not logged (no bundle annotation)", roots, releaseIdentity(), cosignImage.digests,
			evidence(withAnnotation(signed, CosignBundleAnnotation, "")), TlogEntryMissing},
		{"signature: another image's payload under the signature", roots, releaseIdentity(), other.digests, evidence(swapped), BadSignature},
		{"signature: bundle not about the payload it carries", roots, releaseIdentity(), other.digests,
			editJSON(t, evidence(signed), func(m map[string]any) { m["payload"] = base64.StdEncoding.EncodeToString(cosignPayload(other)) }), Malformed},
		{"signature: a field this version does not know", roots, releaseIdentity(), cosignImage.digests,
			editJSON(t, evidence(signed), func(m map[string]any) { m["certificate"] = "x" }), Malformed},
	})
}

func TestCosignOCIKeylessEvidenceRefusals(t *testing.T) {
	vs := newVirtualSigstore(t)
	soon := time.Now().Add(5 * time.Minute)
	signed := vs.CosignSign(t, testSubject, testIssuer, cosignPayload(cosignImage), soon)
	attested := vs.CosignAttest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, cosignStatement(t, cosignImage), soon)
	leaf := signed.Annotations[CosignCertificateAnnotation]

	tests := []struct {
		name  string
		layer testsigstore.CosignLayer
		want  Reason
	}{
		{"no certificate", withAnnotation(signed, CosignCertificateAnnotation, ""), Malformed},
		{"two leaf certificates", withAnnotation(signed, CosignCertificateAnnotation, leaf+leaf), Malformed},
		{"chain that is not PEM", withAnnotation(signed, CosignChainAnnotation, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), Malformed},
		{"no signature", withAnnotation(signed, CosignSignatureAnnotation, ""), Malformed},
		{"Rekor bundle not JSON", withAnnotation(signed, CosignBundleAnnotation, "{"), Malformed},
		{"Rekor bundle naming a key twice", withAnnotation(signed, CosignBundleAnnotation, `{"SignedEntryTimestamp":"AA==","SignedEntryTimestamp":"AA==","Payload":{}}`), Malformed},
		{"Rekor body that is no entry", editRekorBundle(t, signed, func(m map[string]any) {
			m["Payload"].(map[string]any)["body"] = base64.StdEncoding.EncodeToString([]byte(`{}`))
		}), Malformed},
		{"log ID not hex", editRekorBundle(t, signed, func(m map[string]any) { m["Payload"].(map[string]any)["logID"] = "xyz" }), Malformed},
		{"timestamp not JSON", withAnnotation(signed, CosignRFC3161TimestampAnnotation, "x"), Malformed},
		{"payload that is not a simple-signing payload", testsigstore.CosignLayer{MediaType: signed.MediaType, Blob: []byte(`{"critical":{}}`), Annotations: signed.Annotations}, Malformed},
		{"envelope that is not JSON", testsigstore.CosignLayer{MediaType: attested.MediaType, Blob: []byte(`x`), Annotations: attested.Annotations}, Malformed},
		{"another layer media type", testsigstore.CosignLayer{MediaType: "application/octet-stream", Blob: signed.Blob, Annotations: signed.Annotations}, Unsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := CosignOCIKeylessEvidence(tt.layer.MediaType, tt.layer.Blob, tt.layer.Annotations)
			if err == nil {
				t.Fatalf("made evidence %s", ev)
			}
			wantReason(t, err, tt.want)
		})
	}
}

// TestCosignOCIKeylessEvidenceCanonical: the same layer makes the same
// bytes, whatever base64 and PEM spelling its annotations use, so a
// signature pushed twice is stored once; another signature of the same
// payload is other evidence.
func TestCosignOCIKeylessEvidenceCanonical(t *testing.T) {
	vs := newVirtualSigstore(t)
	soon := time.Now().Add(5 * time.Minute)
	payload := cosignPayload(cosignImage)
	signed := vs.CosignSign(t, testSubject, testIssuer, payload, soon)
	attested := vs.CosignAttest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, cosignStatement(t, cosignImage), soon)

	respelled := withAnnotation(signed, CosignSignatureAnnotation, strings.TrimRight(signed.Annotations[CosignSignatureAnnotation], "="))
	respelled = withAnnotation(respelled, CosignCertificateAnnotation, strings.ReplaceAll(signed.Annotations[CosignCertificateAnnotation], "\n", "\r\n"))
	for name, l := range map[string]testsigstore.CosignLayer{"signature": signed, "attestation": attested} {
		first, again := keylessLayerEvidence(t, l), keylessLayerEvidence(t, l)
		if EvidenceDigest(first) != EvidenceDigest(again) {
			t.Errorf("%s: the same layer makes evidence %s and %s", name, EvidenceDigest(first), EvidenceDigest(again))
		}
	}
	if a, b := keylessLayerEvidence(t, signed), keylessLayerEvidence(t, respelled); string(a) != string(b) {
		t.Errorf("the same signature spelled otherwise makes other evidence:\n%s\n%s", a, b)
	}
	resigned := vs.CosignSign(t, testSubject, testIssuer, payload, soon)
	if EvidenceDigest(keylessLayerEvidence(t, signed)) == EvidenceDigest(keylessLayerEvidence(t, resigned)) {
		t.Error("two signatures of one payload make the same evidence")
	}

	// The evidence is what the documentation says: the payload's exact
	// bytes, and a v0.1 bundle signing their sha256.
	var e struct {
		MediaType string
		Payload   []byte
		Bundle    struct {
			MediaType        string
			MessageSignature struct {
				MessageDigest struct{ Algorithm, Digest string }
			}
		}
	}
	if err := json.Unmarshal(keylessLayerEvidence(t, signed), &e); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if e.MediaType != MediaTypeCosignOCIKeylessSignature || string(e.Payload) != string(payload) ||
		e.Bundle.MediaType != "application/vnd.dev.sigstore.bundle+json;version=0.1" ||
		e.Bundle.MessageSignature.MessageDigest.Digest != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("evidence %+v", e)
	}
}
