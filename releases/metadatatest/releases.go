package metadatatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/opencontainers/go-digest"
)

// attached is how artifacts appear in a release; never nil, so that a
// release without artifacts encodes them as [].
func attached(artifacts ...catalog.Artifact) []lifecycle.ReleaseArtifact {
	out := make([]lifecycle.ReleaseArtifact, 0, len(artifacts))
	for _, a := range artifacts {
		out = append(out, lifecycle.ReleaseArtifact{
			Name: a.Name, Version: a.Version, Digest: a.Digest, Size: a.Size, MediaType: a.MediaType, CreatedBy: a.CreatedBy,
		})
	}
	return out
}

// release is a valid release in planning, with artifacts attached.
func release(name string, artifacts ...catalog.Artifact) lifecycle.Release {
	return lifecycle.Release{
		Name:  name,
		State: lifecycle.ReleasePlanning,
		Plan: lifecycle.Plan{
			ChangeRef:    "CHG-" + name,
			Title:        "Release " + name,
			Environments: []string{"staging", "prod"},
			BackoutPlan:  "redeploy the previous release",
			Risk:         "low",
		},
		PlanDigest:  digest.FromString("plan of " + name),
		Artifacts:   attached(artifacts...),
		Gates:       map[string]int{"plan": 1, "deploy:prod": 2},
		Approvals:   []lifecycle.Approval{},
		Deployments: []lifecycle.Deployment{},
		CreatedBy:   manager.Name,
		CreatedAt:   t0,
		UpdatedAt:   t0,
	}
}

// fullRelease sets every field of a release (unsetFields checks that it
// does), with its times in loc.
func fullRelease(name string, loc *time.Location, artifacts ...catalog.Artifact) lifecycle.Release {
	at := func(d time.Duration) time.Time { return t0.Add(d).In(loc) }
	sealed, finished := at(3*time.Hour), at(5*time.Hour)
	rejection := lifecycle.Approval{
		Gate: "deploy:prod", Decision: lifecycle.DecisionReject, Digest: digest.FromString("index of " + name),
		Comment: "not during the freeze", By: "carol", TokenID: "tok_carol", At: at(150 * time.Minute),
	}
	return lifecycle.Release{
		Name:  name,
		State: lifecycle.ReleaseReview,
		Plan: lifecycle.Plan{
			ChangeRef:    "CHG-1042",
			Title:        "Payments <March> & refunds",
			Description:  "Rolls out \"1.4.2\"\nwith refunds, café-grade 🚀",
			Environments: []string{"staging", "prod"},
			Window:       &lifecycle.Window{Start: at(4 * time.Hour), End: at(6 * time.Hour)},
			BackoutPlan:  "redeploy 1.4.1",
			Risk:         "medium",
		},
		PlanDigest: digest.FromString("plan of " + name),
		Artifacts:  attached(artifacts...),
		Gates:      map[string]int{"plan": 1, "build": 2, "deploy:prod": 2, "close": 1},
		Approvals: []lifecycle.Approval{
			{Gate: "plan", Decision: lifecycle.DecisionApprove, Digest: digest.FromString("old plan"), By: "dave",
				TokenID: "tok_dave", At: at(30 * time.Minute), Discarded: true},
			{Gate: "plan", Decision: lifecycle.DecisionApprove, Digest: digest.FromString("plan of " + name),
				Comment: "LGTM", By: "dave@example.com", TokenID: "tok_dave", Issuer: "https://idp.example.com/", Subject: "u-dave", At: at(time.Hour)},
		},
		ManifestDigest:    digest.FromString("index of " + name),
		ManifestSignature: "MEUCIQDx1s2Vn4r+5Qe/sig==",
		SealedAt:          &sealed,
		Deployments: []lifecycle.Deployment{
			{ID: "dep-1", Environment: "staging", Target: "k8s/staging", Status: lifecycle.DeploymentSucceeded,
				StartedAt: at(4 * time.Hour), FinishedAt: &finished, Notes: "canary at 10%, then all",
				VerifiedDigests: []digest.Digest{digest.FromString("a1")}, By: "deploy-bot", UpdatedAt: finished},
			{ID: "dep-2", Environment: "prod", Target: "k8s/prod", Status: lifecycle.DeploymentInProgress,
				StartedAt: at(5 * time.Hour), VerifiedDigests: []digest.Digest{}, By: "fay@example.com",
				Issuer: "https://idp.example.com/", Subject: "u-fay", UpdatedAt: at(5 * time.Hour),
				Emergency: true, EmergencyReason: "INC-7: refunds stuck"},
		},
		Review: &lifecycle.Review{
			Outcome: "successful", Summary: "refunds live", Incidents: []string{"INC-7"},
			ObjectivesMet: true, By: "erin", At: at(7 * time.Hour),
		},
		ReviewDigest:  digest.FromString("review of " + name),
		LastRejection: &rejection,
		Edits: []lifecycle.Edit{
			{Part: lifecycle.PartPlan, Digest: digest.FromString("old plan"), By: manager.Name, TokenID: manager.TokenID, At: at(0)},
			{Part: lifecycle.PartReview, Digest: digest.FromString("review of " + name), By: "erin", TokenID: "tok_erin", At: at(7 * time.Hour)},
		},
		Emergency: &lifecycle.Emergency{
			Reason: "INC-7: refunds stuck", Until: at(10 * time.Hour), RequestedBy: manager.Name, TokenID: manager.TokenID,
			RequestedAt: at(4 * time.Hour), Digest: digest.FromString("emergency of " + name),
			Status: lifecycle.EmergencyAuthorized, AuthorizedAt: &finished,
		},
		CreatedBy: manager.Name,
		CreatedAt: at(0),
		UpdatedAt: at(7 * time.Hour),
		Revision:  7, // a new release is revision 1, whatever it says
	}
}

