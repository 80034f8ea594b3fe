package metadatatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/opencontainers/go-digest"
)

// modify calls ModifyRelease as manager.
func modify(t *testing.T, m store, name string, fn func(tx lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error)) (lifecycle.Release, error) {
	t.Helper()
	return m.ModifyRelease(t.Context(), manager, name, fn)
}

// testModifyRelease changes a release inside the store's transaction: the
// change is stored with revision+1, UpdatedAt now, the artifact index
// following it, and one event with the change's details byte for byte.
func testModifyRelease(t *testing.T, m store) {
	a1 := mustCreate(t, m, artifact("payments/api", "1.4.2", "a1"))
	a2 := mustCreate(t, m, artifact("payments/web", "2.0.0", "a2"))
	created := mustCreateRelease(t, m, release("payments-march", a1))
	approval := lifecycle.Approval{Gate: "plan", Decision: lifecycle.DecisionApprove, Digest: created.PlanDigest, By: "dave", TokenID: "tok_dave", At: t0}
	const details = `{ "gate": "plan", "note": "<b>&" }`

	var seen lifecycle.Release
	before := time.Now()
	got, err := modify(t, m, created.Name, func(_ lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
		seen = *r
		r.State = lifecycle.ReleaseBuilding
		r.Approvals = append(r.Approvals, approval)
		r.Artifacts = attached(a2)
		return lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseApproval, Details: json.RawMessage(details)}, nil
	})
	if err != nil {
		t.Fatalf("ModifyRelease: %v", err)
	}
	checkRelease(t, "the release fn was given", seen, created)
	checkAboutNow(t, "UpdatedAt", got.UpdatedAt, before)
	want := created
	want.State, want.Approvals, want.Artifacts = lifecycle.ReleaseBuilding, []lifecycle.Approval{approval}, attached(a2)
	want.Revision, want.UpdatedAt = 2, got.UpdatedAt
	checkRelease(t, "ModifyRelease", got, want)
	checkRelease(t, "GetRelease", mustGetRelease(t, m, created.Name), want)
	checkContaining(t, m, a1.Name, a1.Version)
	checkContaining(t, m, a2.Name, a2.Version, created.Name)

	evs := checkEventCount(t, m, 4)
	checkEvent(t, evs[3], lifecycle.ActionReleaseApproval, "release:payments-march", manager, nil)
	if string(evs[3].Details) != details {
		t.Errorf("event details = %s; want %s byte for byte", evs[3].Details, details)
	}
}

// testModifyReleaseNoChange: a change without an action stores nothing,
// records nothing and returns the release as it was loaded, even if fn
// touched it.
func testModifyReleaseNoChange(t *testing.T, m store) {
	created := mustCreateRelease(t, m, release("payments-march"))
	got, err := modify(t, m, created.Name, func(_ lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
		r.Plan.Risk = "touched"
		r.Approvals = append(r.Approvals, lifecycle.Approval{Gate: "plan", By: "dave"})
		return lifecycle.ReleaseChange{}, nil
	})
	if err != nil {
		t.Fatalf("ModifyRelease: %v", err)
	}
	checkRelease(t, "ModifyRelease without a change", got, created)
	checkRelease(t, "GetRelease", mustGetRelease(t, m, created.Name), created)
	checkEventCount(t, m, 1)
}

// testModifyReleaseFnError: fn's error comes back as it is, and whatever
// fn did to the release is not stored.
func testModifyReleaseFnError(t *testing.T, m store) {
	created := mustCreateRelease(t, m, release("payments-march"))
	refused := fmt.Errorf("gate closed: %w", lifecycle.ErrInvalidState)
	_, err := modify(t, m, created.Name, func(_ lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
		r.State = lifecycle.ReleaseCancelled
		return lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseCancelled}, refused
	})
	if !errors.Is(err, refused) || err.Error() != refused.Error() {
		t.Errorf("ModifyRelease = %v; want fn's error %v as it is", err, refused)
	}
	checkRelease(t, "GetRelease after fn failed", mustGetRelease(t, m, created.Name), created)
	checkEventCount(t, m, 1)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = m.ModifyRelease(ctx, manager, created.Name, func(_ lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
		r.State = lifecycle.ReleaseCancelled
		return lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseCancelled}, nil
	})
	checkErr(t, "ModifyRelease with a cancelled context", err, context.Canceled)
	checkRelease(t, "GetRelease after a cancelled change", mustGetRelease(t, m, created.Name), created)
	checkEventCount(t, m, 1)
}

// testModifyReleaseNotFound: an unknown release is ErrNotFound and fn is
// not called.
func testModifyReleaseNotFound(t *testing.T, m store) {
	mustCreateRelease(t, m, release("payments-march"))
	called := false
	_, err := modify(t, m, "payments-april", func(lifecycle.ReleaseTx, *lifecycle.Release) (lifecycle.ReleaseChange, error) {
		called = true
		return lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseCancelled}, nil
	})
	checkErr(t, "ModifyRelease of an unknown release", err, errdef.ErrNotFound)
	if called {
		t.Error("fn was called for an unknown release")
	}
	checkEventCount(t, m, 1)
}

