package metadatatest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// access is a complete access record at t0+seconds.
func accessRec(seconds int, principal, subject, name string) audit.AccessRecord {
	return audit.AccessRecord{
		Time:      t0.Add(time.Duration(seconds) * time.Second),
		Principal: principal,
		TokenID:   "tok_" + principal,
		Method:    "GET",
		Route:     "GET /api/v1/artifacts/{name}/versions/{version}/content",
		Path:      "/api/v1/artifacts/" + name + "/versions/1.0/content",
		Status:    403,
		Outcome:   audit.AccessDenied,
		Code:      "NOT_ADMITTED",
		Message:   "not admitted: " + subject + " is quarantined",
		Subject:   subject,
		Name:      name,
		Version:   "1.0",
		Digest:    digest.FromString(subject),
		Remote:    "127.0.0.1:5555",
	}
}

func mustRecordAccess(t *testing.T, m store, recs ...audit.AccessRecord) {
	t.Helper()
	for _, r := range recs {
		if err := m.RecordAccess(t.Context(), r); err != nil {
			t.Fatalf("RecordAccess(%+v): %v", r, err)
		}
	}
}

// allAccess pages through every record the filter selects.
func allAccess(t *testing.T, m store, f audit.AccessFilter, pageSize int) []audit.AccessRecord {
	t.Helper()
	all, _ := pageThrough(t, "AccessRecords", pageSize, func(cursor string) ([]audit.AccessRecord, string, error) {
		f.Limit, f.Cursor = pageSize, cursor
		return m.AccessRecords(t.Context(), f)
	})
	return all
}

func seqs(list []audit.AccessRecord) []int64 {
	out := make([]int64, len(list))
	for i, r := range list {
		out[i] = r.Seq
	}
	return out
}

func testRecordAccess(t *testing.T, m store) {
	want := accessRec(1, "mallory", "payments/api:1.0", "payments/api")
	mustRecordAccess(t, m, want)
	noTime := accessRec(0, "", "", "")
	noTime.Time = time.Time{}
	before := time.Now()
	mustRecordAccess(t, m, noTime)

	got := allAccess(t, m, audit.AccessFilter{}, 10)
	if len(got) != 2 {
		t.Fatalf("AccessRecords = %d records; want 2", len(got))
	}
	want.Seq = 1
	checkUTC(t, "Time", got[0].Time)
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("record:\n got %+v\nwant %+v", got[0], want)
	}
	if got[1].Seq <= got[0].Seq {
		t.Errorf("seqs %v; want increasing", seqs(got))
	}
	if d := got[1].Time.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("zero Time stored as %v; want about %v", got[1].Time, before)
	}
	checkEventCount(t, m, 0) // not in the audit log
}

func testAccessFilter(t *testing.T, m store) {
	recs := []audit.AccessRecord{
		accessRec(1, "mallory", "payments/api:1.0", "payments/api"),         // seq 1
		accessRec(2, "bob", "payments/api@sha256:abc", "payments/api"),      // seq 2
		accessRec(3, "mallory", "release:2026.11", ""),                      // seq 3
		accessRec(4, "bob", "payments/api-extra:1.0", "payments/api-extra"), // seq 4
		accessRec(5, "mallory", "payments/api:2.0", "payments/api"),         // seq 5
		accessRec(6, "", "", ""),                                            // seq 6, anonymous
	}
	mustRecordAccess(t, m, recs...)
	tests := []struct {
		name string
		f    audit.AccessFilter
		want []int64
	}{
		{"everything", audit.AccessFilter{}, []int64{1, 2, 3, 4, 5, 6}},
		{"an artifact name: every version and digest", audit.AccessFilter{Subject: "payments/api"}, []int64{1, 2, 5}},
		{"an exact subject", audit.AccessFilter{Subject: "payments/api:1.0"}, []int64{1}},
		{"a release", audit.AccessFilter{Subject: "release:2026.11"}, []int64{3}},
		{"a principal", audit.AccessFilter{Principal: "mallory"}, []int64{1, 3, 5}},
		{"since is inclusive", audit.AccessFilter{Since: t0.Add(4 * time.Second)}, []int64{4, 5, 6}},
		{"combined", audit.AccessFilter{Subject: "payments/api", Principal: "mallory", Since: t0.Add(2 * time.Second)}, []int64{5}},
		{"nothing", audit.AccessFilter{Principal: "nobody"}, []int64{}},
		{"metacharacters are data", audit.AccessFilter{Subject: "payments/%' OR '1'='1"}, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := seqs(allAccess(t, m, tc.f, 2)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("seqs %v; want %v", got, tc.want)
			}
		})
	}
}