// unsetFields lists the fields of v and of the structs within it, as
// Type.Field, that are zero wherever they occur: a fixture meant to set
// every field says which it forgot, so a field added to lifecycle.Release
// cannot slip past the round trip unchecked.
func unsetFields(v any) []string {
	set := map[string]bool{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				return
			}
			for i := range v.NumField() {
				field := v.Type().Name() + "." + v.Type().Field(i).Name
				set[field] = set[field] || !v.Field(i).IsZero()
				walk(v.Field(i))
			}
		}
	}
	walk(reflect.ValueOf(v))
	var unset []string
	for field, ok := range set {
		if !ok {
			unset = append(unset, field)
		}
	}
	slices.Sort(unset)
	return unset
}

func mustCreateRelease(t *testing.T, m store, r lifecycle.Release) lifecycle.Release {
	t.Helper()
	stored, err := m.CreateRelease(t.Context(), manager, r)
	if err != nil {
		t.Fatalf("CreateRelease(%s): %v", r.Name, err)
	}
	return stored
}

func mustGetRelease(t *testing.T, m store, name string) lifecycle.Release {
	t.Helper()
	r, err := m.GetRelease(t.Context(), name)
	if err != nil {
		t.Fatalf("GetRelease(%s): %v", name, err)
	}
	return r
}

// mustUpdateRelease applies change to a fresh read of release name and
// stores it, recording action with details ("" for none).
func mustUpdateRelease(t *testing.T, m store, name, action, details string, change func(r *lifecycle.Release)) lifecycle.Release {
	t.Helper()
	r := mustGetRelease(t, m, name)
	change(&r)
	got, err := m.UpdateRelease(t.Context(), manager, r, lifecycle.ReleaseChange{Action: action, Details: rawDetails(details)})
	if err != nil {
		t.Fatalf("UpdateRelease(%s, %s): %v", name, action, err)
	}
	return got
}

// rawDetails is details as a caller passes them: nil when there are none.
func rawDetails(details string) json.RawMessage {
	if details == "" {
		return nil
	}
	return json.RawMessage(details)
}

// checkRelease compares releases by their JSON, which covers every field,
// tells nil lists from empty ones and shows a time's zone (an offset other
// than zero), so a time that comes back outside UTC differs.
func checkRelease(t *testing.T, what string, got, want lifecycle.Release) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func releaseNames(list []lifecycle.Release) string {
	s := make([]string, len(list))
	for i, r := range list {
		s[i] = r.Name
	}
	return "[" + strings.Join(s, " ") + "]"
}

// checkContaining checks that ReleasesContaining(name, version) is exactly
// the releases named want, in order, and never nil.
func checkContaining(t *testing.T, m store, name, version string, want ...string) []lifecycle.Release {
	t.Helper()
	got, err := m.ReleasesContaining(t.Context(), name, version)
	if err != nil {
		t.Fatalf("ReleasesContaining(%s:%s): %v", name, version, err)
	}
	if got == nil {
		t.Errorf("ReleasesContaining(%s:%s) = nil; want an empty list, not nil", name, version)
	}
	if releaseNames(got) != releaseNames(namedReleases(want...)) {
		t.Errorf("ReleasesContaining(%s:%s) = %s; want %v", name, version, releaseNames(got), want)
	}
	return got
}

