package metadatatest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
)

// Goroutine counts: well above the number of database connections of a
// typical pool, so that writers really queue.
const (
	distinctWriters = 50
	racingWriters   = 20
)

// race runs fn(i) for i in [0, n) in n goroutines released together, to
// make their calls overlap as much as a test can.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

type createResult struct {
	stored  catalog.Artifact
	created bool
	err     error
}

func raceCreate(t *testing.T, m store, n int, artifactFor func(i int) catalog.Artifact) []createResult {
	t.Helper()
	results := make([]createResult, n)
	race(n, func(i int) {
		r := &results[i]
		r.stored, r.created, r.err = m.CreateArtifact(t.Context(), publisher, artifactFor(i))
	})
	return results
}

func testConcurrentDistinct(t *testing.T, m store) {
	results := raceCreate(t, m, distinctWriters, func(i int) catalog.Artifact {
		return artifact(fmt.Sprintf("concurrent/app-%02d", i), "1.0.0", fmt.Sprint(i))
	})
	for i, r := range results {
		if r.err != nil || !r.created {
			t.Errorf("writer %d: created %v, %v; want created", i, r.created, r.err)
		}
	}
	list, _, err := m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Limit: distinctWriters + 1})
	if err != nil || len(list) != distinctWriters {
		t.Errorf("ListArtifacts = %d artifacts, %v; want %d", len(list), err, distinctWriters)
	}
	evs := checkEventCount(t, m, distinctWriters)
	subjects := map[string]bool{}
	for _, e := range evs {
		subjects[e.Subject] = true
	}
	if len(subjects) != distinctWriters {
		t.Errorf("%d distinct event subjects; want %d", len(subjects), distinctWriters)
	}
}

func testConcurrentSameDigest(t *testing.T, m store) {
	results := raceCreate(t, m, racingWriters, func(i int) catalog.Artifact {
		a := artifact("payments/api", "1.0.0", "same bytes")
		a.CreatedBy = fmt.Sprintf("writer-%d", i) // tells the winner apart
		return a
	})
	var winners []createResult
	for i, r := range results {
		if r.err != nil {
			t.Errorf("writer %d: %v; want no error for identical bytes", i, r.err)
		}
		if r.created {
			winners = append(winners, r)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d writers created the version; want exactly 1", len(winners))
	}
	for i, r := range results {
		checkArtifact(t, fmt.Sprintf("writer %d got", i), r.stored, winners[0].stored)
	}
	read, err := m.GetArtifact(t.Context(), "payments/api", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	checkArtifact(t, "GetArtifact", read, winners[0].stored)
	checkEventCount(t, m, 1)
}

func testConcurrentDifferentDigests(t *testing.T, m store) {
	results := raceCreate(t, m, racingWriters, func(i int) catalog.Artifact {
		return artifact("payments/api", "1.0.0", fmt.Sprintf("bytes of writer %d", i))
	})
	var winners []createResult
	for _, r := range results {
		if r.err == nil && r.created {
			winners = append(winners, r)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d writers created the version; want exactly 1", len(winners))
	}
	win := winners[0].stored
	for i, r := range results {
		if r.created {
			continue
		}
		if !errors.Is(r.err, catalog.ErrVersionExists) {
			t.Errorf("loser %d: %v; want ErrVersionExists", i, r.err)
		}
		checkArtifact(t, fmt.Sprintf("loser %d got", i), r.stored, win)
	}
	read, err := m.GetArtifact(t.Context(), "payments/api", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	checkArtifact(t, "GetArtifact", read, win)
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], catalog.ActionArtifactPushed, "payments/api:1.0.0", publisher, map[string]any{
		"digest": win.Digest.String(), "size": float64(win.Size), "mediaType": win.MediaType,
	})
}

func testConcurrentRevoke(t *testing.T, m store) {
	tok := token("tok_1", "one", access.RolePublisher)
	mustCreateToken(t, m, tok, secretHash("one"))
	errs := make([]error, racingWriters)
	race(racingWriters, func(i int) { errs[i] = m.RevokeToken(t.Context(), admin, tok.ID) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("revoker %d: %v", i, err)
		}
	}
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], access.ActionTokenRevoked, tok.ID, admin, nil)
}

