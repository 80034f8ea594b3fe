package metadatatest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is an in-memory tlog hash store: the reference tree the suite
// rebuilds from the records alone, to compare with the store's.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, id := range indexes {
		if id < 0 || id >= int64(len(m)) {
			return nil, fmt.Errorf("stored hash %d of %d", id, len(m))
		}
		out[i] = m[id]
	}
	return out, nil
}

// referenceTree hashes records 0, 1, … into a new in-memory tree.
func referenceTree(t *testing.T, records []audit.AuditEntry) memHashes {
	t.Helper()
	var mem memHashes
	for i, e := range records {
		hs, err := tlog.StoredHashes(int64(i), e.Record, mem)
		if err != nil {
			t.Fatalf("reference tree, record %d: %v", i, err)
		}
		mem = append(mem, hs...)
	}
	return mem
}

func auditSize(t *testing.T, m store) int64 {
	t.Helper()
	n, err := m.AuditSize(t.Context())
	if err != nil {
		t.Fatalf("AuditSize: %v", err)
	}
	return n
}

// auditEntries collects AuditEntries(start, limit).
func auditEntries(t *testing.T, m store, start, limit int64) []audit.AuditEntry {
	t.Helper()
	var out []audit.AuditEntry
	err := m.AuditEntries(t.Context(), start, limit, func(e audit.AuditEntry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("AuditEntries(%d, %d): %v", start, limit, err)
	}
	return out
}

func treeHash(t *testing.T, size int64, r tlog.HashReader) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(size, r)
	if err != nil {
		t.Fatalf("TreeHash(%d): %v", size, err)
	}
	return h
}

// expectedRecord is the canonical record of event e at index i.
func expectedRecord(t *testing.T, i int64, e audit.Event) []byte {
	t.Helper()
	b, err := e.Record(i)
	if err != nil {
		t.Fatalf("encoding event %d: %v", e.Seq, err)
	}
	return b
}

// checkAuditLog checks that the audit log is exactly evs (all the events,
// oldest first): record i is the canonical encoding of event i, and the
// store's Merkle tree, hash for hash, is the one rebuilt from the records.
// It returns the records.
func checkAuditLog(t *testing.T, m store, evs []audit.Event) []audit.AuditEntry {
	t.Helper()
	size := auditSize(t, m)
	if size != int64(len(evs)) {
		t.Fatalf("AuditSize = %d; want %d, one record per event", size, len(evs))
	}
	records := auditEntries(t, m, 0, 0)
	if len(records) != len(evs) {
		t.Fatalf("AuditEntries(0, 0) = %d records; want %d", len(records), len(evs))
	}
	for i, e := range records {
		if e.Index != int64(i) {
			t.Fatalf("record %d has index %d; want indexes 0, 1, 2…", i, e.Index)
		}
		if _, err := auditlog.Decode(e.Record); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
		if want := expectedRecord(t, int64(i), evs[i]); !bytes.Equal(e.Record, want) {
			t.Errorf("record %d =\n %s\nwant the record of event %d:\n %s", i, e.Record, evs[i].Seq, want)
		}
	}
	if size == 0 {
		return records
	}
	mem := referenceTree(t, records)
	if n := tlog.StoredHashCount(size); n != int64(len(mem)) {
		t.Fatalf("reference tree of %d records has %d hashes; tlog says %d", size, len(mem), n)
	}
	ids := make([]int64, len(mem))
	for i := range ids {
		ids[i] = int64(i)
	}
	stored, err := m.AuditHashes(t.Context()).ReadHashes(ids)
	if err != nil {
		t.Fatalf("ReadHashes(all %d stored hashes): %v", len(ids), err)
	}
	for i := range stored {
		if stored[i] != mem[i] {
			t.Errorf("stored hash %d = %v; want %v", i, stored[i], mem[i])
		}
	}
	if got, want := treeHash(t, size, m.AuditHashes(t.Context())), treeHash(t, size, mem); got != want {
		t.Errorf("root of %d records = %v; recomputed from the records %v", size, got, want)
	}
	return records
}