func namedReleases(names ...string) []lifecycle.Release {
	out := make([]lifecycle.Release, len(names))
	for i, n := range names {
		out[i].Name = n
	}
	return out
}

// checkAboutNow fails unless tm is in UTC and about the time of the call
// (a generous window: an implementation may read a database server's
// clock).
func checkAboutNow(t *testing.T, what string, tm, before time.Time) {
	t.Helper()
	checkUTC(t, what, tm)
	if d := tm.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("%s = %v; want about %v", what, tm, before)
	}
}

// testCreateRelease round-trips a release that sets every field, with its
// times in another zone: they come back as the same instants in UTC.
func testCreateRelease(t *testing.T, m store) {
	a1 := mustCreate(t, m, artifact("payments/api", "1.4.2", "a1"))
	a2 := mustCreate(t, m, artifact("payments/web", "2.0.0", "a2"))
	cest := time.FixedZone("CEST", 2*60*60)
	r := fullRelease("payments-march", cest, a1, a2)
	if unset := unsetFields(r); len(unset) > 0 {
		t.Fatalf("fixture leaves %v unset; the round trip would prove nothing for them", unset)
	}
	want := fullRelease("payments-march", time.UTC, a1, a2)
	want.Revision = 1

	got, err := m.CreateRelease(t.Context(), manager, r)
	if err != nil {
		t.Fatalf("CreateRelease: %v", err)
	}
	checkRelease(t, "CreateRelease", got, want)
	read := mustGetRelease(t, m, r.Name)
	checkRelease(t, "GetRelease", read, want)
	for what, tm := range map[string]time.Time{
		"CreatedAt": read.CreatedAt, "UpdatedAt": read.UpdatedAt, "SealedAt": *read.SealedAt,
		"Plan.Window.Start": read.Plan.Window.Start, "Approvals[1].At": read.Approvals[1].At,
		"Deployments[0].FinishedAt": *read.Deployments[0].FinishedAt, "Review.At": read.Review.At,
		"LastRejection.At": read.LastRejection.At, "Edits[1].At": read.Edits[1].At,
	} {
		checkUTC(t, "GetRelease "+what, tm)
	}
	list, _, err := m.ListReleases(t.Context(), lifecycle.ReleaseFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListReleases = %s, %v; want the release", releaseNames(list), err)
	}
	checkRelease(t, "ListReleases", list[0], want)
	if list := checkContaining(t, m, a2.Name, a2.Version, r.Name); len(list) == 1 {
		checkRelease(t, "ReleasesContaining", list[0], want)
	}
	if r.Revision != 7 || r.CreatedAt.Location() != cest || r.Deployments[0].FinishedAt.Location() != cest {
		t.Error("CreateRelease changed the caller's release")
	}

	evs := checkEventCount(t, m, 3)
	checkEvent(t, evs[2], lifecycle.ActionReleaseCreated, "release:payments-march", manager, map[string]any{
		"state":      "review",
		"planDigest": r.PlanDigest.String(),
		"artifacts":  []any{"payments/api:1.4.2@" + a1.Digest.String(), "payments/web:2.0.0@" + a2.Digest.String()},
	})
}

func testCreateReleaseDefaults(t *testing.T, m store) {
	r := lifecycle.Release{Name: "bare", State: lifecycle.ReleasePlanning}
	before := time.Now()
	got, err := m.CreateRelease(t.Context(), manager, r)
	if err != nil {
		t.Fatalf("CreateRelease: %v", err)
	}
	checkAboutNow(t, "CreatedAt", got.CreatedAt, before)
	checkAboutNow(t, "UpdatedAt", got.UpdatedAt, before)
	want := r
	want.Revision, want.CreatedAt, want.UpdatedAt = 1, got.CreatedAt, got.UpdatedAt
	checkRelease(t, "CreateRelease", got, want)
	checkRelease(t, "GetRelease", mustGetRelease(t, m, r.Name), want)

	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], lifecycle.ActionReleaseCreated, "release:bare", manager, map[string]any{
		"state": "planning", "planDigest": "", "artifacts": []any{},
	})
}

