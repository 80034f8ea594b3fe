package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testserver"
)

// movingClock is the server's clock in these tests.
type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *movingClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// windowedBody is createBody with the window [start, end) and changeRef.
func windowedBody(name, changeRef, risk string, start, end time.Time) map[string]any {
	return map[string]any{
		"name": name, "changeRef": changeRef, "title": "Payments API 1.4.2",
		"environments": []string{"staging", "production"},
		"plan": map[string]any{
			"description": "Roll out payments API 1.4.2",
			"window":      map[string]string{"start": start.Format(time.RFC3339), "end": end.Format(time.RFC3339)},
			"backoutPlan": "Redeploy 1.4.1", "risk": risk,
		},
		"artifacts": artifactsBody(),
	}
}

// TestChangeWindowOverHTTP: a deployment outside the window answers 409
// OUTSIDE_CHANGE_WINDOW with the window and the server's time; an
// emergency change, once its gate has two approvals, lets it through,
// marked as an emergency deployment.
func TestChangeWindowOverHTTP(t *testing.T) {
	start := time.Date(2026, time.December, 3, 20, 0, 0, 0, time.UTC)
	end := start.Add(3 * time.Hour)
	clock := &movingClock{t: start.Add(-time.Hour)}
	e := newRelEnv(t, true, testserver.WithClock(clock.now))
	code, r, ev := e.send(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, windowedBody("2026.12-payments", "CHG-4711", "medium", start, end))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %+v", code, ev)
	}
	for _, g := range []string{"plan", "build", "deploy:staging"} {
		r = e.approve(t, e.cab1, r.Name, g)
	}
	wantState(t, "deploy gate passed", r, "deploying")

	after := end.Add(26 * time.Hour)
	clock.set(after)
	code, _, _, ev = e.deploy(t, e.stagingDeployer, r.Name, "staging", "in_progress")
	wantError(t, "deploy after the window", code, ev, http.StatusConflict, "OUTSIDE_CHANGE_WINDOW")
	det := ev.Errors[0].Detail
	window, _ := det["window"].(map[string]any)
	if det["now"] != after.Format(time.RFC3339) || window["start"] != start.Format(time.RFC3339) || window["end"] != end.Format(time.RFC3339) {
		t.Errorf("detail %v, want the window %s-%s and now %s", det, start, end, after)
	}
	if msg := ev.Errors[0].Message; !strings.Contains(msg, end.Format(time.RFC3339)) || !strings.Contains(msg, after.Format(time.RFC3339)) {
		t.Errorf("message %q does not say the window and now", msg)
	}

	emergency := e.releaseURL(r.Name) + "/emergency"
	code, _, ev = e.send(t, http.MethodPost, emergency, e.cab1, map[string]any{"reason": "outage"})
	wantError(t, "emergency by an approver", code, ev, http.StatusForbidden, "DENIED")
	code, _, ev = e.send(t, http.MethodPost, emergency, e.rm, map[string]any{"reason": "outage", "until": after.Add(73 * time.Hour)})
	wantError(t, "emergency for 73 hours", code, ev, http.StatusBadRequest, "INVALID_INPUT")
	code, _, ev = e.send(t, http.MethodPost, emergency, e.rm, map[string]any{"reason": "INC-9: payments down", "until": after.Add(4 * time.Hour)})
	if code != http.StatusOK {
		t.Fatalf("emergency: %d %+v", code, ev)
	}
	var full struct {
		Emergency struct {
			Reason, Status string
			Until          time.Time
		} `json:"emergency"`
		Gates []gateView `json:"gates"`
	}
	if code := apiCall(t, http.MethodGet, e.releaseURL(r.Name), e.auditor, nil, &full); code != http.StatusOK {
		t.Fatal(code)
	}
	g := slices.IndexFunc(full.Gates, func(g gateView) bool { return g.Gate == "emergency" })
	if full.Emergency.Status != "requested" || full.Emergency.Reason != "INC-9: payments down" || !full.Emergency.Until.Equal(after.Add(4*time.Hour)) ||
		g < 0 || full.Gates[g].Required != 2 || !full.Gates[g].Open {
		t.Fatalf("release after the request: %+v", full)
	}
	code, _, ev = e.decide(t, e.rm, r.Name, "emergency", "approve")
	wantError(t, "the creator approving", code, ev, http.StatusForbidden, "DENIED")
	e.approve(t, e.cab1, r.Name, "emergency")
	code, _, _, ev = e.deploy(t, e.stagingDeployer, r.Name, "staging", "in_progress")
	wantError(t, "deploy with one emergency approval", code, ev, http.StatusConflict, "OUTSIDE_CHANGE_WINDOW")
	e.approve(t, e.cab2, r.Name, "emergency")

	body, _ := json.Marshal(map[string]any{"environment": "staging", "target": "k8s/staging", "status": "succeeded"})
	var res struct {
		Deployment struct {
			Emergency       bool   `json:"emergency"`
			EmergencyReason string `json:"emergencyReason"`
		} `json:"deployment"`
	}
	if code := apiCall(t, http.MethodPost, e.releaseURL(r.Name)+"/deployments", e.stagingDeployer, body, &res); code != http.StatusCreated {
		t.Fatalf("deploy under the emergency: %d", code)
	}
	if !res.Deployment.Emergency || res.Deployment.EmergencyReason != "INC-9: payments down" {
		t.Errorf("deployment %+v, want it marked as an emergency", res.Deployment)
	}
}

