package client_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/access"
	"github.com/opencontainers/go-digest"
)

func releaseFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cosign", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// admittedArtifact is a server where "pipeline" pushed payments/api 1.4.2
// and got it admitted with its cosign signature.
func admittedArtifact(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.admin.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "ci", PublicKey: string(releaseFixture(t, "cosign.pub"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Trust().SetPolicy(ctx, []byte("rules:\n  - match: payments/*\n    signatures: {keys: [ci]}\n")); err != nil {
		t.Fatal(err)
	}
	pub := e.as(t, "pipeline", access.RolePublisher)
	if _, _, err := pub.Artifacts().Push(ctx, pushReq("payments/api", "1.4.2", releaseFixture(t, "payments-api-1.4.2.tar.gz"))); err != nil {
		t.Fatal(err)
	}
	_, a, err := pub.Evidence().AddSignature(ctx, "payments/api", "1.4.2", releaseFixture(t, "payments-api-1.4.2.tar.gz.sig"))
	if err != nil {
		t.Fatal(err)
	}
	if a.State != "admitted" {
		t.Fatalf("artifact %s, want admitted", a.State)
	}
	return e
}

func deployer(t *testing.T, e env, name string, envs ...string) *client.Client {
	t.Helper()
	tok, err := e.admin.Tokens().Create(context.Background(), wire.TokenRequest{Name: name, Roles: []string{"deployer"}, Environments: envs})
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, e.url, tok.Token)
}

func TestReleaseLifecycle(t *testing.T) {
	ctx := context.Background()
	e := admittedArtifact(t)
	rm := e.as(t, "rm", access.RoleReleaseManager)
	alice := e.as(t, "alice", access.RoleApprover)
	bob := e.as(t, "bob", access.RoleApprover)
	// The publisher of the artifact, also holding the approver role.
	pubApprover := e.as(t, "pipeline", access.RoleApprover)
	staging := deployer(t, e, "deploy-staging", "staging")
	prod := deployer(t, e, "deploy-prod", "production")

	// A window that holds now: deployments outside it are refused.
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	req := wire.CreateReleaseRequest{
		Name: "2026.11-payments",
		PlanRequest: wire.PlanRequest{
			ChangeRef: "CHG-4711", Title: "Payments November", Environments: []string{"staging", "production"},
			Plan: wire.PlanDetails{Description: "new fees", Window: &wire.Window{Start: start, End: start.Add(4 * time.Hour)}, BackoutPlan: "redeploy 2026.10", Risk: "medium"},
		},
		Artifacts: []wire.ReleaseArtifactRef{{Name: "payments/api", Version: "1.4.2"}},
		Gates:     map[string]wire.GateSetting{"deploy:production": {Approvals: 2}},
	}
	r, err := rm.Releases().Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var gates []string
	for _, g := range r.Gates {
		gates = append(gates, g.Gate)
	}
	if r.State != wire.ReleasePlanning || r.CreatedBy != "rm" || r.PlanDigest == "" || len(r.Artifacts) != 1 || r.Artifacts[0].Digest == "" ||
		!slices.Equal(gates, []string{"plan", "build", "deploy:staging", "deploy:production", "close"}) {
		t.Fatalf("created %+v", r)
	}
	if g, _ := r.Gate("deploy:production"); g.Required != 2 {
		t.Errorf("deploy:production = %+v, want 2 approvals required", g)
	}
	if g, _ := r.Gate(wire.GatePlan); !g.Open || g.ExpectedDigest != r.PlanDigest {
		t.Errorf("plan gate %+v, want open expecting %s", g, r.PlanDigest)
	}
	if !slices.Contains(r.AllowedActions, "approve:plan") || !r.Plan.Window.Start.Equal(start) {
		t.Errorf("allowed %v, window %+v", r.AllowedActions, r.Plan.Window)
	}
	_, err = rm.Releases().Create(ctx, req)
	wantCode(t, err, http.StatusConflict, "RELEASE_EXISTS")

	// Authorisation of the plan: digest-bound, separated from the
	// creator and the publishers.
	_, err = rm.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "plan", Decision: "approve", Digest: r.PlanDigest})
	wantCode(t, err, http.StatusForbidden, "DENIED")
	_, err = pubApprover.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "plan", Decision: "approve", Digest: r.PlanDigest})
	wantCode(t, err, http.StatusForbidden, "SEPARATION_OF_DUTIES")
	_, err = alice.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "plan", Decision: "approve", Digest: digest.FromString("old plan")})
	wantCode(t, err, http.StatusConflict, "STALE_APPROVAL")
	r, err = alice.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "plan", Decision: "approve", Digest: r.PlanDigest})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != wire.ReleaseBuilding {
		t.Fatalf("after the plan approval: %s", r.State)
	}
	_, err = rm.Releases().SetPlan(ctx, r.Name, req.PlanRequest)
	ce := wantCode(t, err, http.StatusConflict, "INVALID_STATE")
	if !strings.Contains(string(ce.Detail), `"state":"building"`) {
		t.Errorf("INVALID_STATE detail %s", ce.Detail)
	}

	// Build gate: a rejection needs a reason and keeps the release building.
	build, _ := r.Gate(wire.GateBuild)
	_, err = bob.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "build", Decision: "reject", Digest: build.ExpectedDigest})
	wantCode(t, err, http.StatusBadRequest, "INVALID_INPUT")
	r, err = bob.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "build", Decision: "reject", Digest: build.ExpectedDigest, Comment: "wait for the pen test"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != wire.ReleaseBuilding || r.LastRejection == nil || r.LastRejection.Comment != "wait for the pen test" || r.LastRejection.By != "bob" {
		t.Fatalf("after the rejection: %s %+v", r.State, r.LastRejection)
	}
	r, err = bob.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "build", Decision: "approve", Digest: build.ExpectedDigest})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != wire.ReleaseReleased || r.ManifestDigest != build.ExpectedDigest || r.ManifestSignature == "" || r.SealedAt == nil {
		t.Fatalf("after the build approval: %s manifest %s", r.State, r.ManifestDigest)
	}
	m, err := alice.Releases().Manifest(ctx, r.Name)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != r.ManifestDigest || m.Signature != r.ManifestSignature || !strings.Contains(string(m.Body), "payments/api") || !strings.Contains(m.MediaType, "index") {
		t.Errorf("manifest %s %q %s", m.Digest, m.MediaType, m.Body)
	}

	// Deploy gates: production needs two approvers.
	if r, err = alice.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "deploy:staging", Decision: "approve", Digest: r.ManifestDigest}); err != nil {
		t.Fatal(err)
	}
	if r.State != wire.ReleaseDeploying {
		t.Fatalf("after deploy:staging: %s", r.State)
	}
	r, err = alice.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "deploy:production", Decision: "approve", Digest: r.ManifestDigest})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := r.Gate("deploy:production"); g.Received != 1 || g.Authorized {
		t.Errorf("deploy:production after one approval: %+v", g)
	}
	r, err = bob.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "deploy:production", Decision: "approve", Digest: r.ManifestDigest})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := r.Gate("deploy:production"); g.Received != 2 || !g.Authorized || !slices.Equal(g.Approvers, []string{"alice", "bob"}) {
		t.Errorf("deploy:production after two approvals: %+v", g)
	}

	// Deployments: scoped to the token's environments, in plan order.
	_, err = staging.Releases().RecordDeployment(ctx, r.Name, wire.DeploymentRequest{Environment: "production", Target: "k8s/prod"})
	wantCode(t, err, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT")
	_, err = prod.Releases().RecordDeployment(ctx, r.Name, wire.DeploymentRequest{Environment: "production", Target: "k8s/prod"})
	wantCode(t, err, http.StatusConflict, "DEPLOYMENT_OUT_OF_ORDER")
	res, err := staging.Releases().RecordDeployment(ctx, r.Name, wire.DeploymentRequest{Environment: "staging", Target: "k8s/staging", VerifiedDigests: []digest.Digest{r.ManifestDigest}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment.Status != wire.DeploymentInProgress || res.Deployment.By != "deploy-staging" || res.Release.State != wire.ReleaseDeploying {
		t.Fatalf("recorded %+v", res.Deployment)
	}
	_, err = rm.Releases().Cancel(ctx, r.Name, "too late")
	wantCode(t, err, http.StatusConflict, "INVALID_STATE")
	notes := "smoke tests green"
	res, err = staging.Releases().UpdateDeployment(ctx, r.Name, res.Deployment.ID, wire.DeploymentUpdate{Status: wire.DeploymentSucceeded, Notes: &notes})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment.Status != wire.DeploymentSucceeded || res.Deployment.Notes != notes || res.Deployment.FinishedAt == nil {
		t.Fatalf("updated %+v", res.Deployment)
	}
	res, err = prod.Releases().RecordDeployment(ctx, r.Name, wire.DeploymentRequest{Environment: "production", Target: "k8s/prod", Status: wire.DeploymentSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	if res.Release.State != wire.ReleaseDeployed || len(res.Release.Deployments) != 2 {
		t.Fatalf("after production: %s", res.Release.State)
	}

	// Review and close.
	r, err = rm.Releases().FileReview(ctx, r.Name, wire.ReviewRequest{Outcome: "successful", Summary: "no incidents", ObjectivesMet: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != wire.ReleaseReview || r.Review == nil || r.ReviewDigest == "" || r.Review.Incidents == nil {
		t.Fatalf("after the review: %s %+v", r.State, r.Review)
	}
	r, err = alice.Releases().Decide(ctx, r.Name, wire.ApprovalRequest{Gate: "close", Decision: "approve", Digest: r.ReviewDigest})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != wire.ReleaseClosed || len(r.AllowedActions) != 0 {
		t.Fatalf("after close: %s %v", r.State, r.AllowedActions)
	}

	page, err := alice.Releases().List(ctx, client.ReleaseFilter{State: wire.ReleaseClosed})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Releases) != 1 || page.Releases[0].Name != r.Name || len(page.Releases[0].Gates) != 5 {
		t.Fatalf("closed releases %+v", page)
	}
	got, err := alice.Releases().Get(ctx, r.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != r.Revision || got.State != wire.ReleaseClosed {
		t.Errorf("GET = rev %d %s, want rev %d closed", got.Revision, got.State, r.Revision)
	}
}

func TestReleaseCancelAndRetire(t *testing.T) {
	ctx := context.Background()
	e := admittedArtifact(t)
	rm := e.as(t, "rm", access.RoleReleaseManager)
	plan := wire.PlanRequest{ChangeRef: "CHG-1", Title: "t", Environments: []string{"staging"}}
	r, err := rm.Releases().Create(ctx, wire.CreateReleaseRequest{Name: "r1", PlanRequest: plan})
	if err != nil {
		t.Fatal(err)
	}
	old := r.PlanDigest
	plan.Plan.Risk = "low"
	if r, err = rm.Releases().SetPlan(ctx, "r1", plan); err != nil {
		t.Fatal(err)
	}
	if r.PlanDigest == old || r.Plan.Risk != "low" {
		t.Errorf("plan digest %s after a change (was %s)", r.PlanDigest, old)
	}
	if r, err = rm.Releases().SetArtifacts(ctx, "r1", []wire.ReleaseArtifactRef{{Name: "payments/api", Version: "1.4.2"}}); err != nil || len(r.Artifacts) != 1 {
		t.Fatalf("set artifacts: %v %+v", err, r.Artifacts)
	}
	_, err = rm.Releases().Manifest(ctx, "r1")
	wantCode(t, err, http.StatusNotFound, "NOT_FOUND")

	if r, err = rm.Releases().Cancel(ctx, "r1", "superseded"); err != nil || r.State != wire.ReleaseCancelled {
		t.Fatalf("cancel: %v %s", err, r.State)
	}
	_, err = rm.Releases().Cancel(ctx, "r1", "")
	wantCode(t, err, http.StatusConflict, "INVALID_STATE")

	a, err := rm.Artifacts().Retire(ctx, "payments/api", "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	if a.RetiredAt == nil || a.RetiredBy != "rm" || a.Name != "payments/api" {
		t.Errorf("retired %+v", a)
	}
	_, err = rm.Releases().Create(ctx, wire.CreateReleaseRequest{Name: "r2", PlanRequest: plan, Artifacts: []wire.ReleaseArtifactRef{{Name: "payments/api", Version: "1.4.2"}}})
	wantCode(t, err, http.StatusConflict, "ARTIFACT_RETIRED")

	_, err = rm.Releases().Get(ctx, "a/b")
	if err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("release name with a slash: %v", err)
	}
	_, err = rm.Releases().Get(ctx, "nope")
	wantCode(t, err, http.StatusNotFound, "NOT_FOUND")
}