// invalidReleases are changes that make a valid release invalid, for
// CreateRelease and UpdateRelease alike.
var invalidReleases = []struct {
	name   string
	mutate func(r *lifecycle.Release)
}{
	{"empty state", func(r *lifecycle.Release) { r.State = "" }},
	{"unknown state", func(r *lifecycle.Release) { r.State = "approved" }},
	{"artifact without a name", func(r *lifecycle.Release) { r.Artifacts[0].Name = "" }},
	{"artifact without a version", func(r *lifecycle.Release) { r.Artifacts[0].Version = "" }},
	{"artifact without a digest", func(r *lifecycle.Release) { r.Artifacts[0].Digest = "" }},
	{"artifact with a malformed digest", func(r *lifecycle.Release) { r.Artifacts[0].Digest = "sha256:abcd" }},
	{"artifact included twice", func(r *lifecycle.Release) { r.Artifacts = append(r.Artifacts, r.Artifacts[0]) }},
	{"artifact included twice with other digests", func(r *lifecycle.Release) {
		twin := r.Artifacts[0]
		twin.Digest = digest.FromString("other bytes")
		r.Artifacts = append(r.Artifacts, twin)
	}},
}

func testCreateReleaseInvalid(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	tests := append([]struct {
		name   string
		mutate func(r *lifecycle.Release)
	}{
		{"empty name", func(r *lifecycle.Release) { r.Name = "" }},
	}, invalidReleases...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := release("payments-march", a)
			tc.mutate(&r)
			_, err := m.CreateRelease(t.Context(), manager, r)
			checkErr(t, "CreateRelease", err, errdef.ErrInvalidInput)
		})
	}
	list, _, err := m.ListReleases(t.Context(), lifecycle.ReleaseFilter{})
	if err != nil || len(list) != 0 {
		t.Errorf("ListReleases after invalid creates = %s, %v; want none", releaseNames(list), err)
	}
	checkContaining(t, m, a.Name, a.Version)
	checkEventCount(t, m, 1)
}

func testCreateReleaseDuplicate(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	first := mustCreateRelease(t, m, release("payments-march", a))

	other := release("payments-march")
	other.State = lifecycle.ReleaseBuilding
	_, err := m.CreateRelease(t.Context(), admin, other)
	checkErr(t, "CreateRelease with a taken name", err, errdef.ErrConflict)
	checkRelease(t, "GetRelease after the conflict", mustGetRelease(t, m, first.Name), first)
	checkContaining(t, m, a.Name, a.Version, first.Name)

	// Names are case-sensitive: another case is another release.
	mustCreateRelease(t, m, release("PAYMENTS-MARCH"))
	checkEventCount(t, m, 3)
}

func testGetReleaseNotFound(t *testing.T, m store) {
	mustCreateRelease(t, m, release("payments-march"))
	for _, name := range []string{"payments-april", "payments-marc", "Payments-March", ""} {
		t.Run(name, func(t *testing.T) {
			_, err := m.GetRelease(t.Context(), name)
			checkErr(t, "GetRelease", err, errdef.ErrNotFound)
			if err != nil && name != "" && !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
		})
	}
}

// releaseFixture creates releases whose names sort differently bytewise
// than in a natural-language collation, in an order unlike the sorted one,
// and returns them sorted as ListReleases must.
func releaseFixture(t *testing.T, m store) []lifecycle.Release {
	t.Helper()
	names := []string{"r", "r-1", "r.1", "r/1", "r_1", "s", "s-2025-03", "s.web"}
	states := []lifecycle.ReleaseState{lifecycle.ReleasePlanning, lifecycle.ReleaseDeployed, lifecycle.ReleaseClosed}
	var all []lifecycle.Release
	for i, n := range slices.Backward(names) {
		r := release(n)
		r.State = states[i%len(states)]
		all = append(all, mustCreateRelease(t, m, r))
	}
	slices.SortFunc(all, func(a, b lifecycle.Release) int { return strings.Compare(a.Name, b.Name) })
	return all
}

func listAllReleases(t *testing.T, m store, f lifecycle.ReleaseFilter, pageSize int) ([]lifecycle.Release, int) {
	t.Helper()
	return pageThrough(t, "ListReleases", pageSize, func(cursor string) ([]lifecycle.Release, string, error) {
		f.Cursor = cursor
		return m.ListReleases(t.Context(), f)
	})
}

