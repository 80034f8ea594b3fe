package metadatatest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/retention"
)

// RunRetention is the suite of retention.Store: policies, the versions a
// run reads, the deletion that re-checks in its transaction, the lease.
func RunRetention(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Retention/Policies", testRetentionPolicies},
		{"Retention/Versions", testRetentionVersions},
		{"Retention/DeleteVersion", testRetentionDeleteVersion},
		{"Retention/Lease", testRetentionLease},
		{"Concurrent/DeleteVersionAgainstRelease", testRetentionDeleteAgainstRelease},
	})
}

func testRetentionPolicies(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Retention()
	if list, err := st.ListPolicies(ctx); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListPolicies of none = %v, %v; want an empty list", list, err)
	}
	b := retention.Policy{ID: "b", Pattern: "payments/**", KeepAdmitted: 3, DeleteQuarantinedAfterDays: 30, DeleteRejectedAfterDays: 7, UpdatedBy: admin.Name, UpdatedAt: t0}
	a := retention.Policy{ID: "a", Pattern: "web/*", KeepAdmitted: 1, UpdatedBy: admin.Name, UpdatedAt: t0}
	for _, p := range []retention.Policy{b, a} {
		if got, err := st.PutPolicy(ctx, admin, p); err != nil || got != p {
			t.Fatalf("PutPolicy(%+v) = %+v, %v", p, got, err)
		}
	}
	b2 := b
	b2.KeepAdmitted, b2.UpdatedAt = 5, t0.Add(time.Hour)
	if _, err := st.PutPolicy(ctx, admin, b2); err != nil {
		t.Fatalf("PutPolicy replacing b: %v", err)
	}
	list, err := st.ListPolicies(ctx)
	if err != nil || len(list) != 2 || list[0] != a || list[1] != b2 {
		t.Fatalf("ListPolicies = %+v, %v; want [a, b replaced]", list, err)
	}
	if err := st.DeletePolicy(ctx, admin, "a"); err != nil {
		t.Fatalf("DeletePolicy(a): %v", err)
	}
	checkErr(t, "DeletePolicy(a) again", st.DeletePolicy(ctx, admin, "a"), errdef.ErrNotFound)
	evs := checkEventCount(t, m, 4)
	checkEvent(t, evs[2], retention.ActionPolicySet, "retention-policy:b", admin, map[string]any{
		"id": "b", "pattern": "payments/**", "keepAdmitted": float64(5), "deleteQuarantinedAfterDays": float64(30), "deleteRejectedAfterDays": float64(7),
	})
	checkEvent(t, evs[3], retention.ActionPolicyDeleted, "retention-policy:a", admin, map[string]any{"id": "a", "pattern": "web/*"})
}

func testRetentionVersions(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Retention()
	var all []catalog.Artifact
	for i := range 5 {
		a := artifact("payments/api", fmt.Sprintf("1.0.%d", i), fmt.Sprintf("bytes %d", i))
		a.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
		all = append(all, mustCreate(t, m, a))
	}
	all = append(all, mustCreate(t, m, artifact("web/site", "1", "site")))
	mustRetire(t, m, all[1])
	mustCreateRelease(t, m, release("r1", all[2]))

	var got []retention.Version
	after, afterV := "", ""
	for range 10 {
		page, err := st.Versions(ctx, after, afterV, 2)
		if err != nil {
			t.Fatalf("Versions: %v", err)
		}
		got = append(got, page...)
		if len(page) < 2 {
			break
		}
		after, afterV = page[len(page)-1].Name, page[len(page)-1].Version
	}
	if len(got) != len(all) {
		t.Fatalf("Versions listed %d, want %d: %+v", len(got), len(all), got)
	}
	for i, v := range got {
		a := all[i]
		want := retention.Version{Name: a.Name, Version: a.Version, Digest: a.Digest, Size: a.Size, State: a.State, CreatedAt: a.CreatedAt,
			Retired: i == 1, InRelease: i == 2}
		if v != want {
			t.Errorf("version %d = %+v, want %+v", i, v, want)
		}
	}
}

