package catalog_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
)

// The evidence of payments-api-1.4.2.tar.gz that the real cosign made
// (testdata/cosign), by the name the table uses.
var evidenceFixtures = map[string]struct {
	kind catalog.EvidenceKind
	file string
}{
	"signature":       {catalog.EvidenceSignature, "cosign/payments-api-1.4.2.tar.gz.sig"},
	"bundle":          {catalog.EvidenceSignature, "cosign/payments-api-1.4.2.tar.gz.sigstore.json"},
	"tests passed":    {catalog.EvidenceAttestation, "cosign/test-result-passed.dsse.json"},
	"tests failed":    {catalog.EvidenceAttestation, "cosign/test-result-failed.dsse.json"},
	"slsa provenance": {catalog.EvidenceAttestation, "cosign/slsa-provenance.dsse.json"},
}

// The policies of the table. ci is testdata/cosign/cosign.pub.
var policies = map[string]string{
	"signature and tests": domaintest.CIPolicy,
	"signature only":      `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]}}]}`,
	"tests and provenance": `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]},"attestations":[` +
		`{"predicateType":"` + domaintest.TestResult + `","keys":["ci"]},{"predicateType":"https://slsa.dev/provenance/v1","keys":["ci"]}]}]}`,
	"another name": `{"rules":[{"match":"billing/*","signatures":{"keys":["ci"]}}]}`,
}

// TestAdmissionEvaluation is admission as a table, without HTTP: a trust
// policy × the evidence presented → the decision the catalogue stores
// (state, rule, what is unmet, a receipt on admission). The evidence is
// the real cosign output of testdata/cosign.
func TestAdmissionEvaluation(t *testing.T) {
	for i, tc := range []struct {
		name     string
		policy   string // a key of policies; "" sets none
		evidence []string
		want     catalog.ArtifactState
		// unmet are substrings of what the decision says is missing.
		unmet []string
	}{
		{"no policy", "", []string{"signature", "tests passed"}, catalog.StateQuarantined, []string{"no trust policy is set"}},
		{"nothing presented", "signature and tests", nil, catalog.StateQuarantined, []string{"signature", domaintest.TestResult}},
		{"signature without tests", "signature and tests", []string{"signature"}, catalog.StateQuarantined, []string{domaintest.TestResult}},
		{"tests without signature", "signature and tests", []string{"tests passed"}, catalog.StateQuarantined, []string{"signature"}},
		{"signature and passing tests", "signature and tests", []string{"signature", "tests passed"}, catalog.StateAdmitted, nil},
		{"a bundle as the signature", "signature and tests", []string{"bundle", "tests passed"}, catalog.StateAdmitted, nil},
		{"failing tests", "signature and tests", []string{"signature", "tests failed"}, catalog.StateRejected, nil},
		{"failing tests before a signature", "signature and tests", []string{"tests failed"}, catalog.StateRejected, nil},
		{"signature is enough", "signature only", []string{"signature"}, catalog.StateAdmitted, nil},
		{"provenance missing", "tests and provenance", []string{"signature", "tests passed"}, catalog.StateQuarantined, []string{"https://slsa.dev/provenance/v1"}},
		{"provenance present", "tests and provenance", []string{"signature", "tests passed", "slsa provenance"}, catalog.StateAdmitted, nil},
		{"no rule for the name", "another name", []string{"signature", "tests passed"}, catalog.StateQuarantined, []string{"no trust policy rule matches"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := domaintest.NewEnv(t)
			pipeline := e.Principal("pipeline", nil, access.RolePublisher)
			if _, err := e.DML.Trust.AddTrustKey(e.Ctx, e.Admin, trustKeyCI(t)); err != nil {
				t.Fatal(err)
			}
			if tc.policy != "" {
				if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policies[tc.policy])); err != nil {
					t.Fatal(err)
				}
			}
			version := fmt.Sprintf("1.4.%d", i)
			a := pushTarball(t, e, pipeline, version)
			for _, name := range tc.evidence {
				fx := evidenceFixtures[name]
				var err error
				if _, a, err = e.DML.Catalog.AddEvidence(e.Ctx, pipeline, catalog.EvidenceRequest{
					Name: "payments/api", Version: version, Kind: fx.kind, Body: domaintest.Fixture(t, fx.file),
				}); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if a.State != tc.want {
				t.Fatalf("state = %s (%+v); want %s", a.State, a.Admission, tc.want)
			}
			adm := a.Admission
			if adm == nil {
				t.Fatal("no admission decision")
			}
			unmet := strings.Join(adm.Unmet, "; ")
			for _, u := range tc.unmet {
				if !strings.Contains(unmet, u) {
					t.Errorf("unmet %q does not mention %q", unmet, u)
				}
			}
			switch tc.want {
			case catalog.StateAdmitted:
				if len(adm.Unmet) != 0 || adm.Rule != "payments/*" || len(adm.Receipt) == 0 || len(adm.Evidence) == 0 {
					t.Errorf("admission = %+v; want rule payments/*, nothing unmet, the evidence used and a receipt", adm)
				}
			case catalog.StateRejected:
				if !strings.Contains(adm.Reason, "failed") || len(adm.Receipt) != 0 {
					t.Errorf("rejection = %+v; want a reason naming the failed tests and no receipt", adm)
				}
			}
			// Reading it back gives the same decision.
			got, err := e.DML.Catalog.Artifact(e.Ctx, "payments/api", version)
			if err != nil || got.State != tc.want {
				t.Errorf("Artifact = %s, %v; want %s", got.State, err, tc.want)
			}
		})
	}
}

