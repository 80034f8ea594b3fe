package catalog_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
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

// TestKeylessPublicGoodNpmProvenance is the real thing end to end: the
// npm tarballs of sigstore 1.3.0 and 2.0.0, pushed as artifacts, are
// admitted on the npm provenance bundles their GitHub Actions release
// workflow signed with the public-good Sigstore (testdata/
// sigstore-public-good), verified offline against the public-good
// trusted root, by an identity pinned to that workflow. The statements
// name the tarballs by sha512 only, which the catalogue computes from the
// content. scripts/test.sh downloads the tarballs from the npm registry
// (DML_TEST_NPM_TARBALLS); they are third-party code, never committed.
func TestKeylessPublicGoodNpmProvenance(t *testing.T) {
	dir := os.Getenv("DML_TEST_NPM_TARBALLS")
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DML_TEST_NPM_TARBALLS is not set: scripts/test.sh downloads the npm tarballs this test admits")
		}
		t.Skip("DML_TEST_NPM_TARBALLS is not set; scripts/test.sh downloads the tarballs")
	}
	const workflow = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
	for _, tc := range []struct {
		version, predicateType, builder string
	}{
		{"1.3.0", "https://slsa.dev/provenance/v0.2", "https://github.com/actions/runner"},
		{"2.0.0", "https://slsa.dev/provenance/v1", "https://github.com/actions/runner/github-hosted"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			e := domaintest.NewEnv(t)
			pipeline := e.Principal("pipeline", nil, access.RolePublisher)
			if _, _, err := e.DML.Trust.PutTrustedRoot(e.Ctx, e.Admin, "public-good", domaintest.Fixture(t, "sigstore-public-good/trusted_root.json")); err != nil {
				t.Fatal(err)
			}
			if _, err := e.DML.Trust.AddIdentity(e.Ctx, e.Admin, trust.Identity{ID: "sigstore-js-release", Root: "public-good",
				Issuer: "https://token.actions.githubusercontent.com", Subject: workflow,
				Claims: map[string]string{"sourceRepositoryURI": "https://github.com/sigstore/sigstore-js", "runnerEnvironment": "github-hosted"}}); err != nil {
				t.Fatal(err)
			}
			policy := `{"rules":[{"match":"npm/*","attestations":[{"predicateType":"` + tc.predicateType + `","keys":["sigstore-js-release"],"builderIds":["` + tc.builder + `"]}]}]}`
			if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policy)); err != nil {
				t.Fatal(err)
			}
			content, err := os.ReadFile(filepath.Join(dir, "sigstore-"+tc.version+".tgz"))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.DML.Catalog.Push(e.Ctx, pipeline, catalog.PushRequest{Name: "npm/sigstore", Version: tc.version, MediaType: "application/gzip",
				Size: int64(len(content)), Body: bytes.NewReader(content)}); err != nil {
				t.Fatal(err)
			}
			ev, a, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, catalog.EvidenceRequest{Name: "npm/sigstore", Version: tc.version, Kind: catalog.EvidenceAttestation,
				Body: domaintest.Fixture(t, "sigstore-public-good/sigstore-"+tc.version+".provenance.sigstore.json")})
			if err != nil {
				t.Fatalf("npm provenance of sigstore %s: %v", tc.version, err)
			}
			if a.State != catalog.StateAdmitted {
				t.Fatalf("state = %s (%+v); want admitted", a.State, a.Admission)
			}
			if k := ev.Keyless; ev.KeyID != "sigstore-js-release" || k == nil || k.Subject != workflow || k.Root != "public-good" || k.LogIndex == 0 || k.IntegratedTime.IsZero() {
				t.Errorf("evidence signer %s, keyless %+v", ev.KeyID, ev.Keyless)
			}
		})
	}
}
