package metadatatest

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

func testCreateArtifact(t *testing.T, m store) {
	want := artifact("payments/api", "1.4.2", "payments-api-1.4.2.tgz")
	want.State = catalog.StateAdmitted // stored as given, not reset

	got, created, err := m.CreateArtifact(t.Context(), publisher, want)
	if err != nil || !created {
		t.Fatalf("CreateArtifact = created %v, %v; want created", created, err)
	}
	checkArtifact(t, "CreateArtifact", got, want)
	read, err := m.GetArtifact(t.Context(), want.Name, want.Version)
	if err != nil {
		t.Fatalf("GetArtifact: %v", err)
	}
	checkArtifact(t, "GetArtifact", read, want)
	checkUTC(t, "GetArtifact CreatedAt", read.CreatedAt)

	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], catalog.ActionArtifactPushed, "payments/api:1.4.2", publisher, map[string]any{
		"digest":    want.Digest.String(),
		"size":      float64(want.Size),
		"mediaType": want.MediaType,
	})
}

func testCreateArtifactDefaults(t *testing.T, m store) {
	a := artifact("payments/api", "1.0.0", "x")
	a.State = ""
	a.CreatedAt = time.Time{}
	before := time.Now()
	got, _, err := m.CreateArtifact(t.Context(), publisher, a)
	if err != nil {
		t.Fatalf("CreateArtifact: %v", err)
	}
	if got.State != catalog.StateQuarantined {
		t.Errorf("State = %q; want %q for an artifact created without one", got.State, catalog.StateQuarantined)
	}
	checkUTC(t, "CreatedAt", got.CreatedAt)
	// A generous window: the point is "the time of the call", not 1970 or
	// garbage, and an implementation may read a database server's clock.
	if d := got.CreatedAt.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("CreatedAt = %v; want about %v", got.CreatedAt, before)
	}
	read, err := m.GetArtifact(t.Context(), a.Name, a.Version)
	if err != nil {
		t.Fatalf("GetArtifact: %v", err)
	}
	checkArtifact(t, "GetArtifact after defaults", read, got)
}

func testCreateArtifactInvalid(t *testing.T, m store) {
	tests := []struct {
		name   string
		mutate func(a *catalog.Artifact)
	}{
		{"empty name", func(a *catalog.Artifact) { a.Name = "" }},
		{"empty version", func(a *catalog.Artifact) { a.Version = "" }},
		{"empty digest", func(a *catalog.Artifact) { a.Digest = "" }},
		{"malformed digest", func(a *catalog.Artifact) { a.Digest = "sha256:not-hex" }},
		{"short digest", func(a *catalog.Artifact) { a.Digest = "sha256:abcd" }},
		{"digest without algorithm", func(a *catalog.Artifact) { a.Digest = digest.Digest(a.Digest.Encoded()) }},
		{"unknown state", func(a *catalog.Artifact) { a.State = "pending" }},
		{"negative size", func(a *catalog.Artifact) { a.Size = -1 }},
		{"pushed retired", func(a *catalog.Artifact) { a.RetiredAt = &t0 }},
		{"pushed with a retirer", func(a *catalog.Artifact) { a.RetiredBy = admin.Name }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := artifact("payments/api", "1.0.0", "x")
			tc.mutate(&a)
			_, created, err := m.CreateArtifact(t.Context(), publisher, a)
			checkErr(t, "CreateArtifact", err, errdef.ErrInvalidInput)
			if created {
				t.Error("created = true for invalid input")
			}
		})
	}
	list, _, err := m.ListArtifacts(t.Context(), catalog.ArtifactFilter{})
	if err != nil || len(list) != 0 {
		t.Errorf("ListArtifacts after invalid creates = %d artifacts, %v; want none", len(list), err)
	}
	checkEventCount(t, m, 0)
}

func testCreateArtifactIdempotent(t *testing.T, m store) {
	first := mustCreate(t, m, artifact("payments/api", "1.4.2", "bytes"))

	// Same bytes again, described differently: the stored artifact wins.
	again := artifact("payments/api", "1.4.2", "bytes")
	again.CreatedBy = "someone-else"
	again.CreatedAt = t0.Add(time.Hour)
	again.State = catalog.StateAdmitted
	again.MediaType = "application/octet-stream"
	stored, created, err := m.CreateArtifact(t.Context(), admin, again)
	if err != nil || created {
		t.Fatalf("CreateArtifact again = created %v, %v; want not created, no error", created, err)
	}
	checkArtifact(t, "CreateArtifact again", stored, first)
	read, err := m.GetArtifact(t.Context(), first.Name, first.Version)
	if err != nil {
		t.Fatalf("GetArtifact: %v", err)
	}
	checkArtifact(t, "GetArtifact", read, first)
	checkEventCount(t, m, 1)
}

