package lifecycle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/opencontainers/go-digest"
)

// stateActions are the actions of TestReleaseStateActionTable, under the
// names AllowedActions gives them.
var stateActions = []string{
	"set-plan", "set-artifacts",
	"approve:plan", "reject:plan", "approve:build", "reject:build",
	"approve:deploy:staging", "reject:deploy:staging",
	"deploy", "update-deployment", "review",
	"approve:close", "reject:close",
	"cancel",
}

// TestReleaseStateActionTable tries every action in every state through
// the domain: the allowed ones succeed and are listed by AllowedActions;
// every other one is ErrInvalidState, says what is allowed, and changes
// nothing.
func TestReleaseStateActionTable(t *testing.T) {
	gates := func(gate string) []string { return []string{"approve:" + gate, "reject:" + gate} }
	allowed := map[string][]string{
		"planning":             append([]string{"set-plan", "set-artifacts", "cancel"}, gates("plan")...),
		"building":             append([]string{"set-artifacts", "cancel"}, gates("build")...),
		"released":             append([]string{"cancel"}, gates("deploy:staging")...),
		"deploying":            {"deploy", "update-deployment", "cancel"},
		"deploying+active":     {"deploy", "update-deployment"}, // a deployment is running: neither cancel nor review
		"deploying+failed":     {"deploy", "update-deployment", "review"},
		"deploying+rolledback": {"deploy", "update-deployment", "review"},
		"deployed":             {"review"},
		"review":               append([]string{"review"}, gates("close")...),
		"closed":               {},
		"cancelled":            {},
	}
	e := newRelEnv(t)
	approver := e.cab[1] // cab-1 drives; cab-2 acts

	do := func(t *testing.T, action string, r lifecycle.Release) error {
		t.Helper()
		var err error
		switch action {
		case "set-plan":
			_, err = e.svc.Releases.SetPlan(e.ctx, e.rm, r.Name, planRequest("revised plan", "staging", "production"))
		case "set-artifacts":
			_, err = e.svc.Releases.SetArtifacts(e.ctx, e.rm, r.Name, []lifecycle.ReleaseArtifactRef{{Name: relArtifact, Version: relVersion}})
		case "deploy":
			_, _, err = e.svc.Releases.RecordDeployment(e.ctx, e.staging, r.Name, lifecycle.DeploymentRequest{Environment: "staging", Target: "k8s/staging"})
		case "update-deployment":
			id := "dep_000000000000"
			switch {
			case len(r.Deployments) > 0:
				id = r.Deployments[len(r.Deployments)-1].ID
			case r.State == lifecycle.ReleaseDeploying:
				// Updating needs a deployment first.
				id = e.deploy(e.staging, r.Name, "staging", lifecycle.DeploymentInProgress).ID
			}
			notes := "checked"
			_, _, err = e.svc.Releases.UpdateDeployment(e.ctx, e.staging, r.Name, id, lifecycle.DeploymentUpdate{Notes: &notes})
		case "review":
			_, err = e.svc.Releases.FileReview(e.ctx, e.rm, r.Name, reviewRequest("failed"))
		case "cancel":
			_, err = e.svc.Releases.CancelRelease(e.ctx, e.rm, r.Name, "not needed")
		default:
			decision, gate, ok := cut(action)
			if !ok {
				t.Fatalf("unknown action %s", action)
			}
			d, derr := e.svc.Releases.ExpectedDigest(e.ctx, r, gate)
			if derr != nil {
				t.Fatal(derr)
			}
			_, err = e.svc.Releases.Decide(e.ctx, approver, r.Name, lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.Decision(decision), Digest: d, Comment: "decided by the table"})
		}
		return err
	}

	for _, state := range driveStates {
		for _, action := range stateActions {
			t.Run(state+"/"+action, func(t *testing.T) {
				e.use(t)
				before := e.driveTo(state)
				ok := slices.Contains(allowed[state], action)
				if listed := slices.Contains(lifecycle.AllowedActions(before), action); listed != ok {
					t.Errorf("AllowedActions %q lists %s: %v, want %v", lifecycle.AllowedActions(before), action, listed, ok)
				}
				err := do(t, action, before)
				after := e.get(before.Name)
				if ok {
					if err != nil {
						t.Fatalf("allowed action refused: %v", err)
					}
					if after.Revision <= before.Revision {
						t.Errorf("revision %d after an allowed action, was %d", after.Revision, before.Revision)
					}
					return
				}
				var ise *lifecycle.InvalidStateError
				if !errors.As(err, &ise) || !errors.Is(err, lifecycle.ErrInvalidState) {
					t.Fatalf("refused action: %v, want an InvalidStateError", err)
				}
				if ise.State != before.State || ise.Action != action || !slices.Equal(ise.Allowed, lifecycle.AllowedActions(before)) {
					t.Errorf("error says state %s, action %s, allowed %q; want %s, %s, %q",
						ise.State, ise.Action, ise.Allowed, before.State, action, lifecycle.AllowedActions(before))
				}
				if after.Revision != before.Revision || after.State != before.State {
					t.Errorf("refused action changed the release: state %s→%s, revision %d→%d", before.State, after.State, before.Revision, after.Revision)
				}
			})
		}
	}
}

