package lifecycle_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// testClock is the domain's clock in these tests, moved by the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// windowStart and windowEnd bound the window of the releases windowEnv
// makes; the clock starts an hour before it.
var (
	windowStart = time.Date(2026, time.December, 3, 20, 0, 0, 0, time.UTC)
	windowEnd   = windowStart.Add(3 * time.Hour)
)

// newClockedEnv is a relEnv whose domain reads clock, set an hour before
// the window, with extra configuration opts.
func newClockedEnv(t *testing.T, opts ...func(*releases.Config)) (*relEnv, *testClock) {
	t.Helper()
	clock := &testClock{t: windowStart.Add(-time.Hour)}
	opts = append([]func(*releases.Config){func(c *releases.Config) { c.Clock = clock.now }}, opts...)
	return newRelEnvOver(t, nil, opts...), clock
}

// windowed creates a release to staging then production with the window
// [windowStart, windowEnd) and drives it to deploying (staging authorised),
// with cab-1 deciding every gate.
func (e *relEnv) windowed(w *lifecycle.Window) lifecycle.Release {
	e.t.Helper()
	req := createRequest(e.nextName(), nil)
	req.Plan.Window = w
	r, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, req)
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	e.approve(e.cab[0], r.Name, lifecycle.GatePlan)
	e.approve(e.cab[0], r.Name, lifecycle.GateBuild)
	return e.approve(e.cab[0], r.Name, lifecycle.DeployGate("staging"))
}

func (e *relEnv) tryDeploy(p access.Principal, name, env string) (lifecycle.Deployment, error) {
	e.t.Helper()
	_, dep, err := e.svc.Releases.RecordDeployment(e.ctx, p, name, lifecycle.DeploymentRequest{Environment: env, Target: "k8s/" + env, Status: lifecycle.DeploymentInProgress})
	return dep, err
}

// TestDeploymentWindowEnforced: a deployment is recorded from the window's
// start (included) until its end (excluded), and refused outside it with
// ErrOutsideChangeWindow naming the window and now — nothing recorded.
func TestDeploymentWindowEnforced(t *testing.T) {
	e, clock := newClockedEnv(t)
	window := &lifecycle.Window{Start: windowStart, End: windowEnd}
	for _, tc := range []struct {
		name   string
		at     time.Time
		inside bool
	}{
		{"an hour before", windowStart.Add(-time.Hour), false},
		{"a nanosecond before the start", windowStart.Add(-time.Nanosecond), false},
		{"at the start", windowStart, true},
		{"inside", windowStart.Add(90 * time.Minute), true},
		{"a nanosecond before the end", windowEnd.Add(-time.Nanosecond), true},
		{"at the end", windowEnd, false},
		{"two weeks after", windowEnd.Add(14 * 24 * time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.use(t)
			clock.set(windowStart.Add(-time.Hour))
			r := e.windowed(window)
			clock.set(tc.at)
			dep, err := e.tryDeploy(e.staging, r.Name, "staging")
			after := e.get(r.Name)
			if tc.inside {
				if err != nil || dep.Emergency || len(after.Deployments) != 1 {
					t.Fatalf("deploy at %s: %v (deployment %+v)", tc.at, err, dep)
				}
				return
			}
			var ow *lifecycle.OutsideWindowError
			if !errors.Is(err, lifecycle.ErrOutsideChangeWindow) || !errors.As(err, &ow) {
				t.Fatalf("deploy at %s: %v, want ErrOutsideChangeWindow", tc.at, err)
			}
			if ow.Window == nil || !ow.Window.Start.Equal(windowStart) || !ow.Window.End.Equal(windowEnd) || !ow.Now.Equal(tc.at) {
				t.Errorf("error names window %+v and now %s, want %s-%s and %s", ow.Window, ow.Now, windowStart, windowEnd, tc.at)
			}
			for _, want := range []string{windowStart.Format(time.RFC3339), windowEnd.Format(time.RFC3339), tc.at.UTC().Format(time.RFC3339)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if len(after.Deployments) != 0 || after.Revision != r.Revision {
				t.Errorf("refused deployment changed the release: %d deployments, revision %d → %d", len(after.Deployments), r.Revision, after.Revision)
			}
		})
	}
}

// TestReleaseWithoutWindow: by default a release without a window deploys
// at any time; with require_change_window a plan without one is refused,
// and a release stored before deploys only under an emergency change.
func TestReleaseWithoutWindow(t *testing.T) {
	e, _ := newClockedEnv(t)
	open := e.windowed(nil)
	e.deploy(e.staging, open.Name, "staging", lifecycle.DeploymentSucceeded)

	stored := e.windowed(nil)
	yes := true
	if _, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{RequireChangeWindow: &yes}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, createRequest(e.nextName(), nil))
	wantErr(t, "plan without a window", err, errdef.ErrInvalidInput)
	if err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("refusal %v does not say a window is required", err)
	}
	req := createRequest(e.nextName(), nil)
	req.Plan.Window = &lifecycle.Window{Start: windowStart, End: windowEnd}
	withWindow, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, req)
	if err != nil {
		t.Fatalf("a plan with a window: %v", err)
	}
	_, err = e.svc.Releases.SetPlan(e.ctx, e.rm, withWindow.Name, planRequest("no window", "staging"))
	wantErr(t, "a new plan without a window", err, errdef.ErrInvalidInput)
	_, err = e.tryDeploy(e.staging, stored.Name, "staging")
	var ow *lifecycle.OutsideWindowError
	if !errors.As(err, &ow) || ow.Window != nil {
		t.Fatalf("deploying a stored release without a window: %v, want OutsideWindowError without a window", err)
	}
}

