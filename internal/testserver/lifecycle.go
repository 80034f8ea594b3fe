package testserver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
)

// FixturesDir is the cosign fixtures directory (testdata/cosign at the
// module root), made by the real cosign v2.6.2.
func FixturesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "cosign")
}

// Lifecycle is what FullLifecycle created.
type Lifecycle struct {
	Artifact, Version, Release string
	// Tokens by principal name: pipeline, rm, cab-1, cab-2,
	// deploy-staging, deploy-prod, audit.
	Tokens map[string]string
}

// FullLifecycle drives one artifact and one release through every phase
// with distinct principals, through the domain service: the cosign
// fixture tarball is pushed as payments/api 1.4.2, signed and attested
// with the fixture evidence, admitted under a trust policy, and released
// to staging and production (two approvers), reviewed and closed.
func FullLifecycle(t testing.TB, svc *releases.DML) Lifecycle {
	t.Helper()
	ctx := context.Background()
	fx := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(FixturesDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	admin, err := svc.Access.Authenticate(ctx, AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	lc := Lifecycle{Artifact: "payments/api", Version: "1.4.2", Release: "2026.11-payments", Tokens: map[string]string{}}
	principal := func(name string, envs []string, roles ...access.Role) access.Principal {
		issued, err := svc.Access.IssueToken(ctx, admin, access.TokenRequest{Name: name, Roles: roles, Environments: envs})
		if err != nil {
			t.Fatalf("issue %s: %v", name, err)
		}
		lc.Tokens[name] = issued.Secret
		p, err := svc.Access.Authenticate(ctx, issued.Secret)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pipeline := principal("pipeline", nil, access.RolePublisher)
	rm := principal("rm", nil, access.RoleReleaseManager)
	cab1 := principal("cab-1", nil, access.RoleApprover)
	cab2 := principal("cab-2", nil, access.RoleApprover)
	staging := principal("deploy-staging", []string{"staging"}, access.RoleDeployer)
	prod := principal("deploy-prod", []string{"production"}, access.RoleDeployer)
	principal("audit", nil, access.RoleAuditor)

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err = svc.Trust.AddTrustKey(ctx, admin, trust.AddTrustKeyRequest{ID: "ci", PublicKey: string(fx("cosign.pub")), Comment: "CI signing key"})
	must("add key", err)
	_, err = svc.Trust.SetTrustPolicy(ctx, admin, []byte(`{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]},
		"attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"]}]}]}`))
	must("set policy", err)
	content := fx("payments-api-1.4.2.tar.gz")
	_, _, err = svc.Catalog.Push(ctx, pipeline, catalog.PushRequest{Name: lc.Artifact, Version: lc.Version, MediaType: "application/gzip", Size: int64(len(content)), Body: bytes.NewReader(content)})
	must("push", err)
	sig := `{"keyId":"ci","signature":"` + strings.TrimSpace(string(fx("payments-api-1.4.2.tar.gz.sig"))) + `"}`
	_, _, err = svc.Catalog.AddEvidence(ctx, pipeline, catalog.EvidenceRequest{Name: lc.Artifact, Version: lc.Version, Kind: catalog.EvidenceSignature, Body: []byte(sig)})
	must("signature", err)
	_, a, err := svc.Catalog.AddEvidence(ctx, pipeline, catalog.EvidenceRequest{Name: lc.Artifact, Version: lc.Version, Kind: catalog.EvidenceAttestation, Body: fx("test-result-passed.dsse.json")})
	must("attestation", err)
	if a.State != catalog.StateAdmitted {
		t.Fatalf("artifact %s after evidence, want admitted", a.State)
	}

	r, err := svc.Releases.CreateRelease(ctx, rm, lifecycle.CreateReleaseRequest{
		Name: lc.Release,
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-1042", Title: "Payments API 1.4.2", Environments: []string{"staging", "production"},
			Plan: lifecycle.PlanDetails{Description: "refund fixes", BackoutPlan: "redeploy 1.4.1", Risk: "low"}},
		Artifacts: []lifecycle.ReleaseArtifactRef{{Name: lc.Artifact, Version: lc.Version}},
		Gates:     map[string]lifecycle.GateSetting{"deploy:production": {Approvals: 2}},
	})
	must("create release", err)
	approve := func(p access.Principal, gate string) {
		t.Helper()
		cur, err := svc.Releases.Release(ctx, lc.Release)
		must("get release", err)
		d, err := svc.Releases.ExpectedDigest(ctx, cur, gate)
		must("expected digest", err)
		r, err = svc.Releases.Decide(ctx, p, lc.Release, lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.DecisionApprove, Digest: d, Comment: "ok"})
		must("approve "+gate, err)
	}
	approve(cab1, lifecycle.GatePlan)
	approve(cab1, lifecycle.GateBuild)
	approve(cab1, "deploy:staging")
	_, _, err = svc.Releases.RecordDeployment(ctx, staging, lc.Release, lifecycle.DeploymentRequest{Environment: "staging", Target: "k8s/staging", Status: lifecycle.DeploymentSucceeded})
	must("deploy staging", err)
	approve(cab1, "deploy:production")
	approve(cab2, "deploy:production")
	_, dep, err := svc.Releases.RecordDeployment(ctx, prod, lc.Release, lifecycle.DeploymentRequest{Environment: "production", Target: "k8s/prod-eu", Status: lifecycle.DeploymentInProgress})
	must("deploy production", err)
	_, _, err = svc.Releases.UpdateDeployment(ctx, prod, lc.Release, dep.ID, lifecycle.DeploymentUpdate{Status: lifecycle.DeploymentSucceeded})
	must("production succeeded", err)
	_, err = svc.Releases.FileReview(ctx, rm, lc.Release, lifecycle.ReviewRequest{Outcome: "successful", Summary: "no incidents", Incidents: []string{}, ObjectivesMet: true})
	must("review", err)
	approve(cab2, lifecycle.GateClose)
	if r.State != lifecycle.ReleaseClosed {
		t.Fatalf("release %s at the end, want closed", r.State)
	}
	return lc
}
