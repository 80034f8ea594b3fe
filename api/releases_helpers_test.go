package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
)

// releaseView is the release JSON as clients see it.
type releaseView struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	PlanDigest string `json:"planDigest"`
	Plan       struct {
		ChangeRef    string   `json:"changeRef"`
		Description  string   `json:"description"`
		Environments []string `json:"environments"`
	} `json:"plan"`
	Artifacts []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Digest  string `json:"digest"`
	} `json:"artifacts"`
	Approvals         []approvalView   `json:"approvals"`
	ManifestDigest    string           `json:"manifestDigest"`
	ManifestSignature string           `json:"manifestSignature"`
	Deployments       []deploymentView `json:"deployments"`
	Review            *struct {
		Outcome string `json:"outcome"`
		By      string `json:"by"`
	} `json:"review"`
	ReviewDigest   string        `json:"reviewDigest"`
	LastRejection  *approvalView `json:"lastRejection"`
	CreatedBy      string        `json:"createdBy"`
	Revision       int64         `json:"revision"`
	Gates          []gateView    `json:"gates"`
	AllowedActions []string      `json:"allowedActions"`
}

type approvalView struct {
	Gate      string `json:"gate"`
	Decision  string `json:"decision"`
	Digest    string `json:"digest"`
	Comment   string `json:"comment"`
	By        string `json:"by"`
	Issuer    string `json:"issuer"`
	Subject   string `json:"subject"`
	Discarded bool   `json:"discarded"`
}

type deploymentView struct {
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Target      string `json:"target"`
	Status      string `json:"status"`
	By          string `json:"by"`
	Issuer      string `json:"issuer"`
	Subject     string `json:"subject"`
}

type gateView struct {
	Gate           string   `json:"gate"`
	Required       int      `json:"required"`
	Received       int      `json:"received"`
	Approvers      []string `json:"approvers"`
	ExpectedDigest string   `json:"expectedDigest"`
	Authorized     bool     `json:"authorized"`
	Open           bool     `json:"open"`
}

// gate returns the named gate of the release view.
func (r releaseView) gate(t *testing.T, name string) gateView {
	t.Helper()
	for _, g := range r.Gates {
		if g.Gate == name {
			return g
		}
	}
	t.Fatalf("release %s has no gate %s (gates %+v)", r.Name, name, r.Gates)
	return gateView{}
}

// relEnv is an env whose artifact payments/api:1.4.2 is admitted, with one
// principal per duty.
type relEnv struct {
	*env
	rm, cab1, cab2, stagingDeployer, prodDeployer, auditor string
	seq                                                    int
}

const (
	stagingDeployerName = "deploy-staging"
	prodDeployerName    = "deploy-prod"
)

// newRelEnv starts a server with payments/api:1.4.2 pushed by "pipeline"
// and, when admit is set, admitted.
func newRelEnv(t *testing.T, admit bool, opts ...testserver.Option) *relEnv {
	t.Helper()
	e := newEnv(t, ciPolicy, opts...)
	if admit {
		e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
		e.postBody(t, "attestations", fixture(t, "test-result-passed.dsse.json"))
		if a := e.artifact(t); a.State != "admitted" {
			t.Fatalf("artifact state %s, want admitted", a.State)
		}
	}
	return &relEnv{
		env:             e,
		rm:              testserver.Token(t, e.svc, "rm", access.RoleReleaseManager),
		cab1:            testserver.Token(t, e.svc, "cab-1", access.RoleApprover),
		cab2:            testserver.Token(t, e.svc, "cab-2", access.RoleApprover),
		stagingDeployer: testserver.Token(t, e.svc, stagingDeployerName, access.RoleDeployer),
		prodDeployer:    envToken(t, e.svc, prodDeployerName, []string{"production"}, access.RoleDeployer),
		auditor:         testserver.Token(t, e.svc, "audit", access.RoleAuditor),
	}
}

