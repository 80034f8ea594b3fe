package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/opencontainers/go-digest"
	"golang.org/x/mod/sumdb/tlog"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dml.db")
	db, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// just builds a release that reads nothing in its transaction.
func just(r lifecycle.Release) func(lifecycle.ReleaseTx) (lifecycle.Release, error) {
	return func(lifecycle.ReleaseTx) (lifecycle.Release, error) { return r, nil }
}

func testArtifact(name string) catalog.Artifact {
	return catalog.Artifact{Name: name, Version: "1.0.0", Digest: digest.FromString(name), Size: int64(len(name))}
}

// Pragmas are per connection; check two connections held at once, so the
// second is not the first one reused from the pool.
func TestOpenSQLitePragmas(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	for i := range 2 {
		conn, err := db.sql.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, p := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"busy_timeout", "10000"},
			{"foreign_keys", "1"},
			{"synchronous", "1"}, // NORMAL
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", p.pragma, err)
			}
			if got != p.want {
				t.Errorf("connection %d: PRAGMA %s = %s; want %s", i, p.pragma, got, p.want)
			}
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name string
		open func(ctx context.Context) (*DB, error)
	}{
		{"empty DSN", func(ctx context.Context) (*DB, error) { return Open(ctx, "") }},
		{"malformed PostgreSQL URL", func(ctx context.Context) (*DB, error) { return Open(ctx, "postgres://dml:pw@localhost:port/dml") }},
		{"PostgreSQL URL with an unknown parameter", func(ctx context.Context) (*DB, error) {
			return OpenPostgres(ctx, "postgres://dml@localhost/dml?sslmode=sometimes")
		}},
		{"not a PostgreSQL URL", func(ctx context.Context) (*DB, error) { return OpenPostgres(ctx, "mysql://dml@localhost/dml") }},
		{"database of no known kind", func(ctx context.Context) (*DB, error) { return OpenDatabase(ctx, "dml.db") }},
		{"sqlite: without a path", func(ctx context.Context) (*DB, error) { return OpenDatabase(ctx, "sqlite:") }},
		{"empty path", func(ctx context.Context) (*DB, error) { return OpenSQLite(ctx, "") }},
		{"path with '?'", func(ctx context.Context) (*DB, error) {
			return OpenSQLite(ctx, filepath.Join(t.TempDir(), "dml.db?mode=ro"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := tc.open(t.Context())
			if !errors.Is(err, errdef.ErrInvalidInput) {
				t.Errorf("err = %v; want ErrInvalidInput", err)
			}
			if db != nil {
				db.Close()
				t.Error("got a DB along with the error")
			}
		})
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d testDialect) {
		name := d.newStorage(t)
		// Reopening twice must neither fail on existing tables nor re-run a
		// migration.
		for range 3 {
			d.openT(t, name).Close()
		}
		checkMigrations(t, d.openT(t, name))
	})
}