// recordChanges makes n successful changes of several kinds, some with
// details that are not compact JSON (the record compacts them), and
// returns all the events.
func recordChanges(t *testing.T, m store, n int) []audit.Event {
	t.Helper()
	released := false
	for i := range n {
		switch i % 4 {
		case 0:
			mustCreate(t, m, artifact("audit/app", fmt.Sprint(i), fmt.Sprint("bytes ", i)))
		case 1:
			mustCreateToken(t, m, token(fmt.Sprint("tok_", i), fmt.Sprint("token ", i), access.RoleDeployer), secretHash(fmt.Sprint(i)))
		case 2:
			mustSetPolicy(t, m, fmt.Sprintf("{\n  \"rules\": [%d]\n}", i))
		case 3:
			if !released {
				mustCreateRelease(t, m, release("audit-release"))
				released = true
				continue
			}
			mustUpdateRelease(t, m, "audit-release", lifecycle.ActionReleasePlanSet, fmt.Sprintf(`{ "step" : %d, "note": "<b>&" }`, i),
				func(r *lifecycle.Release) { r.Plan.Title = fmt.Sprint("step ", i) })
		}
	}
	return allEvents(t, m)
}

func testAuditRecords(t *testing.T, m store) {
	if n := auditSize(t, m); n != 0 {
		t.Fatalf("AuditSize of a new store = %d; want 0", n)
	}
	if got := auditEntries(t, m, 0, 0); len(got) != 0 {
		t.Fatalf("AuditEntries of a new store = %d records; want none", len(got))
	}
	evs := recordChanges(t, m, 12)
	records := checkAuditLog(t, m, evs)
	for i, e := range records {
		r, err := auditlog.Decode(e.Record)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		ev := evs[i]
		if r.Index != int64(i) || r.Action != ev.Action || r.Subject != ev.Subject || !r.Time.Equal(ev.Time) ||
			r.Actor.TokenID != ev.Actor.TokenID || r.Actor.Name != ev.Actor.Name {
			t.Errorf("record %d = %s; want event %+v", i, e.Record, ev)
		}
		if idx, err := auditlog.ParseIndex(e.Record); err != nil || idx != int64(i) {
			t.Errorf("ParseIndex(record %d) = %d, %v", i, idx, err)
		}
	}
}

// testAuditProofs checks inclusion and consistency proofs served from the
// stored hashes for trees of several sizes, against roots recomputed from
// the records.
func testAuditProofs(t *testing.T, m store) {
	const n = 21
	records := checkAuditLog(t, m, recordChanges(t, m, n))
	mem := referenceTree(t, records)
	hashes := m.AuditHashes(t.Context())
	roots := map[int64]tlog.Hash{}
	for size := int64(1); size <= n; size++ {
		roots[size] = treeHash(t, size, mem)
		if got := treeHash(t, size, hashes); got != roots[size] {
			t.Errorf("root of the first %d records = %v; recomputed %v", size, got, roots[size])
		}
	}
	for _, size := range []int64{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, n} {
		for i := range size {
			proof, err := tlog.ProveRecord(size, i, hashes)
			if err != nil {
				t.Fatalf("ProveRecord(%d, %d): %v", size, i, err)
			}
			leaf := tlog.RecordHash(records[i].Record)
			if err := tlog.CheckRecord(proof, size, roots[size], i, leaf); err != nil {
				t.Errorf("record %d in the tree of %d: %v", i, size, err)
			}
			// A proof that would accept anything proves nothing.
			other := tlog.RecordHash(records[(i+1)%n].Record)
			if tlog.CheckRecord(proof, size, roots[size], i, other) == nil {
				t.Errorf("the proof of record %d in the tree of %d accepts record %d", i, size, (i+1)%n)
			}
		}
		for old := int64(1); old <= size; old++ {
			proof, err := tlog.ProveTree(size, old, hashes)
			if err != nil {
				t.Fatalf("ProveTree(%d, %d): %v", size, old, err)
			}
			if err := tlog.CheckTree(proof, size, roots[size], old, roots[old]); err != nil {
				t.Errorf("tree of %d extends tree of %d: %v", size, old, err)
			}
			if old < size && tlog.CheckTree(proof, size, roots[size], old, roots[size]) == nil {
				t.Errorf("the proof from %d to %d accepts a wrong old root", old, size)
			}
		}
	}
}