func testListReleases(t *testing.T, m store) {
	all := releaseFixture(t, m)
	inState := func(s lifecycle.ReleaseState) []lifecycle.Release {
		var out []lifecycle.Release
		for _, r := range all {
			if r.State == s {
				out = append(out, r)
			}
		}
		return out
	}
	tests := []struct {
		name     string
		filter   lifecycle.ReleaseFilter
		pageSize int // what the limit amounts to
		want     []lifecycle.Release
	}{
		{"all, default limit", lifecycle.ReleaseFilter{}, 100, all},
		{"all, limit 1", lifecycle.ReleaseFilter{Limit: 1}, 1, all},
		{"all, limit 3", lifecycle.ReleaseFilter{Limit: 3}, 3, all},
		{"all, limit divides total", lifecycle.ReleaseFilter{Limit: 4}, 4, all},
		{"all, limit equals total", lifecycle.ReleaseFilter{Limit: len(all)}, len(all), all},
		{"all, limit above maximum", lifecycle.ReleaseFilter{Limit: 1 << 20}, 1 << 20, all},
		{"state", lifecycle.ReleaseFilter{State: lifecycle.ReleaseDeployed, Limit: 2}, 2, inState(lifecycle.ReleaseDeployed)},
		{"state, one page", lifecycle.ReleaseFilter{State: lifecycle.ReleaseClosed}, 100, inState(lifecycle.ReleaseClosed)},
		{"state nobody is in", lifecycle.ReleaseFilter{State: lifecycle.ReleaseCancelled}, 100, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.want) == 0 && tc.filter.State != lifecycle.ReleaseCancelled {
				t.Fatal("the fixture has nothing for this filter; the case would prove nothing")
			}
			got, pages := listAllReleases(t, m, tc.filter, tc.pageSize)
			if len(got) != len(tc.want) {
				t.Fatalf("listed %s\nwant %s", releaseNames(got), releaseNames(tc.want))
			}
			for i := range got {
				checkRelease(t, "release "+got[i].Name, got[i], tc.want[i])
			}
			if want := max(1, (len(tc.want)+tc.pageSize-1)/tc.pageSize); pages != want {
				t.Errorf("%d pages for %d releases at %d per page; want %d", pages, len(tc.want), tc.pageSize, want)
			}
		})
	}
}

// testListReleasesKeyset checks that a cursor marks a position, not an
// offset: releases created before it do not shift the next page.
func testListReleasesKeyset(t *testing.T, m store) {
	for _, n := range []string{"b", "d", "f"} {
		mustCreateRelease(t, m, release(n))
	}
	page, next, err := m.ListReleases(t.Context(), lifecycle.ReleaseFilter{Limit: 2})
	if err != nil || releaseNames(page) != "[b d]" || next == "" {
		t.Fatalf("first page = %s, cursor %q, %v; want [b d] and a cursor", releaseNames(page), next, err)
	}
	for _, n := range []string{"a", "c", "e"} {
		mustCreateRelease(t, m, release(n))
	}
	page, next, err = m.ListReleases(t.Context(), lifecycle.ReleaseFilter{Limit: 2, Cursor: next})
	if err != nil || releaseNames(page) != "[e f]" || next != "" {
		t.Fatalf("second page = %s, cursor %q, %v; want [e f] and no cursor", releaseNames(page), next, err)
	}
}

func testListReleasesInvalid(t *testing.T, m store) {
	mustCreateRelease(t, m, release("a"))
	mustCreateRelease(t, m, release("b"))
	mustCreate(t, m, artifact("a", "1", "a"))
	mustCreate(t, m, artifact("b", "1", "b"))
	_, artifactCursor, err := m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Limit: 1})
	if err != nil || artifactCursor == "" {
		t.Fatalf("ListArtifacts = cursor %q, %v; want a cursor", artifactCursor, err)
	}
	checkListRefusals(t, "ListReleases", m.ListReleases, releaseNames, []listRefusal[lifecycle.ReleaseFilter]{
		{"cursor of punctuation", lifecycle.ReleaseFilter{Cursor: "!!!"}},
		{"cursor with spaces", lifecycle.ReleaseFilter{Cursor: "not a cursor"}},
		{"cursor with a NUL", lifecycle.ReleaseFilter{Cursor: "\x00"}},
		{"cursor of ListArtifacts", lifecycle.ReleaseFilter{Cursor: artifactCursor}},
		{"unknown state", lifecycle.ReleaseFilter{State: "approved"}},
		{"negative limit", lifecycle.ReleaseFilter{Limit: -1}},
	})
	// Nor is a cursor of ListReleases one of ListArtifacts.
	page, next, err := m.ListReleases(t.Context(), lifecycle.ReleaseFilter{Limit: 1})
	if err != nil || releaseNames(page) != "[a]" || next == "" {
		t.Fatalf("ListReleases = %s, cursor %q, %v; want [a] and a cursor", releaseNames(page), next, err)
	}
	_, _, err = m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Cursor: next})
	checkErr(t, "ListArtifacts with a cursor of ListReleases", err, errdef.ErrInvalidInput)
	page, _, err = m.ListReleases(t.Context(), lifecycle.ReleaseFilter{Limit: 1, Cursor: next})
	if err != nil || releaseNames(page) != "[b]" {
		t.Errorf("page after cursor = %s, %v; want [b]", releaseNames(page), err)
	}
}

