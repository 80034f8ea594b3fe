package metadatatest

import (
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
)

func mustRetire(t *testing.T, m store, a catalog.Artifact) catalog.Artifact {
	t.Helper()
	got, err := m.RetireArtifact(t.Context(), admin, a.Name, a.Version)
	if err != nil {
		t.Fatalf("RetireArtifact(%s:%s): %v", a.Name, a.Version, err)
	}
	return got
}

// testRetireArtifact checks that retiring marks the artifact and changes
// nothing else about it, once.
func testRetireArtifact(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	a = mustSetAdmission(t, m, a, catalog.StateQuarantined, admitted())
	bystander := mustCreate(t, m, artifact("payments/api", "1.0.1", "y"))

	before := time.Now()
	got := mustRetire(t, m, a)
	if got.RetiredAt == nil {
		t.Fatal("RetiredAt = nil after RetireArtifact")
	}
	checkAboutNow(t, "RetiredAt", *got.RetiredAt, before)
	want := a
	want.RetiredAt, want.RetiredBy = got.RetiredAt, admin.Name
	checkArtifact(t, "RetireArtifact", got, want)
	checkStored(t, m, want)
	checkStored(t, m, bystander) // not retired
	evs := checkEventCount(t, m, 4)
	checkEvent(t, evs[3], catalog.ActionArtifactRetired, "payments/api:1.0.0", admin, map[string]any{
		"digest": a.Digest.String(),
	})

	t.Run("again", func(t *testing.T) {
		again, err := m.RetireArtifact(t.Context(), publisher, a.Name, a.Version)
		if err != nil {
			t.Fatalf("RetireArtifact of a retired artifact: %v; want nil", err)
		}
		checkArtifact(t, "RetireArtifact again", again, want) // retired when and by whom it was
		checkStored(t, m, want)
		checkEventCount(t, m, 4)
	})
	t.Run("unknown", func(t *testing.T) {
		for _, tc := range slices.Concat(unknownArtifacts, []ref{{"", ""}}) {
			_, err := m.RetireArtifact(t.Context(), admin, tc.name, tc.version)
			checkErr(t, "RetireArtifact("+tc.name+":"+tc.version+")", err, errdef.ErrNotFound)
		}
		checkEventCount(t, m, 4)
	})
}
