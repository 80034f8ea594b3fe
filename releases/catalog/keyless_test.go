package catalog_test

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testsigstore"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
)

const (
	ciIssuer  = "https://token.actions.example.test"
	ciRelease = "https://example.test/acme/payments/.github/workflows/release.yml@refs/heads/main"
)

// keylessEnv is a DML that trusts a virtual Sigstore ("ci-sigstore") and
// the identity "payments-release" (its release workflow), under a policy
// that wants a signature and passing tests from that identity.
type keylessEnv struct {
	*domaintest.Env
	sigstore *testsigstore.Sigstore
	pipeline access.Principal
	content  []byte
}

func newKeylessEnv(t *testing.T) *keylessEnv {
	t.Helper()
	e := &keylessEnv{Env: domaintest.NewEnv(t), sigstore: testsigstore.New(t), content: domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz")}
	e.pipeline = e.Principal("pipeline", nil, access.RolePublisher)
	if _, _, err := e.DML.Trust.PutTrustedRoot(e.Ctx, e.Admin, "ci-sigstore", e.sigstore.RootJSON); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DML.Trust.AddIdentity(e.Ctx, e.Admin, trust.Identity{ID: "payments-release", Root: "ci-sigstore", Issuer: ciIssuer, Subject: ciRelease}); err != nil {
		t.Fatal(err)
	}
	policy := `{"rules":[{"match":"payments/*","signatures":{"keys":["payments-release"]},
		"attestations":[{"predicateType":"` + domaintest.TestResult + `","keys":["payments-release"]}]}]}`
	if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policy)); err != nil {
		t.Fatal(err)
	}
	return e
}

