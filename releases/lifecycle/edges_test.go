package lifecycle_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// pushAs pushes the payments API tarball again as name:version, by the
// pipeline, with the evidence fixtures given (cosign/...), and returns the
// artifact as the catalogue has it then.
func (e *relEnv) pushAs(name, version string, evidence ...string) catalog.Artifact {
	e.t.Helper()
	content := domaintest.Fixture(e.t, "cosign/payments-api-1.4.2.tar.gz")
	a, _, err := e.svc.Catalog.Push(e.ctx, e.pipeline, catalog.PushRequest{Name: name, Version: version, MediaType: "application/gzip",
		Size: int64(len(content)), Body: bytes.NewReader(content)})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range evidence {
		kind, body := catalog.EvidenceAttestation, domaintest.Fixture(e.t, f)
		if strings.HasSuffix(f, ".sig") {
			kind, body = catalog.EvidenceSignature, []byte(`{"keyId":"ci","signature":"`+strings.TrimSpace(string(body))+`"}`)
		}
		if _, a, err = e.svc.Catalog.AddEvidence(e.ctx, e.pipeline, catalog.EvidenceRequest{Name: name, Version: version, Kind: kind, Body: body}); err != nil {
			e.t.Fatal(err)
		}
	}
	return a
}

// withArtifacts is createRequest with these artifacts instead.
func withArtifacts(name string, refs ...lifecycle.ReleaseArtifactRef) lifecycle.CreateReleaseRequest {
	req := createRequest(name, nil)
	req.Artifacts = refs
	return req
}

// Planning accepts artifacts still in quarantine, and says which and what
// each still lacks; the build gate names every one that is not admitted.
func TestPlanningWarnsAboutArtifactsNotAdmitted(t *testing.T) {
	e := newRelEnv(t)
	if a := e.pushAs(relArtifact, "1.5.0"); a.State != catalog.StateQuarantined {
		t.Fatalf("1.5.0 is %s, want quarantined", a.State)
	}
	if a := e.pushAs("payments/worker", "2.0.0", "cosign/payments-api-1.4.2.tar.gz.sig"); a.State != catalog.StateQuarantined {
		t.Fatalf("worker 2.0.0 is %s, want quarantined", a.State)
	}
	admitted := lifecycle.ReleaseArtifactRef{Name: relArtifact, Version: relVersion}
	api150 := lifecycle.ReleaseArtifactRef{Name: relArtifact, Version: "1.5.0"}
	worker := lifecycle.ReleaseArtifactRef{Name: "payments/worker", Version: "2.0.0"}

	r, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, withArtifacts(e.nextName(), admitted, api150))
	if err != nil {
		t.Fatalf("planning with a quarantined artifact: %v", err)
	}
	warnings, err := e.svc.Releases.ArtifactWarnings(e.ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 {
		t.Fatalf("warnings = %+v, want one, about payments/api:1.5.0", warnings)
	}
	w := warnings[0]
	if w.Name != relArtifact || w.Version != "1.5.0" || w.State != catalog.StateQuarantined || len(w.Unmet) == 0 {
		t.Fatalf("warning = %+v, want payments/api:1.5.0 quarantined with what it lacks", w)
	}
	if msg := w.Message(); !strings.Contains(msg, "payments/api:1.5.0") || !strings.Contains(msg, "quarantined") || !strings.Contains(msg, w.Unmet[0]) {
		t.Errorf("warning message %q names neither the artifact, its state nor what it lacks", msg)
	}

	// Adding artifacts warns about each that is not admitted.
	r, err = e.svc.Releases.SetArtifacts(e.ctx, e.rm, r.Name, []lifecycle.ReleaseArtifactRef{admitted, api150, worker})
	if err != nil {
		t.Fatal(err)
	}
	if warnings, err = e.svc.Releases.ArtifactWarnings(e.ctx, r); err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, w := range warnings {
		refs = append(refs, w.Name+":"+w.Version)
	}
	if !slices.Equal(refs, []string{"payments/api:1.5.0", "payments/worker:2.0.0"}) {
		t.Fatalf("warnings name %q, want payments/api:1.5.0 and payments/worker:2.0.0", refs)
	}

	// The build gate refuses, naming every artifact that is not admitted.
	e.approve(e.cab[0], r.Name, lifecycle.GatePlan)
	_, err = e.decide(e.cab[0], r.Name, lifecycle.GateBuild)
	wantErr(t, "build gate with quarantined artifacts", err, lifecycle.ErrBuildBlocked)
	var be *lifecycle.BuildBlockedError
	if !errors.As(err, &be) {
		t.Fatalf("build gate refusal %v is no *BuildBlockedError", err)
	}
	refs = refs[:0]
	for _, a := range be.Artifacts {
		refs = append(refs, a.Name+":"+a.Version+" "+string(a.State))
		if a.State == catalog.StateQuarantined && len(a.Unmet) == 0 {
			t.Errorf("%s:%s: the refusal does not say what it lacks", a.Name, a.Version)
		}
	}
	if !slices.Equal(refs, []string{"payments/api:1.5.0 quarantined", "payments/worker:2.0.0 quarantined"}) {
		t.Fatalf("build gate names %q, want both quarantined artifacts", refs)
	}
	for _, want := range []string{"payments/api:1.5.0", "payments/worker:2.0.0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %s", err, want)
		}
	}
}

