package lifecycle_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// TestReleaseRecordsWhoChangedWhat: every change of the plan, the
// artifacts and the review is kept with who made it, what its gate
// expected after it, and when; the record survives a re-read.
func TestReleaseRecordsWhoChangedWhat(t *testing.T) {
	e := newRelEnv(t)
	both := e.principal("rm-cab", nil, access.RoleReleaseManager, access.RoleApprover)
	r := e.create(nil)
	name := r.Name
	var want []string
	record := func(part string, by access.Principal) {
		r := e.get(name)
		var gate string
		switch part {
		case lifecycle.PartPlan:
			gate = lifecycle.GatePlan
		case lifecycle.PartArtifacts:
			gate = lifecycle.GateBuild
		case lifecycle.PartReview:
			gate = lifecycle.GateClose
		}
		d, err := e.svc.Releases.ExpectedDigest(e.ctx, r, gate)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s by %s (%s) → %s", part, by.Name, by.TokenID, d))
	}
	record(lifecycle.PartPlan, e.rm)
	record(lifecycle.PartArtifacts, e.rm)

	if _, err := e.svc.Releases.SetPlan(e.ctx, both, name, planRequest("by rm-cab", "staging", "production")); err != nil {
		t.Fatal(err)
	}
	record(lifecycle.PartPlan, both)
	e.approve(e.cab[0], name, lifecycle.GatePlan)
	if _, err := e.svc.Releases.SetArtifacts(e.ctx, both, name, []lifecycle.ReleaseArtifactRef{{Name: relArtifact, Version: relVersion}}); err != nil {
		t.Fatal(err)
	}
	record(lifecycle.PartArtifacts, both)
	e.approve(e.cab[0], name, lifecycle.GateBuild)
	e.approve(e.cab[0], name, lifecycle.DeployGate("staging"))
	e.deploy(e.staging, name, "staging", lifecycle.DeploymentFailed)
	if _, err := e.svc.Releases.FileReview(e.ctx, e.rm, name, reviewRequest("failed")); err != nil {
		t.Fatal(err)
	}
	record(lifecycle.PartReview, e.rm)

	r = e.get(name)
	var got []string
	for _, c := range r.Edits {
		if c.At.IsZero() {
			t.Errorf("edit %+v has no time", c)
		}
		got = append(got, fmt.Sprintf("%s by %s (%s) → %s", c.Part, c.By, c.TokenID, c.Digest))
	}
	if !slices.Equal(got, want) {
		t.Errorf("edits:\n  %q\nwant\n  %q", got, want)
	}
}