// deleteAs is a decide that records the deletion and checks nothing.
func deleteAs(reason string) func(retention.Version) (audit.Change, error) {
	return func(v retention.Version) (audit.Change, error) {
		return audit.Change{Action: retention.ActionArtifactDeleted, Details: []byte(fmt.Sprintf(`{"digest":%q,"reason":%q}`, v.Digest, reason))}, nil
	}
}

func testRetentionDeleteVersion(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Retention()
	a := mustCreate(t, m, artifact("payments/api", "1", "one"))
	keep := mustCreate(t, m, artifact("payments/api", "2", "two"))
	ev := evidenceFor(t, m, a, 2)
	evidenceFor(t, m, keep, 1)

	refused := errors.New("refused by the rule")
	_, err := st.DeleteVersion(ctx, admin, a.Name, a.Version, func(v retention.Version) (audit.Change, error) {
		if v.Digest != a.Digest || v.InRelease {
			t.Errorf("decide saw %+v", v)
		}
		return audit.Change{}, refused
	})
	if err != refused {
		t.Fatalf("DeleteVersion with a refusing rule = %v; want the rule's error as it is", err)
	}
	checkStored(t, m, a)
	checkEventCount(t, m, 5)

	gotEv, err := st.DeleteVersion(ctx, admin, a.Name, a.Version, deleteAs("test"))
	if err != nil {
		t.Fatalf("DeleteVersion: %v", err)
	}
	if len(gotEv) != 2 || !(gotEv[0] == ev[0] && gotEv[1] == ev[1] || gotEv[0] == ev[1] && gotEv[1] == ev[0]) {
		t.Errorf("DeleteVersion evidence = %v, want %v", gotEv, ev)
	}
	if _, err := m.GetArtifact(ctx, a.Name, a.Version); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("GetArtifact after DeleteVersion = %v; want ErrNotFound", err)
	}
	if list, err := m.ListEvidence(ctx, a.Name, a.Version); err != nil || len(list) != 0 {
		t.Errorf("ListEvidence after DeleteVersion = %v, %v; want none", list, err)
	}
	if list, err := m.ListEvidence(ctx, keep.Name, keep.Version); err != nil || len(list) != 1 {
		t.Errorf("ListEvidence of the bystander = %v, %v; want its one", list, err)
	}
	checkStored(t, m, keep)
	evs := checkEventCount(t, m, 6)
	checkEvent(t, evs[5], retention.ActionArtifactDeleted, "payments/api:1", admin, map[string]any{"digest": a.Digest.String(), "reason": "test"})

	_, err = st.DeleteVersion(ctx, admin, a.Name, a.Version, deleteAs("again"))
	checkErr(t, "DeleteVersion of a deleted version", err, errdef.ErrNotFound)

	// The version can be pushed again, and its reference is free.
	again := mustCreate(t, m, artifact("payments/api", "1", "other bytes"))
	mustCreateRelease(t, m, release("r1", again))
	_, err = st.DeleteVersion(ctx, admin, again.Name, again.Version, func(v retention.Version) (audit.Change, error) {
		if !v.InRelease {
			return audit.Change{}, errors.New("decide was not told that a release names the version")
		}
		return audit.Change{}, retention.ErrReferenced
	})
	checkErr(t, "DeleteVersion of a version a release names", err, retention.ErrReferenced)
	checkStored(t, m, again)
}

