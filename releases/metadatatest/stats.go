package metadatatest

import (
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/stats"
)

// RunStats is the suite of stats.Store: the counts monitoring reads.
func RunStats(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Stats/Empty", testInventoryEmpty},
		{"Stats/Counts", testInventoryCounts},
	})
}

func inventory(t *testing.T, m store) stats.Inventory {
	t.Helper()
	inv, err := m.meta.Stats().Inventory(t.Context())
	if err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	return inv
}

func testInventoryEmpty(t *testing.T, m store) {
	inv := inventory(t, m)
	want := map[catalog.ArtifactState]int64{catalog.StateQuarantined: 0, catalog.StateAdmitted: 0, catalog.StateRejected: 0}
	if len(inv.Artifacts) != len(want) || inv.Artifacts[catalog.StateQuarantined] != 0 || inv.Artifacts[catalog.StateAdmitted] != 0 || inv.Artifacts[catalog.StateRejected] != 0 {
		t.Errorf("Artifacts = %v; want every state at 0: %v", inv.Artifacts, want)
	}
	if !inv.OldestQuarantined.IsZero() || !inv.OldestPending.IsZero() || inv.Blobs != 0 || inv.BlobBytes != 0 || inv.AuditRecords != 0 || inv.OutboxPending != 0 {
		t.Errorf("Inventory of an empty store = %+v; want zeros", inv)
	}
}

// Versions are counted by state, the oldest quarantined by its push
// time; blobs once each however many rows name them; the audit log by
// its records; the outbox by its pending deliveries.
func testInventoryCounts(t *testing.T, m store) {
	ctx := t.Context()
	old := artifact("payments/api", "1.0.0", "one")
	old.CreatedAt = t0.Add(-time.Hour)
	mustCreate(t, m, old)
	mustCreate(t, m, artifact("payments/api", "1.0.1", "two"))
	same := artifact("payments/web", "1.0.0", "two") // the bytes of 1.0.1
	mustCreate(t, m, same)
	adm := mustCreate(t, m, artifact("payments/api", "2.0.0", "three!"))
	sig := signature(adm, "sig-bytes", "key-1")
	mustAddEvidence(t, m, sig)
	mustSetAdmission(t, m, adm, catalog.StateQuarantined, admitted(sig.Digest))
	rej := mustCreate(t, m, artifact("payments/api", "3.0.0", "four"))
	r := pending()
	r.State, r.Reason = catalog.StateRejected, "tests failed"
	mustSetAdmission(t, m, rej, catalog.StateQuarantined, r)

	inv := inventory(t, m)
	want := map[catalog.ArtifactState]int64{catalog.StateQuarantined: 3, catalog.StateAdmitted: 1, catalog.StateRejected: 1}
	for st, n := range want {
		if inv.Artifacts[st] != n {
			t.Errorf("Artifacts[%s] = %d; want %d (all: %v)", st, inv.Artifacts[st], n, inv.Artifacts)
		}
	}
	if !inv.OldestQuarantined.Equal(old.CreatedAt) {
		t.Errorf("OldestQuarantined = %s; want %s, the push of the oldest still quarantined", inv.OldestQuarantined, old.CreatedAt)
	}
	// one, two (twice), three!, four, and the signature.
	wantBlobs, wantBytes := int64(5), int64(len("one")+len("two")+len("three!")+len("four"))+sig.Size
	if inv.Blobs != wantBlobs || inv.BlobBytes != wantBytes {
		t.Errorf("Blobs, BlobBytes = %d, %d; want %d, %d", inv.Blobs, inv.BlobBytes, wantBlobs, wantBytes)
	}
	size, err := m.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if inv.AuditRecords != size || size == 0 {
		t.Errorf("AuditRecords = %d; want the log's size %d", inv.AuditRecords, size)
	}

	// The outbox: every event so far (after the hook's cursor) is one
	// pending delivery.
	mustCreateHook(t, m, newHook("hook-1", events.Filter{}))
	mustCreate(t, m, artifact("payments/api", "4.0.0", "five"))
	mustCreate(t, m, artifact("payments/api", "4.0.1", "six"))
	drain(t, m)
	ds, err := m.meta.Webhooks().Deliveries(ctx, "hook-1", 10)
	if err != nil || len(ds) != 2 {
		t.Fatalf("Deliveries = %d, %v; want 2", len(ds), err)
	}
	inv = inventory(t, m)
	if inv.OutboxPending != 2 {
		t.Errorf("OutboxPending = %d; want 2", inv.OutboxPending)
	}
	oldest := ds[0].CreatedAt
	for _, d := range ds {
		if d.CreatedAt.Before(oldest) {
			oldest = d.CreatedAt
		}
	}
	if !inv.OldestPending.Equal(oldest) {
		t.Errorf("OldestPending = %s; want %s, the oldest pending delivery's", inv.OldestPending, oldest)
	}
	if inv.Artifacts[catalog.StateQuarantined] != 5 {
		t.Errorf("Artifacts[quarantined] = %d after two more pushes; want 5", inv.Artifacts[catalog.StateQuarantined])
	}
}