// A rejected or retired artifact is refused as soon as a release names it.
func TestPlanningRefusesRejectedAndRetiredArtifacts(t *testing.T) {
	e := newRelEnv(t)
	if a := e.pushAs(relArtifact, "1.4.1", "cosign/payments-api-1.4.2.tar.gz.sig", "cosign/test-result-failed.dsse.json"); a.State != catalog.StateRejected {
		t.Fatalf("1.4.1 is %s, want rejected", a.State)
	}
	e.pushAs(relArtifact, "1.3.0")
	if _, err := e.svc.Catalog.RetireArtifact(e.ctx, e.admin, relArtifact, "1.3.0"); err != nil {
		t.Fatal(err)
	}
	planning := e.create(nil)
	for _, tc := range []struct {
		version string
		state   string
		want    error
	}{
		{"1.4.1", "rejected", lifecycle.ErrArtifactRejected},
		{"1.3.0", "retired", catalog.ErrArtifactRetired},
	} {
		ref := lifecycle.ReleaseArtifactRef{Name: relArtifact, Version: tc.version}
		check := func(what string, err error) {
			t.Helper()
			wantErr(t, what, err, tc.want)
			var re *lifecycle.ArtifactRefusedError
			if !errors.As(err, &re) || re.Name != relArtifact || re.Version != tc.version || re.State != tc.state {
				t.Fatalf("%s: %v (%+v), want an ArtifactRefusedError naming %s:%s %s", what, err, re, relArtifact, tc.version, tc.state)
			}
			if !strings.Contains(err.Error(), relArtifact+":"+tc.version) || !strings.Contains(err.Error(), tc.state) {
				t.Errorf("%s: %q does not name the artifact and its state", what, err)
			}
		}
		_, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, withArtifacts(e.nextName(), ref))
		check("create with "+tc.state, err)
		_, err = e.svc.Releases.SetArtifacts(e.ctx, e.rm, planning.Name, []lifecycle.ReleaseArtifactRef{{Name: relArtifact, Version: relVersion}, ref})
		check("set-artifacts with "+tc.state, err)
	}
	if r := e.get(planning.Name); len(r.Artifacts) != 1 {
		t.Errorf("refused changes changed the release: %+v", r.Artifacts)
	}
}