func testRetentionLease(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Retention()
	take := func(holder string, now time.Time) bool {
		t.Helper()
		ok, err := st.TryLease(ctx, "work", holder, now, now.Add(time.Minute))
		if err != nil {
			t.Fatalf("TryLease(%s): %v", holder, err)
		}
		return ok
	}
	if !take("one", t0) {
		t.Fatal("a free lease was refused")
	}
	if take("two", t0.Add(30*time.Second)) {
		t.Fatal("a held lease was given to another holder")
	}
	if !take("one", t0.Add(30*time.Second)) {
		t.Fatal("its holder could not renew a lease")
	}
	if take("two", t0.Add(89*time.Second)) {
		t.Fatal("a renewed lease was given away before it expired")
	}
	if !take("two", t0.Add(91*time.Second)) {
		t.Fatal("an expired lease was refused")
	}
	if err := st.DropLease(ctx, "work", "one"); err != nil {
		t.Fatalf("DropLease by a former holder: %v", err)
	}
	if take("one", t0.Add(100*time.Second)) {
		t.Fatal("a former holder's drop freed another holder's lease")
	}
	if err := st.DropLease(ctx, "work", "two"); err != nil {
		t.Fatalf("DropLease: %v", err)
	}
	if !take("one", t0.Add(100*time.Second)) {
		t.Fatal("a dropped lease was refused")
	}

	// Several at once: exactly one gets a free lease.
	var wg sync.WaitGroup
	got := make([]bool, 8)
	for i := range got {
		wg.Go(func() {
			ok, err := st.TryLease(ctx, "race", fmt.Sprint("holder", i), t0, t0.Add(time.Minute))
			if err != nil {
				t.Errorf("TryLease: %v", err)
			}
			got[i] = ok
		})
	}
	wg.Wait()
	n := 0
	for _, ok := range got {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of %d holders got one free lease; want 1", n, len(got))
	}
}

// testRetentionDeleteAgainstRelease runs a deletion and a release change
// that takes the same version at once, many times: either the release
// took it first and the deletion was refused (ErrReferenced), or the
// deletion came first and the release found no version. Never both.
func testRetentionDeleteAgainstRelease(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Retention()
	mustCreateRelease(t, m, release("r"))
	rule := func(v retention.Version) (audit.Change, error) {
		if v.InRelease {
			return audit.Change{}, retention.ErrReferenced
		}
		return deleteAs("race")(v)
	}
	releaseWon := 0
	for i := range 20 {
		a := mustCreate(t, m, artifact("payments/api", fmt.Sprint("v", i), fmt.Sprint("bytes ", i)))
		var delErr, relErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, delErr = st.DeleteVersion(ctx, admin, a.Name, a.Version, rule) })
		wg.Go(func() {
			_, relErr = m.ModifyRelease(ctx, manager, "r", func(tx lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
				got, err := tx.GetArtifact(ctx, a.Name, a.Version)
				if err != nil {
					return lifecycle.ReleaseChange{}, err
				}
				r.Artifacts = append(r.Artifacts, attached(got)...)
				return lifecycle.ReleaseChange{Action: "release.artifacts.set"}, nil
			})
		})
		wg.Wait()
		_, getErr := m.GetArtifact(ctx, a.Name, a.Version)
		inRelease := false
		for _, ra := range mustGetRelease(t, m, "r").Artifacts {
			inRelease = inRelease || (ra.Name == a.Name && ra.Version == a.Version)
		}
		switch {
		case relErr == nil && errors.Is(delErr, retention.ErrReferenced):
			releaseWon++
			if getErr != nil || !inRelease {
				t.Fatalf("round %d: the release won, but the version is stored: %v, in the release: %v", i, getErr, inRelease)
			}
		case delErr == nil && errors.Is(relErr, errdef.ErrNotFound):
			if !errors.Is(getErr, errdef.ErrNotFound) || inRelease {
				t.Fatalf("round %d: the deletion won, but the version is stored: %v, in the release: %v", i, getErr, inRelease)
			}
		default:
			t.Fatalf("round %d: deletion %v, release %v; want exactly one to win", i, delErr, relErr)
		}
	}
	t.Logf("the release won %d of 20 rounds", releaseWon)
}
