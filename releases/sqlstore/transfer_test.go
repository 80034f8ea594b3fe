package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"golang.org/x/mod/sumdb/tlog"
)

// source is an embedded DML's SQLite file after a full lifecycle.
type source struct {
	path    string
	lc      testserver.Lifecycle
	release lifecycle.Release
	// tables are every table of its schema but schema_migrations, read
	// from sqlite_master, not from the code under test.
	tables []string
}

// lifecycleSource runs a server on SQLite through testserver.FullLifecycle
// (pushes, evidence, trust, a release through its gates and sealing,
// deployments, tokens), plus a refused request (the access log) and a
// revoked token, and stops it. The events sequence is moved past the last
// event, as a rolled-back change leaves it: the target must not hand that
// seq out again.
func lifecycleSource(t *testing.T) source {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := testserver.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := source{path: filepath.Join(dir, "dml.db"), lc: testserver.FullLifecycle(t, srv.DML)}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	admin, err := srv.DML.Access.Authenticate(ctx, testserver.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	spare, err := srv.DML.Access.IssueToken(ctx, admin, access.TokenRequest{Name: "spare", Roles: []access.Role{access.RoleAuditor}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DML.Access.RevokeToken(ctx, admin, spare.Token.ID); err != nil {
		t.Fatal(err)
	}
	s.lc.Tokens["spare (revoked)"] = spare.Secret
	if s.release, err = srv.DML.Releases.Release(ctx, s.lc.Release); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	db := rawSQLite(t, s.path)
	exec(t, db, `UPDATE sqlite_sequence SET seq = seq + 5 WHERE name = 'events'`)
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		s.tables = append(s.tables, name)
	}
	// What the test relies on being there to copy.
	for _, table := range []string{"artifacts", "tokens", "events", "trust_keys", "trust_policies", "evidence", "evidence_claims",
		"releases", "release_artifacts", "audit_records", "audit_hashes", "access_log"} {
		if n := count(t, db, table); n == 0 {
			t.Fatalf("the source has no %s", table)
		}
	}
	return s
}

func rawSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, db *sql.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func maxSeq(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(`SELECT MAX(seq) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func openExisting(t *testing.T, database string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenExisting(context.Background(), database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// service is the domain over db, with blobs in a directory of its own.
func service(t *testing.T, db *sqlstore.DB) *releases.DML {
	t.Helper()
	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	signer, logKey := testkeys.Keys(t)
	svc, err := releases.New(releases.Config{Metadata: db, Blobs: store.New(b), Signer: signer, LogKey: logKey, LogOrigin: testkeys.LogOrigin})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func auditRoot(t *testing.T, db *sqlstore.DB) (int64, tlog.Hash) {
	t.Helper()
	ctx := context.Background()
	n, err := db.Audit().AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, err := tlog.TreeHash(n, db.Audit().AuditHashes(ctx))
	if err != nil {
		t.Fatal(err)
	}
	return n, root
}

// TestMigrateMetadata copies an embedded DML's metadata into a new
// database of each dialect: every table of the schema is copied, with
// the same rows (counted on each side behind the store's back); the audit
// log has the same size and root hash; the tokens authenticate as the
// same principals, the revoked one stays refused; the release reads back
// equal; the copy copies back into a new SQLite file with the same rows;
// and the next change continues the same log and the events' sequence
// from where the source's stood.
func TestMigrateMetadata(t *testing.T) {
	s := lifecycleSource(t)
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		ctx := context.Background()
		src := openExisting(t, "sqlite:"+s.path)
		dst := storage(t)(t)
		srcSQL, dstSQL := rawSQLite(t, s.path), sqlstore.SQLOf(dst)
		var progressed []string
		rep, err := sqlstore.CopyMetadata(ctx, src, dst, func(c sqlstore.TableCopy) { progressed = append(progressed, c.Table) })
		if err != nil {
			t.Fatal(err)
		}

		var copied []string
		for _, c := range rep.Tables {
			copied = append(copied, c.Table)
			if want := count(t, srcSQL, c.Table); c.Rows != want {
				t.Errorf("%s: report says %d rows; the source has %d", c.Table, c.Rows, want)
			}
			if got, want := count(t, dstSQL, c.Table), count(t, srcSQL, c.Table); got != want {
				t.Errorf("%s: %d rows on the target; %d on the source", c.Table, got, want)
			}
		}
		if !slices.Equal(progressed, copied) {
			t.Errorf("progress reported %v; the report has %v", progressed, copied)
		}
		if slices.Sort(copied); !slices.Equal(copied, s.tables) {
			t.Errorf("copied tables %v; the schema has %v", copied, s.tables)
		}
		// Referenced tables first: the target checks foreign keys row by row.
		for _, fk := range [][2]string{{"events", "audit_records"}, {"artifacts", "evidence"}, {"releases", "release_artifacts"}, {"oci_manifests", "oci_tags"}} {
			if slices.Index(progressed, fk[0]) > slices.Index(progressed, fk[1]) {
				t.Errorf("copy order %v puts %s before %s, which it references", progressed, fk[1], fk[0])
			}
		}

		srcSize, srcRoot := auditRoot(t, src)
		dstSize, dstRoot := auditRoot(t, dst)
		if srcSize == 0 || dstSize != srcSize || dstRoot != srcRoot || rep.AuditSize != srcSize || rep.AuditRoot != srcRoot {
			t.Fatalf("audit log: %d records, root %s on the source; %d, %s on the target; %d, %s reported",
				srcSize, srcRoot, dstSize, dstRoot, rep.AuditSize, rep.AuditRoot)
		}

		// And back, into a new SQLite file: the same rows, the same log.
		back, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "back.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		repBack, err := sqlstore.CopyMetadata(ctx, dst, back, nil)
		if err != nil {
			t.Fatalf("copy back into SQLite: %v", err)
		}
		if !reflect.DeepEqual(repBack, rep) {
			t.Errorf("copied back: %+v; the first copy: %+v", repBack, rep)
		}

		svc := service(t, dst)
		for name, secret := range s.lc.Tokens {
			p, err := svc.Access.Authenticate(ctx, secret)
			if strings.HasSuffix(name, "(revoked)") {
				if !errors.Is(err, errdef.ErrUnauthorized) && strings.Contains(err.Error(), "revoked") {
					t.Errorf("revoked token after the copy: %v; want it refused", err)
				}
				continue
			}
			if err != nil || p.Name != name {
				t.Errorf("token of %s after the copy: %+v, %v", name, p, err)
			}
		}
		got, err := svc.Releases.Release(ctx, s.lc.Release)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s.release) {
			t.Errorf("release after the copy:\n%+v\nwant\n%+v", got, s.release)
		}

		var seqBefore int64
		if err := srcSQL.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`).Scan(&seqBefore); err != nil {
			t.Fatal(err)
		}
		admin, err := svc.Access.Authenticate(ctx, testserver.AdminToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Access.IssueToken(ctx, admin, access.TokenRequest{Name: "after", Roles: []access.Role{access.RoleAuditor}}); err != nil {
			t.Fatal(err)
		}
		if got := maxSeq(t, dstSQL); got != seqBefore+1 {
			t.Errorf("the first event after the copy has seq %d; want %d, after the source's sequence (%d)", got, seqBefore+1, seqBefore)
		}
		if n, _ := auditRoot(t, dst); n != srcSize+1 {
			t.Errorf("audit log after one more change: %d records; want %d", n, srcSize+1)
		}
	})
}

// TestMigrateMetadataRefusesNonEmptyTarget: a target a dml has already
// served from holds a history of its own; the copy refuses it, naming
// what it holds, and changes nothing.
func TestMigrateMetadataRefusesNonEmptyTarget(t *testing.T) {
	s := lifecycleSource(t)
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		ctx := context.Background()
		dst := storage(t)(t)
		if _, err := service(t, dst).Access.BootstrapAdmin(ctx, "another-servers-admin-token"); err != nil {
			t.Fatal(err)
		}
		_, err := sqlstore.CopyMetadata(ctx, openExisting(t, "sqlite:"+s.path), dst, nil)
		if !errors.Is(err, sqlstore.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "tokens (1 rows)") {
			t.Fatalf("copy into a target with a token: %v; want ErrTargetNotEmpty naming tokens", err)
		}
		dstSQL := sqlstore.SQLOf(dst)
		for _, table := range s.tables {
			want := int64(0)
			if table == "tokens" || table == "events" || table == "audit_records" {
				want = 1
			}
			if n := count(t, dstSQL, table); n != want && table != "audit_hashes" {
				t.Errorf("%s: %d rows after the refusal; want %d", table, n, want)
			}
		}
	})
}