// testUpdateRelease walks a release through its life, one change at a
// time, and checks each stored release and its event.
func testUpdateRelease(t *testing.T, m store) {
	a1 := mustCreate(t, m, artifact("payments/api", "1.0.0", "a1"))
	a2 := mustCreate(t, m, artifact("payments/api", "1.0.1", "a2"))
	created := mustCreateRelease(t, m, release("payments-march", a1))
	sealed, finished := t0.Add(3*time.Hour), t0.Add(5*time.Hour)

	steps := []struct {
		name    string
		action  string
		details string // byte for byte, "" for none
		change  func(r *lifecycle.Release)
	}{
		{"set plan", lifecycle.ActionReleasePlanSet, `{"planDigest": "sha256:1", "previous": null}`, func(r *lifecycle.Release) {
			r.Plan.Title = "Payments, with refunds"
			r.Plan.Window = &lifecycle.Window{Start: t0.Add(4 * time.Hour), End: t0.Add(6 * time.Hour)}
			r.PlanDigest = digest.FromString("new plan")
		}},
		{"approve the plan", lifecycle.ActionReleaseApproval, "{\n  \"gate\": \"plan\",\n  \"decision\": \"approve\"\n}\n", func(r *lifecycle.Release) {
			r.Approvals = append(r.Approvals, lifecycle.Approval{Gate: "plan", Decision: lifecycle.DecisionApprove,
				Digest: r.PlanDigest, By: "dave", TokenID: "tok_dave", At: t0.Add(time.Hour)})
			r.State = lifecycle.ReleaseBuilding
		}},
		{"replace the artifacts", lifecycle.ActionReleaseArtifactsSet, `{"z":1,"a":"<b>caf\u00e9</b> & \/"}`, func(r *lifecycle.Release) {
			r.Artifacts = attached(a2)
		}},
		{"seal", lifecycle.ActionReleaseSealed, ` {"manifestDigest":"sha256:2"} `, func(r *lifecycle.Release) {
			r.State = lifecycle.ReleaseReleased
			r.ManifestDigest, r.ManifestSignature, r.SealedAt = digest.FromString("index"), "MEUCIQ==", &sealed
		}},
		{"deploy", lifecycle.ActionReleaseDeployment, `{"id":"dep-1","status":"succeeded"}`, func(r *lifecycle.Release) {
			r.State = lifecycle.ReleaseDeployed
			r.Deployments = append(r.Deployments, lifecycle.Deployment{ID: "dep-1", Environment: "prod", Target: "k8s/prod",
				Status: lifecycle.DeploymentSucceeded, StartedAt: t0.Add(4 * time.Hour), FinishedAt: &finished,
				VerifiedDigests: []digest.Digest{a2.Digest}, By: "deploy-bot", UpdatedAt: finished})
		}},
		{"review", lifecycle.ActionReleaseReview, `{"outcome":"successful","incidents":[]}`, func(r *lifecycle.Release) {
			r.State = lifecycle.ReleaseReview
			r.Review = &lifecycle.Review{Outcome: "successful", Summary: "done", Incidents: []string{}, ObjectivesMet: true,
				By: "erin", At: t0.Add(7 * time.Hour)}
			r.ReviewDigest = digest.FromString("review")
		}},
		{"close, without details", lifecycle.ActionReleaseClosed, "", func(r *lifecycle.Release) {
			r.State = lifecycle.ReleaseClosed
		}},
	}
	prev := created
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			next := mustGetRelease(t, m, created.Name)
			s.change(&next)
			before := time.Now()
			got, err := m.UpdateRelease(t.Context(), manager, next, lifecycle.ReleaseChange{Action: s.action, Details: rawDetails(s.details)})
			if err != nil {
				t.Fatalf("UpdateRelease: %v", err)
			}
			checkAboutNow(t, "UpdatedAt", got.UpdatedAt, before)
			want := next
			want.Revision, want.UpdatedAt = prev.Revision+1, got.UpdatedAt
			checkRelease(t, "UpdateRelease", got, want)
			checkRelease(t, "GetRelease", mustGetRelease(t, m, created.Name), want)
			prev = got

			evs := checkEventCount(t, m, 3+i+1)
			e := evs[len(evs)-1]
			checkEvent(t, e, s.action, "release:payments-march", manager, nil)
			if !bytes.Equal(e.Details, rawDetails(s.details)) {
				t.Errorf("event details = %q; want %q byte for byte", e.Details, s.details)
			}
		})
	}
	if prev.Revision != int64(1+len(steps)) || prev.State != lifecycle.ReleaseClosed {
		t.Errorf("after every step: revision %d, %s; want revision %d, closed", prev.Revision, prev.State, 1+len(steps))
	}
	checkContaining(t, m, a1.Name, a1.Version)
	checkContaining(t, m, a2.Name, a2.Version, created.Name)
}