// testConcurrentReadersAndWriters checks that reads never fail because
// writes are under way (a locked database is the implementation's problem,
// not the caller's).
func testConcurrentReadersAndWriters(t *testing.T, m store) {
	const writers, perWriter, readers, reads = 10, 5, 10, 10
	mustCreateToken(t, m, token("tok_1", "one", access.RoleAuditor), secretHash("one"))
	race(writers+readers, func(i int) {
		ctx := t.Context()
		if i < writers {
			for j := range perWriter {
				a := artifact(fmt.Sprintf("rw/app-%d", i), fmt.Sprint(j), fmt.Sprint(i, j))
				if _, _, err := m.CreateArtifact(ctx, publisher, a); err != nil {
					t.Errorf("CreateArtifact: %v", err)
				}
			}
			return
		}
		for range reads {
			if _, _, err := m.ListArtifacts(ctx, catalog.ArtifactFilter{Limit: 10}); err != nil {
				t.Errorf("ListArtifacts: %v", err)
			}
			if _, err := m.Events(ctx, 0, 10); err != nil {
				t.Errorf("Events: %v", err)
			}
			if _, err := m.TokenByHash(ctx, secretHash("one")); err != nil {
				t.Errorf("TokenByHash: %v", err)
			}
			if _, err := m.GetArtifact(ctx, "rw/app-0", "0"); err != nil && !errors.Is(err, errdef.ErrNotFound) {
				t.Errorf("GetArtifact: %v", err)
			}
		}
	})
	checkEventCount(t, m, 1+writers*perWriter)
}

// testConcurrentSetTrustPolicy checks that racing policy changes each get
// their own version, with none skipped.
func testConcurrentSetTrustPolicy(t *testing.T, m store) {
	versions := make([]int64, racingWriters)
	race(racingWriters, func(i int) {
		p, err := m.SetTrustPolicy(t.Context(), admin, json.RawMessage(fmt.Sprintf(`{"writer":%d}`, i)))
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
		versions[i] = p.Version
	})
	slices.Sort(versions)
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("versions %v; want 1 to %d, each once", versions, racingWriters)
		}
	}
	cur, err := m.TrustPolicy(t.Context())
	if err != nil || cur.Version != racingWriters {
		t.Errorf("TrustPolicy = version %d, %v; want %d", cur.Version, err, racingWriters)
	}
	evs := checkEventCount(t, m, racingWriters)
	seen := map[string]bool{}
	for _, e := range evs {
		seen[string(e.Details)] = true
	}
	if len(seen) != racingWriters {
		t.Errorf("%d distinct policy events; want %d", len(seen), racingWriters)
	}
}

func testConcurrentRevokeTrustKey(t *testing.T, m store) {
	mustAddKey(t, m, trustKey("ci"))
	errs := make([]error, racingWriters)
	race(racingWriters, func(i int) { errs[i] = m.RevokeTrustKey(t.Context(), admin, "ci") })
	for i, err := range errs {
		if err != nil {
			t.Errorf("revoker %d: %v", i, err)
		}
	}
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], trust.ActionTrustKeyRevoked, "ci", admin, nil)
}

func testConcurrentAddEvidence(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	created := make([]bool, racingWriters)
	race(racingWriters, func(i int) {
		var err error
		created[i], err = m.AddEvidence(t.Context(), publisher, signature(a, "sig", "ci"))
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	})
	if n := len(slices.DeleteFunc(created, func(c bool) bool { return !c })); n != 1 {
		t.Errorf("%d writers added the evidence; want exactly 1", n)
	}
	checkEvidence(t, m, a.Name, a.Version, signature(a, "sig", "ci"))
	checkEventCount(t, m, 2)
}

