package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
)

// relEnv is the domain service over real storage (SQLite in a file, blobs
// in a directory), with payments/api:1.4.2 admitted and one principal per
// duty. It drives releases without HTTP.
type relEnv struct {
	t    *testing.T
	ctx  context.Context
	env  *domaintest.Env
	svc  *releases.DML
	meta *sqlstore.DB

	admin, pipeline, rm, auditor access.Principal
	// cab are ten approvers, cab-1 to cab-10.
	cab                    []access.Principal
	staging, prod, anyEnvs access.Principal
	seq                    int
}

const (
	relArtifact = "payments/api"
	relVersion  = "1.4.2"
)

func newRelEnv(t *testing.T) *relEnv { return newRelEnvOver(t, nil) }

// newRelEnvOver is newRelEnv with the blob backend wrapped by wrap (nil:
// the directory backend as it is).
func newRelEnvOver(t *testing.T, wrap func(*fs.Backend) store.Backend, opts ...func(*releases.Config)) *relEnv {
	t.Helper()
	env := domaintest.NewEnvOver(t, wrap, opts...)
	ctx, svc, admin := env.Ctx, env.DML, env.Admin
	e := &relEnv{t: t, ctx: ctx, env: env, svc: svc, meta: env.Meta, admin: admin}
	e.pipeline = e.principal("pipeline", nil, access.RolePublisher)
	e.rm = e.principal("rm", nil, access.RoleReleaseManager)
	e.auditor = e.principal("audit", nil, access.RoleAuditor)
	for i := 1; i <= 10; i++ {
		e.cab = append(e.cab, e.principal(fmt.Sprintf("cab-%d", i), nil, access.RoleApprover))
	}
	e.staging = e.principal("deploy-staging", []string{"staging"}, access.RoleDeployer)
	e.prod = e.principal("deploy-prod", []string{"production"}, access.RoleDeployer)
	e.anyEnvs = e.principal("deploy-all", []string{"staging", "qa", "production"}, access.RoleDeployer)

	env.TrustCI()
	content := domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz")
	if _, _, err := svc.Catalog.Push(ctx, e.pipeline, catalog.PushRequest{Name: relArtifact, Version: relVersion, MediaType: "application/gzip",
		Size: int64(len(content)), Body: bytes.NewReader(content)}); err != nil {
		t.Fatal(err)
	}
	sig := `{"keyId":"ci","signature":"` + strings.TrimSpace(string(domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz.sig"))) + `"}`
	if _, _, err := svc.Catalog.AddEvidence(ctx, e.pipeline, catalog.EvidenceRequest{Name: relArtifact, Version: relVersion, Kind: catalog.EvidenceSignature, Body: []byte(sig)}); err != nil {
		t.Fatal(err)
	}
	_, a, err := svc.Catalog.AddEvidence(ctx, e.pipeline, catalog.EvidenceRequest{Name: relArtifact, Version: relVersion, Kind: catalog.EvidenceAttestation,
		Body: domaintest.Fixture(t, "cosign/test-result-passed.dsse.json")})
	if err != nil {
		t.Fatal(err)
	}
	if a.State != catalog.StateAdmitted {
		t.Fatalf("%s:%s is %s, want admitted", relArtifact, relVersion, a.State)
	}
	return e
}

// use makes e report to t until t ends: subtests call it first.
func (e *relEnv) use(t *testing.T) {
	parent := e.t
	e.t = t
	t.Cleanup(func() { e.t = parent })
}

// principal issues a token and returns the principal behind it.
func (e *relEnv) principal(name string, envs []string, roles ...access.Role) access.Principal {
	e.t.Helper()
	return e.env.Principal(name, envs, roles...)
}

func (e *relEnv) nextName() string {
	e.seq++
	return fmt.Sprintf("rel-%d", e.seq)
}

// planRequest is a plan to deploy to envs, in that order.
func planRequest(description string, envs ...string) lifecycle.PlanRequest {
	return lifecycle.PlanRequest{
		ChangeRef: "CHG-1001", Title: "Payments API 1.4.2", Environments: envs,
		Plan: lifecycle.PlanDetails{Description: description, BackoutPlan: "Redeploy 1.4.1", Risk: "low"},
	}
}

// createRequest creates a release of payments/api:1.4.2 to staging then
// production with the given quorums.
func createRequest(name string, quorums map[string]int) lifecycle.CreateReleaseRequest {
	req := lifecycle.CreateReleaseRequest{
		Name: name, PlanRequest: planRequest("Roll out payments API 1.4.2", "staging", "production"),
		Artifacts: []lifecycle.ReleaseArtifactRef{{Name: relArtifact, Version: relVersion}},
	}
	if quorums != nil {
		req.Gates = map[string]lifecycle.GateSetting{}
		for g, n := range quorums {
			req.Gates[g] = lifecycle.GateSetting{Approvals: n}
		}
	}
	return req
}

// create makes a release as the release manager.
func (e *relEnv) create(quorums map[string]int) lifecycle.Release {
	e.t.Helper()
	r, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, createRequest(e.nextName(), quorums))
	if err != nil {
		e.t.Fatalf("create release: %v", err)
	}
	return r
}

func (e *relEnv) get(name string) lifecycle.Release {
	e.t.Helper()
	r, err := e.svc.Releases.Release(e.ctx, name)
	if err != nil {
		e.t.Fatalf("get release %s: %v", name, err)
	}
	return r
}

// expected is the digest an approval of gate must name now.
func (e *relEnv) expected(name, gate string) lifecycle.ApprovalRequest {
	e.t.Helper()
	r := e.get(name)
	d, err := e.svc.Releases.ExpectedDigest(e.ctx, r, gate)
	if err != nil {
		e.t.Fatalf("expected digest of %s: %v", gate, err)
	}
	return lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.DecisionApprove, Digest: d, Comment: "ok"}
}

// decide approves gate as p, naming the digest the gate expects now.
func (e *relEnv) decide(p access.Principal, name, gate string) (lifecycle.Release, error) {
	e.t.Helper()
	return e.svc.Releases.Decide(e.ctx, p, name, e.expected(name, gate))
}

func (e *relEnv) approve(p access.Principal, name, gate string) lifecycle.Release {
	e.t.Helper()
	r, err := e.decide(p, name, gate)
	if err != nil {
		e.t.Fatalf("%s approving %s of %s: %v", p.Name, gate, name, err)
	}
	return r
}

func (e *relEnv) deploy(p access.Principal, name, env string, status lifecycle.DeploymentStatus) lifecycle.Deployment {
	e.t.Helper()
	_, dep, err := e.svc.Releases.RecordDeployment(e.ctx, p, name, lifecycle.DeploymentRequest{Environment: env, Target: "k8s/" + env, Status: status})
	if err != nil {
		e.t.Fatalf("deploy %s to %s (%s): %v", name, env, status, err)
	}
	return dep
}

func (e *relEnv) updateDeployment(p access.Principal, name, id string, status lifecycle.DeploymentStatus) lifecycle.Release {
	e.t.Helper()
	r, _, err := e.svc.Releases.UpdateDeployment(e.ctx, p, name, id, lifecycle.DeploymentUpdate{Status: status})
	if err != nil {
		e.t.Fatalf("update deployment %s of %s to %s: %v", id, name, status, err)
	}
	return r
}

func reviewRequest(outcome string) lifecycle.ReviewRequest {
	return lifecycle.ReviewRequest{Outcome: outcome, Summary: "what happened", Incidents: []string{}, ObjectivesMet: outcome == "successful"}
}

// driveStates are the states driveTo reaches, in order of the path that
// reaches them. "deploying+active" has an in-progress staging deployment,
// "deploying+failed" a failed one and "deploying+rolledback" one rolled
// back.
var driveStates = []string{
	"planning", "building", "released", "deploying", "deploying+active", "deploying+failed", "deploying+rolledback",
	"deployed", "review", "closed", "cancelled",
}

// driveTo creates a release with one approval per gate and drives it to
// state, with cab-1 deciding every gate.
func (e *relEnv) driveTo(state string) lifecycle.Release {
	e.t.Helper()
	if !slices.Contains(driveStates, state) {
		e.t.Fatalf("driveTo: unknown state %s", state)
	}
	r := e.create(nil)
	name, cab := r.Name, e.cab[0]
	step := func(s string) bool { return state == s }
	if step("cancelled") {
		r, err := e.svc.Releases.CancelRelease(e.ctx, e.rm, name, "not needed")
		if err != nil {
			e.t.Fatal(err)
		}
		return r
	}
	if step("planning") {
		return r
	}
	r = e.approve(cab, name, lifecycle.GatePlan)
	if step("building") {
		return r
	}
	r = e.approve(cab, name, lifecycle.GateBuild)
	if step("released") {
		return r
	}
	r = e.approve(cab, name, lifecycle.DeployGate("staging"))
	switch state {
	case "deploying":
		return r
	case "deploying+active":
		e.deploy(e.staging, name, "staging", lifecycle.DeploymentInProgress)
		return e.get(name)
	case "deploying+failed":
		e.deploy(e.staging, name, "staging", lifecycle.DeploymentFailed)
		return e.get(name)
	case "deploying+rolledback":
		dep := e.deploy(e.staging, name, "staging", lifecycle.DeploymentInProgress)
		return e.updateDeployment(e.staging, name, dep.ID, lifecycle.DeploymentRolledBack)
	}
	e.deploy(e.staging, name, "staging", lifecycle.DeploymentSucceeded)
	e.approve(cab, name, lifecycle.DeployGate("production"))
	e.deploy(e.prod, name, "production", lifecycle.DeploymentSucceeded)
	r = e.get(name)
	if step("deployed") {
		return r
	}
	r, err := e.svc.Releases.FileReview(e.ctx, e.rm, name, reviewRequest("successful"))
	if err != nil {
		e.t.Fatal(err)
	}
	if step("review") {
		return r
	}
	return e.approve(cab, name, lifecycle.GateClose)
}

// wantErr fails unless err matches want (nil: no error).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: %v, want success", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

// quorums returns the quorum each gate of r shows.
func (e *relEnv) quorums(r lifecycle.Release) map[string]int {
	e.t.Helper()
	views, err := e.svc.Releases.GateViews(e.ctx, r)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, v := range views {
		out[v.Gate] = v.Required
	}
	return out
}

// releaseEvents lists the events about release name, oldest first.
func (e *relEnv) releaseEvents(name string) []audit.Event {
	e.t.Helper()
	var out []audit.Event
	var after int64
	for range 1000 { // bounded: a test makes far fewer events
		page, err := e.meta.Audit().Events(e.ctx, after, 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		for _, ev := range page {
			if ev.Subject == "release:"+name {
				out = append(out, ev)
			}
		}
		after = page[len(page)-1].Seq
	}
	e.t.Fatal("events did not end")
	return nil
}
