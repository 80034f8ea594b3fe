package lifecycle_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/lifecycle"
)

// OpenGates lists the gates waiting for a decision across releases, each
// since the moment it opened: the plan gate at creation (or at the
// rejection that reopened it), the build gate when the plan passed, the
// deploy gates at the seal, the close gate at the review.
func TestOpenGates(t *testing.T) {
	e := newRelEnv(t)
	planning := e.driveTo("planning")
	building := e.driveTo("building")
	released := e.driveTo("released")
	review := e.driveTo("review")
	closed := e.driveTo("closed")
	rejected := e.driveTo("planning")
	req := e.expected(rejected.Name, lifecycle.GatePlan)
	req.Decision = lifecycle.DecisionReject
	rejected, err := e.svc.Releases.Decide(e.ctx, e.cab[0], rejected.Name, req)
	if err != nil {
		t.Fatal(err)
	}

	gates, err := e.svc.Releases.OpenGates(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	for _, g := range gates {
		got[g.Release+" "+g.Gate] = g.Since
	}
	lastApproval := func(r lifecycle.Release, gate string) time.Time {
		for _, a := range slices.Backward(r.Approvals) {
			if a.Gate == gate {
				return a.At
			}
		}
		t.Fatalf("%s has no approval of %s", r.Name, gate)
		return time.Time{}
	}
	want := map[string]time.Time{
		planning.Name + " plan":              planning.CreatedAt,
		building.Name + " build":             lastApproval(building, lifecycle.GatePlan),
		released.Name + " deploy:staging":    *released.SealedAt,
		released.Name + " deploy:production": *released.SealedAt,
		review.Name + " close":               review.Review.At,
		rejected.Name + " plan":              rejected.LastRejection.At,
	}
	if len(got) != len(want) {
		t.Errorf("open gates %v; want %v (none of closed %s)", got, want, closed.Name)
	}
	for k, since := range want {
		if at, ok := got[k]; !ok || !at.Equal(since) {
			t.Errorf("%s open since %s (listed %v); want %s", k, at, ok, since)
		}
	}
}

// An update that moves a deployment's status says from which, so that a
// count of deployments by status (monitoring) does not count an update
// of the notes alone.
func TestDeploymentUpdateSaysFrom(t *testing.T) {
	e := newRelEnv(t)
	r := e.driveTo("deploying")
	dep := e.deploy(e.staging, r.Name, "staging", lifecycle.DeploymentInProgress)
	notes := "halfway"
	if _, _, err := e.svc.Releases.UpdateDeployment(e.ctx, e.staging, r.Name, dep.ID, lifecycle.DeploymentUpdate{Notes: &notes}); err != nil {
		t.Fatal(err)
	}
	e.updateDeployment(e.staging, r.Name, dep.ID, lifecycle.DeploymentSucceeded)
	var froms []any
	for _, ev := range e.releaseEvents(r.Name) {
		if ev.Action != lifecycle.ActionReleaseDeployment {
			continue
		}
		var d map[string]any
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			t.Fatal(err)
		}
		froms = append(froms, d["from"])
	}
	want := []any{nil, nil, "in_progress"}
	if !slices.Equal(froms, want) {
		t.Errorf("from of the deployment events = %v; want %v (recorded, notes only, status moved)", froms, want)
	}
}