// envToken issues a token with explicit environments.
func envToken(t *testing.T, svc *releases.DML, name string, envs []string, roles ...access.Role) string {
	t.Helper()
	ctx := context.Background()
	admin, err := svc.Access.Authenticate(ctx, testserver.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := svc.Access.IssueToken(ctx, admin, access.TokenRequest{Name: name, Roles: roles, Environments: envs})
	if err != nil {
		t.Fatalf("issue token %s: %v", name, err)
	}
	return issued.Secret
}

func (e *relEnv) releaseURL(name string) string { return e.url + "/api/v1/releases/" + name }

func (e *relEnv) nextName() string {
	e.seq++
	return fmt.Sprintf("rel-%d", e.seq)
}

// openWindow is a change window that holds now: the tests that deploy
// with the wall clock deploy inside it (change windows are enforced).
func openWindow() map[string]string {
	now := time.Now().UTC().Truncate(time.Second)
	return map[string]string{"start": now.Add(-time.Hour).Format(time.RFC3339), "end": now.Add(24 * time.Hour).Format(time.RFC3339)}
}

// createBody is a release creation request for payments/api:1.4.2 to
// staging then production.
func createBody(name string, gates map[string]any) []byte {
	req := map[string]any{
		"name": name, "changeRef": "CHG-1001", "title": "Payments API 1.4.2",
		"environments": []string{"staging", "production"},
		"plan": map[string]any{
			"description": "Roll out payments API 1.4.2",
			"window":      openWindow(),
			"backoutPlan": "Redeploy 1.4.1", "risk": "low",
		},
		"artifacts": []map[string]string{{"name": "payments/api", "version": "1.4.2"}},
	}
	if gates != nil {
		req["gates"] = gates
	}
	b, _ := json.Marshal(req)
	return b
}

// create makes a release as the release manager and checks it is planning.
func (e *relEnv) create(t *testing.T, gates map[string]any) releaseView {
	t.Helper()
	return e.createAs(t, e.rm, e.nextName(), gates)
}

func (e *relEnv) createAs(t *testing.T, token, name string, gates map[string]any) releaseView {
	t.Helper()
	var r releaseView
	var ev errorView
	code := apiCall(t, http.MethodPost, e.url+"/api/v1/releases", token, createBody(name, gates), &ev)
	if code != http.StatusCreated {
		t.Fatalf("create release %s: %d %+v", name, code, ev)
	}
	r = e.get(t, name)
	if r.State != "planning" {
		t.Fatalf("new release is %s, want planning", r.State)
	}
	return r
}

func (e *relEnv) get(t *testing.T, name string) releaseView {
	t.Helper()
	return e.getAs(t, e.rm, name)
}

func (e *relEnv) getAs(t *testing.T, token, name string) releaseView {
	t.Helper()
	var r releaseView
	if code := apiCall(t, http.MethodGet, e.releaseURL(name), token, nil, &r); code != http.StatusOK {
		t.Fatalf("get release %s: %d", name, code)
	}
	return r
}

// decideWith posts a decision naming digest d.
func (e *relEnv) decideWith(t *testing.T, token, name, gate, decision, d string) (int, releaseView, errorView) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"gate": gate, "decision": decision, "digest": d, "comment": "decided by test"})
	var raw json.RawMessage
	code := apiCall(t, http.MethodPost, e.releaseURL(name)+"/approvals", token, body, &raw)
	r, ev := decodeRelease(t, code, raw, false)
	return code, r, ev
}

// decide posts a decision naming the digest the gate expects now.
func (e *relEnv) decide(t *testing.T, token, name, gate, decision string) (int, releaseView, errorView) {
	t.Helper()
	r := e.get(t, name)
	return e.decideWith(t, token, name, gate, decision, r.gate(t, gate).ExpectedDigest)
}

// approve approves gate and fails the test unless it is accepted.
func (e *relEnv) approve(t *testing.T, token, name, gate string) releaseView {
	t.Helper()
	code, r, ev := e.decide(t, token, name, gate, "approve")
	if code != http.StatusOK {
		t.Fatalf("approve %s of %s: %d %+v", gate, name, code, ev)
	}
	return r
}

