package signing

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestEvidenceClaims: evidence that says the same thing — the same key's
// signature over the same message — has the same claims however it is
// encoded; evidence that says something else, or is signed by another
// key, does not.
func TestEvidenceClaims(t *testing.T) {
	ci := ciKey(t)
	sameMaterial := mustKey(t, "ci-again", fixture(t, "cosign.pub"))
	content := fixture(t, "payments-api-1.4.2.tar.gz")
	claims := func(t *testing.T, keys []*PublicKey, evidence []byte) []digest.Digest {
		t.Helper()
		ve, err := VerifyEvidence(keys, artifactDigest, evidence, bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		if len(ve.Claims) == 0 {
			t.Fatalf("%s evidence without claims", ve.Format)
		}
		return ve.Claims
	}
	sig := claims(t, []*PublicKey{ci}, fixture(t, "payments-api-1.4.2.tar.gz.sig"))
	another, err := SignBlobCosign(ciSigner(t), bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	keyed, err := VerifyEvidenceWithKey(ci, artifactDigest, []byte(strings.TrimSpace(string(fixture(t, "payments-api-1.4.2.tar.gz.sig")))), nil)
	if err != nil {
		t.Fatal(err)
	}
	att := claims(t, []*PublicKey{ci}, fixture(t, "test-result-passed.dsse.json"))
	// The same envelope, its JSON laid out differently.
	var env map[string]any
	if err := json.Unmarshal(fixture(t, "test-result-passed.dsse.json"), &env); err != nil {
		t.Fatal(err)
	}
	reindented, err := json.MarshalIndent(env, "", "   ")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		got   []digest.Digest
		want  []digest.Digest
		equal bool
	}{
		{"the .sig with and without its newline", claims(t, []*PublicKey{ci}, bytes.TrimSpace(fixture(t, "payments-api-1.4.2.tar.gz.sig"))), sig, true},
		{"the signature naming its key", keyed.Claims, sig, true},
		{"another signature by the same key over the same bytes", claims(t, []*PublicKey{ci}, []byte(another)), sig, true},
		{"cosign's bundle of a signature over the same bytes", claims(t, []*PublicKey{ci}, fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json")), sig, true},
		{"the same key registered under another ID", claims(t, []*PublicKey{sameMaterial}, fixture(t, "payments-api-1.4.2.tar.gz.sig")), sig, true},
		{"another key's signature over the same bytes", claims(t, []*PublicKey{untrustedKey(t)}, fixture(t, "untrusted/payments-api-1.4.2.tar.gz.sig")), sig, false},
		{"the envelope re-serialised", claims(t, []*PublicKey{ci}, reindented), att, true},
		{"the envelope in a bundle", claims(t, []*PublicKey{ci}, fixture(t, "test-result-passed.sigstore.json")), att, true},
		{"another statement", claims(t, []*PublicKey{ci}, fixture(t, "slsa-provenance.dsse.json")), att, false},
		{"an attestation is not a signature", att, sig, false},
	} {
		if slices.Equal(tc.got, tc.want) != tc.equal {
			t.Errorf("%s: claims %v, %v; want equal=%v", tc.name, tc.got, tc.want, tc.equal)
		}
	}
}

// TestEnvelopeClaimsPerKey: an envelope signed by two trusted keys claims
// for both, so that dropping one signature leaves a claim already made.
func TestEnvelopeClaimsPerKey(t *testing.T) {
	keys := generateKeys(t)
	a, b := mustKey(t, "a", keys[0].pubPEM), mustKey(t, "b", keys[1].pubPEM)
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"f","digest":{"sha256":"` + artifactDigest.Encoded() + `"}}],"predicateType":"https://example.com/p","predicate":{}}`)
	one := signEnvelope(t, keys[0].signer, InTotoPayloadType, statement)
	other := signEnvelope(t, keys[1].signer, InTotoPayloadType, statement)
	var e1, e2 map[string]any
	if err := json.Unmarshal(one, &e1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(other, &e2); err != nil {
		t.Fatal(err)
	}
	e1["signatures"] = append(e1["signatures"].([]any), e2["signatures"].([]any)...)
	both, err := json.Marshal(e1)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(env []byte) []digest.Digest {
		t.Helper()
		ve, err := VerifyEvidence([]*PublicKey{a, b}, artifactDigest, env, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ve.Claims
	}
	all, onlyB := verify(both), verify(other)
	if len(all) != 2 || len(onlyB) != 1 || !slices.Contains(all, onlyB[0]) {
		t.Errorf("claims of the envelope signed by both %v; of the one signed by b %v; want b's among both", all, onlyB)
	}
}