// TestMigrateMetadataFailureLeavesTargetEmpty stops copies half-way —
// cancelled after three tables, and (PostgreSQL) a row the target refuses
// in a table copied late — and finds the target as empty as before: the
// copy is one transaction. A copy run again then succeeds.
func TestMigrateMetadataFailureLeavesTargetEmpty(t *testing.T) {
	s := lifecycleSource(t)
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		dst := storage(t)(t)
		empty := func(t *testing.T) {
			t.Helper()
			for _, table := range s.tables {
				if n := count(t, sqlstore.SQLOf(dst), table); n != 0 {
					t.Errorf("%s: %d rows after a failed copy; want none", table, n)
				}
			}
		}

		t.Run("cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tables := 0
			_, err := sqlstore.CopyMetadata(ctx, openExisting(t, "sqlite:"+s.path), dst, func(sqlstore.TableCopy) {
				if tables++; tables == 3 {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled copy: %v; want context.Canceled", err)
			}
			empty(t)
		})

		if strings.HasSuffix(t.Name(), "/postgres") {
			t.Run("a row the target refuses", func(t *testing.T) {
				// PostgreSQL's TEXT holds no NUL; SQLite's does. trust_keys
				// is copied after a dozen other tables.
				bad := filepath.Join(t.TempDir(), "dml.db")
				copyFile(t, s.path, bad)
				exec(t, rawSQLite(t, bad), `INSERT INTO trust_keys (id, public_key_pem, algorithm, comment, created_by, created_at)
					VALUES ('zz-bad', 'pem', 'ecdsa-p256', ?, 'admin', 0)`, "a\x00b")
				var copied []string
				_, err := sqlstore.CopyMetadata(context.Background(), openExisting(t, "sqlite:"+bad), dst, func(c sqlstore.TableCopy) {
					copied = append(copied, c.Table)
				})
				if err == nil || !strings.Contains(err.Error(), "trust_keys") || len(copied) < 10 {
					t.Fatalf("copy with a NUL in a trust key's comment: %v after %v; want a failure in trust_keys, late", err, copied)
				}
				empty(t)
			})
		}

		if _, err := sqlstore.CopyMetadata(context.Background(), openExisting(t, "sqlite:"+s.path), dst, nil); err != nil {
			t.Fatalf("copy after the failures: %v", err)
		}
		if n := count(t, sqlstore.SQLOf(dst), "events"); n != count(t, rawSQLite(t, s.path), "events") {
			t.Errorf("events after the copy: %d", n)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	// The source is closed (no WAL left to fold in).
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateMetadataSchemaVersion: a source at another schema version
// than this dml's — older (a migration missing) or newer — is refused
// before anything is written, and it is not migrated by being opened.
func TestMigrateMetadataSchemaVersion(t *testing.T) {
	for _, tc := range []struct{ name, change string }{
		{"older", `DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`},
		{"newer", `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "src.db")
			db, err := sqlstore.OpenSQLite(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			raw := rawSQLite(t, path)
			exec(t, raw, tc.change)
			before := count(t, raw, "schema_migrations")
			dst, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "dst.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			_, err = sqlstore.CopyMetadata(ctx, openExisting(t, "sqlite:"+path), dst, nil)
			if !errors.Is(err, sqlstore.ErrSchemaVersion) {
				t.Fatalf("copy from a source at another schema version: %v; want ErrSchemaVersion", err)
			}
			if after := count(t, raw, "schema_migrations"); after != before {
				t.Errorf("the source has %d migrations after the refusal; %d before", after, before)
			}
		})
	}
}

// TestOpenExisting: a SQLite file that is not there is an error, not a
// new database; a PostgreSQL URL's password is in no error.
func TestOpenExisting(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "nope.db")
	if db, err := sqlstore.OpenExisting(ctx, "sqlite:"+missing); err == nil {
		db.Close()
		t.Fatal("OpenExisting opened a file that is not there")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenExisting left %s behind: %v", missing, err)
	}
	const secret = "s3cr3t-Pa55"
	if db, err := sqlstore.OpenExisting(ctx, "postgres://dml:"+secret+"@127.0.0.1:1/dml?connect_timeout=5"); err == nil {
		db.Close()
		t.Fatal("OpenExisting reached a server on port 1")
	} else if strings.Contains(err.Error(), secret) || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("OpenExisting of an unreachable server: %v; want ErrUnavailable, without the password", err)
	}
}
