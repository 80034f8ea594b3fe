package catalog_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// TestTrustChangeCountsFromNextDecision: admission keeps the parsed policy
// and the loaded verifiers between decisions, and every change of trust
// counts from the very next decision on. Each case makes decisions first
// (so that what they loaded is kept), changes the trust, and decides
// again.
func TestTrustChangeCountsFromNextDecision(t *testing.T) {
	signature := func(t *testing.T, version string) catalog.EvidenceRequest {
		fx := evidenceFixtures["signature"]
		return catalog.EvidenceRequest{Name: "payments/api", Version: version, Kind: fx.kind, Body: domaintest.Fixture(t, fx.file)}
	}
	tests := func(t *testing.T, version string) catalog.EvidenceRequest {
		fx := evidenceFixtures["tests passed"]
		return catalog.EvidenceRequest{Name: "payments/api", Version: version, Kind: fx.kind, Body: domaintest.Fixture(t, fx.file)}
	}
	t.Run("key revoked", func(t *testing.T) {
		e := domaintest.NewEnv(t)
		e.TrustCI()
		pipeline := e.Principal("pipeline", nil, access.RolePublisher)
		pushTarball(t, e, pipeline, "1.0")
		if _, a, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, signature(t, "1.0")); err != nil || a.State != catalog.StateQuarantined {
			t.Fatalf("signature: %s, %v; want quarantined, the tests missing", a.State, err)
		}
		if err := e.DML.Trust.RevokeTrustKey(e.Ctx, e.Admin, "ci"); err != nil {
			t.Fatal(err)
		}
		a, err := e.DML.Catalog.Artifact(e.Ctx, "payments/api", "1.0")
		if err != nil || !strings.Contains(strings.Join(a.Admission.Unmet, "; "), "key ci inactive") {
			t.Fatalf("after the revocation: %+v, %v; want the signature by ci not counted", a.Admission, err)
		}
		if _, _, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, tests(t, "1.0")); signing.ReasonOf(err) != signing.UntrustedKey {
			t.Fatalf("tests signed by the revoked key: %v; want untrusted", err)
		}
	})
	t.Run("key added", func(t *testing.T) {
		e := domaintest.NewEnv(t)
		if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policies["signature only"])); err != nil {
			t.Fatal(err)
		}
		pipeline := e.Principal("pipeline", nil, access.RolePublisher)
		pushTarball(t, e, pipeline, "1.0")
		if _, _, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, signature(t, "1.0")); signing.ReasonOf(err) != signing.UntrustedKey {
			t.Fatalf("a signature by a key not registered: %v; want untrusted", err)
		}
		if _, err := e.DML.Trust.AddTrustKey(e.Ctx, e.Admin, trustKeyCI(t)); err != nil {
			t.Fatal(err)
		}
		if _, a, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, signature(t, "1.0")); err != nil || a.State != catalog.StateAdmitted {
			t.Fatalf("the signature once its key is registered: %s, %v; want admitted", a.State, err)
		}
	})
	t.Run("policy changed", func(t *testing.T) {
		e := domaintest.NewEnv(t)
		e.TrustCI()
		pipeline := e.Principal("pipeline", nil, access.RolePublisher)
		pushTarball(t, e, pipeline, "1.0")
		if _, a, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, signature(t, "1.0")); err != nil || a.State != catalog.StateQuarantined {
			t.Fatalf("signature: %s, %v; want quarantined, the tests missing", a.State, err)
		}
		pv, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policies["signature only"]))
		if err != nil {
			t.Fatal(err)
		}
		// The change re-decides the quarantined version with the new
		// policy, and a new version is decided with it too.
		a, err := e.DML.Catalog.Artifact(e.Ctx, "payments/api", "1.0")
		if err != nil || a.State != catalog.StateAdmitted || a.Admission.PolicyVersion != pv.Version {
			t.Fatalf("1.0 after the policy change: %s %+v, %v; want admitted by policy v%d", a.State, a.Admission, err, pv.Version)
		}
		pushTarball(t, e, pipeline, "2.0")
		if _, a, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, signature(t, "2.0")); err != nil || a.State != catalog.StateAdmitted || a.Admission.PolicyVersion != pv.Version {
			t.Fatalf("2.0 signed: %s %+v, %v; want admitted by policy v%d", a.State, a.Admission, err, pv.Version)
		}
	})
	keylessSignature := func(t *testing.T, e *keylessEnv) []byte {
		return e.sigstore.SignBlob(t, ciRelease, ciIssuer, e.content, time.Now().Add(5*time.Minute))
	}
	t.Run("root and identity added", func(t *testing.T) {
		e := newKeylessEnv(t)
		pushTarball(t, e.Env, e.pipeline, "1.0")
		if _, _, err := e.present("1.0", catalog.EvidenceSignature, keylessSignature(t, e)); err != nil {
			t.Fatal(err)
		}
		// Another Sigstore and an identity of it: refused until both are
		// trusted.
		other := newKeylessEnv(t)
		if _, _, err := e.present("1.0", catalog.EvidenceAttestation, other.testsPassed(t, ciRelease, map[string]string{"sha256": digestOf(e.content)})); signing.ReasonOf(err) != signing.CertificateUntrusted {
			t.Fatalf("tests signed through a Sigstore not trusted: %v; want %s", err, signing.CertificateUntrusted)
		}
		if _, _, err := e.DML.Trust.PutTrustedRoot(e.Ctx, e.Admin, "other-sigstore", other.sigstore.RootJSON); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.present("1.0", catalog.EvidenceAttestation, other.testsPassed(t, ciRelease, map[string]string{"sha256": digestOf(e.content)})); signing.ReasonOf(err) != signing.IdentityMismatch {
			t.Fatalf("tests signed through the new root, by no identity of it: %v; want %s", err, signing.IdentityMismatch)
		}
		if _, err := e.DML.Trust.AddIdentity(e.Ctx, e.Admin, trust.Identity{ID: "payments-release-other", Root: "other-sigstore", Issuer: ciIssuer, Subject: ciRelease}); err != nil {
			t.Fatal(err)
		}
		ev, _, err := e.present("1.0", catalog.EvidenceAttestation, other.testsPassed(t, ciRelease, map[string]string{"sha256": digestOf(e.content)}))
		if err != nil || ev.KeyID != "payments-release-other" {
			t.Fatalf("tests signed by the new identity: %s, %v; want accepted as payments-release-other", ev.KeyID, err)
		}
	})
	for _, tc := range []struct {
		name   string
		revoke func(e *keylessEnv) error
		want   signing.Reason
	}{
		{"identity revoked", func(e *keylessEnv) error { return e.DML.Trust.RevokeIdentity(e.Ctx, e.Admin, "payments-release") }, signing.IdentityMismatch},
		{"root revoked", func(e *keylessEnv) error { return e.DML.Trust.RevokeTrustedRoot(e.Ctx, e.Admin, "ci-sigstore") }, signing.CertificateUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newKeylessEnv(t)
			a := pushTarball(t, e.Env, e.pipeline, "1.0")
			if _, _, err := e.present("1.0", catalog.EvidenceSignature, keylessSignature(t, e)); err != nil {
				t.Fatal(err)
			}
			if err := tc.revoke(e); err != nil {
				t.Fatal(err)
			}
			_, _, err := e.present("1.0", catalog.EvidenceAttestation, e.testsPassed(t, ciRelease, map[string]string{"sha256": a.Digest.Encoded()}))
			if signing.ReasonOf(err) != tc.want {
				t.Fatalf("tests after the revocation: %v; want %s", err, tc.want)
			}
		})
	}
}