// testConcurrentSetAdmission races decisions made against the same state:
// one moves the artifact, the others find it moved.
func testConcurrentSetAdmission(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	errs := make([]error, racingWriters)
	race(racingWriters, func(i int) {
		adm := admitted()
		adm.Rule = fmt.Sprint("rule of writer ", i) // tells the winner apart
		_, errs[i] = m.SetAdmission(t.Context(), admin, a.Name, a.Version, catalog.StateQuarantined, adm)
	})
	winner := oneWinner(t, errs, errdef.ErrConflict)
	got, err := m.GetArtifact(t.Context(), a.Name, a.Version)
	if err != nil || got.State != catalog.StateAdmitted || got.Admission == nil ||
		got.Admission.Rule != fmt.Sprint("rule of writer ", winner) {
		t.Errorf("GetArtifact = %+v, %v; want admitted by writer %d", got, err, winner)
	}
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], catalog.ActionAdmissionDecided, "payments/api:1.0.0", admin, nil)
}

// testConcurrentCreateRelease races creations of one name: one creates it,
// the others find it taken.
func testConcurrentCreateRelease(t *testing.T, m store) {
	errs := make([]error, racingWriters)
	race(racingWriters, func(i int) {
		r := release("payments-march")
		r.Plan.Title = fmt.Sprint("plan of writer ", i) // tells the winner apart
		_, errs[i] = m.CreateRelease(t.Context(), manager, r)
	})
	winner := oneWinner(t, errs, errdef.ErrConflict)
	got := mustGetRelease(t, m, "payments-march")
	if got.Revision != 1 || got.Plan.Title != fmt.Sprint("plan of writer ", winner) {
		t.Errorf("GetRelease = revision %d, %q; want revision 1 by writer %d", got.Revision, got.Plan.Title, winner)
	}
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], lifecycle.ActionReleaseCreated, "release:payments-march", manager, nil)
}

// testConcurrentUpdateRelease races updates from the same revision: one
// stores its release, the others find the revision moved on.
func testConcurrentUpdateRelease(t *testing.T, m store) {
	created := mustCreateRelease(t, m, release("payments-march"))
	errs := make([]error, racingWriters)
	race(racingWriters, func(i int) {
		r := created
		r.Plan.Title = fmt.Sprint("plan of writer ", i)
		_, errs[i] = m.UpdateRelease(t.Context(), manager, r, lifecycle.ReleaseChange{
			Action:  lifecycle.ActionReleasePlanSet,
			Details: json.RawMessage(fmt.Sprintf(`{"writer":%d}`, i)),
		})
	})
	winner := oneWinner(t, errs, errdef.ErrConflict)
	got := mustGetRelease(t, m, created.Name)
	if got.Revision != 2 || got.Plan.Title != fmt.Sprint("plan of writer ", winner) {
		t.Errorf("GetRelease = revision %d, %q; want revision 2 by writer %d", got.Revision, got.Plan.Title, winner)
	}
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], lifecycle.ActionReleasePlanSet, "release:payments-march", manager, nil)
	if want := fmt.Sprintf(`{"writer":%d}`, winner); string(evs[1].Details) != want {
		t.Errorf("event details = %s; want the winner's %s", evs[1].Details, want)
	}
}

// oneWinner checks that exactly one of errs is nil and the others are
// want, and returns the index of the nil one.
func oneWinner(t *testing.T, errs []error, want error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, want):
			t.Errorf("writer %d: %v; want %v", i, err, want)
		}
	}
	if winner < 0 {
		t.Fatal("no writer succeeded")
	}
	return winner
}

func testConcurrentRetireArtifact(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	got := make([]catalog.Artifact, racingWriters)
	race(racingWriters, func(i int) {
		var err error
		if got[i], err = m.RetireArtifact(t.Context(), admin, a.Name, a.Version); err != nil {
			t.Errorf("retirer %d: %v", i, err)
		}
	})
	stored := mustGet(t, m, a.Name, a.Version)
	if stored.RetiredAt == nil {
		t.Fatal("RetiredAt = nil after RetireArtifact")
	}
	for i, r := range got {
		checkArtifact(t, fmt.Sprintf("retirer %d got", i), r, stored)
	}
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], catalog.ActionArtifactRetired, "payments/api:1.0.0", admin, nil)
}