func testAuditEntries(t *testing.T, m store) {
	for _, v := range []string{"1", "2", "3", "4", "5"} {
		mustCreate(t, m, artifact("app", v, v))
	}
	checkEventCount(t, m, 5)
	all := auditEntries(t, m, 0, 0)
	tests := []struct {
		name         string
		start, limit int64
		want         []audit.AuditEntry
	}{
		{"all", 0, 0, all},
		{"negative limit is all", 0, -1, all},
		{"limit 1", 0, 1, all[:1]},
		{"limit 2 from 2", 2, 2, all[2:4]},
		{"from the middle to the end", 3, 0, all[3:]},
		{"limit past the end", 4, 10, all[4:]},
		{"limit exactly to the end", 1, 4, all[1:]},
		{"at the end", 5, 0, nil},
		{"past the end", 9, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := auditEntries(t, m, tc.start, tc.limit)
			if !slices.EqualFunc(got, tc.want, sameEntry) {
				t.Errorf("AuditEntries(%d, %d) = %s; want %s", tc.start, tc.limit, entryIndexes(got), entryIndexes(tc.want))
			}
		})
	}
	t.Run("negative start", func(t *testing.T) {
		err := m.AuditEntries(t.Context(), -1, 0, func(audit.AuditEntry) error { return nil })
		checkErr(t, "AuditEntries(-1, 0)", err, errdef.ErrInvalidInput)
	})
	t.Run("fn's error stops the walk", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := m.AuditEntries(t.Context(), 0, 0, func(audit.AuditEntry) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("AuditEntries = %v after %d calls; want fn's error after 1", err, calls)
		}
	})
	t.Run("fn may use the store", func(t *testing.T) {
		var got []audit.AuditEntry
		err := m.AuditEntries(t.Context(), 0, 0, func(e audit.AuditEntry) error {
			got = append(got, e)
			_, err := m.AuditSize(t.Context())
			return err
		})
		if err != nil || !slices.EqualFunc(got, all, sameEntry) {
			t.Errorf("AuditEntries = %s, %v; want %s", entryIndexes(got), err, entryIndexes(all))
		}
	})
	t.Run("the end is where the log ended at the call", func(t *testing.T) {
		appended := false
		var got []audit.AuditEntry
		err := m.AuditEntries(t.Context(), 0, 0, func(e audit.AuditEntry) error {
			got = append(got, e)
			if !appended {
				appended = true
				_, _, err := m.CreateArtifact(t.Context(), publisher, artifact("app", "6", "6"))
				return err
			}
			return nil
		})
		if err != nil || !slices.EqualFunc(got, all, sameEntry) {
			t.Errorf("AuditEntries = %s, %v; want %s", entryIndexes(got), err, entryIndexes(all))
		}
		checkEventCount(t, m, 6)
	})
}

// testAuditEntriesLongLog streams a log longer than any reasonable page,
// so that an implementation reading it in pages crosses several of them.
func testAuditEntriesLongLog(t *testing.T, m store) {
	const n = 530
	for i := range n {
		mustCreate(t, m, artifact("long/app", fmt.Sprint(i), fmt.Sprint(i)))
	}
	checkEventCount(t, m, n)
	all := auditEntries(t, m, 0, 0)
	for _, tc := range []struct{ start, limit int64 }{{0, 0}, {1, 0}, {255, 258}, {256, 256}, {500, 100}} {
		got := auditEntries(t, m, tc.start, tc.limit)
		end := int64(n)
		if tc.limit > 0 {
			end = min(end, tc.start+tc.limit)
		}
		if !slices.EqualFunc(got, all[tc.start:end], sameEntry) {
			t.Errorf("AuditEntries(%d, %d) = %d records from %s; want %d to %d", tc.start, tc.limit, len(got), firstIndex(got), tc.start, end-1)
		}
	}
}

func testAuditEntriesFor(t *testing.T, m store) {
	a1 := mustCreate(t, m, artifact("payments/api", "1.0.0", "a1"))
	a2 := mustCreate(t, m, artifact("payments/api", "1.1.0", "a2"))
	mustCreateToken(t, m, token("tok_1", "one", access.RoleDeployer), secretHash("one"))
	mustAddKey(t, m, trustKey("ci"))
	mustAddEvidence(t, m, signature(a1, "sig", "ci"))
	mustCreateRelease(t, m, release("payments-march", a1))
	mustRetire(t, m, a2)
	mustUpdateRelease(t, m, "payments-march", lifecycle.ActionReleaseCancelled, "", func(r *lifecycle.Release) {
		r.State = lifecycle.ReleaseCancelled
	})
	checkEventCount(t, m, 8)
	all := auditEntries(t, m, 0, 0)

	tests := []struct {
		name     string
		subjects []string
		want     []int64
	}{
		{"one artifact", []string{"payments/api:1.0.0"}, []int64{0, 4}},
		{"an artifact and a release", []string{"release:payments-march", "payments/api:1.1.0"}, []int64{1, 5, 6, 7}},
		{"a subject twice", []string{"tok_1", "tok_1"}, []int64{2}},
		{"unknown subject", []string{"payments/api:9.9.9"}, []int64{}},
		{"none", nil, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.AuditEntriesFor(t.Context(), tc.subjects)
			if err != nil {
				t.Fatalf("AuditEntriesFor(%q): %v", tc.subjects, err)
			}
			if got == nil {
				t.Errorf("AuditEntriesFor(%q) = nil; want an empty list", tc.subjects)
			}
			want := make([]audit.AuditEntry, len(tc.want))
			for i, idx := range tc.want {
				want[i] = all[idx]
			}
			if !slices.EqualFunc(got, want, sameEntry) {
				t.Errorf("AuditEntriesFor(%q) = %s; want %s", tc.subjects, entryIndexes(got), entryIndexes(want))
			}
		})
	}
}

