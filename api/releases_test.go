package api_test

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TestReleaseLifecycle walks one release through every phase with a
// distinct principal for every duty, checking the state after each step.
func TestReleaseLifecycle(t *testing.T) {
	e := newRelEnv(t, true)
	const name = "payments-2030.01"
	url := e.releaseURL(name)
	gates := map[string]any{"deploy:production": map[string]int{"approvals": 2}}

	// Create (planning).
	var r releaseView
	if code := apiCall(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, createBody(name, gates), &r); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	wantState(t, "create", r, "planning")
	if r.CreatedBy != "rm" || r.PlanDigest == "" || len(r.Artifacts) != 1 || r.Artifacts[0].Digest != e.artifact(t).Digest {
		t.Fatalf("created release %+v", r)
	}
	if g := r.gate(t, "deploy:production"); g.Required != 2 || g.Authorized {
		t.Fatalf("deploy:production gate %+v, want 2 approvals required", g)
	}
	if g := r.gate(t, "plan"); !g.Open || g.Required != 1 || g.ExpectedDigest != r.PlanDigest {
		t.Fatalf("plan gate %+v", g)
	}
	var ev errorView
	code := apiCall(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, createBody(name, gates), &ev)
	wantError(t, "creating it twice", code, ev, http.StatusConflict, "RELEASE_EXISTS")

	// The auditor reads but does not decide.
	var list struct {
		Releases []releaseView `json:"releases"`
	}
	if code := apiCall(t, http.MethodGet, e.url+"/api/v1/releases", e.auditor, nil, &list); code != http.StatusOK || len(list.Releases) != 1 || list.Releases[0].Name != name {
		t.Fatalf("auditor listing releases: %d %+v", code, list)
	}
	code, _, ev = e.decide(t, e.auditor, name, "plan", "approve")
	wantError(t, "auditor approving", code, ev, http.StatusForbidden, "DENIED")

	// Plan approved → building.
	r = e.approve(t, e.cab1, name, "plan")
	wantState(t, "plan approved", r, "building")
	if g := r.gate(t, "plan"); !g.Authorized || !slices.Equal(g.Approvers, []string{"cab-1"}) {
		t.Fatalf("plan gate after approval %+v", g)
	}

	// Build approved → released, the manifest sealed.
	buildDigest := e.get(t, name).gate(t, "build").ExpectedDigest
	r = e.approve(t, e.cab2, name, "build")
	wantState(t, "build approved", r, "released")
	if r.ManifestDigest == "" || r.ManifestDigest != buildDigest || r.ManifestSignature == "" {
		t.Fatalf("sealed manifest %q (build gate expected %q), signature %q", r.ManifestDigest, buildDigest, r.ManifestSignature)
	}

	// deploy:staging approved → deploying.
	r = e.approve(t, e.cab1, name, "deploy:staging")
	wantState(t, "deploy:staging approved", r, "deploying")

	// The staging deployer records success; production is still ahead.
	dep, r := e.mustDeploy(t, e.stagingDeployer, name, "staging", "succeeded")
	wantState(t, "staging succeeded", r, "deploying")
	if dep.By != stagingDeployerName || dep.Status != "succeeded" || dep.ID == "" {
		t.Fatalf("staging deployment %+v", dep)
	}

	// deploy:production needs two distinct approvers.
	r = e.approve(t, e.cab1, name, "deploy:production")
	wantState(t, "one production approval", r, "deploying")
	if g := r.gate(t, "deploy:production"); g.Received != 1 || g.Authorized {
		t.Fatalf("deploy:production after one approval %+v", g)
	}
	code, _, _, ev = e.deploy(t, e.prodDeployer, name, "production", "in_progress")
	wantError(t, "production deployment with one of two approvals", code, ev, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT")
	r = e.approve(t, e.cab2, name, "deploy:production")
	wantState(t, "two production approvals", r, "deploying")
	if g := r.gate(t, "deploy:production"); g.Received != 2 || !g.Authorized {
		t.Fatalf("deploy:production after two approvals %+v", g)
	}

	// The auditor cannot deploy: it lacks the deployer role, which the
	// access matrix checks before any environment (DENIED, not
	// NOT_AUTHORIZED_FOR_ENVIRONMENT, which a deployer gets outside its
	// environments).
	code, _, _, ev = e.deploy(t, e.auditor, name, "production", "in_progress")
	wantError(t, "auditor deploying", code, ev, http.StatusForbidden, "DENIED")

	// Production: in_progress, then PATCH succeeded → deployed.
	prod, r := e.mustDeploy(t, e.prodDeployer, name, "production", "in_progress")
	wantState(t, "production in progress", r, "deploying")
	code, _, ev = e.updateDeployment(t, e.auditor, name, prod.ID, "succeeded")
	wantError(t, "auditor updating a deployment", code, ev, http.StatusForbidden, "DENIED")
	code, r, ev = e.updateDeployment(t, e.prodDeployer, name, prod.ID, "succeeded")
	if code != http.StatusOK {
		t.Fatalf("production succeeded: %d %+v", code, ev)
	}
	wantState(t, "production succeeded", r, "deployed")

	// Review filed → review.
	code, r, ev = e.fileReview(t, name)
	if code != http.StatusOK {
		t.Fatalf("review: %d %+v", code, ev)
	}
	wantState(t, "review filed", r, "review")
	if r.Review == nil || r.Review.By != "rm" || r.ReviewDigest == "" || r.gate(t, "close").ExpectedDigest != r.ReviewDigest {
		t.Fatalf("review %+v digest %q close gate %+v", r.Review, r.ReviewDigest, r.gate(t, "close"))
	}
	code, _, ev = e.decide(t, e.auditor, name, "close", "approve")
	wantError(t, "auditor closing", code, ev, http.StatusForbidden, "DENIED")

	// Close approved → closed.
	r = e.approve(t, e.cab2, name, "close")
	wantState(t, "close approved", r, "closed")
	if len(r.AllowedActions) != 0 {
		t.Errorf("closed release allows %q", r.AllowedActions)
	}

	// The record, as the auditor sees it.
	r = e.getAs(t, e.auditor, name)
	wantState(t, "auditor view", r, "closed")
	var by []string
	for _, a := range r.Approvals {
		by = append(by, a.Gate+"="+a.By)
	}
	wantApprovals := []string{"plan=cab-1", "build=cab-2", "deploy:staging=cab-1", "deploy:production=cab-1", "deploy:production=cab-2", "close=cab-2"}
	if !slices.Equal(by, wantApprovals) {
		t.Errorf("approvals %q, want %q", by, wantApprovals)
	}
	if len(r.Deployments) != 2 || r.Deployments[0].Environment != "staging" || r.Deployments[1].Environment != "production" ||
		r.Deployments[1].Status != "succeeded" || r.Deployments[1].By != prodDeployerName {
		t.Errorf("deployments %+v", r.Deployments)
	}
	for _, g := range r.Gates {
		if !g.Authorized || g.Open {
			t.Errorf("closed release gate %+v: want authorised and not open", g)
		}
	}
	if code, _, _ := fetch(t, url+"/manifest", e.auditor); code != http.StatusOK {
		t.Errorf("auditor reading the manifest: %d", code)
	}
	if code, _, body := fetch(t, e.artifactURL+"/content", e.auditor); code != http.StatusOK || !bytes.Equal(body, fixture(t, "payments-api-1.4.2.tar.gz")) {
		t.Errorf("auditor pulling content: %d", code)
	}
}

// tableActions are the actions of TestReleaseStateActionTable with the
// name AllowedActions gives them.
var tableActions = []struct{ name, allowedAs string }{
	{"set-plan", "set-plan"},
	{"set-artifacts", "set-artifacts"},
	{"approve plan", "approve:plan"},
	{"approve build", "approve:build"},
	{"approve deploy:staging", "approve:deploy:staging"},
	{"deploy", "deploy"},
	{"update-deployment", "update-deployment"},
	{"review", "review"},
	{"approve close", "approve:close"},
	{"cancel", "cancel"},
}

// TestReleaseStateActionTable tries every action in every state: the
// allowed ones succeed; every other one is refused with INVALID_STATE and
// changes nothing.
func TestReleaseStateActionTable(t *testing.T) {
	allowed := map[string][]string{
		"planning":         {"set-plan", "set-artifacts", "approve plan", "cancel"},
		"building":         {"set-artifacts", "approve build", "cancel"},
		"released":         {"approve deploy:staging", "cancel"},
		"deploying":        {"deploy", "update-deployment", "cancel"},
		"deploying+active": {"deploy", "update-deployment"}, // a deployment exists: no cancel
		"deployed":         {"review"},
		"review":           {"review", "approve close"},
		"closed":           {},
		"cancelled":        {},
	}
	states := []string{"planning", "building", "released", "deploying", "deploying+active", "deployed", "review", "closed", "cancelled"}
	e := newRelEnv(t, true)

	do := func(t *testing.T, action string, r releaseView) (int, errorView) {
		t.Helper()
		var code int
		var ev errorView
		switch action {
		case "set-plan":
			code, _, ev = e.send(t, http.MethodPut, e.releaseURL(r.Name)+"/plan", e.rm, planBody("revised plan"))
		case "set-artifacts":
			code, _, ev = e.send(t, http.MethodPut, e.releaseURL(r.Name)+"/artifacts", e.rm, artifactsBody())
		case "approve plan", "approve build", "approve deploy:staging", "approve close":
			gate := strings.TrimPrefix(action, "approve ")
			code, _, ev = e.decideWith(t, e.cab2, r.Name, gate, "approve", r.gate(t, gate).ExpectedDigest)
		case "deploy":
			code, _, _, ev = e.deploy(t, e.stagingDeployer, r.Name, "staging", "in_progress")
		case "update-deployment":
			id := "dep_000000000000"
			switch {
			case len(r.Deployments) > 0:
				id = r.Deployments[0].ID
			case r.State == "deploying":
				// Deploying without deployments: updating needs one first.
				dep, _ := e.mustDeploy(t, e.stagingDeployer, r.Name, "staging", "in_progress")
				id = dep.ID
			}
			code, _, ev = e.updateDeployment(t, e.stagingDeployer, r.Name, id, "succeeded")
		case "review":
			code, _, ev = e.fileReview(t, r.Name)
		case "cancel":
			code, _, ev = e.cancel(t, r.Name)
		default:
			t.Fatalf("unknown action %s", action)
		}
		return code, ev
	}

	for _, state := range states {
		for _, a := range tableActions {
			t.Run(state+"/"+a.name, func(t *testing.T) {
				before := e.driveTo(t, state)
				ok := slices.Contains(allowed[state], a.name)
				if slices.Contains(before.AllowedActions, a.allowedAs) != ok {
					t.Errorf("allowedActions %q: %s listed = %v, want %v", before.AllowedActions, a.allowedAs, !ok, ok)
				}
				code, ev := do(t, a.name, before)
				after := e.get(t, before.Name)
				if ok {
					if code != http.StatusOK && code != http.StatusCreated {
						t.Fatalf("allowed action refused: %d %+v", code, ev)
					}
					if after.Revision <= before.Revision {
						t.Errorf("revision %d after an allowed action, was %d", after.Revision, before.Revision)
					}
					return
				}
				wantError(t, "refused action", code, ev, http.StatusConflict, "INVALID_STATE")
				detail := ev.Errors[0].Detail
				if detail["state"] != before.State {
					t.Errorf("error detail state %v, want %s", detail["state"], before.State)
				}
				var gotAllowed []string
				if list, ok := detail["allowed"].([]any); ok {
					for _, v := range list {
						gotAllowed = append(gotAllowed, fmt.Sprint(v))
					}
				}
				if !slices.Equal(gotAllowed, before.AllowedActions) {
					t.Errorf("error detail allowed %q, release allows %q", gotAllowed, before.AllowedActions)
				}
				if after.State != before.State || after.Revision != before.Revision ||
					len(after.Approvals) != len(before.Approvals) || len(after.Deployments) != len(before.Deployments) {
					t.Errorf("refused action changed the release: state %s→%s, revision %d→%d, approvals %d→%d, deployments %d→%d",
						before.State, after.State, before.Revision, after.Revision, len(before.Approvals), len(after.Approvals),
						len(before.Deployments), len(after.Deployments))
				}
			})
		}
	}
}

// TestReleasePlanChangeDiscardsApprovals: approvals of an old plan stop
// counting when the plan changes, and naming the old digest is stale.
func TestReleasePlanChangeDiscardsApprovals(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, map[string]any{"plan": map[string]int{"approvals": 2}})
	name, oldDigest := r.Name, r.PlanDigest

	r = e.approve(t, e.cab1, name, "plan")
	wantState(t, "one of two plan approvals", r, "planning")
	if g := r.gate(t, "plan"); g.Received != 1 {
		t.Fatalf("plan gate %+v, want one approval", g)
	}

	code, r, ev := e.send(t, http.MethodPut, e.releaseURL(name)+"/plan", e.rm, planBody("a different plan"))
	if code != http.StatusOK {
		t.Fatalf("set plan: %d %+v", code, ev)
	}
	wantState(t, "plan changed", r, "planning")
	if r.PlanDigest == oldDigest || r.gate(t, "plan").ExpectedDigest != r.PlanDigest {
		t.Fatalf("plan digest %s (was %s), gate expects %s", r.PlanDigest, oldDigest, r.gate(t, "plan").ExpectedDigest)
	}
	if g := r.gate(t, "plan"); g.Received != 0 || len(g.Approvers) != 0 {
		t.Fatalf("plan gate after the change %+v: the old approval still counts", g)
	}
	if len(r.Approvals) != 1 || !r.Approvals[0].Discarded || r.Approvals[0].Digest != oldDigest {
		t.Fatalf("approvals %+v: want the old approval kept on record, discarded", r.Approvals)
	}

	code, _, ev = e.decideWith(t, e.cab2, name, "plan", "approve", oldDigest)
	wantError(t, "approving the old plan", code, ev, http.StatusConflict, "STALE_APPROVAL")
	if r = e.get(t, name); r.State != "planning" || len(r.Approvals) != 1 {
		t.Fatalf("stale approval changed the release: %s, %d approvals", r.State, len(r.Approvals))
	}

	// The new plan needs two fresh approvals.
	r = e.approve(t, e.cab2, name, "plan")
	wantState(t, "one approval of the new plan", r, "planning")
	r = e.approve(t, e.cab1, name, "plan")
	wantState(t, "two approvals of the new plan", r, "building")
}