// TestChangePolicyOverHTTP: the admin's change policy through the
// settings API, and the codes it gives plans and approvals:
// CHANGE_REF_INVALID and RISK_INVALID (400), CHANGE_NOT_APPROVED (409).
func TestChangePolicyOverHTTP(t *testing.T) {
	e := newRelEnv(t, true)
	settings := e.url + "/api/v1/settings/change"
	var policy struct {
		RequireChangeWindow bool     `json:"requireChangeWindow"`
		RiskLevels          []string `json:"riskLevels"`
		ChangeRefPattern    string   `json:"changeRefPattern"`
		ChangeSystem        *struct {
			URL    string `json:"url"`
			Signed bool   `json:"signed"`
		} `json:"changeSystem"`
	}
	if code := apiCall(t, http.MethodGet, settings, e.rm, nil, &policy); code != http.StatusOK || !slices.Equal(policy.RiskLevels, []string{"low", "medium", "high"}) {
		t.Fatalf("default policy: %d %+v", code, policy)
	}
	code, _, ev := e.send(t, http.MethodPatch, settings, e.rm, map[string]any{"changeRefPattern": "^CHG[0-9]+$"})
	wantError(t, "policy by a release manager", code, ev, http.StatusForbidden, "DENIED")
	code, _, ev = e.send(t, http.MethodPatch, settings, e.admin, map[string]any{"changeRefPattern": "^CHG[0-9+$"})
	wantError(t, "a pattern that does not compile", code, ev, http.StatusBadRequest, "INVALID_INPUT")

	// A change system that leaves every change pending.
	var asked []string
	var mu sync.Mutex
	itsm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get("X-DML-Signature"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"pending","message":"CAB meets on Thursday"}`))
	}))
	defer itsm.Close()
	body := map[string]any{"changeRefPattern": "^CHG[0-9]+$", "riskLevels": []string{"minor", "major"},
		"changeSystem": map[string]string{"url": itsm.URL, "secret": "itsm-secret"}}
	if code := apiCall(t, http.MethodPatch, settings, e.admin, mustJSON(t, body), &policy); code != http.StatusOK {
		t.Fatalf("set policy: %d", code)
	}
	raw := map[string]any{}
	apiCall(t, http.MethodGet, settings, e.auditor, nil, &raw)
	if b, _ := json.Marshal(raw); strings.Contains(string(b), "itsm-secret") || policy.ChangeSystem == nil || !policy.ChangeSystem.Signed || policy.ChangeRefPattern != "^CHG[0-9]+$" {
		t.Fatalf("policy %s (the secret must never come back)", b)
	}

	start := time.Now().UTC().Truncate(time.Second)
	code, _, ev = e.send(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, windowedBody("r1", "CHG-1001", "minor", start, start.Add(time.Hour)))
	wantError(t, "change ref CHG-1001", code, ev, http.StatusBadRequest, "CHANGE_REF_INVALID")
	if ev.Errors[0].Detail["pattern"] != "^CHG[0-9]+$" {
		t.Errorf("detail %v does not name the pattern", ev.Errors[0].Detail)
	}
	code, _, ev = e.send(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, windowedBody("r1", "CHG1001", "low", start, start.Add(time.Hour)))
	wantError(t, "risk low", code, ev, http.StatusBadRequest, "RISK_INVALID")
	if allowed, _ := ev.Errors[0].Detail["allowed"].([]any); len(allowed) != 2 || allowed[0] != "minor" || allowed[1] != "major" {
		t.Errorf("detail %v does not list the levels", ev.Errors[0].Detail)
	}
	code, r, ev := e.send(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, windowedBody("r1", "CHG1001", "minor", start, start.Add(time.Hour)))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %+v", code, ev)
	}
	code, _, ev = e.decide(t, e.cab1, r.Name, "plan", "approve")
	wantError(t, "plan approval while the change is pending", code, ev, http.StatusConflict, "CHANGE_NOT_APPROVED")
	if d := ev.Errors[0].Detail; d["status"] != "pending" || d["message"] != "CAB meets on Thursday" || d["changeRef"] != "CHG1001" {
		t.Errorf("detail %v, want the change system's status and message", d)
	}
	if got := e.get(t, r.Name); got.Revision != r.Revision || len(got.Approvals) != 0 {
		t.Errorf("a refused approval was recorded: %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || !strings.HasPrefix(asked[0], "t=") || !strings.Contains(asked[0], ",v1=") {
		t.Errorf("change system asked %d times, signatures %q", len(asked), asked)
	}
}