func digestOf(content []byte) string {
	return digest.FromBytes(content).Encoded()
}

// TestEvidenceAndItsDecisionOneWrite: the evidence that admits an
// artifact and the decision it brings are written in one transaction,
// and so is every other step of an admission (a push; evidence that
// leaves the artifact quarantined): one transaction records the step's
// events (the blobs' own bookkeeping records none). The events are those
// of the steps, in their order: pushed, evidence added twice, admission
// decided, with the decision's details.
func TestEvidenceAndItsDecisionOneWrite(t *testing.T) {
	e := domaintest.NewEnv(t)
	e.TrustCI()
	pipeline := e.Principal("pipeline", nil, access.RolePublisher)
	// A write transaction is observed when it commits, then the events it
	// recorded: each event is counted against the last write observed.
	var (
		writes   int
		recorded = map[int][]string{}
	)
	e.DML.ObserveDatabase(func(op string, _ time.Duration, _ bool) {
		if op == sqlstore.OpWrite {
			writes++
		}
	})
	e.DML.ObserveEvents(func(ev audit.Event) { recorded[writes] = append(recorded[writes], ev.Action) })
	before := len(events(t, e))
	step := func(what string, fn func() catalog.Artifact, want catalog.ArtifactState, actions ...string) {
		t.Helper()
		clear(recorded)
		if a := fn(); a.State != want {
			t.Fatalf("%s: %s; want %s", what, a.State, want)
		}
		if len(recorded) != 1 {
			t.Errorf("%s: events recorded by %d write transactions (%v); want 1", what, len(recorded), recorded)
		}
		for _, got := range recorded {
			if !slices.Equal(got, actions) {
				t.Errorf("%s: one transaction recorded %v; want %v", what, got, actions)
			}
		}
	}
	var a catalog.Artifact
	step("push", func() catalog.Artifact { a = pushTarball(t, e, pipeline, "1.0"); return a }, catalog.StateQuarantined, catalog.ActionArtifactPushed)
	for _, name := range []string{"signature", "tests passed"} {
		want, actions := catalog.StateQuarantined, []string{catalog.ActionEvidenceAdded}
		if name == "tests passed" {
			want, actions = catalog.StateAdmitted, []string{catalog.ActionEvidenceAdded, catalog.ActionAdmissionDecided}
		}
		step(name, func() catalog.Artifact {
			fx := evidenceFixtures[name]
			_, a, err := e.DML.Catalog.AddEvidence(e.Ctx, pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "1.0", Kind: fx.kind, Body: domaintest.Fixture(t, fx.file)})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return a
		}, want, actions...)
	}
	evs := events(t, e)[before:]
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
	}
	if want := []string{catalog.ActionArtifactPushed, catalog.ActionEvidenceAdded, catalog.ActionEvidenceAdded, catalog.ActionAdmissionDecided}; !slices.Equal(actions, want) {
		t.Fatalf("events = %v; want %v", actions, want)
	}
	admitted, err := e.DML.Catalog.Artifact(e.Ctx, "payments/api", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	var det struct {
		From, State   catalog.ArtifactState
		Rule          string
		PolicyVersion int64
		Evidence      []string
		ReceiptSHA256 string `json:"receiptSha256"`
	}
	if err := json.Unmarshal(evs[3].Details, &det); err != nil {
		t.Fatal(err)
	}
	if det.From != catalog.StateQuarantined || det.State != catalog.StateAdmitted || det.Rule != "payments/*" || det.PolicyVersion != admitted.Admission.PolicyVersion ||
		len(det.Evidence) != 2 || det.ReceiptSHA256 != digest.FromBytes(admitted.Admission.Receipt).Encoded() {
		t.Errorf("admission details = %s; want from quarantined to admitted by payments/* with both pieces of evidence and the receipt's digest", evs[3].Details)
	}
}

func events(t *testing.T, e *domaintest.Env) []audit.Event {
	t.Helper()
	evs, err := e.Meta.Audit().Events(e.Ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