// decodeRelease decodes raw as a release (success) or an error body. With
// wrapped it expects {"deployment", "release"}.
func decodeRelease(t *testing.T, code int, raw json.RawMessage, wrapped bool) (releaseView, errorView) {
	t.Helper()
	var r releaseView
	var ev errorView
	if len(raw) == 0 {
		return r, ev
	}
	if code >= 300 {
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("decoding error %s: %v", raw, err)
		}
		return r, ev
	}
	if wrapped {
		var w struct {
			Release releaseView `json:"release"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
		return w.Release, ev
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return r, ev
}

// deploy records a deployment.
func (e *relEnv) deploy(t *testing.T, token, name, environment, status string) (int, deploymentView, releaseView, errorView) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"environment": environment, "target": "k8s/" + environment, "status": status, "notes": "rollout"})
	var raw json.RawMessage
	code := apiCall(t, http.MethodPost, e.releaseURL(name)+"/deployments", token, body, &raw)
	r, ev := decodeRelease(t, code, raw, true)
	var dep struct {
		Deployment deploymentView `json:"deployment"`
	}
	if code == http.StatusCreated {
		if err := json.Unmarshal(raw, &dep); err != nil {
			t.Fatal(err)
		}
	}
	return code, dep.Deployment, r, ev
}

func (e *relEnv) mustDeploy(t *testing.T, token, name, environment, status string) (deploymentView, releaseView) {
	t.Helper()
	code, dep, r, ev := e.deploy(t, token, name, environment, status)
	if code != http.StatusCreated {
		t.Fatalf("deploy %s to %s: %d %+v", name, environment, code, ev)
	}
	return dep, r
}

// updateDeployment patches a deployment's status.
func (e *relEnv) updateDeployment(t *testing.T, token, name, id, status string) (int, releaseView, errorView) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"status": status, "notes": "updated"})
	var raw json.RawMessage
	code := apiCall(t, http.MethodPatch, e.releaseURL(name)+"/deployments/"+id, token, body, &raw)
	r, ev := decodeRelease(t, code, raw, true)
	return code, r, ev
}

// fileReview files the post-implementation review as the release manager.
func (e *relEnv) fileReview(t *testing.T, name string) (int, releaseView, errorView) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"outcome": "successful", "summary": "went fine", "incidents": []string{}, "objectivesMet": true})
	var raw json.RawMessage
	code := apiCall(t, http.MethodPost, e.releaseURL(name)+"/review", e.rm, body, &raw)
	r, ev := decodeRelease(t, code, raw, false)
	return code, r, ev
}

// cancel cancels as the release manager.
func (e *relEnv) cancel(t *testing.T, name string) (int, releaseView, errorView) {
	t.Helper()
	var raw json.RawMessage
	code := apiCall(t, http.MethodPost, e.releaseURL(name)+"/cancel", e.rm, []byte(`{"reason":"not needed"}`), &raw)
	r, ev := decodeRelease(t, code, raw, false)
	return code, r, ev
}

// send sends v with method to url as token.
func (e *relEnv) send(t *testing.T, method, url, token string, v any) (int, releaseView, errorView) {
	t.Helper()
	body, _ := json.Marshal(v)
	var raw json.RawMessage
	code := apiCall(t, method, url, token, body, &raw)
	r, ev := decodeRelease(t, code, raw, false)
	return code, r, ev
}

// planBody is a PUT .../plan request with the given description.
func planBody(description string) map[string]any {
	return map[string]any{
		"changeRef": "CHG-1001", "title": "Payments API 1.4.2",
		"environments": []string{"staging", "production"},
		"plan":         map[string]any{"description": description, "backoutPlan": "Redeploy 1.4.1", "risk": "low"},
	}
}

func artifactsBody() []map[string]string {
	return []map[string]string{{"name": "payments/api", "version": "1.4.2"}}
}

// wantError checks an error answer's status and code.
func wantError(t *testing.T, what string, code int, ev errorView, status int, errCode string) {
	t.Helper()
	if code != status || len(ev.Errors) != 1 || ev.Errors[0].Code != errCode {
		t.Fatalf("%s: got %d %+v, want %d %s", what, code, ev, status, errCode)
	}
}

func wantState(t *testing.T, what string, r releaseView, state string) {
	t.Helper()
	if r.State != state {
		t.Fatalf("%s: release %s is %s, want %s (allowed %q)", what, r.Name, r.State, state, r.AllowedActions)
	}
}

// driveTo creates a release (default gates: one approval each) and drives
// it to state. "deploying+active" is deploying with an in-progress staging
// deployment.
func (e *relEnv) driveTo(t *testing.T, state string) releaseView {
	t.Helper()
	r := e.create(t, nil)
	name := r.Name
	steps := []string{"planning", "building", "released", "deploying", "deploying+active", "deployed", "review", "closed"}
	if state == "cancelled" {
		code, r, ev := e.cancel(t, name)
		if code != http.StatusOK {
			t.Fatalf("cancel: %d %+v", code, ev)
		}
		wantState(t, "cancel", r, "cancelled")
		return e.get(t, name)
	}
	target := slices.Index(steps, state)
	if target < 0 {
		t.Fatalf("driveTo: unknown state %s", state)
	}
	var dep deploymentView
	for i := 1; i <= target; i++ {
		switch steps[i] {
		case "building":
			r = e.approve(t, e.cab1, name, "plan")
		case "released":
			r = e.approve(t, e.cab1, name, "build")
		case "deploying":
			r = e.approve(t, e.cab1, name, "deploy:staging")
		case "deploying+active":
			dep, r = e.mustDeploy(t, e.stagingDeployer, name, "staging", "in_progress")
		case "deployed":
			code, got, ev := e.updateDeployment(t, e.stagingDeployer, name, dep.ID, "succeeded")
			if code != http.StatusOK {
				t.Fatalf("staging succeeded: %d %+v", code, ev)
			}
			wantState(t, "staging succeeded", got, "deploying")
			e.approve(t, e.cab1, name, "deploy:production")
			_, r = e.mustDeploy(t, e.prodDeployer, name, "production", "succeeded")
		case "review":
			code, got, ev := e.fileReview(t, name)
			if code != http.StatusOK {
				t.Fatalf("review: %d %+v", code, ev)
			}
			r = got
		case "closed":
			r = e.approve(t, e.cab1, name, "close")
		}
		wantState(t, "driving to "+state, r, strings.TrimSuffix(steps[i], "+active"))
	}
	r = e.get(t, name)
	wantState(t, "driven", r, strings.TrimSuffix(state, "+active"))
	return r
}

// fetch does a GET and returns the status, headers and body.
func fetch(t *testing.T, url, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}
