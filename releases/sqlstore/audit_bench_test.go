package sqlstore

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
)

// BenchmarkAuditAppend is one audited write on SQLite: an artifact
// version created and its event appended to the audit log with the
// Merkle hashes it completes, in one transaction (commit included). It
// runs on a log that already holds 0 and 10,000 records: appending reads
// at most log₂ n earlier hashes, so the two should cost nearly the same.
func BenchmarkAuditAppend(b *testing.B) {
	for _, existing := range []int{0, 10_000} {
		b.Run(fmt.Sprintf("log=%d", existing), func(b *testing.B) {
			ctx := b.Context()
			db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "dml.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			actor := access.Actor{TokenID: "tok_pipeline", Name: "pipeline"}
			n := 0
			create := func() {
				n++
				if _, _, err := catalog.CreateArtifact(ctx, db.Catalog(), actor, testArtifact(fmt.Sprintf("bench/app-%d", n))); err != nil {
					b.Fatal(err)
				}
			}
			for range existing {
				create()
			}
			size, err := db.Audit().AuditSize(ctx)
			if err != nil || size < int64(existing) {
				b.Fatalf("audit log size %d (%v), want at least %d", size, err, existing)
			}
			b.ResetTimer()
			for b.Loop() {
				create()
			}
		})
	}
}