// testUpdateReleaseKeepsCreation checks that an update sets UpdatedAt
// itself and cannot rewrite who created the release and when.
func testUpdateReleaseKeepsCreation(t *testing.T, m store) {
	created := mustCreateRelease(t, m, release("payments-march"))
	next := created
	next.CreatedBy, next.CreatedAt, next.UpdatedAt = "mallory", t0.Add(24*time.Hour), t0.Add(-time.Hour)
	before := time.Now()
	got, err := m.UpdateRelease(t.Context(), admin, next, lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet})
	if err != nil {
		t.Fatalf("UpdateRelease: %v", err)
	}
	checkAboutNow(t, "UpdatedAt", got.UpdatedAt, before)
	want := created
	want.Revision, want.UpdatedAt = 2, got.UpdatedAt
	checkRelease(t, "UpdateRelease", got, want)
	checkRelease(t, "GetRelease", mustGetRelease(t, m, created.Name), want)
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], lifecycle.ActionReleasePlanSet, "release:payments-march", admin, nil)
	if evs[1].Details != nil {
		t.Errorf("event details = %q; want none", evs[1].Details)
	}
}

// testUpdateReleaseConflict checks the compare-and-set: an update from any
// revision but the stored one changes and records nothing, and says both.
func testUpdateReleaseConflict(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	mustCreateRelease(t, m, release("payments-march", a))
	mustUpdateRelease(t, m, "payments-march", lifecycle.ActionReleasePlanSet, "", func(r *lifecycle.Release) { r.Plan.Risk = "high" })
	current := mustUpdateRelease(t, m, "payments-march", lifecycle.ActionReleasePlanSet, "", func(r *lifecycle.Release) { r.Plan.Risk = "low" })
	if current.Revision != 3 {
		t.Fatalf("revision %d after two updates; want 3", current.Revision)
	}
	for _, revision := range []int64{1, 2, 4, 0, -1} {
		t.Run(fmt.Sprint("from revision ", revision), func(t *testing.T) {
			stale := current
			stale.Revision = revision
			stale.State = lifecycle.ReleaseCancelled
			stale.Artifacts = attached()
			_, err := m.UpdateRelease(t.Context(), manager, stale, lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseCancelled})
			checkErr(t, "UpdateRelease", err, errdef.ErrConflict)
			if err != nil && (!strings.Contains(err.Error(), fmt.Sprint(current.Revision)) || !strings.Contains(err.Error(), fmt.Sprint(revision))) {
				t.Errorf("error %q does not name revisions %d (stored) and %d (given)", err, current.Revision, revision)
			}
		})
	}
	checkRelease(t, "GetRelease after conflicts", mustGetRelease(t, m, current.Name), current)
	checkContaining(t, m, a.Name, a.Version, current.Name)
	checkEventCount(t, m, 4)
}

func testUpdateReleaseNotFound(t *testing.T, m store) {
	r := mustCreateRelease(t, m, release("payments-march"))
	for _, name := range []string{"payments-april", "Payments-March"} {
		t.Run(name, func(t *testing.T) {
			unknown := r
			unknown.Name = name
			_, err := m.UpdateRelease(t.Context(), manager, unknown, lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet})
			checkErr(t, "UpdateRelease", err, errdef.ErrNotFound)
			_, err = m.GetRelease(t.Context(), name)
			checkErr(t, "GetRelease after updating an unknown release", err, errdef.ErrNotFound)
		})
	}
	checkEventCount(t, m, 1)
}