// testsPassed is a keyless test-result attestation naming the tarball by
// the given digests, signed by subject.
func (e *keylessEnv) testsPassed(t *testing.T, subject string, digests map[string]string) []byte {
	t.Helper()
	st, err := json.Marshal(signing.Statement{
		Type:          signing.StatementV1,
		Subject:       []signing.Subject{{Name: "payments-api-1.4.2.tar.gz", Digest: digests}},
		PredicateType: domaintest.TestResult,
		Predicate:     json.RawMessage(`{"result":"PASSED","passedTests":["unit"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e.sigstore.Attest(t, subject, ciIssuer, st)
}

func (e *keylessEnv) present(version string, kind catalog.EvidenceKind, body []byte) (catalog.Evidence, catalog.Artifact, error) {
	return e.DML.Catalog.AddEvidence(e.Ctx, e.pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: version, Kind: kind, Body: body})
}

// TestKeylessAdmission: a keyless signature and a keyless test-result
// attestation by the trusted identity admit the artifact; the evidence
// rows and the signed receipt name the identity, its issuer and subject
// and the transparency-log entry.
func TestKeylessAdmission(t *testing.T) {
	e := newKeylessEnv(t)
	a := pushTarball(t, e.Env, e.pipeline, "1.0")
	sig, _, err := e.present("1.0", catalog.EvidenceSignature, e.sigstore.SignBlob(t, ciRelease, ciIssuer, e.content, time.Now().Add(5*time.Minute)))
	if err != nil {
		t.Fatalf("keyless signature: %v", err)
	}
	att, admitted, err := e.present("1.0", catalog.EvidenceAttestation, e.testsPassed(t, ciRelease, map[string]string{"sha256": a.Digest.Encoded()}))
	if err != nil {
		t.Fatalf("keyless attestation: %v", err)
	}
	if admitted.State != catalog.StateAdmitted {
		t.Fatalf("state = %s (%+v); want admitted", admitted.State, admitted.Admission)
	}
	for _, ev := range []catalog.Evidence{sig, att} {
		k := ev.Keyless
		if ev.KeyID != "payments-release" || k == nil || k.Root != "ci-sigstore" || k.Issuer != ciIssuer || k.Subject != ciRelease {
			t.Fatalf("evidence %s: signer %q, keyless %+v; want payments-release of ci-sigstore, %s, %s", ev.Kind, ev.KeyID, k, ciIssuer, ciRelease)
		}
	}
	if sig.Keyless.IntegratedTime.IsZero() {
		t.Errorf("signature's integrated time not recorded: %+v", sig.Keyless)
	}
	// Read back from the store, the rows keep what was proven.
	list, err := e.DML.Catalog.ListEvidence(e.Ctx, "payments/api", "1.0")
	if err != nil || len(list) != 2 {
		t.Fatalf("evidence = %d, %v", len(list), err)
	}
	for _, ev := range list {
		want := sig
		if ev.Kind == catalog.EvidenceAttestation {
			want = att
		}
		if got, _ := json.Marshal(ev.Keyless); ev.Keyless == nil || string(got) != string(must(json.Marshal(want.Keyless))) {
			t.Errorf("stored %s keyless = %+v; want %+v", ev.Kind, ev.Keyless, want.Keyless)
		}
	}
	// The receipt names both pieces of evidence's identity.
	st, err := signing.VerifyReceipt(e.DML.ServerPublicKeyPEM(), admitted.Admission.Receipt, a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var receipt signing.Admission
	if err := json.Unmarshal(st.Predicate, &receipt); err != nil {
		t.Fatal(err)
	}
	if len(receipt.Keyless) != 2 {
		t.Fatalf("receipt keyless = %+v; want the signature and the attestation", receipt.Keyless)
	}
	for _, k := range receipt.Keyless {
		if k.Identity != "payments-release" || k.Subject != ciRelease || k.Issuer != ciIssuer || k.Root != "ci-sigstore" ||
			(k.Evidence != sig.Digest && k.Evidence != att.Digest) {
			t.Errorf("receipt names %+v", k)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestKeylessAdmissionBySHA512: npm provenance names the artifact only by
// its sha512; the catalogue computes it from the content and admits.
func TestKeylessAdmissionBySHA512(t *testing.T) {
	e := newKeylessEnv(t)
	pushTarball(t, e.Env, e.pipeline, "1.0")
	sum := sha512.Sum512(e.content)
	if _, _, err := e.present("1.0", catalog.EvidenceSignature, e.sigstore.SignBlob(t, ciRelease, ciIssuer, e.content, time.Now().Add(5*time.Minute))); err != nil {
		t.Fatal(err)
	}
	_, a, err := e.present("1.0", catalog.EvidenceAttestation, e.testsPassed(t, ciRelease, map[string]string{"sha512": hex.EncodeToString(sum[:])}))
	if err != nil || a.State != catalog.StateAdmitted {
		t.Fatalf("attestation naming the sha512: %v, state %s; want admitted", err, a.State)
	}
	// Another artifact's sha512 is refused as another subject.
	pushTarball(t, e.Env, e.pipeline, "2.0")
	other := sha512.Sum512([]byte("other bytes"))
	if _, _, err := e.present("2.0", catalog.EvidenceAttestation, e.testsPassed(t, ciRelease, map[string]string{"sha512": hex.EncodeToString(other[:])})); signing.ReasonOf(err) != signing.SubjectMismatch {
		t.Errorf("another sha512: %v; want %s", err, signing.SubjectMismatch)
	}
}

// TestKeylessAdmissionRefusals: evidence that would verify, but whose
// signer the DML does not (or no longer) trust, stores nothing and says
// why.
func TestKeylessAdmissionRefusals(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, e *keylessEnv)
		signer string
		want   signing.Reason
	}{
		{"another workflow of the repository", nil, strings.Replace(ciRelease, "release.yml", "test.yml", 1), signing.IdentityMismatch},
		{"identity revoked", func(t *testing.T, e *keylessEnv) {
			if err := e.DML.Trust.RevokeIdentity(e.Ctx, e.Admin, "payments-release"); err != nil {
				t.Fatal(err)
			}
		}, ciRelease, signing.IdentityMismatch},
		{"root revoked", func(t *testing.T, e *keylessEnv) {
			if err := e.DML.Trust.RevokeTrustedRoot(e.Ctx, e.Admin, "ci-sigstore"); err != nil {
				t.Fatal(err)
			}
		}, ciRelease, signing.CertificateUntrusted},
		{"another Sigstore's certificate", func(t *testing.T, e *keylessEnv) {
			e.sigstore = testsigstore.New(t)
		}, ciRelease, signing.CertificateUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newKeylessEnv(t)
			pushTarball(t, e.Env, e.pipeline, "1.0")
			if tt.change != nil {
				tt.change(t, e)
			}
			_, _, err := e.present("1.0", catalog.EvidenceSignature, e.sigstore.SignBlob(t, tt.signer, ciIssuer, e.content, time.Now().Add(5*time.Minute)))
			if signing.ReasonOf(err) != tt.want {
				t.Fatalf("AddEvidence: %v; want %s", err, tt.want)
			}
			if list, err := e.DML.Catalog.ListEvidence(e.Ctx, "payments/api", "1.0"); err != nil || len(list) != 0 {
				t.Errorf("evidence = %d, %v; want none stored", len(list), err)
			}
		})
	}
}

// TestRevokedIdentityStopsCountingForAdmission: evidence an identity
// signed before it was revoked no longer counts toward a new admission,
// exactly as a revoked key's.
func TestRevokedIdentityStopsCountingForAdmission(t *testing.T) {
	e := newKeylessEnv(t)
	a := pushTarball(t, e.Env, e.pipeline, "1.0")
	if _, _, err := e.present("1.0", catalog.EvidenceSignature, e.sigstore.SignBlob(t, ciRelease, ciIssuer, e.content, time.Now().Add(5*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := e.DML.Trust.RevokeIdentity(e.Ctx, e.Admin, "payments-release"); err != nil {
		t.Fatal(err)
	}
	// A second identity for the same workflow attests the tests; the
	// signature by the revoked one does not count any more.
	if _, err := e.DML.Trust.AddIdentity(e.Ctx, e.Admin, trust.Identity{ID: "payments-release-2", Root: "ci-sigstore", Issuer: ciIssuer, Subject: ciRelease}); err != nil {
		t.Fatal(err)
	}
	policy := `{"rules":[{"match":"payments/*","signatures":{"keys":["payments-release"]},
		"attestations":[{"predicateType":"` + domaintest.TestResult + `","keys":["payments-release-2"]}]}]}`
	if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policy)); err != nil {
		t.Fatal(err)
	}
	_, got, err := e.present("1.0", catalog.EvidenceAttestation, e.testsPassed(t, ciRelease, map[string]string{"sha256": a.Digest.Encoded()}))
	if err != nil {
		t.Fatal(err)
	}
	if got.State != catalog.StateQuarantined || !strings.Contains(strings.Join(got.Admission.Unmet, "; "), "inactive") {
		t.Fatalf("state = %s, unmet %q; want quarantined: the revoked identity's signature is not counted", got.State, got.Admission.Unmet)
	}
}