// TestReleaseStaleDigestRefused: an approval must name exactly what the
// gate authorises now.
func TestReleaseStaleDigestRefused(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, nil)
	name := r.Name
	other := digest.FromString("another plan").String()

	code, _, ev := e.decideWith(t, e.cab1, name, "plan", "approve", other)
	wantError(t, "plan approval naming another digest", code, ev, http.StatusConflict, "STALE_APPROVAL")
	r = e.approve(t, e.cab1, name, "plan")
	wantState(t, "plan approved", r, "building")

	// The build gate approves the manifest, not the plan.
	code, _, ev = e.decideWith(t, e.cab1, name, "build", "approve", r.PlanDigest)
	wantError(t, "build approval naming the plan digest", code, ev, http.StatusConflict, "STALE_APPROVAL")
	if r = e.get(t, name); r.State != "building" || len(r.Approvals) != 1 {
		t.Fatalf("stale approval changed the release: %s, %d approvals", r.State, len(r.Approvals))
	}
	r = e.approve(t, e.cab1, name, "build")
	wantState(t, "build approved", r, "released")

	// Deploy gates approve the sealed manifest, not an artifact.
	code, _, ev = e.decideWith(t, e.cab1, name, "deploy:staging", "approve", r.Artifacts[0].Digest)
	wantError(t, "deploy approval naming an artifact digest", code, ev, http.StatusConflict, "STALE_APPROVAL")
	wantState(t, "after the stale deploy approval", e.get(t, name), "released")
}

