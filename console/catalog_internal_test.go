package console

import (
	"testing"

	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// TestPlainUnmet: what the trust policy still needs, as signing.Evaluate
// words it, is reworded for people; the test takes the words from
// Evaluate itself, so a change of its wording shows here (the rewording
// then falls back to the words as they are).
func TestPlainUnmet(t *testing.T) {
	policy, err := signing.ParsePolicy([]byte(`{"rules":[
		{"match":"payments/*","signatures":{"keys":["ci"]},"attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"]}]},
		{"match":"web/*","signatures":{"keys":["a","b"],"threshold":2},"attestations":[{"predicateType":"https://slsa.dev/provenance/v1","keys":["a","b"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	failed := signing.VerifiedEvidence{Kind: signing.KindAttestation, KeyID: "ci", Digest: digest.FromString("failed tests"),
		PredicateType: signing.PredicateTestResult, Predicate: []byte(`{"result":"ERROR"}`)}
	signedByRevoked := signing.VerifiedEvidence{Kind: signing.KindSignature, KeyID: "a", Digest: digest.FromString("a signature")}
	for _, tc := range []struct {
		name     string
		artifact string
		evidence []signing.VerifiedEvidence
		active   map[string]bool
		want     []string
	}{
		{"nothing presented", "payments/api", nil, map[string]bool{"ci": true}, []string{
			"A signature by the trusted signer ci is needed (0 of 1 so far).",
			"Passing test results, attested by the trusted signer ci, are needed.",
		}},
		{"tests did not pass", "payments/api", []signing.VerifiedEvidence{failed}, map[string]bool{"ci": true}, []string{
			"A signature by the trusted signer ci is needed (0 of 1 so far).",
			`Passing test results, attested by the trusted signer ci, are needed. What was presented: test result "ERROR" from key ci, want PASSED.`,
		}},
		{"two signers, one revoked", "web/shop", []signing.VerifiedEvidence{signedByRevoked}, map[string]bool{"b": true}, []string{
			"A signature by 2 of the trusted signers a, b is needed (0 of 2 so far). Evidence signed by a does not count: no longer trusted.",
			"SLSA build provenance, attested by one of the trusted signers a, b, are needed.",
		}},
		{"no rule", "billing/ledger", nil, nil, []string{"no trust policy rule matches billing/ledger"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := signing.Evaluate(policy, tc.artifact, tc.evidence, tc.active)
			if len(d.Unmet) != len(tc.want) {
				t.Fatalf("Evaluate's unmet = %q; want %d of them", d.Unmet, len(tc.want))
			}
			for i, u := range d.Unmet {
				if got := plainUnmet(u); got != tc.want[i] {
					t.Errorf("plainUnmet(%q)\n = %q\nwant %q", u, got, tc.want[i])
				}
			}
		})
	}
}
