package signing

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// sigBy and attBy build verified evidence with a digest derived from its
// fields.
func sigBy(key string) VerifiedEvidence {
	return VerifiedEvidence{Kind: KindSignature, KeyID: key, Digest: digest.FromString("sig " + key)}
}

func attBy(key, predicateType, predicate string) VerifiedEvidence {
	return VerifiedEvidence{Kind: KindAttestation, KeyID: key, PredicateType: predicateType,
		Predicate: json.RawMessage(predicate), Digest: digest.FromString(fmt.Sprint("att ", key, predicateType, predicate))}
}

const (
	passed     = `{"result":"PASSED","passedTests":["TestA"]}`
	warned     = `{"result":"WARNED"}`
	failed     = `{"result":"FAILED","failedTests":["TestRefund","TestVoid"]}`
	mainBuild  = "https://github.com/org/repo/.github/workflows/build.yml@refs/heads/main"
	forkBuild  = "https://github.com/fork/repo/.github/workflows/build.yml@refs/heads/main"
	slsaByMain = `{"runDetails":{"builder":{"id":"` + mainBuild + `"}}}`
	slsaByFork = `{"runDetails":{"builder":{"id":"` + forkBuild + `"}}}`
)

func TestEvaluate(t *testing.T) {
	policy, err := ParsePolicy([]byte(`
rules:
  - match: payments/*
    signatures: {keys: [ci], threshold: 1}
    attestations:
      - {predicateType: "https://in-toto.io/attestation/test-result/v0.1", keys: [ci]}
      - {predicateType: "https://slsa.dev/provenance/v1", keys: [ci], builderIds: ["` + mainBuild + `"]}
  - match: core/**
    signatures: {keys: [ci, release, ops], threshold: 2}
  - match: tools/*
    attestations:
      - {predicateType: "https://in-toto.io/attestation/test-result/v0.1", keys: [ci, qa]}
`))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]bool{"ci": true, "release": true, "ops": true, "qa": true, "intruder": true}
	without := func(id string) map[string]bool {
		m := map[string]bool{}
		for k, v := range all {
			m[k] = v && k != id
		}
		return m
	}
	full := []VerifiedEvidence{sigBy("ci"), attBy("ci", PredicateTestResult, passed), attBy("ci", PredicateSLSAProvenanceV1, slsaByMain)}

	tests := []struct {
		name     string
		artifact string
		evidence []VerifiedEvidence
		active   map[string]bool
		state    State
		rule     string
		unmet    []string // each must appear in Decision.Unmet, in order
		reason   string   // substring of Decision.Reason
	}{
		{name: "no rule matches", artifact: "orders/api", evidence: full, active: all,
			state: Quarantined, unmet: []string{"no trust policy rule matches orders/api"}},
		{name: "all met", artifact: "payments/api", evidence: full, active: all,
			state: Admitted, rule: "payments/*", reason: `rule "payments/*" is met`},
		{name: "nothing attached", artifact: "payments/api", active: all, state: Quarantined, rule: "payments/*",
			unmet: []string{
				"signature: 0 of 1 required signers (keys: ci)",
				"attestation https://in-toto.io/attestation/test-result/v0.1 from key ci",
				"attestation https://slsa.dev/provenance/v1 from key ci",
			}},
		{name: "wrong predicate type", artifact: "payments/api", active: all, state: Quarantined,
			evidence: []VerifiedEvidence{sigBy("ci"), attBy("ci", "https://example.com/custom/v1", passed), attBy("ci", PredicateSLSAProvenanceV1, slsaByMain)},
			unmet:    []string{"attestation https://in-toto.io/attestation/test-result/v0.1 from key ci"}},
		{name: "signature by a key the rule does not list", artifact: "payments/api", active: all, state: Quarantined,
			evidence: append([]VerifiedEvidence{sigBy("intruder")}, full[1:]...),
			unmet:    []string{"signature: 0 of 1 required signers (keys: ci)"}},
		{name: "attestation is not a signature", artifact: "payments/api", active: all, state: Quarantined,
			evidence: full[1:],
			unmet:    []string{"signature: 0 of 1 required signers (keys: ci)"}},
		{name: "SLSA builder allowed", artifact: "payments/api", active: all, state: Admitted,
			evidence: []VerifiedEvidence{sigBy("ci"), attBy("ci", PredicateTestResult, passed), attBy("ci", PredicateSLSAProvenanceV1, slsaByFork), attBy("ci", PredicateSLSAProvenanceV1, slsaByMain)}},
		{name: "SLSA builder not allowed", artifact: "payments/api", active: all, state: Quarantined,
			evidence: []VerifiedEvidence{sigBy("ci"), attBy("ci", PredicateTestResult, passed), attBy("ci", PredicateSLSAProvenanceV1, slsaByFork)},
			unmet:    []string{"attestation https://slsa.dev/provenance/v1 from key ci: builder " + forkBuild + " not allowed"}},
		{name: "test result failed", artifact: "payments/api", active: all, state: Rejected, rule: "payments/*",
			evidence: append(slices.Clone(full), attBy("ci", PredicateTestResult, failed)),
			reason:   "test result FAILED attested by key ci (failed tests: TestRefund, TestVoid)"},
		{name: "test result warned", artifact: "payments/api", active: all, state: Quarantined,
			evidence: []VerifiedEvidence{sigBy("ci"), attBy("ci", PredicateTestResult, warned), attBy("ci", PredicateSLSAProvenanceV1, slsaByMain)},
			unmet:    []string{`attestation https://in-toto.io/attestation/test-result/v0.1 from key ci: test result "WARNED" from key ci, want PASSED`}},
		{name: "failed result from an untrusted key does not reject", artifact: "payments/api", active: all, state: Admitted,
			evidence: append(slices.Clone(full), attBy("intruder", PredicateTestResult, failed))},
		{name: "failed result from a revoked key does not reject", artifact: "tools/cli", active: without("qa"), state: Quarantined,
			evidence: []VerifiedEvidence{attBy("qa", PredicateTestResult, failed)},
			unmet:    []string{"attestation https://in-toto.io/attestation/test-result/v0.1 from one of keys ci, qa (not counted: key qa inactive)"}},
		{name: "failed result from a signature-only key rejects", artifact: "core/ledger", active: all, state: Rejected,
			evidence: []VerifiedEvidence{sigBy("ci"), sigBy("release"), attBy("ops", PredicateTestResult, failed)},
			reason:   "test result FAILED attested by key ops"},
		{name: "2 of 3 signers met", artifact: "core/ledger", active: all, state: Admitted, rule: "core/**",
			evidence: []VerifiedEvidence{sigBy("ci"), sigBy("ops")}},
		{name: "2 of 3 signers, one signed twice", artifact: "core/ledger/v2", active: all, state: Quarantined,
			evidence: []VerifiedEvidence{sigBy("ci"), sigBy("ci"), {Kind: KindSignature, KeyID: "ci", Digest: digest.FromString("again")}},
			unmet:    []string{"signature: 1 of 2 required signers (keys: ci, release, ops)"}},
		{name: "2 of 3 signers, one revoked", artifact: "core", active: without("release"), state: Quarantined,
			evidence: []VerifiedEvidence{sigBy("ci"), sigBy("release")},
			unmet:    []string{"signature: 1 of 2 required signers (keys: ci, release, ops) (not counted: key release inactive)"}},
		{name: "no active keys", artifact: "core/ledger", active: nil, state: Quarantined,
			evidence: []VerifiedEvidence{sigBy("ci"), sigBy("ops")},
			unmet:    []string{"signature: 0 of 2 required signers"}},
		{name: "any listed key satisfies an attestation", artifact: "tools/cli", active: all, state: Admitted,
			evidence: []VerifiedEvidence{attBy("qa", PredicateTestResult, passed)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(policy, tt.artifact, tt.evidence, tt.active)
			if d.State != tt.state {
				t.Fatalf("state = %s, want %s (%+v)", d.State, tt.state, d)
			}
			if tt.rule != "" && d.Rule != tt.rule {
				t.Errorf("rule = %q, want %q", d.Rule, tt.rule)
			}
			if len(d.Unmet) < len(tt.unmet) {
				t.Fatalf("unmet = %q, want %q", d.Unmet, tt.unmet)
			}
			for i, want := range tt.unmet {
				if !strings.HasPrefix(d.Unmet[i], want) {
					t.Errorf("unmet[%d] = %q, want %q", i, d.Unmet[i], want)
				}
			}
			if d.State == Admitted && len(d.Unmet) != 0 {
				t.Errorf("admitted with unmet %q", d.Unmet)
			}
			if d.State == Quarantined && len(d.Unmet) == 0 {
				t.Error("quarantined without saying what is unmet")
			}
			if !strings.Contains(d.Reason, tt.reason) || d.Reason == "" {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
			// Admitted evidence digests come from the evidence given.
			for _, dg := range d.Evidence {
				if !slices.ContainsFunc(tt.evidence, func(e VerifiedEvidence) bool { return e.Digest == dg }) {
					t.Errorf("decision cites unknown evidence %s", dg)
				}
			}
		})
	}
}