func testUpdateReleaseInvalid(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	created := mustCreateRelease(t, m, release("payments-march", a))
	change := lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet, Details: json.RawMessage(`{}`)}
	tests := []struct {
		name   string
		mutate func(r *lifecycle.Release, c *lifecycle.ReleaseChange)
	}{
		{"empty name", func(r *lifecycle.Release, _ *lifecycle.ReleaseChange) { r.Name = "" }},
		{"no action", func(_ *lifecycle.Release, c *lifecycle.ReleaseChange) { c.Action = "" }},
		{"details not JSON", func(_ *lifecycle.Release, c *lifecycle.ReleaseChange) { c.Details = json.RawMessage(`{"gate":`) }},
		{"details not UTF-8", func(_ *lifecycle.Release, c *lifecycle.ReleaseChange) { c.Details = json.RawMessage("\"\xff\"") }},
		{"details blank", func(_ *lifecycle.Release, c *lifecycle.ReleaseChange) { c.Details = json.RawMessage(" ") }},
	}
	for _, tc := range invalidReleases {
		tests = append(tests, struct {
			name   string
			mutate func(r *lifecycle.Release, c *lifecycle.ReleaseChange)
		}{tc.name, func(r *lifecycle.Release, _ *lifecycle.ReleaseChange) { tc.mutate(r) }})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, c := mustGetRelease(t, m, created.Name), change
			tc.mutate(&r, &c)
			_, err := m.UpdateRelease(t.Context(), manager, r, c)
			checkErr(t, "UpdateRelease", err, errdef.ErrInvalidInput)
		})
	}
	checkRelease(t, "GetRelease after invalid updates", mustGetRelease(t, m, created.Name), created)
	checkContaining(t, m, a.Name, a.Version, created.Name)
	checkEventCount(t, m, 2)
}

// testReleasesContaining checks that the artifact index follows the
// current revision of every release and tells versions apart.
func testReleasesContaining(t *testing.T, m store) {
	api1 := mustCreate(t, m, artifact("payments/api", "1.0.0", "api1"))
	api2 := mustCreate(t, m, artifact("payments/api", "2.0.0", "api2"))
	web := mustCreate(t, m, artifact("payments/web", "1.0.0", "web"))
	// A version with the same bytes is still another version.
	twin := mustCreate(t, m, artifact("payments/api", "1.0.1", "api1"))
	mustCreateRelease(t, m, release("r-march", api1, web))
	mustCreateRelease(t, m, release("r-april", api2, web))
	mustCreateRelease(t, m, release("r-feb", api1))
	mustCreateRelease(t, m, release("r-empty"))

	type query struct {
		name, version string
		want          []string
	}
	check := func(queries []query) {
		t.Helper()
		for _, q := range queries {
			checkContaining(t, m, q.name, q.version, q.want...)
		}
	}
	check([]query{
		{api1.Name, api1.Version, []string{"r-feb", "r-march"}},
		{api2.Name, api2.Version, []string{"r-april"}},
		{web.Name, web.Version, []string{"r-april", "r-march"}},
		{twin.Name, twin.Version, nil},
		{"payments/api", "9.9.9", nil},
		{"payments/ap", "1.0.0", nil},
		{"", "", nil},
	})

	// The index follows updates: web leaves r-march, the twin joins it.
	mustUpdateRelease(t, m, "r-march", lifecycle.ActionReleaseArtifactsSet, "", func(r *lifecycle.Release) {
		r.Artifacts = attached(api1, twin)
	})
	mustUpdateRelease(t, m, "r-empty", lifecycle.ActionReleaseArtifactsSet, "", func(r *lifecycle.Release) {
		r.Artifacts = attached(web)
	})
	check([]query{
		{api1.Name, api1.Version, []string{"r-feb", "r-march"}},
		{web.Name, web.Version, []string{"r-april", "r-empty"}},
		{twin.Name, twin.Version, []string{"r-march"}},
	})
	// What it returns is the current release, not the one indexed first.
	if list := checkContaining(t, m, twin.Name, twin.Version, "r-march"); len(list) == 1 {
		checkRelease(t, "ReleasesContaining", list[0], mustGetRelease(t, m, "r-march"))
	}
}