func testAuditHashes(t *testing.T, m store) {
	hashes := m.AuditHashes(t.Context())
	if _, err := hashes.ReadHashes([]int64{0}); err == nil {
		t.Error("ReadHashes(0) of an empty log succeeded; want an error")
	}
	const n = 6
	records := checkAuditLog(t, m, recordChanges(t, m, n))
	mem := referenceTree(t, records)
	count := tlog.StoredHashCount(n)

	t.Run("order asked", func(t *testing.T) {
		ids := []int64{count - 1, 0, 3, 3, 1}
		got, err := hashes.ReadHashes(ids)
		if err != nil {
			t.Fatalf("ReadHashes(%v): %v", ids, err)
		}
		want, _ := mem.ReadHashes(ids)
		if !slices.Equal(got, want) {
			t.Errorf("ReadHashes(%v) = %v; want %v", ids, got, want)
		}
	})
	t.Run("none asked", func(t *testing.T) {
		if got, err := hashes.ReadHashes(nil); err != nil || len(got) != 0 {
			t.Errorf("ReadHashes(nil) = %v, %v; want no hashes", got, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if got, err := hashes.ReadHashes([]int64{0, count}); err == nil {
			t.Errorf("ReadHashes(0, %d) of a log with %d stored hashes = %v; want an error", count, count, got)
		}
		if _, err := tlog.TreeHash(n+1, hashes); err == nil {
			t.Errorf("TreeHash(%d) of a log of %d records succeeded; want an error", n+1, n)
		}
	})
}

// testConcurrentAuditLog races writers of several kinds with readers that
// sign nothing but do what a checkpoint and a proof need: the log stays
// dense and its tree is the one rebuilt from the records, and a reader
// always finds the hashes for the size it read.
func testConcurrentAuditLog(t *testing.T, m store) {
	const writers, readers = distinctWriters, 10
	race(writers+readers, func(i int) {
		ctx := t.Context()
		if i >= writers {
			for range 5 {
				size, err := m.AuditSize(ctx)
				if err != nil || size == 0 {
					if err != nil {
						t.Errorf("AuditSize: %v", err)
					}
					continue
				}
				hashes := m.AuditHashes(ctx)
				root, err := tlog.TreeHash(size, hashes)
				if err != nil {
					t.Errorf("TreeHash(%d): %v", size, err)
					continue
				}
				var last []byte
				err = m.AuditEntries(ctx, size-1, 1, func(e audit.AuditEntry) error {
					last = e.Record
					return nil
				})
				var proof tlog.RecordProof
				if err == nil {
					proof, err = tlog.ProveRecord(size, size-1, hashes)
				}
				if err == nil {
					err = tlog.CheckRecord(proof, size, root, size-1, tlog.RecordHash(last))
				}
				if err != nil {
					t.Errorf("record %d in the tree of %d: %v", size-1, size, err)
				}
			}
			return
		}
		var err error
		switch i % 3 {
		case 0:
			_, _, err = m.CreateArtifact(ctx, publisher, artifact("concurrent/app", fmt.Sprint(i), fmt.Sprint(i)))
		case 1:
			err = m.CreateToken(ctx, admin, token(fmt.Sprint("tok_", i), "t", access.RoleDeployer), secretHash(fmt.Sprint(i)))
		case 2:
			_, err = m.SetTrustPolicy(ctx, admin, []byte(fmt.Sprint(i)))
		}
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	})
	checkEventCount(t, m, writers) // checks the log, see checkAuditLog
}

func sameEntry(a, b audit.AuditEntry) bool {
	return a.Index == b.Index && bytes.Equal(a.Record, b.Record)
}

func entryIndexes(entries []audit.AuditEntry) string {
	idx := make([]int64, len(entries))
	for i, e := range entries {
		idx[i] = e.Index
	}
	return fmt.Sprint(idx)
}

func firstIndex(entries []audit.AuditEntry) string {
	if len(entries) == 0 {
		return "nowhere"
	}
	return fmt.Sprint(entries[0].Index)
}