// TestEmergencyChange: a release manager's emergency change opens the
// emergency gate, which needs two approvers by default, bound to the
// request's digest, under separation of duties; once authorised, the
// release deploys outside its window until the change's end, each
// deployment marked and its reason audited.
func TestEmergencyChange(t *testing.T) {
	e, clock := newClockedEnv(t)
	r := e.windowed(&lifecycle.Window{Start: windowStart, End: windowEnd})
	clock.set(windowEnd.Add(2 * time.Hour))
	if _, err := e.tryDeploy(e.staging, r.Name, "staging"); !errors.Is(err, lifecycle.ErrOutsideChangeWindow) {
		t.Fatalf("deploy after the window: %v", err)
	}

	// Only release managers ask, with a reason, for at most 72 hours.
	_, err := e.svc.Releases.RequestEmergency(e.ctx, e.cab[1], r.Name, lifecycle.EmergencyRequest{Reason: "outage"})
	wantErr(t, "emergency by an approver", err, errdef.ErrDenied)
	_, err = e.svc.Releases.RequestEmergency(e.ctx, e.rm, r.Name, lifecycle.EmergencyRequest{Reason: " "})
	wantErr(t, "emergency without a reason", err, errdef.ErrInvalidInput)
	now := clock.now()
	_, err = e.svc.Releases.RequestEmergency(e.ctx, e.rm, r.Name, lifecycle.EmergencyRequest{Reason: "outage", Until: now.Add(73 * time.Hour)})
	wantErr(t, "emergency for 73h", err, errdef.ErrInvalidInput)
	_, err = e.svc.Releases.RequestEmergency(e.ctx, e.rm, r.Name, lifecycle.EmergencyRequest{Reason: "outage", Until: now})
	wantErr(t, "emergency ending now", err, errdef.ErrInvalidInput)

	// A second release manager, also an approver, asks: the requester
	// decides nothing.
	rm2 := e.principal("rm-cab", nil, access.RoleReleaseManager, access.RoleApprover)
	const reason = "INC-77: card payments fail, hotfix needed tonight"
	r, err = e.svc.Releases.RequestEmergency(e.ctx, rm2, r.Name, lifecycle.EmergencyRequest{Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	em := r.Emergency
	if em == nil || em.Status != lifecycle.EmergencyRequested || em.Reason != reason || !em.Until.Equal(now.Add(24*time.Hour)) || em.Digest == "" {
		t.Fatalf("emergency %+v", em)
	}
	if q := e.quorums(r); q[lifecycle.GateEmergency] != 2 {
		t.Errorf("emergency quorum %d, want the default 2", q[lifecycle.GateEmergency])
	}
	if !slices.Contains(lifecycle.AllowedActions(r), "approve:emergency") {
		t.Errorf("allowed %v lacks approve:emergency", lifecycle.AllowedActions(r))
	}
	for _, p := range []access.Principal{rm2, e.rm} {
		_, err := e.decide(p, r.Name, lifecycle.GateEmergency)
		if p.Name == e.rm.Name {
			wantErr(t, "the creator deciding", err, errdef.ErrDenied) // not an approver at all
			continue
		}
		wantErr(t, "the requester deciding", err, lifecycle.ErrSeparationOfDuties)
	}
	// One approval is not enough.
	e.approve(e.cab[1], r.Name, lifecycle.GateEmergency)
	if _, err := e.tryDeploy(e.staging, r.Name, "staging"); !errors.Is(err, lifecycle.ErrOutsideChangeWindow) {
		t.Fatalf("deploy with one emergency approval of two: %v", err)
	}
	r = e.approve(e.cab[2], r.Name, lifecycle.GateEmergency)
	if r.Emergency.Status != lifecycle.EmergencyAuthorized || !r.EmergencyInForce(clock.now()) {
		t.Fatalf("after two approvals: %+v", r.Emergency)
	}
	dep, err := e.tryDeploy(e.staging, r.Name, "staging")
	if err != nil || !dep.Emergency || dep.EmergencyReason != reason {
		t.Fatalf("deploy under the emergency: %v %+v", err, dep)
	}

	evs := e.releaseEvents(r.Name)
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
	}
	for _, want := range []string{lifecycle.ActionEmergencyRequested, lifecycle.ActionEmergencyApproved} {
		if !slices.Contains(actions, want) {
			t.Errorf("events %v lack %s", actions, want)
		}
	}
	last := evs[len(evs)-1]
	var det map[string]any
	if err := json.Unmarshal(last.Details, &det); err != nil {
		t.Fatal(err)
	}
	if last.Action != lifecycle.ActionReleaseDeployment || det["emergency"] != true || det["emergencyReason"] != reason {
		t.Errorf("deployment event %s %s, want emergency true with the reason", last.Action, last.Details)
	}

	// Until the change ends: a nanosecond before, deployments go through;
	// at its end they are refused again.
	e.updateDeployment(e.staging, r.Name, dep.ID, lifecycle.DeploymentSucceeded)
	e.approve(e.cab[0], r.Name, lifecycle.DeployGate("production"))
	clock.set(em.Until)
	if _, err := e.tryDeploy(e.prod, r.Name, "production"); !errors.Is(err, lifecycle.ErrOutsideChangeWindow) {
		t.Fatalf("deploy when the emergency ended: %v", err)
	}
	clock.set(em.Until.Add(-time.Nanosecond))
	if dep, err := e.tryDeploy(e.prod, r.Name, "production"); err != nil || !dep.Emergency {
		t.Fatalf("deploy a nanosecond before the emergency ends: %v %+v", err, dep)
	}
}

// TestEmergencyApprovalsBindToTheRequest: a new emergency request makes
// approvals of the earlier one stale; a rejection ends the request; an
// expired request cannot be approved; the admin can raise the quorum.
func TestEmergencyApprovalsBindToTheRequest(t *testing.T) {
	e, clock := newClockedEnv(t)
	if _, err := e.svc.Releases.SetGateDefaults(e.ctx, e.admin, map[string]lifecycle.GateSetting{lifecycle.GateEmergency: {Approvals: 3}}); err != nil {
		t.Fatal(err)
	}
	r := e.windowed(&lifecycle.Window{Start: windowStart, End: windowEnd})
	clock.set(windowEnd.Add(time.Hour))

	first, err := e.svc.Releases.RequestEmergency(e.ctx, e.rm, r.Name, lifecycle.EmergencyRequest{Reason: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if q := e.quorums(first); q[lifecycle.GateEmergency] != 3 {
		t.Errorf("emergency quorum %d, want the admin's 3", q[lifecycle.GateEmergency])
	}
	old := e.expected(r.Name, lifecycle.GateEmergency)
	e.approve(e.cab[1], r.Name, lifecycle.GateEmergency)
	clock.set(clock.now().Add(time.Minute))
	second, err := e.svc.Releases.RequestEmergency(e.ctx, e.rm, r.Name, lifecycle.EmergencyRequest{Reason: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if second.Emergency.Digest == first.Emergency.Digest {
		t.Fatal("a new request has the old request's digest")
	}
	_, err = e.svc.Releases.Decide(e.ctx, e.cab[2], r.Name, old)
	wantErr(t, "approval of the earlier request", err, lifecycle.ErrStaleApproval)
	if v := e.gateView(second, lifecycle.GateEmergency); len(v.Approvers) != 0 {
		t.Errorf("approvers of the new request %v, want none (cab-2's approval was for the first)", v.Approvers)
	}

	// A rejection ends the request: the gate closes.
	rej := e.expected(r.Name, lifecycle.GateEmergency)
	rej.Decision, rej.Comment = lifecycle.DecisionReject, "no incident on record"
	r, err = e.svc.Releases.Decide(e.ctx, e.cab[3], r.Name, rej)
	if err != nil {
		t.Fatal(err)
	}
	if r.Emergency.Status != lifecycle.EmergencyRejected || slices.Contains(lifecycle.AllowedActions(r), "approve:emergency") {
		t.Fatalf("after a rejection: %+v, allowed %v", r.Emergency, lifecycle.AllowedActions(r))
	}
	evs := e.releaseEvents(r.Name)
	if a := evs[len(evs)-1].Action; a != lifecycle.ActionEmergencyRejected {
		t.Errorf("last event %s, want %s", a, lifecycle.ActionEmergencyRejected)
	}

	// An expired request cannot be approved.
	third, err := e.svc.Releases.RequestEmergency(e.ctx, e.rm, r.Name, lifecycle.EmergencyRequest{Reason: "third", Until: clock.now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clock.set(third.Emergency.Until)
	_, err = e.decide(e.cab[4], r.Name, lifecycle.GateEmergency)
	wantErr(t, "approval after the end", err, lifecycle.ErrInvalidState)
}

// TestEmergencyOnlyWhenSealed: an emergency change is for a sealed release
// on its way out; before, there is nothing to deploy.
func TestEmergencyOnlyWhenSealed(t *testing.T) {
	e, _ := newClockedEnv(t)
	for _, state := range []string{"planning", "building", "deployed", "closed", "cancelled"} {
		r := e.driveTo(state)
		_, err := e.svc.Releases.RequestEmergency(e.ctx, e.rm, r.Name, lifecycle.EmergencyRequest{Reason: "x"})
		wantErr(t, "emergency when "+state, err, lifecycle.ErrInvalidState)
	}
}

func (e *relEnv) gateView(r lifecycle.Release, gate string) lifecycle.GateView {
	e.t.Helper()
	views, err := e.svc.Releases.GateViews(e.ctx, r)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, v := range views {
		if v.Gate == gate {
			return v
		}
	}
	e.t.Fatalf("release %s has no gate %s", r.Name, gate)
	return lifecycle.GateView{}
}

// TestRiskLevels: a plan's risk is one of the admin's levels (low, medium,
// high by default), refused otherwise with the levels listed; a release
// stored with another risk still loads.
func TestRiskLevels(t *testing.T) {
	e := newRelEnv(t)
	req := createRequest(e.nextName(), nil)
	req.Plan.Risk = "critical"
	_, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, req)
	var re *lifecycle.RiskError
	if !errors.As(err, &re) || !errors.Is(err, lifecycle.ErrRiskInvalid) || !slices.Equal(re.Allowed, []string{"low", "medium", "high"}) {
		t.Fatalf("risk critical: %v, want RiskError listing low, medium, high", err)
	}
	if !strings.Contains(err.Error(), "low, medium, high") {
		t.Errorf("error %q does not list the levels", err)
	}
	levels := []string{"minor", "significant", "major"}
	_, _, err = e.svc.Releases.SetChangePolicy(e.ctx, e.rm, lifecycle.ChangePolicyUpdate{RiskLevels: &levels})
	wantErr(t, "policy by a release manager", err, errdef.ErrDenied)
	for _, bad := range [][]string{{""}, {"a", "a"}, {" low"}} {
		_, _, err = e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{RiskLevels: &bad})
		wantErr(t, "risk levels "+strings.Join(bad, ","), err, errdef.ErrInvalidInput)
	}
	if _, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{RiskLevels: &levels}); err != nil {
		t.Fatal(err)
	}
	req = createRequest(e.nextName(), nil)
	req.Plan.Risk = "major"
	stored, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Releases.SetPlan(e.ctx, e.rm, stored.Name, planRequest("low is gone", "staging"))
	if !errors.As(err, &re) || !slices.Equal(re.Allowed, levels) {
		t.Fatalf("set-plan with risk low: %v, want the admin's levels", err)
	}
	// Back to the defaults: the release planned as "major" still loads.
	none := []string{}
	if _, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{RiskLevels: &none}); err != nil {
		t.Fatal(err)
	}
	if got := e.get(stored.Name); got.Plan.Risk != "major" {
		t.Errorf("stored risk %q", got.Plan.Risk)
	}
	policy, _, err := e.svc.Releases.ChangePolicy(e.ctx)
	if err != nil || !slices.Equal(policy.Risks(), lifecycle.DefaultRiskLevels) {
		t.Errorf("risks after clearing: %v %v", policy.Risks(), err)
	}
}

// TestChangeRefPattern: with a pattern set, a plan whose change reference
// does not match is refused, naming the pattern; the pattern is checked
// when it is set.
func TestChangeRefPattern(t *testing.T) {
	e := newRelEnv(t)
	bad := "^CHG[0-9+$"
	_, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{ChangeRefPattern: &bad})
	wantErr(t, "a pattern that does not compile", err, errdef.ErrInvalidInput)
	pattern := "^CHG[0-9]+$"
	if _, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{ChangeRefPattern: &pattern}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Releases.CreateRelease(e.ctx, e.rm, createRequest(e.nextName(), nil)) // CHG-1001
	var ce *lifecycle.ChangeRefError
	if !errors.As(err, &ce) || ce.Pattern != pattern || ce.ChangeRef != "CHG-1001" || !strings.Contains(err.Error(), pattern) {
		t.Fatalf("CHG-1001 under %s: %v", pattern, err)
	}
	req := createRequest(e.nextName(), nil)
	req.ChangeRef = "CHG1001"
	r, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, req)
	if err != nil {
		t.Fatalf("CHG1001: %v", err)
	}
	plan := planRequest("again", "staging")
	plan.ChangeRef = "chg1001"
	_, err = e.svc.Releases.SetPlan(e.ctx, e.rm, r.Name, plan)
	wantErr(t, "set-plan chg1001", err, lifecycle.ErrChangeRefInvalid)
	// Anchored as the admin writes it: without anchors, a match anywhere.
	loose := "CHG[0-9]+"
	if _, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{ChangeRefPattern: &loose}); err != nil {
		t.Fatal(err)
	}
	plan.ChangeRef = "see CHG1001"
	if _, err := e.svc.Releases.SetPlan(e.ctx, e.rm, r.Name, plan); err != nil {
		t.Fatalf("unanchored pattern: %v", err)
	}
}