// A second approval of the same gate by the same principal is said to be
// counted already, and changes nothing.
func TestRepeatedApprovalSaysAlreadyCounted(t *testing.T) {
	e := newRelEnv(t)
	r := e.create(map[string]int{lifecycle.GatePlan: 2})
	req := e.expected(r.Name, lifecycle.GatePlan)
	first, err := e.svc.Releases.DecideGate(e.ctx, e.cab[0], r.Name, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.AlreadyCounted {
		t.Fatal("the first approval says it was counted already")
	}
	events := len(e.releaseEvents(r.Name))
	again, err := e.svc.Releases.DecideGate(e.ctx, e.cab[0], r.Name, req)
	if err != nil {
		t.Fatalf("repeated approval: %v", err)
	}
	if !again.AlreadyCounted {
		t.Fatal("the repeated approval does not say it was counted already")
	}
	if again.Release.Revision != first.Release.Revision || len(again.Release.Approvals) != 1 {
		t.Errorf("the repeated approval changed the release: revision %d → %d, %d approvals", first.Release.Revision, again.Release.Revision, len(again.Release.Approvals))
	}
	if n := len(e.releaseEvents(r.Name)); n != events {
		t.Errorf("the repeated approval recorded %d events", n-events)
	}
	if msg := again.Message(); !strings.Contains(msg, "already counted") || !strings.Contains(msg, "1 of 2") {
		t.Errorf("message %q does not say the approval is already counted and where the gate stands", msg)
	}
	// Another approver still completes the quorum.
	other, err := e.svc.Releases.DecideGate(e.ctx, e.cab[1], r.Name, req)
	if err != nil || other.AlreadyCounted || other.Release.State != lifecycle.ReleaseBuilding {
		t.Fatalf("second approver: %+v %v", other, err)
	}
}

// Cancelling needs a reason, which the audit record keeps.
func TestCancelNeedsAReason(t *testing.T) {
	e := newRelEnv(t)
	r := e.create(nil)
	for _, reason := range []string{"", "  \n"} {
		_, err := e.svc.Releases.CancelRelease(e.ctx, e.rm, r.Name, reason)
		wantErr(t, "cancel without a reason", err, lifecycle.ErrReasonRequired)
		wantErr(t, "cancel without a reason", err, errdef.ErrInvalidInput)
	}
	if got := e.get(r.Name); got.State != lifecycle.ReleasePlanning {
		t.Fatalf("a refused cancel left the release %s", got.State)
	}
	if _, err := e.svc.Releases.CancelRelease(e.ctx, e.rm, r.Name, "superseded by rel-9"); err != nil {
		t.Fatal(err)
	}
	events := e.releaseEvents(r.Name)
	last := events[len(events)-1]
	var det struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(last.Details, &det); err != nil || last.Action != lifecycle.ActionReleaseCancelled || det.Reason != "superseded by rel-9" {
		t.Fatalf("last event %s %s (%v), want the cancellation with its reason", last.Action, last.Details, err)
	}
}

// A refusal for want of a role names the roles the caller has and the
// ones that would do.
func TestRoleRefusalNamesHaveAndNeed(t *testing.T) {
	e := newRelEnv(t)
	r := e.create(nil)
	_, err := e.svc.Releases.Decide(e.ctx, e.pipeline, r.Name, e.expected(r.Name, lifecycle.GatePlan))
	wantErr(t, "a publisher deciding a gate", err, errdef.ErrDenied)
	var re *access.RoleError
	if !errors.As(err, &re) {
		t.Fatalf("%v is no *access.RoleError", err)
	}
	if !slices.Equal(re.Have, []access.Role{access.RolePublisher}) || !slices.Equal(re.Need, []access.Role{access.RoleApprover}) {
		t.Errorf("have %v need %v, want have [publisher] need [approver]", re.Have, re.Need)
	}
	if want := "needs the approver role; your token has: publisher"; !strings.Contains(err.Error(), want) {
		t.Errorf("%q lacks %q", err, want)
	}
}

// A release name that is not found suggests the close ones that are.
func TestReleaseNotFoundSuggestsCloseNames(t *testing.T) {
	e := newRelEnv(t)
	r := e.create(nil) // rel-1
	for _, call := range []struct {
		what string
		do   func(name string) error
	}{
		{"get", func(n string) error { _, err := e.svc.Releases.Release(e.ctx, n); return err }},
		{"cancel", func(n string) error { _, err := e.svc.Releases.CancelRelease(e.ctx, e.rm, n, "typo"); return err }},
	} {
		err := call.do("rel-l")
		wantErr(t, call.what, err, errdef.ErrNotFound)
		var nf *errdef.NotFoundError
		if !errors.As(err, &nf) || !slices.Contains(nf.Suggestions, r.Name) {
			t.Fatalf("%s rel-l: %v (%+v), want a suggestion of %s", call.what, err, nf, r.Name)
		}
		if want := "did you mean " + r.Name + "?"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q lacks %q", call.what, err, want)
		}
		// A name far from every release suggests nothing.
		err = call.do("zzzzzzzz")
		if errors.As(err, &nf) && len(nf.Suggestions) > 0 {
			t.Errorf("%s zzzzzzzz suggests %q", call.what, nf.Suggestions)
		}
	}
}

// An artifact that is not found suggests close names and versions.
func TestArtifactNotFoundSuggestsCloseNames(t *testing.T) {
	e := newRelEnv(t)
	for _, tc := range []struct{ name, version, want string }{
		{"payments/ap", relVersion, "payments/api"},
		{"payment/api", relVersion, "payments/api"},
		{relArtifact, "1.4.3", "payments/api:1.4.2"},
	} {
		_, err := e.svc.Catalog.Artifact(e.ctx, tc.name, tc.version)
		wantErr(t, tc.name+":"+tc.version, err, errdef.ErrNotFound)
		var nf *errdef.NotFoundError
		if !errors.As(err, &nf) || !slices.Contains(nf.Suggestions, tc.want) {
			t.Fatalf("%s:%s: %v (%+v), want a suggestion of %s", tc.name, tc.version, err, nf, tc.want)
		}
		if !strings.Contains(err.Error(), "did you mean "+tc.want) {
			t.Errorf("%q does not suggest %s", err, tc.want)
		}
		// A release naming it says the same.
		_, err = e.svc.Releases.CreateRelease(e.ctx, e.rm, withArtifacts(e.nextName(), lifecycle.ReleaseArtifactRef{Name: tc.name, Version: tc.version}))
		if !errors.As(err, &nf) || !slices.Contains(nf.Suggestions, tc.want) {
			t.Errorf("create naming %s:%s: %v, want a suggestion of %s", tc.name, tc.version, err, tc.want)
		}
	}
}