// checkMigrations checks that db's schema_migrations lists every
// migration of its dialect, each once.
func checkMigrations(t *testing.T, db *DB) {
	t.Helper()
	ms := migrationsOf(t, db.dialect)
	rows, err := db.sql.QueryContext(t.Context(), `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v int64
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(v, " ", name))
	}
	var want []string
	for _, m := range ms {
		want = append(want, fmt.Sprint(m.version, " ", m.name))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("schema_migrations = %v; want %v", got, want)
	}
}

// migrationsOf returns the migrations of d.
func migrationsOf(t *testing.T, d dialect) []migration {
	t.Helper()
	fsys, err := d.migrationFS()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestDialectsMirrorMigrations: every dialect has the same migrations,
// version for version (they mean the same change), and a Go step runs in
// all of them.
func TestDialectsMirrorMigrations(t *testing.T) {
	versions := func(d dialect) []string {
		var out []string
		for _, m := range migrationsOf(t, d) {
			out = append(out, m.name)
		}
		return out
	}
	if s, p := versions(sqliteDialect), versions(postgresDialect); !slices.Equal(s, p) {
		t.Errorf("migrations differ:\n  sqlite   %q\n  postgres %q", s, p)
	}
}

// TestConcurrentOpensMigrateOnce is replicas starting together on a new
// database: every one of them opens it, and each migration is applied
// once (on PostgreSQL, under the migration lock; without it the racing
// CREATE TABLEs fail).
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d testDialect) {
		name := d.newStorage(t)
		const replicas = 6
		dbs := make([]*DB, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range replicas {
			wg.Go(func() {
				<-start
				dbs[i], errs[i] = d.open(t.Context(), name)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
				continue
			}
			defer dbs[i].Close()
		}
		if t.Failed() {
			return
		}
		checkMigrations(t, dbs[0])
		// Each works on the one schema: the audit log they append to is one.
		runWriters(t, 3*replicas, func(i int) *DB { return dbs[i%replicas] })
		checkAuditRows(t, dbs[0], 3*replicas)
	})
}

// TestMigrateRefusesNewerSchema is an older dml started on a database a
// newer one migrated (an upgrade rolled back, one replica left behind):
// it refuses to start, saying why, and writes nothing.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d testDialect) {
		name := d.newStorage(t)
		db := d.openT(t, name)
		if _, err := db.sql.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
			t.Fatal(err)
		}
		if _, _, err := catalog.CreateArtifact(t.Context(), db.Catalog(), access.Actor{Name: "new"}, testArtifact("app")); err != nil {
			t.Fatal(err)
		}
		db.Close()
		old, err := d.open(t.Context(), name)
		if err == nil {
			old.Close()
			t.Fatal("open of a newer schema succeeded; want a refusal")
		}
		if msg := err.Error(); !strings.Contains(msg, "schema version 9999 is newer than this program's") {
			t.Errorf("open of a newer schema: %v; want it to name both versions", err)
		}
		// Nothing was written: the schema and the one event are as they were.
		raw, err := sql.Open(d.driver, name)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var migrations, events int
		if err := raw.QueryRowContext(t.Context(), `SELECT (SELECT COUNT(*) FROM schema_migrations), (SELECT COUNT(*) FROM events)`).Scan(&migrations, &events); err != nil {
			t.Fatal(err)
		}
		if want := len(migrationsOf(t, d.dialect)) + 1; migrations != want || events != 1 {
			t.Errorf("after the refusal: %d migrations and %d events; want %d (with the future one) and 1", migrations, events, want)
		}
	})
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int64
		wantErr string
	}{
		{"numeric order", fstest.MapFS{"10_c.sql": file("c"), "2_b.sql": file("b"), "0001_a.sql": file("a")}, []int64{1, 2, 10}, ""},
		{"other files ignored", fstest.MapFS{"0001_a.sql": file("a"), "README.md": file("x")}, nil, "NNNN_description.sql"},
		{"unnumbered", fstest.MapFS{"init.sql": file("a")}, nil, "NNNN_description.sql"},
		{"version zero", fstest.MapFS{"0000_a.sql": file("a")}, nil, "bad version"},
		{"duplicate version", fstest.MapFS{"0001_a.sql": file("a"), "1_b.sql": file("b")}, nil, "share version 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.fsys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, m := range ms {
				got = append(got, m.version)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("versions = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	numbered := dialect{numbered: true}
	tests := []struct {
		d    dialect
		q    string
		want string
	}{
		{sqliteDialect, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = ? AND c = ?"},
		{numbered, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{numbered, "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"},
		{numbered, "SELECT 1", "SELECT 1"},
	}
	for _, tc := range tests {
		if got := tc.d.rebind(tc.q); got != tc.want {
			t.Errorf("rebind(%q) = %q; want %q", tc.q, got, tc.want)
		}
	}
}

// TestChangeAndEventShareATransaction makes recording the event fail and
// checks that the change did not happen either, nor the event's audit
// record or hashes.
func TestChangeAndEventShareATransaction(t *testing.T) {
	forEachDialect(t, testChangeAndEventShareATransaction)
}

func testChangeAndEventShareATransaction(t *testing.T, d testDialect) {
	db := d.handles(t, 1)[0]
	ctx := t.Context()
	actor := access.Actor{TokenID: "tok_a", Name: "a"}
	tok := access.Token{ID: "tok_1", Name: "one", Roles: []access.Role{access.RoleAdmin}}
	hash := make([]byte, 32)
	live := access.Token{ID: "tok_live", Name: "live"}
	liveHash := []byte(strings.Repeat("l", 32))
	if err := db.Tokens().CreateToken(ctx, actor, live, liveHash); err != nil {
		t.Fatal(err)
	}
	liveKey := trust.TrustKey{ID: "live", PublicKeyPEM: "pem", Algorithm: "ed25519"}
	if err := db.Trust().AddTrustKey(ctx, actor, liveKey); err != nil {
		t.Fatal(err)
	}
	quarantined, _, err := catalog.CreateArtifact(ctx, db.Catalog(), actor, testArtifact("quarantined"))
	if err != nil {
		t.Fatal(err)
	}
	sig := catalog.Evidence{Digest: digest.FromString("sig"), ArtifactName: quarantined.Name, ArtifactVersion: quarantined.Version,
		ArtifactDigest: quarantined.Digest, Kind: catalog.EvidenceSignature, Format: "signature", KeyID: liveKey.ID}
	liveRelease, err := db.Releases().CreateRelease(ctx, actor, just(lifecycle.Release{Name: "live", State: lifecycle.ReleasePlanning,
		Artifacts: []lifecycle.ReleaseArtifact{{Name: quarantined.Name, Version: quarantined.Version, Digest: quarantined.Digest}}}))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		change    func() error
		unchanged func() error
	}{
		{"CreateArtifact", func() error {
			_, _, err := catalog.CreateArtifact(ctx, db.Catalog(), actor, testArtifact("app"))
			return err
		}, func() error {
			if _, err := db.Catalog().GetArtifact(ctx, "app", "1.0.0"); !errors.Is(err, errdef.ErrNotFound) {
				return fmt.Errorf("artifact stored without its event (%v)", err)
			}
			return nil
		}},
		{"CreateToken", func() error {
			return db.Tokens().CreateToken(ctx, actor, tok, hash)
		}, func() error {
			if _, err := db.Tokens().TokenByHash(ctx, hash); !errors.Is(err, errdef.ErrNotFound) {
				return fmt.Errorf("token stored without its event (%v)", err)
			}
			return nil
		}},
		{"RevokeToken", func() error {
			return db.Tokens().RevokeToken(ctx, actor, live.ID)
		}, func() error {
			got, err := db.Tokens().TokenByHash(ctx, liveHash)
			if err != nil || got.RevokedAt != nil {
				return fmt.Errorf("token revoked without its event (%+v, %v)", got, err)
			}
			return nil
		}},
		{"AddTrustKey", func() error {
			return db.Trust().AddTrustKey(ctx, actor, trust.TrustKey{ID: "new", PublicKeyPEM: "pem", Algorithm: "ed25519"})
		}, func() error {
			if keys, err := db.Trust().TrustKeys(ctx); err != nil || len(keys) != 1 {
				return fmt.Errorf("trust key stored without its event (%+v, %v)", keys, err)
			}
			return nil
		}},
		{"RevokeTrustKey", func() error {
			return db.Trust().RevokeTrustKey(ctx, actor, liveKey.ID)
		}, func() error {
			if keys, err := db.Trust().TrustKeys(ctx); err != nil || len(keys) != 1 || keys[0].RevokedAt != nil || keys[0].RevokedBy != "" {
				return fmt.Errorf("trust key revoked without its event (%+v, %v)", keys, err)
			}
			return nil
		}},
		{"SetTrustPolicy", func() error {
			_, err := db.Trust().SetTrustPolicy(ctx, actor, []byte(`{}`))
			return err
		}, func() error {
			if p, err := db.Trust().TrustPolicy(ctx); !errors.Is(err, errdef.ErrNotFound) {
				return fmt.Errorf("policy stored without its event (%+v, %v)", p, err)
			}
			return nil
		}},
		{"AddEvidence", func() error {
			_, err := catalog.AddEvidence(ctx, db.Catalog(), actor, sig)
			return err
		}, func() error {
			if list, err := db.Catalog().ListEvidence(ctx, sig.ArtifactName, sig.ArtifactVersion); err != nil || len(list) != 0 {
				return fmt.Errorf("evidence stored without its event (%+v, %v)", list, err)
			}
			return nil
		}},
		{"SetAdmission", func() error {
			_, err := catalog.SetAdmission(ctx, db.Catalog(), actor, quarantined.Name, quarantined.Version, catalog.StateQuarantined,
				catalog.Admission{State: catalog.StateAdmitted})
			return err
		}, func() error {
			got, err := db.Catalog().GetArtifact(ctx, quarantined.Name, quarantined.Version)
			if err != nil || got.State != catalog.StateQuarantined || got.Admission != nil {
				return fmt.Errorf("admission stored without its event (%+v, %v)", got, err)
			}
			return nil
		}},
		{"CreateRelease", func() error {
			_, err := db.Releases().CreateRelease(ctx, actor, just(lifecycle.Release{Name: "new", State: lifecycle.ReleasePlanning}))
			return err
		}, func() error {
			if r, err := db.Releases().GetRelease(ctx, "new"); !errors.Is(err, errdef.ErrNotFound) {
				return fmt.Errorf("release stored without its event (%+v, %v)", r, err)
			}
			return nil
		}},
		{"UpdateRelease", func() error {
			r := liveRelease
			r.State, r.Artifacts = lifecycle.ReleaseCancelled, nil
			_, err := lifecycle.UpdateRelease(ctx, db.Releases(), actor, r, lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseCancelled})
			return err
		}, func() error {
			r, err := db.Releases().GetRelease(ctx, liveRelease.Name)
			if err != nil || r.Revision != 1 || r.State != lifecycle.ReleasePlanning {
				return fmt.Errorf("release updated without its event (%+v, %v)", r, err)
			}
			// The artifact index is rewritten in the same transaction.
			if list, err := db.Releases().ReleasesContaining(ctx, quarantined.Name, quarantined.Version); err != nil || len(list) != 1 {
				return fmt.Errorf("artifact index changed without the event (%+v, %v)", list, err)
			}
			return nil
		}},
		{"RetireArtifact", func() error {
			_, err := db.Catalog().RetireArtifact(ctx, actor, quarantined.Name, quarantined.Version)
			return err
		}, func() error {
			got, err := db.Catalog().GetArtifact(ctx, quarantined.Name, quarantined.Version)
			if err != nil || got.RetiredAt != nil || got.RetiredBy != "" {
				return fmt.Errorf("artifact retired without its event (%+v, %v)", got, err)
			}
			return nil
		}},
	}
	// Recording fails at each of its writes in turn: the event, its audit
	// record, the record's hashes.
	for _, table := range []string{"events", "audit_records", "audit_hashes"} {
		remove := injectFailure(t, db, table)
		for _, tc := range tests {
			t.Run(table+"/"+tc.name, func(t *testing.T) {
				if err := tc.change(); err == nil || !strings.Contains(err.Error(), "injected failure") {
					t.Fatalf("err = %v; want the injected failure", err)
				}
				if err := tc.unchanged(); err != nil {
					t.Error(err)
				}
			})
		}
		remove()
	}
	if n, err := db.Tokens().CountTokens(ctx); err != nil || n != 1 {
		t.Errorf("CountTokens = %d, %v; want 1", n, err)
	}
	if evs, err := db.Audit().Events(ctx, 0, 0); err != nil || len(evs) != 4 {
		t.Errorf("%d events, %v; want the 4 of the setup", len(evs), err)
	}
	// Neither a record nor a hash of a failed change is left behind.
	checkAuditRows(t, db, 4)
}

// injectFailure makes every insert into table fail with "injected
// failure" until remove is called.
func injectFailure(t *testing.T, db *DB, table string) (remove func()) {
	t.Helper()
	create := []string{`CREATE TRIGGER inject_failure BEFORE INSERT ON ` + table + `
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`}
	drop := `DROP TRIGGER inject_failure`
	if db.dialect.name == postgresDialect.name {
		create = []string{
			`CREATE OR REPLACE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
			`CREATE TRIGGER inject_failure BEFORE INSERT ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION inject_failure()`,
		}
		drop += ` ON ` + table
	}
	for _, stmt := range create {
		if _, err := db.sql.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if _, err := db.sql.ExecContext(t.Context(), drop); err != nil {
			t.Fatal(err)
		}
	}
}