func testCreateArtifactConflict(t *testing.T, m store) {
	first := mustCreate(t, m, artifact("payments/api", "1.4.2", "original bytes"))

	stored, created, err := m.CreateArtifact(t.Context(), publisher, artifact("payments/api", "1.4.2", "other bytes"))
	checkErr(t, "CreateArtifact with other bytes", err, catalog.ErrVersionExists)
	if created {
		t.Error("created = true on conflict")
	}
	checkArtifact(t, "artifact returned with the conflict", stored, first)
	read, err := m.GetArtifact(t.Context(), first.Name, first.Version)
	if err != nil {
		t.Fatalf("GetArtifact: %v", err)
	}
	checkArtifact(t, "GetArtifact after conflict", read, first)
	checkEventCount(t, m, 1)
}

func testGetArtifactNotFound(t *testing.T, m store) {
	mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	checkUnknown(t, "GetArtifact", slices.Concat(unknownArtifacts, []ref{
		{"payments/ap", "1.0.0"},
		{"payments/api/x", "1.0.0"},
		{"payments/api", ""},
		{"", ""},
	}), func(t *testing.T, name, version string) error {
		_, err := m.GetArtifact(t.Context(), name, version)
		if ref := name + ":" + version; err != nil && name != "" && !strings.Contains(err.Error(), ref) {
			t.Errorf("error %q does not name %s", err, ref)
		}
		return err
	})
}

// listFixture creates artifacts whose names differ only by punctuation,
// so bytewise order ('-' < '.' < '/' < '_' < letters) differs from a
// natural-language collation, in an order unlike the sorted one. It
// returns them sorted as ListArtifacts must.
func listFixture(t *testing.T, m store) []catalog.Artifact {
	t.Helper()
	names := []string{"app", "app-cli", "app.web", "app/api", "app_x", "lib"}
	versions := []string{"1.0.0", "1.10.0", "1.2.0"}
	states := []catalog.ArtifactState{catalog.StateQuarantined, catalog.StateAdmitted, catalog.StateRejected}
	var all []catalog.Artifact
	for i, n := range slices.Backward(names) {
		for j, v := range slices.Backward(versions) {
			a := artifact(n, v, n+"@"+v)
			a.State = states[(i+j)%len(states)]
			all = append(all, mustCreate(t, m, a))
		}
	}
	slices.SortFunc(all, func(a, b catalog.Artifact) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version))
	})
	return all
}

// listAll pages through ListArtifacts with f, checking the pagination
// contract on the way (pageThrough).
func listAll(t *testing.T, m store, f catalog.ArtifactFilter, pageSize int) (all []catalog.Artifact, pages int) {
	t.Helper()
	return pageThrough(t, "ListArtifacts", pageSize, func(cursor string) ([]catalog.Artifact, string, error) {
		f.Cursor = cursor
		return m.ListArtifacts(t.Context(), f)
	})
}

// pageThrough calls list with each next cursor in turn, from "", and
// checks the pagination contract on the way: full pages but the last, a
// cursor on every page but the last, and no empty trailing page.
func pageThrough[T any](t *testing.T, what string, pageSize int, list func(cursor string) ([]T, string, error)) (all []T, pages int) {
	t.Helper()
	cursor := ""
	for {
		page, next, err := list(cursor)
		if err != nil {
			t.Fatalf("%s, page %d: %v", what, pages+1, err)
		}
		pages++
		all = append(all, page...)
		if len(page) > pageSize {
			t.Fatalf("%s: page %d has %d items; limit %d", what, pages, len(page), pageSize)
		}
		if next == "" {
			return all, pages
		}
		if len(page) != pageSize {
			t.Fatalf("%s: page %d has %d items and a next cursor; want a full page of %d", what, pages, len(page), pageSize)
		}
		if pages > 1000 {
			t.Fatalf("%s never returned an empty cursor", what)
		}
		cursor = next
	}
}

