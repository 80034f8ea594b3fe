package releases_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dmlproject/dml/releases"
)

// TestReleaseRecordsWhoChangedWhat: every change of the plan, the
// artifacts and the review is kept with who made it, what its gate
// expected after it, and when; the record survives a re-read.
func TestReleaseRecordsWhoChangedWhat(t *testing.T) {
	e := newRelEnv(t)
	both := e.principal("rm-cab", nil, releases.RoleReleaseManager, releases.RoleApprover)
	r := e.create(nil)
	name := r.Name
	var want []string
	record := func(part string, by releases.Principal) {
		r := e.get(name)
		var gate string
		switch part {
		case releases.PartPlan:
			gate = releases.GatePlan
		case releases.PartArtifacts:
			gate = releases.GateBuild
		case releases.PartReview:
			gate = releases.GateClose
		}
		d, err := e.svc.ExpectedDigest(e.ctx, r, gate)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s by %s (%s) → %s", part, by.Name, by.TokenID, d))
	}
	record(releases.PartPlan, e.rm)
	record(releases.PartArtifacts, e.rm)

	if _, err := e.svc.SetPlan(e.ctx, both, name, planRequest("by rm-cab", "staging", "production")); err != nil {
		t.Fatal(err)
	}
	record(releases.PartPlan, both)
	e.approve(e.cab[0], name, releases.GatePlan)
	if _, err := e.svc.SetArtifacts(e.ctx, both, name, []releases.ReleaseArtifactRef{{Name: relArtifact, Version: relVersion}}); err != nil {
		t.Fatal(err)
	}
	record(releases.PartArtifacts, both)
	e.approve(e.cab[0], name, releases.GateBuild)
	e.approve(e.cab[0], name, releases.DeployGate("staging"))
	e.deploy(e.staging, name, "staging", releases.DeploymentFailed)
	if _, err := e.svc.FileReview(e.ctx, e.rm, name, reviewRequest("failed")); err != nil {
		t.Fatal(err)
	}
	record(releases.PartReview, e.rm)

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