// checkAuditRows counts the audit log's rows directly: size records and
// exactly the stored hashes of a tree of size records.
func checkAuditRows(t *testing.T, db *DB, size int64) {
	t.Helper()
	var records, hashes int64
	err := db.sql.QueryRowContext(t.Context(), `SELECT (SELECT COUNT(*) FROM audit_records), (SELECT COUNT(*) FROM audit_hashes)`).Scan(&records, &hashes)
	if err != nil {
		t.Fatal(err)
	}
	if records != size || hashes != tlog.StoredHashCount(size) {
		t.Errorf("%d audit records and %d hashes; want %d and %d", records, hashes, size, tlog.StoredHashCount(size))
	}
	if n, err := db.Audit().AuditSize(t.Context()); err != nil || n != size {
		t.Errorf("AuditSize = %d, %v; want %d", n, err, size)
	}
}

// TestMigrateFromVersion1 opens a database written before migration 0002
// existed: it must gain the new tables and columns and keep its rows, with
// no admission decision on the artifacts it already had and none retired.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "dml.db")
	writeOldDatabase(t, path, 1,
		`INSERT INTO artifacts VALUES ('app', '1.0.0', '`+digest.FromString("app").String()+`', 3, 'application/gzip', 'admitted', 'ci', 0)`)

	db, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite on a version 1 database: %v", err)
	}
	defer db.Close()
	a, err := db.Catalog().GetArtifact(ctx, "app", "1.0.0")
	if err != nil || a.State != catalog.StateAdmitted || a.Admission != nil || a.RetiredAt != nil || a.RetiredBy != "" {
		t.Fatalf("GetArtifact = %+v, %v; want the old row, admitted, with no decision, not retired", a, err)
	}
	a, err = catalog.SetAdmission(ctx, db.Catalog(), access.Actor{Name: "a"}, "app", "1.0.0", catalog.StateAdmitted, catalog.Admission{State: catalog.StateAdmitted})
	if err != nil || a.Admission == nil {
		t.Errorf("SetAdmission on the old row = %+v, %v; want a decision stored", a, err)
	}
	a, err = db.Catalog().RetireArtifact(ctx, access.Actor{Name: "a"}, "app", "1.0.0")
	if err != nil || a.RetiredAt == nil || a.RetiredBy != "a" {
		t.Errorf("RetireArtifact on the old row = %+v, %v; want it retired by a", a, err)
	}
}