// testModifyReleaseKeepsIdentity: the name, creation and revision are the
// store's, whatever fn sets; renaming and invalid results are
// ErrInvalidInput and store nothing.
func testModifyReleaseKeepsIdentity(t *testing.T, m store) {
	created := mustCreateRelease(t, m, release("payments-march"))
	got, err := modify(t, m, created.Name, func(_ lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
		r.CreatedBy, r.CreatedAt, r.Revision = "mallory", t0.Add(-time.Hour), 99
		r.Plan.Risk = "high"
		return lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet}, nil
	})
	if err != nil {
		t.Fatalf("ModifyRelease: %v", err)
	}
	if got.CreatedBy != created.CreatedBy || !got.CreatedAt.Equal(created.CreatedAt) || got.Revision != 2 || got.Plan.Risk != "high" {
		t.Errorf("ModifyRelease = created by %s at %v, revision %d, risk %s; want %s, %v, 2, high",
			got.CreatedBy, got.CreatedAt, got.Revision, got.Plan.Risk, created.CreatedBy, created.CreatedAt)
	}
	checkRelease(t, "GetRelease", mustGetRelease(t, m, created.Name), got)

	for _, tc := range []struct {
		name   string
		change func(r *lifecycle.Release) lifecycle.ReleaseChange
	}{
		{"renamed", func(r *lifecycle.Release) lifecycle.ReleaseChange {
			r.Name = "payments-april"
			return lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet}
		}},
		{"unknown state", func(r *lifecycle.Release) lifecycle.ReleaseChange {
			r.State = "shipped"
			return lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet}
		}},
		{"artifact twice", func(r *lifecycle.Release) lifecycle.ReleaseChange {
			a := lifecycle.ReleaseArtifact{Name: "payments/api", Version: "1.0.0", Digest: digest.FromString("x")}
			r.Artifacts = []lifecycle.ReleaseArtifact{a, a}
			return lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseArtifactsSet}
		}},
		{"details not JSON", func(*lifecycle.Release) lifecycle.ReleaseChange {
			return lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet, Details: json.RawMessage(`{`)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := modify(t, m, created.Name, func(_ lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
				return tc.change(r), nil
			})
			checkErr(t, "ModifyRelease", err, errdef.ErrInvalidInput)
		})
	}
	checkRelease(t, "GetRelease after invalid changes", mustGetRelease(t, m, created.Name), got)
	_, err = m.GetRelease(t.Context(), "payments-april")
	checkErr(t, "GetRelease of the refused new name", err, errdef.ErrNotFound)
	checkEventCount(t, m, 2)
}

// testModifyReleaseReadsInTx: fn reads artifacts through tx, inside the
// transaction (a store with one connection would deadlock on any other
// way), and sees what is committed.
func testModifyReleaseReadsInTx(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.4.2", "a1"))
	created := mustCreateRelease(t, m, release("payments-march", a))
	var read catalog.Artifact
	var missing error
	_, err := modify(t, m, created.Name, func(tx lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
		var err error
		if read, err = tx.GetArtifact(t.Context(), a.Name, a.Version); err != nil {
			return lifecycle.ReleaseChange{}, err
		}
		_, missing = tx.GetArtifact(t.Context(), a.Name, "9.9.9")
		r.Plan.Risk = "checked"
		return lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseApproval}, nil
	})
	if err != nil {
		t.Fatalf("ModifyRelease: %v", err)
	}
	checkArtifact(t, "tx.GetArtifact", read, a)
	checkErr(t, "tx.GetArtifact of an unknown version", missing, errdef.ErrNotFound)
}

// testConcurrentModifyRelease races changes of one release: every one is
// applied, on top of all the others, none refused for contention; one
// event each.
func testConcurrentModifyRelease(t *testing.T, m store) {
	created := mustCreateRelease(t, m, release("payments-march"))
	errs := make([]error, racingWriters)
	race(racingWriters, func(i int) {
		_, errs[i] = m.ModifyRelease(t.Context(), manager, created.Name, func(_ lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
			r.Approvals = append(r.Approvals, lifecycle.Approval{Gate: "plan", Decision: lifecycle.DecisionApprove,
				Digest: r.PlanDigest, By: fmt.Sprint("approver-", i), At: t0})
			return lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseApproval, Details: json.RawMessage(fmt.Sprintf(`{"writer":%d}`, i))}, nil
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	got := mustGetRelease(t, m, created.Name)
	var by []string
	for _, a := range got.Approvals {
		by = append(by, a.By)
	}
	slices.Sort(by)
	var want []string
	for i := range racingWriters {
		want = append(want, fmt.Sprint("approver-", i))
	}
	slices.Sort(want)
	if got.Revision != 1+racingWriters || !slices.Equal(by, want) {
		t.Errorf("after %d changes: revision %d, approvals by %q; want revision %d and every writer's approval", racingWriters, got.Revision, by, 1+racingWriters)
	}
	evs := checkEventCount(t, m, 1+racingWriters)
	for _, ev := range evs[1:] {
		if ev.Action != lifecycle.ActionReleaseApproval {
			t.Errorf("event %d is %s; want %s", ev.Seq, ev.Action, lifecycle.ActionReleaseApproval)
		}
	}
}