// TestAdmissionIsFinal: a decision that admitted or rejected an artifact
// is not taken back by a later change of trust; a quarantined artifact is
// re-decided by one.
func TestAdmissionIsFinal(t *testing.T) {
	e := domaintest.NewEnv(t)
	pipeline := e.Principal("pipeline", nil, access.RolePublisher)
	if _, err := e.DML.Trust.AddTrustKey(e.Ctx, e.Admin, trustKeyCI(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policies["signature only"])); err != nil {
		t.Fatal(err)
	}
	present := func(version, name string) catalog.Artifact {
		t.Helper()
		fx := evidenceFixtures[name]
		_, a, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: version, Kind: fx.kind, Body: domaintest.Fixture(t, fx.file)})
		if err != nil {
			t.Fatalf("%s for %s: %v", name, version, err)
		}
		return a
	}
	pushTarball(t, e, pipeline, "1.0")
	if a := present("1.0", "signature"); a.State != catalog.StateAdmitted {
		t.Fatalf("1.0 = %s; want admitted", a.State)
	}
	pushTarball(t, e, pipeline, "2.0")
	if a := present("2.0", "tests passed"); a.State != catalog.StateQuarantined {
		t.Fatalf("2.0 with tests only = %s; want quarantined: the policy needs a signature", a.State)
	}
	// A stricter policy leaves the admitted version admitted and keeps the
	// quarantined one quarantined; revoking the key admits nothing new.
	if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policies["tests and provenance"])); err != nil {
		t.Fatal(err)
	}
	if err := e.DML.Trust.RevokeTrustKey(e.Ctx, e.Admin, "ci"); err != nil {
		t.Fatal(err)
	}
	for version, want := range map[string]catalog.ArtifactState{"1.0": catalog.StateAdmitted, "2.0": catalog.StateQuarantined} {
		a, err := e.DML.Catalog.Artifact(e.Ctx, "payments/api", version)
		if err != nil || a.State != want {
			t.Errorf("%s after the trust changes = %s, %v; want %s", version, a.State, err, want)
		}
	}
	// Evidence by the revoked key no longer verifies: it is refused, not
	// stored.
	fx := evidenceFixtures["signature"]
	_, _, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "2.0", Kind: fx.kind, Body: domaintest.Fixture(t, fx.file)})
	if signing.ReasonOf(err) != signing.UntrustedKey {
		t.Errorf("a signature by the revoked key: %v; want untrusted", err)
	}
	list, err := e.DML.Catalog.ListEvidence(e.Ctx, "payments/api", "2.0")
	if err != nil || len(list) != 1 {
		t.Errorf("evidence of 2.0 = %d, %v; want only the attestation", len(list), err)
	}
}

// TestAdmissionRefusesUntrustedEvidence: a valid signature by a key the
// DML does not trust stores nothing and decides nothing.
func TestAdmissionRefusesUntrustedEvidence(t *testing.T) {
	e := domaintest.NewEnv(t)
	pipeline := e.Principal("pipeline", nil, access.RolePublisher)
	e.TrustCI()
	pushTarball(t, e, pipeline, "1.0")
	untrusted := domaintest.Fixture(t, "cosign/untrusted/payments-api-1.4.2.tar.gz.sig")
	_, _, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "1.0", Kind: catalog.EvidenceSignature, Body: untrusted})
	var ve *signing.VerificationError
	if !errors.As(err, &ve) || ve.Reason != signing.UntrustedKey {
		t.Fatalf("untrusted signature: %v; want a verification error for an untrusted key", err)
	}
	a, err := e.DML.Catalog.Artifact(e.Ctx, "payments/api", "1.0")
	if err != nil || a.State != catalog.StateQuarantined {
		t.Fatalf("after the refusal: %s, %v; want quarantined", a.State, err)
	}
	if list, err := e.DML.Catalog.ListEvidence(e.Ctx, "payments/api", "1.0"); err != nil || len(list) != 0 {
		t.Errorf("evidence = %d, %v; want none", len(list), err)
	}
}

// trustKeyCI registers testdata/cosign/cosign.pub as "ci".
func trustKeyCI(t *testing.T) trust.AddTrustKeyRequest {
	return trust.AddTrustKeyRequest{ID: "ci", PublicKey: string(domaintest.Fixture(t, "cosign/cosign.pub"))}
}

func pushTarball(t *testing.T, e *domaintest.Env, p access.Principal, version string) catalog.Artifact {
	t.Helper()
	content := domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz")
	a, created, err := e.DML.Catalog.Push(e.Ctx, p, catalog.PushRequest{Name: "payments/api", Version: version, Size: int64(len(content)), Body: bytes.NewReader(content)})
	if err != nil || !created {
		t.Fatalf("push %s: %v, created %v", version, err, created)
	}
	if !slices.Contains([]catalog.ArtifactState{catalog.StateQuarantined, catalog.StateAdmitted}, a.State) {
		t.Fatalf("pushed %s is %s", version, a.State)
	}
	return a
}