// cut splits "approve:deploy:staging" into the decision and the gate.
func cut(action string) (decision, gate string, ok bool) {
	for _, d := range []lifecycle.Decision{lifecycle.DecisionApprove, lifecycle.DecisionReject} {
		if p := string(d) + ":"; len(action) > len(p) && action[:len(p)] == p {
			return string(d), action[len(p):], true
		}
	}
	return "", "", false
}

// TestQuorumFloors: the admin's defaults are floors. A release cannot ask
// for less at creation, an environment added by a new plan gets at least
// the default, and an environment removed and added again keeps the
// highest quorum its gate had in the release.
func TestQuorumFloors(t *testing.T) {
	e := newRelEnv(t)
	if _, err := e.svc.Releases.SetGateDefaults(e.ctx, e.admin, map[string]lifecycle.GateSetting{"plan": {Approvals: 2}, "deploy:*": {Approvals: 2}}); err != nil {
		t.Fatal(err)
	}

	t.Run("creation below the floor is refused", func(t *testing.T) {
		e.use(t)
		for _, below := range []map[string]int{{"plan": 1}, {"deploy:production": 1}, {"deploy:staging": 1, "build": 3}} {
			name := e.nextName()
			_, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, createRequest(name, below))
			if !errors.Is(err, lifecycle.ErrQuorumTooLow) {
				t.Errorf("creating with %v under the defaults plan=2, deploy:*=2: %v, want ErrQuorumTooLow", below, err)
			}
			if _, err := e.svc.Releases.Release(e.ctx, name); !errors.Is(err, errdef.ErrNotFound) {
				t.Errorf("refused release %s exists: %v", name, err)
			}
		}
	})

	t.Run("creation takes the higher of default and request", func(t *testing.T) {
		e.use(t)
		r := e.create(map[string]int{"deploy:production": 3, "plan": 2, "close": 2})
		want := map[string]int{"plan": 2, "build": 1, "deploy:staging": 2, "deploy:production": 3, "close": 2}
		if got := e.quorums(r); !mapsEqual(got, want) {
			t.Errorf("quorums %v, want %v", got, want)
		}
	})

	t.Run("an added environment gets the default", func(t *testing.T) {
		e.use(t)
		r := e.create(nil)
		r, err := e.svc.Releases.SetPlan(e.ctx, e.rm, r.Name, planRequest("add qa", "staging", "qa", "production"))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.quorums(r)["deploy:qa"]; got != 2 {
			t.Errorf("deploy:qa added by a new plan needs %d approvals, want the default 2", got)
		}
	})

	t.Run("a re-added environment keeps its highest quorum", func(t *testing.T) {
		e.use(t)
		r := e.create(map[string]int{"deploy:production": 3})
		for _, envs := range [][]string{{"staging"}, {"staging", "production"}} {
			var err error
			if r, err = e.svc.Releases.SetPlan(e.ctx, e.rm, r.Name, planRequest(fmt.Sprint(envs), envs...)); err != nil {
				t.Fatal(err)
			}
		}
		if got := e.quorums(r)["deploy:production"]; got != 3 {
			t.Errorf("deploy:production removed and re-added needs %d approvals, want 3 as created", got)
		}
		// Lowering the defaults afterwards lowers nothing either.
		if _, err := e.svc.Releases.SetGateDefaults(e.ctx, e.admin, map[string]lifecycle.GateSetting{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			e.svc.Releases.SetGateDefaults(e.ctx, e.admin, map[string]lifecycle.GateSetting{"plan": {Approvals: 2}, "deploy:*": {Approvals: 2}})
		})
		for _, envs := range [][]string{{"production"}, {"staging", "production"}} {
			var err error
			if r, err = e.svc.Releases.SetPlan(e.ctx, e.rm, r.Name, planRequest("again "+fmt.Sprint(envs), envs...)); err != nil {
				t.Fatal(err)
			}
		}
		if got := e.quorums(r); got["deploy:staging"] != 2 || got["deploy:production"] != 3 || got["plan"] != 2 {
			t.Errorf("quorums %v after re-adding under lower defaults, want deploy:staging 2, deploy:production 3, plan 2", got)
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPlanDigestCoversQuorums: approvers approve the quorums with the
// plan. The digest is the documented document's, two plans that differ
// only in a quorum differ in digest, and an approval of the plan with one
// quorum does not count for it with another.
func TestPlanDigestCoversQuorums(t *testing.T) {
	e := newRelEnv(t)
	two := e.create(map[string]int{"deploy:production": 2})
	three := e.create(map[string]int{"deploy:production": 3})
	if two.PlanDigest == three.PlanDigest {
		t.Fatalf("plans that differ in a quorum share the digest %s", two.PlanDigest)
	}

	// The documented document (docs/itil.md): the plan's fields in this
	// order, then the quorum of each of its gates (keys sorted), as
	// compact JSON.
	doc := struct {
		ChangeRef    string         `json:"changeRef"`
		Title        string         `json:"title"`
		Description  string         `json:"description"`
		Environments []string       `json:"environments"`
		BackoutPlan  string         `json:"backoutPlan"`
		Risk         string         `json:"risk"`
		Quorums      map[string]int `json:"quorums"`
	}{two.Plan.ChangeRef, two.Plan.Title, two.Plan.Description, two.Plan.Environments, two.Plan.BackoutPlan, two.Plan.Risk,
		map[string]int{"plan": 1, "build": 1, "deploy:staging": 1, "deploy:production": 2, "close": 1}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.FromBytes(b); two.PlanDigest != want {
		t.Errorf("plan digest %s, want %s, the digest of %s", two.PlanDigest, want, b)
	}

	// The same plan back with a higher quorum is a different plan: the
	// approval an approver prepared for the old quorum is stale.
	r := e.create(nil)
	old := r.PlanDigest
	if _, err := e.svc.Releases.SetPlan(e.ctx, e.rm, r.Name, planRequest(r.Plan.Description, "staging")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Releases.SetGateDefaults(e.ctx, e.admin, map[string]lifecycle.GateSetting{"deploy:production": {Approvals: 2}}); err != nil {
		t.Fatal(err)
	}
	r, err = e.svc.Releases.SetPlan(e.ctx, e.rm, r.Name, planRequest(r.Plan.Description, "staging", "production"))
	if err != nil {
		t.Fatal(err)
	}
	if r.PlanDigest == old {
		t.Fatalf("plan digest %s unchanged although deploy:production now needs %d approvals", old, e.quorums(r)["deploy:production"])
	}
	_, err = e.svc.Releases.Decide(e.ctx, e.cab[0], r.Name, lifecycle.ApprovalRequest{Gate: lifecycle.GatePlan, Decision: lifecycle.DecisionApprove, Digest: old})
	wantErr(t, "approving the plan digest of the lower quorum", err, lifecycle.ErrStaleApproval)
}

// TestSeparationOfDutiesAfterChanges: a principal who is both release
// manager and approver, but did not create the release, cannot approve
// the gate that covers what they changed: the plan, the artifacts, the
// review. Gates covering nothing they changed stay open to them.
func TestSeparationOfDutiesAfterChanges(t *testing.T) {
	e := newRelEnv(t)
	both := e.principal("rm-cab", nil, access.RoleReleaseManager, access.RoleApprover)
	r := e.create(nil)
	name := r.Name

	if _, err := e.svc.Releases.SetPlan(e.ctx, both, name, planRequest("rewritten by rm-cab", "staging", "production")); err != nil {
		t.Fatal(err)
	}
	_, err := e.decide(both, name, lifecycle.GatePlan)
	wantErr(t, "approving the plan one rewrote", err, lifecycle.ErrSeparationOfDuties)
	e.approve(e.cab[0], name, lifecycle.GatePlan)

	if _, err := e.svc.Releases.SetArtifacts(e.ctx, both, name, []lifecycle.ReleaseArtifactRef{{Name: relArtifact, Version: relVersion}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.decide(both, name, lifecycle.GateBuild)
	wantErr(t, "approving the build of the artifacts one set", err, lifecycle.ErrSeparationOfDuties)
	e.approve(e.cab[0], name, lifecycle.GateBuild)

	// The deploy gates approve the sealed build, which rm-cab did not
	// authorise: they are open to rm-cab.
	e.approve(both, name, lifecycle.DeployGate("staging"))
	e.deploy(e.staging, name, "staging", lifecycle.DeploymentSucceeded)
	e.approve(e.cab[0], name, lifecycle.DeployGate("production"))
	e.deploy(e.prod, name, "production", lifecycle.DeploymentSucceeded)

	if _, err := e.svc.Releases.FileReview(e.ctx, both, name, reviewRequest("successful")); err != nil {
		t.Fatal(err)
	}
	_, err = e.decide(both, name, lifecycle.GateClose)
	wantErr(t, "approving the close of the review one filed", err, lifecycle.ErrSeparationOfDuties)
	_, err = e.svc.Releases.Decide(e.ctx, both, name, lifecycle.ApprovalRequest{Gate: lifecycle.GateClose, Decision: lifecycle.DecisionReject,
		Digest: e.expected(name, lifecycle.GateClose).Digest, Comment: "no"})
	wantErr(t, "rejecting the close of the review one filed", err, lifecycle.ErrSeparationOfDuties)
	if got := e.get(name); got.State != lifecycle.ReleaseReview {
		t.Fatalf("refused decisions moved the release to %s", got.State)
	}
	r = e.approve(e.cab[1], name, lifecycle.GateClose)
	if r.State != lifecycle.ReleaseClosed {
		t.Fatalf("release %s after an independent close approval, want closed", r.State)
	}
}

// TestConcurrentApprovalsReachQuorumOnce: ten distinct approvers approving
// a quorum-10 gate at the same moment all succeed, and the gate is
// authorised exactly once; for the build gate that means one seal.
// Several trials, because a race that loses sometimes must lose here.
func TestConcurrentApprovalsReachQuorumOnce(t *testing.T) {
	e := newRelEnv(t)
	const trials = 3
	for trial := range trials {
		r := e.create(map[string]int{"plan": 10, "build": 10})
		for _, gate := range []string{lifecycle.GatePlan, lifecycle.GateBuild} {
			req := e.expected(r.Name, gate)
			errs := make([]error, len(e.cab))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, p := range e.cab {
				wg.Go(func() {
					<-start
					_, errs[i] = e.svc.Releases.Decide(e.ctx, p, r.Name, req)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("trial %d: %s approving %s: %v", trial, e.cab[i].Name, gate, err)
				}
			}
		}
		got := e.get(r.Name)
		if got.State != lifecycle.ReleaseReleased || got.ManifestDigest == "" {
			t.Errorf("trial %d: release %s, sealed %q; want released and sealed", trial, got.State, got.ManifestDigest)
		}
		counted, authorized, sealed := domaintest.Quorum(t, got, e.releaseEvents(r.Name))
		if counted[lifecycle.GatePlan] != 10 || counted[lifecycle.GateBuild] != 10 {
			t.Errorf("trial %d: approvals on record %v, want 10 per gate", trial, counted)
		}
		if authorized[lifecycle.GatePlan] != 1 || authorized[lifecycle.GateBuild] != 1 || sealed != 1 {
			t.Errorf("trial %d: gates authorised %v times and sealed %d times; want each gate once and one seal", trial, authorized, sealed)
		}
	}
}

// TestFailedDeploymentFinishedThroughReview: once a deployment failed or
// was rolled back, and none is running, the release is finished through
// review with an outcome that says it did not go out, then closed. It
// cannot be cancelled, and the refusal points at review.
func TestFailedDeploymentFinishedThroughReview(t *testing.T) {
	e := newRelEnv(t)
	for _, tc := range []struct {
		name    string
		state   string
		outcome string
		extra   func(t *testing.T, name string) // more deployments before the review
	}{
		{"failed", "deploying+failed", "failed", nil},
		{"rolled back while in progress", "deploying+rolledback", "rolled_back", nil},
		{"rolled back after success", "deploying", "rolled_back", func(t *testing.T, name string) {
			dep := e.deploy(e.staging, name, "staging", lifecycle.DeploymentSucceeded)
			e.updateDeployment(e.staging, name, dep.ID, lifecycle.DeploymentRolledBack)
		}},
		{"failed, retried and failed again", "deploying+failed", "failed", func(t *testing.T, name string) {
			retry := e.deploy(e.staging, name, "staging", lifecycle.DeploymentInProgress)
			_, err := e.svc.Releases.FileReview(e.ctx, e.rm, name, reviewRequest("failed"))
			wantErr(t, "review while a retry is running", err, lifecycle.ErrInvalidState)
			e.updateDeployment(e.staging, name, retry.ID, lifecycle.DeploymentFailed)
		}},
		{"production failed after staging", "deploying", "failed", func(t *testing.T, name string) {
			e.deploy(e.staging, name, "staging", lifecycle.DeploymentSucceeded)
			e.approve(e.cab[0], name, lifecycle.DeployGate("production"))
			e.deploy(e.prod, name, "production", lifecycle.DeploymentFailed)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.use(t)
			r := e.driveTo(tc.state)
			if tc.extra != nil {
				tc.extra(t, r.Name)
			}
			_, err := e.svc.Releases.CancelRelease(e.ctx, e.rm, r.Name, "give up")
			var ise *lifecycle.InvalidStateError
			if !errors.As(err, &ise) || !slices.Contains(ise.Allowed, "review") {
				t.Fatalf("cancel after a deployment: %v, want INVALID_STATE pointing at review", err)
			}
			_, err = e.svc.Releases.FileReview(e.ctx, e.rm, r.Name, reviewRequest("successful"))
			wantErr(t, "a successful review of a release that did not go out", err, errdef.ErrInvalidInput)

			r, err = e.svc.Releases.FileReview(e.ctx, e.rm, r.Name, reviewRequest(tc.outcome))
			wantErr(t, "review", err, nil)
			if r.State != lifecycle.ReleaseReview || r.Review == nil || r.Review.Outcome != tc.outcome {
				t.Fatalf("after the review: %s, review %+v", r.State, r.Review)
			}
			r = e.approve(e.cab[1], r.Name, lifecycle.GateClose)
			if r.State != lifecycle.ReleaseClosed {
				t.Fatalf("after the close approval: %s, want closed", r.State)
			}
		})
	}
}

// TestUpdateDeploymentChecksRoleFirst: a principal without the deployer
// role is refused before the release's state, or whether the release or
// the deployment exist, is looked at.
func TestUpdateDeploymentChecksRoleFirst(t *testing.T) {
	e := newRelEnv(t)
	planning := e.driveTo("planning")
	deploying := e.driveTo("deploying")
	dep := e.deploy(e.staging, deploying.Name, "staging", lifecycle.DeploymentInProgress)
	both := e.principal("rm-cab", nil, access.RoleReleaseManager, access.RoleApprover)
	succeeded := lifecycle.DeploymentUpdate{Status: lifecycle.DeploymentSucceeded}
	revision := e.get(deploying.Name).Revision
	for _, p := range []access.Principal{e.auditor, e.rm, e.cab[0], both, e.pipeline} {
		for _, target := range []struct{ what, release, id string }{
			{"a planning release", planning.Name, "dep_000000000000"},
			{"an unknown deployment", deploying.Name, "dep_000000000000"},
			{"an unknown release", "no-such-release", dep.ID},
			{"a running deployment", deploying.Name, dep.ID},
		} {
			_, _, err := e.svc.Releases.UpdateDeployment(e.ctx, p, target.release, target.id, succeeded)
			if !errors.Is(err, access.ErrNotAuthorizedForEnv) || errors.Is(err, lifecycle.ErrInvalidState) || errors.Is(err, errdef.ErrNotFound) {
				t.Errorf("%s updating %s: %v, want ErrNotAuthorizedForEnv", p.Name, target.what, err)
			}
		}
	}
	if got := e.get(deploying.Name); got.Deployments[0].Status != lifecycle.DeploymentInProgress || got.Revision != revision {
		t.Errorf("refused updates changed the release: revision %d→%d, deployment %+v", revision, got.Revision, got.Deployments[0])
	}
}

// TestApprovalDigestMalformed: a digest that is not a digest is bad input
// (store.ErrInvalidDigest), not a stale approval, and changes nothing.
func TestApprovalDigestMalformed(t *testing.T) {
	e := newRelEnv(t)
	r := e.create(nil)
	for _, d := range []digest.Digest{"abc", "sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + digest.Digest(r.PlanDigest.Encoded()[1:]), ""} {
		for _, decision := range []lifecycle.Decision{lifecycle.DecisionApprove, lifecycle.DecisionReject} {
			_, err := e.svc.Releases.Decide(e.ctx, e.cab[0], r.Name, lifecycle.ApprovalRequest{Gate: lifecycle.GatePlan, Decision: decision, Digest: d, Comment: "x"})
			if !errors.Is(err, store.ErrInvalidDigest) || errors.Is(err, lifecycle.ErrStaleApproval) {
				t.Errorf("%s naming %q: %v, want store.ErrInvalidDigest", decision, d, err)
			}
		}
	}
	if got := e.get(r.Name); got.Revision != r.Revision || len(got.Approvals) != 0 {
		t.Errorf("malformed approvals changed the release: revision %d→%d, %d approvals", r.Revision, got.Revision, len(got.Approvals))
	}
}

// hookedBackend calls onPut, once it is set, before each Put.
type hookedBackend struct {
	*fs.Backend
	mu    sync.Mutex
	onPut func()
}

func (b *hookedBackend) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b.mu.Lock()
	hook := b.onPut
	b.onPut = nil
	b.mu.Unlock()
	if hook != nil {
		hook()
	}
	return b.Backend.Put(ctx, key, r, size)
}

// TestSealWritesTheManifestOutsideTheTransaction: the approval that seals
// a release stores the manifest blob before its database transaction, so
// a slow blob store never holds the database's write lock. While the
// manifest is being written, another change to the database goes
// through; were the lock held, it would wait until its context ends.
func TestSealWritesTheManifestOutsideTheTransaction(t *testing.T) {
	var hooked *hookedBackend
	e := newRelEnvOver(t, func(b *fs.Backend) store.Backend {
		hooked = &hookedBackend{Backend: b}
		return hooked
	})
	r := e.driveTo("building")
	var during error
	hooked.mu.Lock()
	hooked.onPut = func() {
		// A deadlock detector, not a timing assertion: without the write
		// lock this returns at once, with it never.
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		_, during = e.svc.Releases.CreateRelease(ctx, e.rm, createRequest("written-while-sealing", nil))
	}
	hooked.mu.Unlock()
	r = e.approve(e.cab[0], r.Name, lifecycle.GateBuild)
	if r.State != lifecycle.ReleaseReleased || r.ManifestDigest == "" {
		t.Fatalf("after the build approval: %s, manifest %q", r.State, r.ManifestDigest)
	}
	hooked.mu.Lock()
	wrote := hooked.onPut == nil
	hooked.mu.Unlock()
	if !wrote {
		t.Fatal("sealing wrote no blob")
	}
	if during != nil {
		t.Fatalf("a change while the manifest was being written: %v", during)
	}
	if _, manifest, err := e.svc.Releases.ReleaseManifest(e.ctx, r.Name); err != nil || digest.FromBytes(manifest) != r.ManifestDigest {
		t.Fatalf("sealed manifest: %v", err)
	}
}