// TestReleaseSeparationOfDuties: neither the release's creator nor an
// artifact's publisher may approve its gates, whatever roles they hold.
func TestReleaseSeparationOfDuties(t *testing.T) {
	e := newRelEnv(t, true)
	creator := testserver.Token(t, e.svc, "rm-cab", access.RoleReleaseManager, access.RoleApprover)
	publisher := testserver.Token(t, e.svc, "pipeline", access.RolePublisher, access.RoleApprover)
	r := e.createAs(t, creator, "sod-1", nil)
	if r.CreatedBy != "rm-cab" {
		t.Fatalf("createdBy %s", r.CreatedBy)
	}

	for _, tc := range []struct{ who, token, decision string }{
		{"creator approving", creator, "approve"},
		{"creator rejecting", creator, "reject"},
		{"publisher approving", publisher, "approve"},
	} {
		code, _, ev := e.decide(t, tc.token, r.Name, "plan", tc.decision)
		wantError(t, tc.who, code, ev, http.StatusForbidden, "SEPARATION_OF_DUTIES")
	}
	if got := e.get(t, r.Name); got.State != "planning" || len(got.Approvals) != 0 {
		t.Fatalf("refused approvals changed the release: %s, %d approvals", got.State, len(got.Approvals))
	}

	// Later gates too.
	wantState(t, "plan approved", e.approve(t, e.cab1, r.Name, "plan"), "building")
	code, _, ev := e.decide(t, publisher, r.Name, "build", "approve")
	wantError(t, "publisher approving the build", code, ev, http.StatusForbidden, "SEPARATION_OF_DUTIES")
	code, _, ev = e.decide(t, creator, r.Name, "build", "approve")
	wantError(t, "creator approving the build", code, ev, http.StatusForbidden, "SEPARATION_OF_DUTIES")
	wantState(t, "build approved by an independent approver", e.approve(t, e.cab2, r.Name, "build"), "released")
}

