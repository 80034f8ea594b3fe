package sqlstore

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/catalog"
	"golang.org/x/mod/sumdb/tlog"
)

// writeOldDatabase creates the database file at path as a dml that knew
// migrations up to version would have: their SQL, their schema_migrations
// rows, then the rows stmts insert.
func writeOldDatabase(t *testing.T, path string, version int64, stmts ...string) {
	t.Helper()
	fsys, err := sqliteDialect.migrationFS()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	all := []string{`CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`}
	applied := 0
	for _, m := range ms {
		if m.version > version {
			break
		}
		all = append(all, m.sql, `INSERT INTO schema_migrations VALUES (`+strconv.FormatInt(m.version, 10)+`, '`+m.name+`', 0)`)
		applied++
	}
	if applied == 0 || ms[applied-1].version != version {
		t.Fatalf("no migration %d among %d", version, len(ms))
	}
	for _, stmt := range append(all, stmts...) {
		if _, err := old.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%.40s...: %v", stmt, err)
		}
	}
}

// auditLog reads the whole log and checks that the stored tree is the one
// auditlog.Tree rebuilds from the records; it returns the records and the
// root.
func auditLog(t *testing.T, db *DB) ([]audit.AuditEntry, tlog.Hash) {
	t.Helper()
	var (
		records []audit.AuditEntry
		tree    auditlog.Tree
	)
	err := db.Audit().AuditEntries(t.Context(), 0, 0, func(e audit.AuditEntry) error {
		records = append(records, e)
		_, err := tree.Append(e.Record)
		return err
	})
	if err != nil {
		t.Fatalf("AuditEntries: %v", err)
	}
	want, err := tree.Root(tree.Size())
	if err != nil {
		t.Fatal(err)
	}
	if tree.Size() == 0 {
		return records, want
	}
	root, err := tlog.TreeHash(tree.Size(), db.Audit().AuditHashes(t.Context()))
	if err != nil {
		t.Fatalf("TreeHash(%d): %v", tree.Size(), err)
	}
	if root != want {
		t.Errorf("stored root of %d records = %v; rebuilt from the records %v", tree.Size(), root, want)
	}
	checkAuditRows(t, db, tree.Size())
	return records, root
}