// TestPolicyVersionsAcrossHandles is two processes setting the policy at
// once: the version is read and written under SQLite's write lock (BEGIN
// IMMEDIATE) or PostgreSQL's policy lock, not only under one handle's
// in-process queue.
func TestPolicyVersionsAcrossHandles(t *testing.T) {
	forEachDialect(t, testPolicyVersionsAcrossHandles)
}

func testPolicyVersionsAcrossHandles(t *testing.T, d testDialect) {
	handles := d.handles(t, 2)
	const n = 40
	versions := make([]int64, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			p, err := handles[i%2].Trust().SetTrustPolicy(t.Context(), access.Actor{Name: "w"}, []byte(fmt.Sprint(i)))
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
			versions[i] = p.Version
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(versions)
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("versions %v; want 1 to %d, each once", versions, n)
		}
	}
}

func TestEventsAreAppendOnly(t *testing.T) {
	forEachDialect(t, testEventsAreAppendOnly)
}

func testEventsAreAppendOnly(t *testing.T, d testDialect) {
	db := d.handles(t, 1)[0]
	ctx := t.Context()
	if _, _, err := catalog.CreateArtifact(ctx, db.Catalog(), access.Actor{Name: "a"}, testArtifact("app")); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE events SET subject = 'forged'`,
		`DELETE FROM events`,
	} {
		if _, err := db.sql.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v; want refused as append-only", stmt, err)
		}
	}
	evs, err := db.Audit().Events(ctx, 0, 0)
	if err != nil || len(evs) != 1 || evs[0].Subject != "app:1.0.0" {
		t.Errorf("events = %+v, %v; want the original one", evs, err)
	}
}

// TestWritersQueueInProcess opens the file with busy_timeout 0, so SQLite
// itself would fail any writer that finds the database locked: all of them
// succeeding shows the in-process queue, not SQLite's busy handler (or
// luck with timing), keeps concurrent writers apart.
func TestWritersQueueInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dml.db")
	db, err := Open(t.Context(), path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runWriters(t, 50, func(int) *DB { return db })
}

// TestTwoHandlesOneFile is two dml processes on one database (say the
// server and a maintenance command, or two replicas): each queues its own
// writers, and the database makes them wait for each other rather than
// fail — BEGIN IMMEDIATE plus the busy timeout on SQLite, the audit log's
// lock on PostgreSQL.
func TestTwoHandlesOneFile(t *testing.T) {
	forEachDialect(t, testTwoHandlesOneFile)
}

func testTwoHandlesOneFile(t *testing.T, d testDialect) {
	handles := d.handles(t, 2)
	runWriters(t, 50, func(i int) *DB { return handles[i%2] })
}

func runWriters(t *testing.T, n int, handle func(i int) *DB) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			_, _, errs[i] = catalog.CreateArtifact(t.Context(), handle(i).Catalog(), access.Actor{Name: "w"}, testArtifact(fmt.Sprintf("app-%02d", i)))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	evs, err := handle(0).Audit().Events(t.Context(), 0, 0)
	if err != nil || len(evs) != n {
		t.Errorf("%d events, %v; want %d", len(evs), err, n)
	}
}

// TestUpdateReleaseAcrossHandles is two processes updating one release
// from the same revision: the revision is read and compared under
// SQLite's write lock (BEGIN IMMEDIATE) or the release's row lock on
// PostgreSQL, so exactly one wins.
func TestUpdateReleaseAcrossHandles(t *testing.T) {
	forEachDialect(t, testUpdateReleaseAcrossHandles)
}

func testUpdateReleaseAcrossHandles(t *testing.T, d testDialect) {
	handles := d.handles(t, 2)
	a := handles[0]
	actor := access.Actor{Name: "w"}
	r, err := a.Releases().CreateRelease(t.Context(), actor, just(lifecycle.Release{Name: "r", State: lifecycle.ReleasePlanning}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = lifecycle.UpdateRelease(t.Context(), handles[i%2].Releases(), actor, r, lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errdef.ErrConflict):
			t.Errorf("writer %d: %v; want ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers updated revision 1; want exactly 1", won)
	}
	if evs, err := a.Audit().Events(t.Context(), 0, 0); err != nil || len(evs) != 2 {
		t.Errorf("%d events, %v; want 2", len(evs), err)
	}
}
