package signing

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// These tests use evidence made by the real cosign v2.6.2 (see
// testdata/cosign/README.md).

func TestFixtureDigest(t *testing.T) {
	got := digest.SHA256.FromBytes(fixture(t, "payments-api-1.4.2.tar.gz"))
	if got != artifactDigest {
		t.Fatalf("fixture digest %s, want %s", got, artifactDigest)
	}
	if !strings.HasPrefix(string(fixture(t, "SHA256SUMS")), artifactDigest.Encoded()) {
		t.Fatal("SHA256SUMS disagrees with artifactDigest")
	}
}

func TestCosignRawSignature(t *testing.T) {
	sig := fixture(t, "payments-api-1.4.2.tar.gz.sig")
	ci := ciKey(t)

	if err := VerifyBlobSignature(ci, artifactDigest, sig, nil); err != nil {
		t.Fatalf("VerifyBlobSignature: %v", err)
	}
	ev, err := VerifyEvidence([]*PublicKey{untrustedKey(t), ci}, artifactDigest, sig, nil)
	if err != nil {
		t.Fatalf("VerifyEvidence: %v", err)
	}
	want := VerifiedEvidence{Kind: KindSignature, Format: FormatSignature, KeyID: "ci", Digest: digest.SHA256.FromBytes(sig)}
	if ev.Kind != want.Kind || ev.Format != want.Format || ev.KeyID != want.KeyID || ev.Digest != want.Digest {
		t.Fatalf("evidence = %+v, want %+v", ev, want)
	}
	// The signature is over the file, not over anything else.
	if err := VerifyBlobSignature(ci, otherDigest, sig, nil); err == nil {
		t.Fatal("signature verified for another digest")
	}
}

func TestCosignBundle(t *testing.T) {
	b := fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json")
	ci := ciKey(t)
	var hint struct {
		VerificationMaterial struct{ PublicKey struct{ Hint string } }
	}
	if err := json.Unmarshal(b, &hint); err != nil {
		t.Fatal(err)
	}
	if hint.VerificationMaterial.PublicKey.Hint != ci.Hint() {
		t.Errorf("cosign hint %q, key hint %q", hint.VerificationMaterial.PublicKey.Hint, ci.Hint())
	}

	ev, err := VerifyEvidence([]*PublicKey{untrustedKey(t), ci}, artifactDigest, b, nil)
	if err != nil {
		t.Fatalf("VerifyEvidence: %v", err)
	}
	if ev.Kind != KindSignature || ev.Format != FormatBundle || ev.KeyID != "ci" || ev.Digest != EvidenceDigest(b) {
		t.Fatalf("evidence = %+v", ev)
	}
	// The bundle's messageDigest names the artifact; another digest is a
	// subject mismatch, found before any signature check.
	_, err = VerifyEvidence([]*PublicKey{ci}, otherDigest, b, nil)
	wantReason(t, err, SubjectMismatch)
}

func TestCosignAttestations(t *testing.T) {
	trusted := []*PublicKey{untrustedKey(t), ciKey(t)}
	tests := []struct {
		file          string
		format        Format
		predicateType string
		predicate     string // file whose JSON the predicate must equal
	}{
		{"test-result-passed.dsse.json", FormatDSSE, PredicateTestResult, "test-result-passed.json"},
		{"test-result-failed.dsse.json", FormatDSSE, PredicateTestResult, "test-result-failed.json"},
		{"slsa-provenance.dsse.json", FormatDSSE, PredicateSLSAProvenanceV1, "slsa-provenance.json"},
		{"test-result-passed.sigstore.json", FormatBundle, PredicateTestResult, "test-result-passed.json"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			evidence := fixture(t, tt.file)
			ev, err := VerifyEvidence(trusted, artifactDigest, evidence, nil)
			if err != nil {
				t.Fatalf("VerifyEvidence: %v", err)
			}
			if ev.Kind != KindAttestation || ev.Format != tt.format || ev.KeyID != "ci" || ev.PredicateType != tt.predicateType {
				t.Fatalf("evidence = %+v", ev)
			}
			if ev.Digest != EvidenceDigest(evidence) {
				t.Errorf("digest %s, want %s", ev.Digest, EvidenceDigest(evidence))
			}
			if ev.Statement == nil || ev.Statement.Type != StatementV01 || len(ev.Statement.Subject) != 1 ||
				ev.Statement.Subject[0].Name != "payments-api-1.4.2.tar.gz" {
				t.Fatalf("statement = %+v", ev.Statement)
			}
			assertSameJSON(t, ev.Predicate, fixture(t, tt.predicate))

			// Attestations about the file do not vouch for another digest.
			_, err = VerifyEvidence(trusted, otherDigest, evidence, nil)
			if ve := wantReason(t, err, SubjectMismatch); ve.KeyID != "ci" {
				t.Errorf("SubjectMismatch names key %q, want ci", ve.KeyID)
			}
		})
	}
}

func assertSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got: %v", err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("JSON = %s, want %s", gb, wb)
	}
}

func TestCosignUntrustedSignature(t *testing.T) {
	sig := fixture(t, "untrusted/payments-api-1.4.2.tar.gz.sig")

	_, err := VerifyEvidence([]*PublicKey{ciKey(t)}, artifactDigest, sig, nil)
	wantReason(t, err, UntrustedKey)

	// Naming the key makes the same failure a bad signature.
	err = VerifyBlobSignature(ciKey(t), artifactDigest, sig, nil)
	if ve := wantReason(t, err, BadSignature); ve.KeyID != "ci" {
		t.Errorf("KeyID = %q, want ci", ve.KeyID)
	}

	ev, err := VerifyEvidence([]*PublicKey{ciKey(t), untrustedKey(t)}, artifactDigest, sig, nil)
	if err != nil || ev.KeyID != "other" {
		t.Fatalf("with untrusted/cosign.pub trusted: %+v, %v", ev, err)
	}
}

func TestCosignEvaluate(t *testing.T) {
	trusted := []*PublicKey{ciKey(t)}
	verify := func(name string) VerifiedEvidence {
		ev, err := VerifyEvidence(trusted, artifactDigest, fixture(t, name), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return ev
	}
	policy, err := ParsePolicy([]byte(`{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]},
	  "attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"]},
	                  {"predicateType":"https://slsa.dev/provenance/v1","keys":["ci"],"builderIds":["https://ci.example.internal/builders/linux-x86"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	active := map[string]bool{"ci": true}
	sig, bundle := verify("payments-api-1.4.2.tar.gz.sig"), verify("payments-api-1.4.2.tar.gz.sigstore.json")
	passed, failed, slsa := verify("test-result-passed.dsse.json"), verify("test-result-failed.dsse.json"), verify("slsa-provenance.dsse.json")

	d := Evaluate(policy, "payments/api", []VerifiedEvidence{bundle, sig, passed, slsa}, active)
	if d.State != Admitted || d.Rule != "payments/*" || len(d.Unmet) != 0 {
		t.Fatalf("decision = %+v, want admitted", d)
	}
	if want := []digest.Digest{bundle.Digest, passed.Digest, slsa.Digest}; !equalDigests(d.Evidence, want) {
		t.Errorf("evidence = %v, want %v", d.Evidence, want)
	}

	d = Evaluate(policy, "payments/api", []VerifiedEvidence{sig, passed, failed, slsa}, active)
	if d.State != Rejected || !strings.Contains(d.Reason, "FAILED") || !strings.Contains(d.Reason, "TestRefund") {
		t.Fatalf("decision = %+v, want rejected naming the failing test", d)
	}
	if !equalDigests(d.Evidence, []digest.Digest{failed.Digest}) {
		t.Errorf("evidence = %v, want the failing attestation", d.Evidence)
	}
}

func equalDigests(a, b []digest.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCosignPrivateKey(t *testing.T) {
	content := fixture(t, "payments-api-1.4.2.tar.gz")
	sv := ciSigner(t)

	sig, err := SignBlobCosign(sv, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBlobSignature(ciKey(t), artifactDigest, []byte(sig), nil); err != nil {
		t.Fatalf("our signature with cosign.key does not verify with cosign.pub: %v", err)
	}

	env, err := AttestBlob(sv, "payments-api-1.4.2.tar.gz", artifactDigest, PredicateTestResult, fixture(t, "test-result-passed.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := VerifyEvidence([]*PublicKey{ciKey(t)}, artifactDigest, env, nil)
	if err != nil {
		t.Fatalf("our attestation does not verify: %v", err)
	}
	if ev.Statement.Type != StatementV1 || ev.PredicateType != PredicateTestResult || ev.Statement.Subject[0].Name != "payments-api-1.4.2.tar.gz" {
		t.Fatalf("statement = %+v", ev.Statement)
	}
	assertSameJSON(t, ev.Predicate, fixture(t, "test-result-passed.json"))

	// A nil password is the empty password; a wrong one fails.
	if _, err := LoadCosignPrivateKey(fixture(t, "cosign.key"), nil); err != nil {
		t.Errorf("nil password: %v", err)
	}
	if _, err := LoadCosignPrivateKey(fixture(t, "cosign.key"), []byte("wrong")); err == nil {
		t.Error("wrong password accepted")
	}
	// The older PEM type names the same encoding.
	older := bytes.ReplaceAll(fixture(t, "cosign.key"), []byte("SIGSTORE"), []byte("COSIGN"))
	if _, err := LoadCosignPrivateKey(older, nil); err != nil {
		t.Errorf("ENCRYPTED COSIGN PRIVATE KEY: %v", err)
	}
	if _, err := AttestBlob(sv, "x", artifactDigest, PredicateTestResult, []byte(`"not an object"`)); err == nil {
		t.Error("AttestBlob accepted a predicate that is not an object")
	}
}