func testListArtifacts(t *testing.T, m store) {
	all := listFixture(t, m)
	pick := func(keep func(catalog.Artifact) bool) []catalog.Artifact {
		var out []catalog.Artifact
		for _, a := range all {
			if keep(a) {
				out = append(out, a)
			}
		}
		return out
	}
	byName := func(n string) func(catalog.Artifact) bool {
		return func(a catalog.Artifact) bool { return a.Name == n }
	}
	byState := func(s catalog.ArtifactState) func(catalog.Artifact) bool {
		return func(a catalog.Artifact) bool { return a.State == s }
	}

	tests := []struct {
		name     string
		filter   catalog.ArtifactFilter
		pageSize int // what the limit amounts to
		want     []catalog.Artifact
	}{
		{"all, default limit", catalog.ArtifactFilter{}, 100, all},
		{"all, limit 1", catalog.ArtifactFilter{Limit: 1}, 1, all},
		{"all, limit 4", catalog.ArtifactFilter{Limit: 4}, 4, all},
		{"all, limit divides total", catalog.ArtifactFilter{Limit: 6}, 6, all},
		{"all, limit equals total", catalog.ArtifactFilter{Limit: len(all)}, len(all), all},
		{"all, limit above maximum", catalog.ArtifactFilter{Limit: 1 << 20}, 1 << 20, all},
		{"name", catalog.ArtifactFilter{Name: "app/api", Limit: 2}, 2, pick(byName("app/api"))},
		{"name is exact, not a prefix", catalog.ArtifactFilter{Name: "app"}, 100, pick(byName("app"))},
		{"state", catalog.ArtifactFilter{State: catalog.StateAdmitted, Limit: 4}, 4, pick(byState(catalog.StateAdmitted))},
		{"name and state", catalog.ArtifactFilter{Name: "app.web", State: catalog.StateRejected, Limit: 1}, 1,
			pick(func(a catalog.Artifact) bool { return a.Name == "app.web" && a.State == catalog.StateRejected })},
		{"unknown name", catalog.ArtifactFilter{Name: "nothing"}, 100, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.want) == 0 && tc.filter.Name != "nothing" {
				t.Fatal("the fixture has nothing for this filter; the case would prove nothing")
			}
			got, pages := listAll(t, m, tc.filter, tc.pageSize)
			if !slices.EqualFunc(got, tc.want, sameArtifact) {
				t.Errorf("listed %s\nwant %s", refs(got), refs(tc.want))
			}
			if want := max(1, (len(tc.want)+tc.pageSize-1)/tc.pageSize); pages != want {
				t.Errorf("%d pages for %d artifacts at %d per page; want %d", pages, len(tc.want), tc.pageSize, want)
			}
		})
	}
}

func refs(list []catalog.Artifact) string {
	s := make([]string, len(list))
	for i, a := range list {
		s[i] = a.Name + ":" + a.Version
	}
	return "[" + strings.Join(s, " ") + "]"
}

// testListArtifactsKeyset checks that a cursor marks a position, not an
// offset: artifacts added before it do not shift the next page.
func testListArtifactsKeyset(t *testing.T, m store) {
	for _, n := range []string{"b", "d", "f"} {
		mustCreate(t, m, artifact(n, "1", n))
	}
	page, next, err := m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Limit: 2})
	if err != nil || refs(page) != "[b:1 d:1]" || next == "" {
		t.Fatalf("first page = %s, cursor %q, %v; want [b:1 d:1] and a cursor", refs(page), next, err)
	}
	for _, n := range []string{"a", "c", "e"} {
		mustCreate(t, m, artifact(n, "1", n))
	}
	page, next, err = m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Limit: 2, Cursor: next})
	if err != nil || refs(page) != "[e:1 f:1]" || next != "" {
		t.Fatalf("second page = %s, cursor %q, %v; want [e:1 f:1] and no cursor", refs(page), next, err)
	}
}

func testListArtifactsInvalid(t *testing.T, m store) {
	mustCreate(t, m, artifact("a", "1", "a"))
	mustCreate(t, m, artifact("b", "1", "b"))
	checkListRefusals(t, "ListArtifacts", m.ListArtifacts, refs, []listRefusal[catalog.ArtifactFilter]{
		{"cursor of punctuation", catalog.ArtifactFilter{Cursor: "!!!"}},
		{"cursor with spaces", catalog.ArtifactFilter{Cursor: "not a cursor"}},
		{"cursor with a NUL", catalog.ArtifactFilter{Cursor: "\x00"}},
		{"unknown state", catalog.ArtifactFilter{State: "pending"}},
		{"negative limit", catalog.ArtifactFilter{Limit: -1}},
	})
	// The cursor of a real page still works after the failures.
	_, next, err := m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	page, _, err := m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Limit: 1, Cursor: next})
	if err != nil || refs(page) != "[b:1]" {
		t.Errorf("page after cursor = %s, %v; want [b:1]", refs(page), err)
	}
}
