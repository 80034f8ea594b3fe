package metadatatest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/opencontainers/go-digest"
)

// RunQuotas is the suite of quota.Store and of the quota check inside
// catalog.Store.InsertArtifactWithin.
func RunQuotas(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Quotas/SetListDelete", testQuotasSetListDelete},
		{"Quotas/Usage", testQuotaUsage},
		{"Quotas/InsertWithin", testQuotaInsertWithin},
		{"Concurrent/InsertAtTheQuota", testQuotaConcurrentInserts},
	})
}

func testQuotasSetListDelete(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Quotas()
	if list, err := st.ListQuotas(ctx); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListQuotas of none = %v, %v; want an empty list", list, err)
	}
	b := quota.Quota{Prefix: "web/", MaxBytes: 10, UpdatedBy: admin.Name, UpdatedAt: t0}
	a := quota.Quota{Prefix: "payments/", MaxBytes: 1000, MaxArtifacts: 5, UpdatedBy: admin.Name, UpdatedAt: t0}
	for _, q := range []quota.Quota{b, a} {
		if got, err := st.PutQuota(ctx, admin, q); err != nil || got != q {
			t.Fatalf("PutQuota(%+v) = %+v, %v", q, got, err)
		}
	}
	b.MaxArtifacts = 3
	if _, err := st.PutQuota(ctx, admin, b); err != nil {
		t.Fatal(err)
	}
	list, err := st.ListQuotas(ctx)
	if err != nil || len(list) != 2 || list[0] != a || list[1] != b {
		t.Fatalf("ListQuotas = %+v, %v; want [payments/, web/ replaced]", list, err)
	}
	if err := st.DeleteQuota(ctx, admin, "web/"); err != nil {
		t.Fatal(err)
	}
	checkErr(t, "DeleteQuota of none", st.DeleteQuota(ctx, admin, "web/"), errdef.ErrNotFound)
	evs := checkEventCount(t, m, 4)
	checkEvent(t, evs[2], quota.ActionQuotaSet, "quota:web/", admin, map[string]any{"prefix": "web/", "maxBytes": float64(10), "maxArtifacts": float64(3)})
	checkEvent(t, evs[3], quota.ActionQuotaDeleted, "quota:web/", admin, map[string]any{"prefix": "web/"})
}

func testQuotaUsage(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Quotas()
	mustCreate(t, m, artifact("payments/api", "1", "12345"))
	mustCreate(t, m, artifact("payments/api", "2", "1234567"))
	mustCreate(t, m, artifact("payments-legacy/api", "1", "123"))
	mustCreate(t, m, artifact("paymentz", "1", "1"))
	// Blobs linked into a repository count once each, whoever linked them.
	d := digest.FromString("layer")
	for _, by := range []string{publisher.Name, admin.Name} {
		if _, err := m.LinkBlob(ctx, publisher, registry.BlobLink{Repository: "payments/img", Digest: d, Size: 100, CreatedBy: by, CreatedAt: t0}, ""); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string]quota.Usage{
		"payments/": {Bytes: 5 + 7 + 100, Artifacts: 2},
		"payments":  {Bytes: 5 + 7 + 100 + 3, Artifacts: 3},
		"payment":   {Bytes: 5 + 7 + 100 + 3 + 1, Artifacts: 4},
		"web/":      {},
	} {
		if got, err := st.Usage(ctx, prefix); err != nil || got != want {
			t.Errorf("Usage(%q) = %+v, %v; want %+v", prefix, got, err, want)
		}
	}
}

// within is the check of a push of one version of name, size bytes.
func within(name string, size int64) func(quota.Reader) error {
	return func(r quota.Reader) error { return quota.Check(context.Background(), r, name, size, 1) }
}

func testQuotaInsertWithin(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Quotas()
	if _, err := st.PutQuota(ctx, admin, quota.Quota{Prefix: "payments/", MaxBytes: 10, MaxArtifacts: 2, UpdatedBy: admin.Name}); err != nil {
		t.Fatal(err)
	}
	insert := func(a catalog.Artifact) (catalog.Artifact, bool, error) {
		return m.InsertArtifactWithin(ctx, publisher, a, within(a.Name, a.Size))
	}
	if _, created, err := insert(artifact("payments/api", "1", "123456")); err != nil || !created {
		t.Fatalf("insert within the quota: %v %v", created, err)
	}
	before := len(allEvents(t, m))
	_, _, err := insert(artifact("payments/api", "2", "123456"))
	var qe *quota.ExceededError
	if !errors.As(err, &qe) || qe.Limit != "bytes" || qe.Used != 6 || qe.Requested != 6 {
		t.Fatalf("insert past maxBytes = %v; want an ExceededError of bytes, used 6, requested 6", err)
	}
	if _, err := m.GetArtifact(ctx, "payments/api", "2"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("a refused version was stored: %v", err)
	}
	checkEventCount(t, m, before)
	// The same version again is no new version: the check does not run.
	if _, created, err := insert(artifact("payments/api", "1", "123456")); err != nil || created {
		t.Errorf("insert of a stored version = %v, %v; want its answer, not a quota refusal", created, err)
	}
	if _, created, err := insert(artifact("payments/api", "2", "1234")); err != nil || !created {
		t.Fatalf("insert of exactly what is left: %v %v", created, err)
	}
	if _, _, err := insert(artifact("payments/api", "3", "")); !errors.As(err, &qe) || qe.Limit != "artifacts" {
		t.Errorf("insert past maxArtifacts = %v; want an ExceededError of artifacts", err)
	}
}

func testQuotaConcurrentInserts(t *testing.T, m store) {
	ctx, st := t.Context(), m.meta.Quotas()
	const limit, writers = 3, 8
	if _, err := st.PutQuota(ctx, admin, quota.Quota{Prefix: "race/", MaxArtifacts: limit, UpdatedBy: admin.Name}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			// Two names under one prefix: the name's lock alone would not
			// keep them apart.
			a := artifact(fmt.Sprintf("race/app%d", i%2), fmt.Sprint(i), fmt.Sprint("bytes ", i))
			_, _, errs[i] = m.InsertArtifactWithin(ctx, publisher, a, within(a.Name, a.Size))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, quota.ErrQuotaExceeded):
			t.Errorf("insert: %v", err)
		}
	}
	used, err := st.Usage(ctx, "race/")
	if err != nil || ok != limit || used.Artifacts != limit {
		t.Fatalf("%d of %d inserts passed, %d stored (%v); want %d", ok, writers, used.Artifacts, err, limit)
	}
}