// TestReleaseSameApproverCountsOnce: one principal approving twice is one
// approval toward a two-approval gate.
func TestReleaseSameApproverCountsOnce(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, map[string]any{"plan": map[string]int{"approvals": 2}})
	e.approve(t, e.cab1, r.Name, "plan")
	r = e.approve(t, e.cab1, r.Name, "plan")
	wantState(t, "the same approver twice", r, "planning")
	if g := r.gate(t, "plan"); g.Received != 1 || g.Authorized || !slices.Equal(g.Approvers, []string{"cab-1"}) {
		t.Fatalf("plan gate %+v, want one approver", g)
	}
	// A second token of the same principal is the same approver.
	again := testserver.Token(t, e.svc, "cab-1", access.RoleApprover)
	r = e.approve(t, again, r.Name, "plan")
	wantState(t, "the same approver with another token", r, "planning")
	if g := r.gate(t, "plan"); g.Received != 1 {
		t.Fatalf("plan gate %+v, want one approver", g)
	}
	r = e.approve(t, e.cab2, r.Name, "plan")
	wantState(t, "a second approver", r, "building")
}

// pull reads the artifact's content as token.
func (e *relEnv) pull(t *testing.T, token string) (int, errorView) {
	t.Helper()
	code, _, body := fetch(t, e.artifactURL+"/content", token)
	var ev errorView
	if code != http.StatusOK {
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("content error %q: %v", body, err)
		}
	} else if !bytes.Equal(body, fixture(t, "payments-api-1.4.2.tar.gz")) {
		t.Fatalf("content differs from the pushed bytes")
	}
	return code, ev
}