func testAccessPaging(t *testing.T, m store) {
	for i := range 25 {
		mustRecordAccess(t, m, accessRec(i, fmt.Sprintf("p%d", i%3), "x:1", "x"))
	}
	for _, size := range []int{1, 7, 25, 100} {
		all, pages := pageThrough(t, "AccessRecords", size, func(cursor string) ([]audit.AccessRecord, string, error) {
			return m.AccessRecords(t.Context(), audit.AccessFilter{Limit: size, Cursor: cursor})
		})
		if len(all) != 25 || all[0].Seq != 1 || all[24].Seq != 25 {
			t.Errorf("page size %d: %d records %v; want seqs 1..25", size, len(all), seqs(all))
		}
		if want := (25 + size - 1) / size; pages != want {
			t.Errorf("page size %d: %d pages; want %d", size, pages, want)
		}
	}
	// Records added behind the cursor do not shift later pages.
	page, next, err := m.AccessRecords(t.Context(), audit.AccessFilter{Limit: 10})
	if err != nil || len(page) != 10 || next == "" {
		t.Fatalf("first page: %d, %q, %v", len(page), next, err)
	}
	mustRecordAccess(t, m, accessRec(99, "late", "x:1", "x"))
	page, _, err = m.AccessRecords(t.Context(), audit.AccessFilter{Limit: 10, Cursor: next})
	if err != nil || len(page) != 10 || page[0].Seq != 11 {
		t.Errorf("second page after a new record: %v, %v; want seqs from 11", seqs(page), err)
	}
}

func testAccessInvalid(t *testing.T, m store) {
	for name, mutate := range map[string]func(*audit.AccessRecord){
		"no method":  func(r *audit.AccessRecord) { r.Method = "" },
		"no outcome": func(r *audit.AccessRecord) { r.Outcome = "" },
	} {
		r := accessRec(1, "a", "b", "c")
		mutate(&r)
		checkErr(t, "RecordAccess "+name, m.RecordAccess(t.Context(), r), errdef.ErrInvalidInput)
	}
	mustCreate(t, m, artifact("a/b", "1", "x"))
	mustCreate(t, m, artifact("a/b", "2", "y"))
	_, artifactCursor, err := m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Limit: 1})
	if err != nil || artifactCursor == "" {
		t.Fatalf("ListArtifacts: cursor %q, %v", artifactCursor, err)
	}
	for _, cursor := range []string{"not-base64!", "e30", artifactCursor} {
		_, _, err := m.AccessRecords(t.Context(), audit.AccessFilter{Cursor: cursor})
		checkErr(t, "AccessRecords(cursor "+cursor+")", err, errdef.ErrInvalidInput)
	}
	_, _, err = m.AccessRecords(t.Context(), audit.AccessFilter{Limit: -1})
	checkErr(t, "AccessRecords(limit -1)", err, errdef.ErrInvalidInput)
}

func testPruneAccessByAge(t *testing.T, m store) {
	for i := range 10 {
		mustRecordAccess(t, m, accessRec(i, "p", "x:1", "x"))
	}
	n, err := m.PruneAccess(t.Context(), t0.Add(4*time.Second), 0)
	if err != nil || n != 4 {
		t.Fatalf("PruneAccess = %d, %v; want 4 (seconds 0-3)", n, err)
	}
	if got := seqs(allAccess(t, m, audit.AccessFilter{}, 100)); !reflect.DeepEqual(got, []int64{5, 6, 7, 8, 9, 10}) {
		t.Errorf("after pruning: %v; want 5..10", got)
	}
	if n, err := m.PruneAccess(t.Context(), t0.Add(4*time.Second), 0); err != nil || n != 0 {
		t.Errorf("pruning again = %d, %v; want 0", n, err)
	}
	// Sequence numbers are not reused once the oldest are gone.
	mustRecordAccess(t, m, accessRec(20, "p", "x:1", "x"))
	if all := allAccess(t, m, audit.AccessFilter{}, 100); all[len(all)-1].Seq != 11 {
		t.Errorf("next seq after pruning = %d; want 11", all[len(all)-1].Seq)
	}
	checkEventCount(t, m, 0)
}

func testPruneAccessByCount(t *testing.T, m store) {
	for i := range 12 {
		mustRecordAccess(t, m, accessRec(i, "p", "x:1", "x"))
	}
	// Age first (seconds 0 and 1), then all but the newest 5.
	n, err := m.PruneAccess(t.Context(), t0.Add(2*time.Second), 5)
	if err != nil || n != 7 {
		t.Fatalf("PruneAccess = %d, %v; want 7", n, err)
	}
	if got := seqs(allAccess(t, m, audit.AccessFilter{}, 100)); !reflect.DeepEqual(got, []int64{8, 9, 10, 11, 12}) {
		t.Errorf("after pruning: %v; want 8..12", got)
	}
	if n, err := m.PruneAccess(t.Context(), t0, 50); err != nil || n != 0 {
		t.Errorf("pruning with room to spare = %d, %v; want 0", n, err)
	}
}