// TestAuditBackfill opens databases written before migration 0004: the
// events they hold become the first records of the log, oldest first, with
// dense indexes whatever the gaps in seq, exactly as if they had been
// logged when written.
func TestAuditBackfill(t *testing.T) {
	ctx := t.Context()
	t.Run("events before the log", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dml.db")
		// Seqs with gaps; details not compact, and none at all.
		writeOldDatabase(t, path, 3,
			`INSERT INTO events (seq, time, actor_token_id, actor_name, action, subject, details)
			 VALUES (3, 1700000000000000001, 'tok_ci', 'ci', 'artifact.pushed', 'app:1.0.0', '{ "digest" : "sha256:ab", "size": 3 }')`,
			`INSERT INTO events (seq, time, actor_token_id, actor_name, action, subject, details)
			 VALUES (4, 1700000001000000000, 'tok_a', 'alice', 'trust.key.revoked', 'ci', NULL)`,
			`INSERT INTO events (seq, time, actor_token_id, actor_name, action, subject, details)
			 VALUES (9, 1700000002000000000, 'tok_b', 'bob', 'release.plan.set', 'release:r', '{"note":"<b> & c"}')`,
		)
		db, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatalf("OpenSQLite on a version 3 database: %v", err)
		}
		defer db.Close()

		evs, err := db.Audit().Events(ctx, 0, 0)
		if err != nil || len(evs) != 3 {
			t.Fatalf("events = %d, %v; want the 3 written", len(evs), err)
		}
		records, root := auditLog(t, db)
		if len(records) != len(evs) {
			t.Fatalf("%d records; want one per event, %d", len(records), len(evs))
		}
		for i, e := range evs {
			want, err := auditlog.Encode(auditlog.Record{Index: int64(i), Time: e.Time, Actor: auditlog.Actor(e.Actor),
				Action: e.Action, Subject: e.Subject, Details: e.Details})
			if err != nil {
				t.Fatal(err)
			}
			if records[i].Index != int64(i) || !bytes.Equal(records[i].Record, want) {
				t.Errorf("record %d = %d %s; want %s", i, records[i].Index, records[i].Record, want)
			}
		}
		if got := eventSeqs(t, db); !slices.Equal(got, []int64{3, 4, 9}) {
			t.Errorf("records point at events %v; want [3 4 9]", got)
		}

		// The next change continues the log from where the backfill left it.
		if _, _, err := catalog.CreateArtifact(ctx, db.Catalog(), access.Actor{Name: "w"}, testArtifact("next")); err != nil {
			t.Fatal(err)
		}
		records, newRoot := auditLog(t, db)
		if len(records) != 4 || records[3].Index != 3 {
			t.Fatalf("after a change, %d records; want the 4th at index 3", len(records))
		}
		if got := eventSeqs(t, db); !slices.Equal(got, []int64{3, 4, 9, 10}) {
			t.Errorf("records point at events %v; want [3 4 9 10]", got)
		}
		proof, err := tlog.ProveTree(4, 3, db.Audit().AuditHashes(ctx))
		if err == nil {
			err = tlog.CheckTree(proof, 4, newRoot, 3, root)
		}
		if err != nil {
			t.Errorf("the log after the change does not extend the backfilled one: %v", err)
		}
	})

	t.Run("same log as written live", func(t *testing.T) {
		db, path := openTemp(t)
		actor := access.Actor{TokenID: "tok_a", Name: "a"}
		for _, name := range []string{"a", "b", "c", "d", "e"} {
			if _, _, err := catalog.CreateArtifact(ctx, db.Catalog(), actor, testArtifact(name)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Trust().SetTrustPolicy(ctx, actor, []byte("{\n  \"rules\": []\n}")); err != nil {
			t.Fatal(err)
		}
		live, liveRoot := auditLog(t, db)
		// Turn the file back into a version 3 database with the same events.
		for _, stmt := range []string{`DROP TABLE audit_hashes`, `DROP TABLE audit_records`, `DELETE FROM schema_migrations WHERE version = 4`} {
			if _, err := db.sql.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		db.Close()

		db, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		backfilled, root := auditLog(t, db)
		if !slices.EqualFunc(backfilled, live, func(a, b audit.AuditEntry) bool {
			return a.Index == b.Index && bytes.Equal(a.Record, b.Record)
		}) || root != liveRoot {
			t.Errorf("backfilled log (root %v) differs from the one written live (root %v)", root, liveRoot)
		}
	})

	t.Run("a failed backfill leaves version 3", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dml.db")
		writeOldDatabase(t, path, 3,
			`INSERT INTO events (time, actor_token_id, actor_name, action, subject, details) VALUES (0, 't', 'n', 'a', 's', '{"ok":1}')`,
			`INSERT INTO events (time, actor_token_id, actor_name, action, subject, details) VALUES (0, 't', 'n', 'a', 's', 'not json')`,
		)
		if db, err := OpenSQLite(ctx, path); err == nil || !strings.Contains(err.Error(), "0004") {
			if db != nil {
				db.Close()
			}
			t.Fatalf("OpenSQLite with an event that cannot be logged: %v; want migration 0004 to fail", err)
		}
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var version, tables int
		err = raw.QueryRowContext(ctx, `SELECT (SELECT MAX(version) FROM schema_migrations),
			(SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'audit_%')`).Scan(&version, &tables)
		if err != nil || version != 3 || tables != 0 {
			t.Errorf("after the failed migration: version %d, %d audit tables or indexes, %v; want version 3 and none", version, tables, err)
		}
	})
}

func eventSeqs(t *testing.T, db *DB) []int64 {
	t.Helper()
	rows, err := db.sql.QueryContext(t.Context(), `SELECT event_seq FROM audit_records ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			t.Fatal(err)
		}
		out = append(out, seq)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	forEachDialect(t, testAuditLogIsAppendOnly)
}

func testAuditLogIsAppendOnly(t *testing.T, d testDialect) {
	db := d.handles(t, 1)[0]
	ctx := t.Context()
	if _, _, err := catalog.CreateArtifact(ctx, db.Catalog(), access.Actor{Name: "a"}, testArtifact("app")); err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		`UPDATE audit_records SET subject = 'forged'`,
		`DELETE FROM audit_records`,
		`UPDATE audit_hashes SET hash = zeroblob(32)`,
		`DELETE FROM audit_hashes`,
	}
	if d.name == postgresDialect.name {
		stmts[2] = `UPDATE audit_hashes SET hash = decode(repeat('00', 32), 'hex')`
		// Row triggers do not see TRUNCATE; a statement trigger does.
		stmts = append(stmts, `TRUNCATE audit_hashes`)
	}
	for _, stmt := range stmts {
		if _, err := db.sql.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v; want refused as append-only", stmt, err)
		}
	}
	checkAuditRows(t, db, 1)
}