func TestEvaluateEvidenceCited(t *testing.T) {
	policy := &Policy{Rules: []Rule{{Match: "core/*", Signatures: &SignatureRequirement{Keys: []string{"ci", "release", "ops"}, Threshold: 2}}}}
	evidence := []VerifiedEvidence{sigBy("intruder"), sigBy("ci"), sigBy("ci"), sigBy("ops")}
	d := Evaluate(policy, "core/x", evidence, map[string]bool{"ci": true, "ops": true, "intruder": true})
	want := []digest.Digest{sigBy("ci").Digest, sigBy("ops").Digest}
	if d.State != Admitted || !slices.Equal(d.Evidence, want) {
		t.Fatalf("decision = %+v, want admitted citing %v", d, want)
	}
	if d := Evaluate(nil, "core/x", evidence, nil); d.State != Quarantined {
		t.Fatalf("nil policy: %+v", d)
	}
	// A policy built in code without validation admits nothing.
	invalid := &Policy{Rules: []Rule{{Match: "core/*", Attestations: []AttestationRequirement{{PredicateType: PredicateTestResult}}}}}
	d = Evaluate(invalid, "core/x", []VerifiedEvidence{attBy("ci", PredicateTestResult, passed)}, map[string]bool{"ci": true})
	if d.State != Quarantined || len(d.Unmet) != 1 || !strings.Contains(d.Unmet[0], "trust policy is invalid") {
		t.Fatalf("invalid policy: %+v", d)
	}
}