// TestReleaseDeployerEnvironment: a deployer acts and pulls only for the
// environments of its token, once they are authorised.
func TestReleaseDeployerEnvironment(t *testing.T) {
	e := newRelEnv(t, true)
	code, ev := e.pull(t, e.stagingDeployer)
	wantError(t, "staging deployer pulling with no release", code, ev, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT")

	r := e.driveTo(t, "released")
	code, ev = e.pull(t, e.stagingDeployer)
	wantError(t, "staging deployer pulling before deploy:staging", code, ev, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT")

	wantState(t, "deploy:staging approved", e.approve(t, e.cab1, r.Name, "deploy:staging"), "deploying")
	if code, ev := e.pull(t, e.stagingDeployer); code != http.StatusOK {
		t.Fatalf("staging deployer pulling after deploy:staging: %d %+v", code, ev)
	}
	code, ev = e.pull(t, e.prodDeployer)
	wantError(t, "production deployer pulling before deploy:production", code, ev, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT")

	code, _, _, ev = e.deploy(t, e.stagingDeployer, r.Name, "production", "in_progress")
	wantError(t, "staging deployer recording production", code, ev, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT")

	// Even with production authorised, the staging token cannot record it.
	e.mustDeploy(t, e.stagingDeployer, r.Name, "staging", "succeeded")
	e.approve(t, e.cab1, r.Name, "deploy:production")
	code, _, _, ev = e.deploy(t, e.stagingDeployer, r.Name, "production", "succeeded")
	wantError(t, "staging deployer recording authorised production", code, ev, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT")
	if got := e.get(t, r.Name); len(got.Deployments) != 1 || got.State != "deploying" {
		t.Fatalf("refused deployments changed the release: %s, %d deployments", got.State, len(got.Deployments))
	}
	if code, ev := e.pull(t, e.prodDeployer); code != http.StatusOK {
		t.Fatalf("production deployer pulling after deploy:production: %d %+v", code, ev)
	}
}

// TestReleaseBuildBlocked: a retired or quarantined artifact blocks the
// build gate, and a retired one cannot join a release.
func TestReleaseBuildBlocked(t *testing.T) {
	t.Run("retired", func(t *testing.T) {
		e := newRelEnv(t, true)
		r := e.driveTo(t, "building")

		var ev errorView
		code := apiCall(t, http.MethodPost, e.artifactURL+"/retire", e.cab1, nil, &ev)
		wantError(t, "approver retiring", code, ev, http.StatusForbidden, "DENIED")
		var a struct {
			RetiredAt *string `json:"retiredAt"`
			RetiredBy string  `json:"retiredBy"`
		}
		if code := apiCall(t, http.MethodPost, e.artifactURL+"/retire", e.rm, nil, &a); code != http.StatusOK || a.RetiredAt == nil || a.RetiredBy != "rm" {
			t.Fatalf("retire: %d %+v", code, a)
		}

		code, _, ev = e.decide(t, e.cab1, r.Name, "build", "approve")
		wantError(t, "approving a build with a retired artifact", code, ev, http.StatusConflict, "BUILD_BLOCKED")
		if !strings.Contains(ev.Errors[0].Message, "retired") {
			t.Errorf("message %q does not say the artifact is retired", ev.Errors[0].Message)
		}
		if got := e.get(t, r.Name); got.State != "building" || len(got.Approvals) != 1 || got.ManifestDigest != "" {
			t.Fatalf("blocked build changed the release: %s, %d approvals, manifest %q", got.State, len(got.Approvals), got.ManifestDigest)
		}

		code = apiCall(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, createBody("with-retired", nil), &ev)
		wantError(t, "creating a release with a retired artifact", code, ev, http.StatusConflict, "ARTIFACT_RETIRED")
		code, _, ev = e.send(t, http.MethodPut, e.releaseURL(r.Name)+"/artifacts", e.rm, artifactsBody())
		wantError(t, "setting a retired artifact", code, ev, http.StatusConflict, "ARTIFACT_RETIRED")
		if code := apiCall(t, http.MethodGet, e.releaseURL("with-retired"), e.rm, nil, nil); code != http.StatusNotFound {
			t.Errorf("refused release exists: %d", code)
		}
	})
	t.Run("quarantined", func(t *testing.T) {
		e := newRelEnv(t, false)
		r := e.driveTo(t, "building")
		code, _, ev := e.decide(t, e.cab1, r.Name, "build", "approve")
		wantError(t, "approving a build with a quarantined artifact", code, ev, http.StatusConflict, "BUILD_BLOCKED")
		if !strings.Contains(ev.Errors[0].Message, "quarantined") {
			t.Errorf("message %q does not say the artifact is quarantined", ev.Errors[0].Message)
		}
		wantState(t, "after the blocked build", e.get(t, r.Name), "building")
	})
}

// TestReleaseRejection: a rejection sends the release back, records why,
// discards the gate's approvals, and the release can be resubmitted.
func TestReleaseRejection(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, map[string]any{"build": map[string]int{"approvals": 2}})
	name := r.Name
	wantState(t, "plan approved", e.approve(t, e.cab1, name, "plan"), "building")
	r = e.approve(t, e.cab1, name, "build")
	if g := r.gate(t, "build"); g.Received != 1 {
		t.Fatalf("build gate %+v", g)
	}

	body, _ := json.Marshal(map[string]string{"gate": "build", "decision": "reject", "digest": r.gate(t, "build").ExpectedDigest})
	var ev errorView
	code := apiCall(t, http.MethodPost, e.releaseURL(name)+"/approvals", e.cab2, body, &ev)
	wantError(t, "rejection without a reason", code, ev, http.StatusBadRequest, "INVALID_INPUT")

	code, r, ev = e.decide(t, e.cab2, name, "build", "reject")
	if code != http.StatusOK {
		t.Fatalf("reject build: %d %+v", code, ev)
	}
	wantState(t, "build rejected", r, "building")
	if lr := r.LastRejection; lr == nil || lr.Gate != "build" || lr.Decision != "reject" || lr.By != "cab-2" || lr.Comment == "" {
		t.Fatalf("lastRejection %+v", r.LastRejection)
	}
	if g := r.gate(t, "build"); g.Received != 0 || !g.Open {
		t.Fatalf("build gate after rejection %+v: cab-1's approval still counts", g)
	}
	if r.ManifestDigest != "" {
		t.Fatalf("rejected build sealed %s", r.ManifestDigest)
	}

	// Resubmitted: two fresh approvals release it and clear the rejection.
	e.approve(t, e.cab1, name, "build")
	r = e.approve(t, e.cab2, name, "build")
	wantState(t, "build resubmitted", r, "released")
	if r.LastRejection != nil {
		t.Errorf("lastRejection %+v still shown after approval", r.LastRejection)
	}

	// Rejecting the close gate sends the release back to review.
	r = e.driveTo(t, "review")
	code, r, ev = e.decide(t, e.cab2, r.Name, "close", "reject")
	if code != http.StatusOK {
		t.Fatalf("reject close: %d %+v", code, ev)
	}
	wantState(t, "close rejected", r, "review")
	if r.LastRejection == nil || r.LastRejection.Gate != "close" {
		t.Fatalf("lastRejection %+v", r.LastRejection)
	}
	code, r, ev = e.fileReview(t, r.Name)
	if code != http.StatusOK {
		t.Fatalf("re-filing the review: %d %+v", code, ev)
	}
	wantState(t, "close approved after a new review", e.approve(t, e.cab2, r.Name, "close"), "closed")
}

// TestReleaseManifestSigned: the sealed manifest is an OCI image index of
// exactly the admitted digests, and it verifies with the server's key.
func TestReleaseManifestSigned(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.driveTo(t, "building")
	var ev errorView
	code := apiCall(t, http.MethodGet, e.releaseURL(r.Name)+"/manifest", e.auditor, nil, &ev)
	wantError(t, "manifest before sealing", code, ev, http.StatusNotFound, "NOT_FOUND")

	expected := r.gate(t, "build").ExpectedDigest
	r = e.approve(t, e.cab1, r.Name, "build")
	wantState(t, "sealed", r, "released")

	code, hdr, body := fetch(t, e.releaseURL(r.Name)+"/manifest", e.auditor)
	if code != http.StatusOK {
		t.Fatalf("manifest: %d %s", code, body)
	}
	got := digest.FromBytes(body)
	if hdr.Get("Docker-Content-Digest") != got.String() || r.ManifestDigest != got.String() || expected != got.String() {
		t.Fatalf("manifest digest %s, header %s, release %s, approved %s", got, hdr.Get("Docker-Content-Digest"), r.ManifestDigest, expected)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, ocispec.MediaTypeImageIndex) {
		t.Errorf("content type %s", ct)
	}
	if hdr.Get("X-Dml-Signature") != r.ManifestSignature {
		t.Errorf("signature header %q, release %q", hdr.Get("X-Dml-Signature"), r.ManifestSignature)
	}

	// The signature verifies with nothing but the server's public key.
	code, _, pubPEM := fetch(t, e.url+"/api/v1/keys/server", e.auditor)
	if code != http.StatusOK {
		t.Fatalf("server key: %d", code)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(hdr.Get("X-Dml-Signature"))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body)); err != nil {
		t.Fatalf("manifest signature does not verify with the server key: %v", err)
	}
	tampered := append(bytes.Clone(body), ' ')
	if err := verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(tampered)); err == nil {
		t.Fatalf("signature verifies over other bytes")
	}

	// It lists exactly the admitted artifact.
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	admitted := e.artifact(t)
	if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex || idx.ArtifactType != lifecycle.ReleaseManifestArtifactType {
		t.Errorf("index header: schema %d, media type %s, artifact type %s", idx.SchemaVersion, idx.MediaType, idx.ArtifactType)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("index lists %d manifests, want 1", len(idx.Manifests))
	}
	m := idx.Manifests[0]
	if m.Digest.String() != admitted.Digest || admitted.State != "admitted" ||
		m.Size != int64(len(fixture(t, "payments-api-1.4.2.tar.gz"))) ||
		m.Annotations[lifecycle.AnnotationArtifactName] != "payments/api" || m.Annotations[lifecycle.AnnotationArtifactVersion] != "1.4.2" {
		t.Errorf("index entry %+v, want the admitted %s", m, admitted.Digest)
	}
	if idx.Annotations[lifecycle.AnnotationReleaseName] != r.Name || idx.Annotations[lifecycle.AnnotationPlanDigest] != r.PlanDigest ||
		idx.Annotations[lifecycle.AnnotationChangeRef] != "CHG-1001" {
		t.Errorf("index annotations %v", idx.Annotations)
	}
}

// TestReleaseDeploymentOutOfOrder: production waits for staging to succeed.
func TestReleaseDeploymentOutOfOrder(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.driveTo(t, "deploying")
	wantState(t, "both environments authorised", e.approve(t, e.cab1, r.Name, "deploy:production"), "deploying")

	code, _, _, ev := e.deploy(t, e.prodDeployer, r.Name, "production", "in_progress")
	wantError(t, "production before staging", code, ev, http.StatusConflict, "DEPLOYMENT_OUT_OF_ORDER")
	staging, _ := e.mustDeploy(t, e.stagingDeployer, r.Name, "staging", "in_progress")
	code, _, _, ev = e.deploy(t, e.prodDeployer, r.Name, "production", "in_progress")
	wantError(t, "production while staging is in progress", code, ev, http.StatusConflict, "DEPLOYMENT_OUT_OF_ORDER")
	if got := e.get(t, r.Name); len(got.Deployments) != 1 {
		t.Fatalf("%d deployments after refusals, want 1", len(got.Deployments))
	}

	if code, _, ev := e.updateDeployment(t, e.stagingDeployer, r.Name, staging.ID, "succeeded"); code != http.StatusOK {
		t.Fatalf("staging succeeded: %d %+v", code, ev)
	}
	_, r = e.mustDeploy(t, e.prodDeployer, r.Name, "production", "succeeded")
	wantState(t, "production after staging", r, "deployed")
}

// TestReleaseFailedDeploymentFinishedThroughReview: after a failed
// deployment the release is finished through review and close, as
// docs/itil.md says; cancel is refused and names review as the way out.
func TestReleaseFailedDeploymentFinishedThroughReview(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.driveTo(t, "deploying+active")
	code, r, ev := e.updateDeployment(t, e.stagingDeployer, r.Name, r.Deployments[0].ID, "failed")
	if code != http.StatusOK {
		t.Fatalf("staging failed: %d %+v", code, ev)
	}
	wantState(t, "staging failed", r, "deploying")
	if !slices.Contains(r.AllowedActions, "review") || slices.Contains(r.AllowedActions, "cancel") {
		t.Errorf("allowedActions %q after a failed deployment, want review and no cancel", r.AllowedActions)
	}

	code, _, ev = e.cancel(t, r.Name)
	wantError(t, "cancel after a deployment", code, ev, http.StatusConflict, "INVALID_STATE")
	if allowed, _ := ev.Errors[0].Detail["allowed"].([]any); !slices.Contains(allowed, any("review")) {
		t.Errorf("cancel refusal allows %v, want review among them", ev.Errors[0].Detail["allowed"])
	}

	review := map[string]any{"outcome": "failed", "summary": "staging rollout failed; backed out", "incidents": []string{"INC-9"}, "objectivesMet": false}
	code, r, ev = e.send(t, http.MethodPost, e.releaseURL(r.Name)+"/review", e.rm, review)
	if code != http.StatusOK {
		t.Fatalf("review after a failed deployment: %d %+v", code, ev)
	}
	wantState(t, "review filed", r, "review")
	if r.Review == nil || r.Review.Outcome != "failed" {
		t.Fatalf("review %+v", r.Review)
	}
	wantState(t, "closed", e.approve(t, e.cab2, r.Name, "close"), "closed")
}

// TestReleaseUpdateDeploymentRoleFirst: PATCH of a deployment refuses a
// principal without the deployer role with 403 before the release's
// state, or whether the release or the deployment exists, shows.
func TestReleaseUpdateDeploymentRoleFirst(t *testing.T) {
	e := newRelEnv(t, true)
	planning := e.driveTo(t, "planning")
	active := e.driveTo(t, "deploying+active")
	for _, token := range []string{e.auditor, e.rm, e.cab1} {
		for _, target := range []struct{ what, release, id string }{
			{"a planning release", planning.Name, "dep_000000000000"},
			{"an unknown release", "no-such-release", active.Deployments[0].ID},
			{"an unknown deployment", active.Name, "dep_000000000000"},
			{"a running deployment", active.Name, active.Deployments[0].ID},
		} {
			code, _, ev := e.updateDeployment(t, token, target.release, target.id, "succeeded")
			// The route's row in the authorisation matrix refuses it
			// (DENIED) before the domain is reached.
			wantError(t, "a non-deployer updating "+target.what, code, ev, http.StatusForbidden, "DENIED")
		}
	}
	// A deployer learns the state.
	code, _, ev := e.updateDeployment(t, e.stagingDeployer, planning.Name, "dep_000000000000", "succeeded")
	wantError(t, "a deployer updating in planning", code, ev, http.StatusConflict, "INVALID_STATE")
	if got := e.get(t, active.Name); got.Revision != active.Revision || got.Deployments[0].Status != "in_progress" {
		t.Errorf("refused updates changed the release: revision %d→%d, %+v", active.Revision, got.Revision, got.Deployments[0])
	}
}

// TestReleaseApprovalDigestMalformed: an approval naming something that is
// not a digest is a 400 DIGEST_INVALID, not a stale approval.
func TestReleaseApprovalDigestMalformed(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, nil)
	for _, d := range []string{"not-a-digest", "sha256:zz", "md5:d41d8cd98f00b204e9800998ecf8427e"} {
		code, _, ev := e.decideWith(t, e.cab1, r.Name, "plan", "approve", d)
		wantError(t, "approval naming "+d, code, ev, http.StatusBadRequest, "DIGEST_INVALID")
	}
	if got := e.get(t, r.Name); got.Revision != r.Revision || len(got.Approvals) != 0 {
		t.Errorf("malformed approvals changed the release: revision %d→%d", r.Revision, got.Revision)
	}
}

// TestReleaseQuorumFloors: the admin's defaults are floors: a release
// asking for less is refused with QUORUM_TOO_LOW, and an environment a new
// plan adds gets the default.
func TestReleaseQuorumFloors(t *testing.T) {
	e := newRelEnv(t, true)
	if code := apiCall(t, http.MethodPut, e.url+"/api/v1/settings/gates", e.admin, []byte(`{"plan":{"approvals":2},"deploy:*":{"approvals":2}}`), nil); code != http.StatusOK {
		t.Fatalf("setting defaults: %d", code)
	}
	var ev errorView
	code := apiCall(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, createBody("below", map[string]any{"plan": map[string]int{"approvals": 1}}), &ev)
	wantError(t, "creating below the default", code, ev, http.StatusBadRequest, "QUORUM_TOO_LOW")
	if code := apiCall(t, http.MethodGet, e.releaseURL("below"), e.rm, nil, nil); code != http.StatusNotFound {
		t.Errorf("refused release exists: %d", code)
	}

	r := e.create(t, nil)
	body := planBody("add qa")
	body["environments"] = []string{"staging", "qa", "production"}
	code, r, ev = e.send(t, http.MethodPut, e.releaseURL(r.Name)+"/plan", e.rm, body)
	if code != http.StatusOK {
		t.Fatalf("set plan: %d %+v", code, ev)
	}
	for gate, want := range map[string]int{"plan": 2, "deploy:staging": 2, "deploy:qa": 2, "deploy:production": 2, "build": 1} {
		if got := r.gate(t, gate).Required; got != want {
			t.Errorf("gate %s needs %d approvals, want %d", gate, got, want)
		}
	}
}

// TestReleaseParallelApprovals: ten approvers approving a quorum-10 gate
// at the same moment all get 200, and the gate is authorised once. The
// finding it guards: 7 of 40 such approvals answered 409 CONFLICT.
func TestReleaseParallelApprovals(t *testing.T) {
	e := newRelEnv(t, true)
	approvers := make([]string, 10)
	for i := range approvers {
		approvers[i] = testserver.Token(t, e.svc, fmt.Sprintf("parallel-cab-%d", i), access.RoleApprover)
	}
	for trial := range 4 {
		r := e.create(t, map[string]any{"plan": map[string]int{"approvals": 10}})
		body, _ := json.Marshal(map[string]string{"gate": "plan", "decision": "approve", "digest": r.PlanDigest})
		codes := make([]int, len(approvers))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, token := range approvers {
			wg.Go(func() {
				<-start
				req, err := http.NewRequest(http.MethodPost, e.releaseURL(r.Name)+"/approvals", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			})
		}
		close(start)
		wg.Wait()
		for i, code := range codes {
			if code != http.StatusOK {
				t.Errorf("trial %d: approver %d answered %d, want 200", trial, i, code)
			}
		}
		got := e.get(t, r.Name)
		wantState(t, fmt.Sprintf("trial %d", trial), got, "building")
		if g := got.gate(t, "plan"); g.Received != 10 || !g.Authorized {
			t.Errorf("trial %d: plan gate %+v, want 10 approvals and authorised", trial, g)
		}
	}
}
