package sqlstore

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/opencontainers/go-digest"
)

// TestMigrationBackfillsReleaseEdits opens a database whose releases were
// stored before migration 0008: each gains the edits its events recorded
// (who created it, re-planned it, set its artifacts, filed its review),
// oldest first and with the digests the events name; a release that has
// edits already keeps them, and the audit log and revisions are
// untouched.
func TestMigrationBackfillsReleaseEdits(t *testing.T) {
	ctx := t.Context()
	db, path := openTemp(t)
	creator := access.Actor{TokenID: "tok_rm", Name: "rm"}
	both := access.Actor{TokenID: "tok_both", Name: "rm-cab"}
	reviewer := access.Actor{TokenID: "tok_rv", Name: "erin"}
	plan2, review := digest.FromString("plan 2"), digest.FromString("review")

	old := lifecycle.Release{Name: "in-flight", State: lifecycle.ReleasePlanning, PlanDigest: digest.FromString("plan 1")}
	if _, err := db.Releases().CreateRelease(ctx, creator, just(old)); err != nil {
		t.Fatal(err)
	}
	change := func(actor access.Actor, action string, details any) {
		t.Helper()
		b, _ := json.Marshal(details)
		_, err := db.Releases().ModifyRelease(ctx, actor, old.Name, func(_ lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error) {
			return lifecycle.ReleaseChange{Action: action, Details: b}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	change(both, lifecycle.ActionReleasePlanSet, map[string]any{"planDigest": plan2, "previousPlanDigest": old.PlanDigest, "discardedApprovals": 0})
	change(both, lifecycle.ActionReleaseApproval, map[string]any{"gate": "plan"})
	change(both, lifecycle.ActionReleaseArtifactsSet, map[string]any{"artifacts": []string{}})
	change(reviewer, lifecycle.ActionReleaseReview, map[string]any{"outcome": "failed", "reviewDigest": review})

	kept := []lifecycle.Edit{{Part: lifecycle.PartPlan, Digest: digest.FromString("x"), By: "someone", TokenID: "tok_x", At: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, err := db.Releases().CreateRelease(ctx, creator, just(lifecycle.Release{Name: "recorded", State: lifecycle.ReleasePlanning, Edits: kept})); err != nil {
		t.Fatal(err)
	}
	before, err := db.Releases().GetRelease(ctx, old.Name)
	if err != nil {
		t.Fatal(err)
	}
	if before.Edits != nil {
		t.Fatalf("fixture: release stored with edits %+v", before.Edits)
	}
	size, err := db.Audit().AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Back to schema version 7, then open: 0008 runs.
	if _, err := db.sql.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = 8`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	defer db.Close()

	got, err := db.Releases().GetRelease(ctx, old.Name)
	if err != nil {
		t.Fatal(err)
	}
	var edits []string
	for _, e := range got.Edits {
		if e.At.IsZero() || e.At.Location() != time.UTC {
			t.Errorf("edit %+v: want the event's time, in UTC", e)
		}
		edits = append(edits, fmt.Sprintf("%s by %s (%s) %s", e.Part, e.By, e.TokenID, e.Digest))
	}
	want := []string{
		fmt.Sprintf("plan by rm (tok_rm) %s", old.PlanDigest),
		"artifacts by rm (tok_rm) ",
		fmt.Sprintf("plan by rm-cab (tok_both) %s", plan2),
		"artifacts by rm-cab (tok_both) ",
		fmt.Sprintf("review by erin (tok_rv) %s", review),
	}
	if !slices.Equal(edits, want) {
		t.Errorf("backfilled edits:\n  %q\nwant\n  %q", edits, want)
	}
	if got.Revision != before.Revision {
		t.Errorf("revision %d after the backfill, was %d", got.Revision, before.Revision)
	}
	rec, err := db.Releases().GetRelease(ctx, "recorded")
	if err != nil || len(rec.Edits) != 1 || rec.Edits[0].By != "someone" {
		t.Errorf("release with edits after the backfill: %+v, %v; want its own edit kept", rec.Edits, err)
	}
	if n, err := db.Audit().AuditSize(ctx); err != nil || n != size {
		t.Errorf("audit log size %d, %v after the backfill; want %d", n, err, size)
	}
}