func TestEvaluateProvenanceVersions(t *testing.T) {
	policy := &Policy{Rules: []Rule{{Match: "a", Attestations: []AttestationRequirement{
		{PredicateType: PredicateSLSAProvenanceV02, Keys: []string{"ci"}, BuilderIDs: []string{mainBuild}},
	}}}}
	active := map[string]bool{"ci": true}
	tests := []struct {
		predicate string
		state     State
		unmet     string
	}{
		{`{"builder":{"id":"` + mainBuild + `"}}`, Admitted, ""},
		{`{"builder":{"id":"` + forkBuild + `"}}`, Quarantined, "builder " + forkBuild + " not allowed"},
		{slsaByMain, Quarantined, "unreadable provenance from key ci: no builder id"}, // v1 shape under v0.2 type
		{`[]`, Quarantined, "unreadable provenance"},
	}
	for _, tt := range tests {
		d := Evaluate(policy, "a", []VerifiedEvidence{attBy("ci", PredicateSLSAProvenanceV02, tt.predicate)}, active)
		if d.State != tt.state || (tt.unmet != "" && (len(d.Unmet) != 1 || !strings.Contains(d.Unmet[0], tt.unmet))) {
			t.Errorf("%s: %+v, want %s %q", tt.predicate, d, tt.state, tt.unmet)
		}
	}
}
