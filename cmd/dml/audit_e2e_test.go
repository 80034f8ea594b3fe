package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/auditlog"
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite"
)

// auditEnv is an in-process server whose SQLite file the test can open
// behind the server's back, as an attacker with database access would.
type auditEnv struct {
	srv    *testserver.Server
	dbPath string
	admin  access.Principal
}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DML_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	srv, err := testserver.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	admin, err := srv.DML.Access.Authenticate(context.Background(), srv.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DML_SERVER", srv.URL)
	t.Setenv("DML_TOKEN", srv.AdminToken)
	return &auditEnv{srv: srv, dbPath: filepath.Join(dir, "dml.db"), admin: admin}
}

// grow records n changes (token issues) through the service.
func (e *auditEnv) grow(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%d-%d", time.Now().UnixNano(), i)
		if _, err := e.srv.DML.Access.IssueToken(context.Background(), e.admin, access.TokenRequest{Name: name, Roles: []access.Role{access.RolePublisher}}); err != nil {
			t.Fatal(err)
		}
	}
}

// db opens the server's database directly and drops the append-only
// triggers, as someone with a SQL shell could.
func (e *auditEnv) db(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, trg := range []string{"audit_records_no_update", "audit_records_no_delete", "audit_hashes_no_update", "audit_hashes_no_delete"} {
		if _, err := db.Exec("DROP TRIGGER IF EXISTS " + trg); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func sqlExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func record(t *testing.T, db *sql.DB, idx int64) string {
	t.Helper()
	var rec string
	if err := db.QueryRow(`SELECT record FROM audit_records WHERE idx = ?`, idx).Scan(&rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// rehash rebuilds audit_hashes from audit_records: what an attacker who
// rewrote records does so that the server signs the rewritten tree.
func rehash(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT record FROM audit_records ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	var tree auditlog.Tree
	for rows.Next() {
		var rec string
		if err := rows.Scan(&rec); err != nil {
			t.Fatal(err)
		}
		if _, err := tree.AppendHash(auditlog.LeafHash([]byte(rec))); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	sqlExec(t, db, `DELETE FROM audit_hashes`)
	n := tlog.StoredHashCount(tree.Size())
	for id := int64(0); id < n; id++ {
		hs, err := tree.ReadHashes([]int64{id})
		if err != nil {
			t.Fatal(err)
		}
		sqlExec(t, db, `INSERT INTO audit_hashes (id, hash) VALUES (?, ?)`, id, hs[0][:])
	}
}

func auditVerify(t *testing.T, state string) error {
	t.Helper()
	_, _, err := runCLI(t, "audit", "verify", "--state-file", state)
	return err
}

// wantBadRecord checks that verification failed and named record idx.
func wantBadRecord(t *testing.T, err error, idx int64) {
	t.Helper()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("audit verify: %v, want a verification failure", err)
	}
	if want := fmt.Sprintf("record %d:", idx); !strings.Contains(ee.msg, want) {
		t.Fatalf("audit verify said %q, want it to name %q", ee.msg, want)
	}
}

// TestAuditVerifyDetectsTampering changes, deletes, inserts or reorders a
// single audit row directly in the database, and truncates and regrows the
// log: `dml audit verify` fails and names the record.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	const k = 5 // the tampered record
	for _, tc := range []struct {
		name string
		// tamper changes the database; the log has 12 records before.
		tamper func(t *testing.T, e *auditEnv, db *sql.DB)
		// withState verifies once before tampering, saving a checkpoint.
		withState bool
		bad       int64
	}{
		{"change a record", func(t *testing.T, e *auditEnv, db *sql.DB) {
			rec := record(t, db, k)
			sqlExec(t, db, `UPDATE audit_records SET record = ? WHERE idx = ?`, strings.Replace(rec, `"bootstrap-admin"`, `"mallory"`, 1), k)
		}, false, k},
		{"delete a record", func(t *testing.T, e *auditEnv, db *sql.DB) {
			sqlExec(t, db, `DELETE FROM audit_records WHERE idx = ?`, k)
		}, false, k},
		{"insert a record", func(t *testing.T, e *auditEnv, db *sql.DB) {
			// Make room at k (highest first, to keep the key unique), then
			// forge a record that looks right in place.
			rows, _ := db.Query(`SELECT idx FROM audit_records WHERE idx >= ? ORDER BY idx DESC`, k)
			var idxs []int64
			for rows.Next() {
				var i int64
				_ = rows.Scan(&i)
				idxs = append(idxs, i)
			}
			rows.Close()
			for _, i := range idxs {
				sqlExec(t, db, `UPDATE audit_records SET idx = ?, record = replace(record, ?, ?) WHERE idx = ?`,
					i+1, fmt.Sprintf(`{"index":%d,`, i), fmt.Sprintf(`{"index":%d,`, i+1), i)
			}
			forged, err := auditlog.Encode(auditlog.Record{Index: k, Time: time.Now(), Actor: auditlog.Actor{Name: "bootstrap-admin"}, Action: "token.issued", Subject: "tok_forged"})
			if err != nil {
				t.Fatal(err)
			}
			var seq int64
			_ = db.QueryRow(`SELECT MAX(seq) FROM events`).Scan(&seq)
			sqlExec(t, db, `INSERT INTO events (time, actor_token_id, actor_name, action, subject) VALUES (0, '', 'x', 'token.issued', 'tok_forged')`)
			sqlExec(t, db, `INSERT INTO audit_records (idx, event_seq, subject, record) VALUES (?, ?, 'tok_forged', ?)`, k, seq+1, string(forged))
		}, false, k},
		{"reorder two records", func(t *testing.T, e *auditEnv, db *sql.DB) {
			a, b := record(t, db, k), record(t, db, k+1)
			sqlExec(t, db, `UPDATE audit_records SET record = ? WHERE idx = ?`, b, k)
			sqlExec(t, db, `UPDATE audit_records SET record = ? WHERE idx = ?`, a, k+1)
		}, false, k},
		{"rewrite a record and its hashes (caught by the saved checkpoint)", func(t *testing.T, e *auditEnv, db *sql.DB) {
			rec := record(t, db, k)
			sqlExec(t, db, `UPDATE audit_records SET record = ? WHERE idx = ?`, strings.Replace(rec, `"bootstrap-admin"`, `"mallory"`, 1), k)
			rehash(t, db)
		}, true, k},
		{"truncate the log", func(t *testing.T, e *auditEnv, db *sql.DB) {
			sqlExec(t, db, `DELETE FROM audit_records WHERE idx >= ?`, k)
			sqlExec(t, db, `DELETE FROM audit_hashes WHERE id >= ?`, tlog.StoredHashIndex(0, k))
		}, true, k},
		{"truncate and regrow the log", func(t *testing.T, e *auditEnv, db *sql.DB) {
			sqlExec(t, db, `DELETE FROM audit_records WHERE idx >= ?`, k)
			sqlExec(t, db, `DELETE FROM audit_hashes WHERE id >= ?`, tlog.StoredHashIndex(0, k))
			e.grow(t, 10) // longer than before, with other records from k on
		}, true, k},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newAuditEnv(t)
			e.grow(t, 11) // bootstrap token + 11 = 12 records
			state := filepath.Join(t.TempDir(), "state.json")
			if tc.withState {
				if err := auditVerify(t, state); err != nil {
					t.Fatalf("verify before tampering: %v", err)
				}
			} else if err := auditVerify(t, filepath.Join(t.TempDir(), "probe.json")); err != nil {
				t.Fatalf("verify before tampering: %v", err)
			}
			tc.tamper(t, e, e.db(t))
			wantBadRecord(t, auditVerify(t, state), tc.bad)
			if tc.withState {
				// Without the saved checkpoint, a rewrite the server re-signed
				// would pass: the consistency check is what catches it.
				fresh := filepath.Join(t.TempDir(), "fresh.json")
				err := auditVerify(t, fresh)
				t.Logf("verification without saved state: %v", err)
			}
		})
	}
}

// TestAuditVerifyAcceptsGrowth: a log that only grew verifies again, and
// a pinned log key that changes is refused.
func TestAuditVerifyAcceptsGrowth(t *testing.T) {
	e := newAuditEnv(t)
	e.grow(t, 3)
	state := filepath.Join(t.TempDir(), "state.json")
	out, _, err := runCLI(t, "audit", "verify", "--state-file", state)
	if err != nil || !strings.Contains(out, "audit log OK: 4 records") {
		t.Fatalf("first verify: %v\n%s", err, out)
	}
	e.grow(t, 5)
	out, _, err = runCLI(t, "audit", "verify", "--state-file", state)
	if err != nil || !strings.Contains(out, "audit log OK: 9 records") || !strings.Contains(out, "5 new") {
		t.Fatalf("second verify: %v\n%s", err, out)
	}
	// A log key other than the pinned one is refused.
	other := filepath.Join(t.TempDir(), "other.key")
	k, err := auditlog.LoadOrCreateLogKey(filepath.Join(t.TempDir(), "k"), "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte(k.VerifierKey), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "audit", "verify", "--state-file", state, "--log-key", other)
	var ee *exitError
	if !errors.As(err, &ee) || !strings.Contains(ee.msg, "log key") {
		t.Fatalf("verify with another key: %v", err)
	}
}

// TestProvenanceOffline: after a full release lifecycle, the provenance
// document exported by an auditor verifies offline with only the log key
// and the server key, and fails after any single value is altered.
// saveTrustAnchors writes the audit log's verifier key and the server's
// public key, as an auditor saves them out of band, into dir and returns
// their paths.
func saveTrustAnchors(t *testing.T, url, token, dir string) (logKeyFile, serverKeyFile string) {
	t.Helper()
	c, err := client.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := c.Audit().Key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := c.Trust().ServerKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	logKeyFile, serverKeyFile = filepath.Join(dir, "log.key"), filepath.Join(dir, "server.pub")
	if err := os.WriteFile(logKeyFile, logKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(serverKeyFile, serverKey, 0o600); err != nil {
		t.Fatal(err)
	}
	return logKeyFile, serverKeyFile
}

func TestProvenanceOffline(t *testing.T) {
	e := newAuditEnv(t)
	lc := testserver.FullLifecycle(t, e.srv.DML)
	t.Setenv("DML_TOKEN", lc.Tokens["audit"])
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.json")
	mustRunCLI(t, "provenance", "export", lc.Artifact, lc.Version, "--output-file", bundle)

	lk, sk := saveTrustAnchors(t, e.srv.URL, lc.Tokens["audit"], dir)
	// From here on, no server.
	e.srv.Close()
	file := filepath.Join(testserver.FixturesDir(), "payments-api-1.4.2.tar.gz")
	out := mustRunCLI(t, "provenance", "verify", bundle, "--log-key", lk, "--server-key", sk, "--content-file", file)
	for _, want := range []string{"verified offline", "admission receipt signed by the server key", "release 2026.11-payments", "verified with key ci"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	trusted := filepath.Join(dir, "trusted")
	if err := os.MkdirAll(trusted, 0o700); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(filepath.Join(testserver.FixturesDir(), "cosign.pub"))
	if err := os.WriteFile(filepath.Join(trusted, "ci.pub"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "provenance", "verify", bundle, "--log-key", lk, "--server-key", sk, "--trusted-keys", trusted)

	raw, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	untrusted, _ := os.ReadFile(filepath.Join(testserver.FixturesDir(), "untrusted", "cosign.pub"))
	for _, tc := range []struct {
		name  string
		alter func(doc map[string]any)
	}{
		{"artifact name", func(d map[string]any) { obj(d, "artifact")["name"] = "payments/apx" }},
		{"artifact digest", func(d map[string]any) {
			obj(d, "artifact")["digest"] = "sha256:" + strings.Repeat("0", 64)
		}},
		{"artifact size", func(d map[string]any) { obj(d, "artifact")["size"] = 299999 }},
		{"pushed by", func(d map[string]any) { obj(d, "artifact")["pushedBy"] = "mallory" }},
		{"push time", func(d map[string]any) { shiftTime(obj(d, "artifact"), "pushedAt") }},
		{"evidence digest", func(d map[string]any) { item(d, "evidence", 0)["digest"] = "sha256:" + strings.Repeat("1", 64) }},
		{"evidence content", func(d map[string]any) {
			item(d, "evidence", 1)["content"] = base64.StdEncoding.EncodeToString([]byte(`{"payloadType":"x"}`))
		}},
		{"evidence key", func(d map[string]any) { item(d, "evidence", 0)["keyId"] = "other" }},
		{"evidence time", func(d map[string]any) { shiftTime(item(d, "evidence", 1), "addedAt") }},
		{"trust key", func(d map[string]any) { item(d, "trustKeys", 0)["publicKey"] = string(untrusted) }},
		{"admission receipt signature", func(d map[string]any) {
			adm := obj(d, "admission")
			raw, _ := base64.StdEncoding.DecodeString(adm["receipt"].(string))
			var env map[string]any
			_ = json.Unmarshal(raw, &env)
			s := env["signatures"].([]any)[0].(map[string]any)
			s["sig"] = flipBase64(s["sig"].(string))
			adm["receipt"] = base64.StdEncoding.EncodeToString(mustJSON(env))
		}},
		{"admission state", func(d map[string]any) { obj(d, "admission")["state"] = "rejected" }},
		{"release name", func(d map[string]any) { item(d, "releases", 0)["name"] = "2026.12-payments" }},
		{"release change ref", func(d map[string]any) { item(d, "releases", 0)["changeRef"] = "CHG-9999" }},
		{"manifest signature", func(d map[string]any) {
			r := item(d, "releases", 0)
			r["manifestSignature"] = flipBase64(r["manifestSignature"].(string))
		}},
		{"manifest digest", func(d map[string]any) {
			item(d, "releases", 0)["manifestDigest"] = "sha256:" + strings.Repeat("2", 64)
		}},
		{"approver", func(d map[string]any) { sub(item(d, "releases", 0), "approvals", 0)["by"] = "mallory" }},
		{"approval digest", func(d map[string]any) {
			sub(item(d, "releases", 0), "approvals", 1)["digest"] = "sha256:" + strings.Repeat("3", 64)
		}},
		{"approval time", func(d map[string]any) { shiftTime(sub(item(d, "releases", 0), "approvals", 2), "at") }},
		{"deployment status", func(d map[string]any) { sub(item(d, "releases", 0), "deployments", 1)["status"] = "failed" }},
		{"deployment environment", func(d map[string]any) {
			sub(item(d, "releases", 0), "deployments", 0)["environment"] = "production"
		}},
		{"review summary", func(d map[string]any) { obj(item(d, "releases", 0), "review")["summary"] = "all fine" }},
		{"review time", func(d map[string]any) { shiftTime(obj(item(d, "releases", 0), "review"), "at") }},
		{"proof hash", func(d map[string]any) {
			e := sub(obj(d, "log"), "entries", 3)
			p := e["proof"].([]any)
			p[0] = flipBase64(p[0].(string))
		}},
		{"record", func(d map[string]any) {
			for _, e := range obj(d, "log")["entries"].([]any) {
				e := e.(map[string]any)
				if rec := e["record"].(string); strings.Contains(rec, `"artifact.pushed"`) {
					e["record"] = strings.Replace(rec, `"pipeline"`, `"mallory"`, 1)
				}
			}
		}},
		{"checkpoint", func(d map[string]any) {
			l := obj(d, "log")
			l["checkpoint"] = strings.Replace(l["checkpoint"].(string), "\n", "\n1", 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			tc.alter(doc)
			altered := filepath.Join(t.TempDir(), "altered.json")
			if err := os.WriteFile(altered, mustJSON(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := runCLI(t, "provenance", "verify", altered, "--log-key", lk, "--server-key", sk)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("altered document verified (err %v)", err)
			}
			t.Logf("refused: %s", ee.msg)
		})
	}
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func item(m map[string]any, key string, i int) map[string]any {
	return m[key].([]any)[i].(map[string]any)
}

func sub(m map[string]any, key string, i int) map[string]any { return item(m, key, i) }

func shiftTime(m map[string]any, key string) {
	ts, _ := time.Parse(time.RFC3339Nano, m[key].(string))
	m[key] = ts.Add(time.Second).Format(time.RFC3339Nano)
}

func flipBase64(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	b[len(b)/2] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestAuditLogTimeline: `dml audit log --subject` prints the artifact's
// history in order.
func TestAuditLogTimeline(t *testing.T) {
	e := newAuditEnv(t)
	lc := testserver.FullLifecycle(t, e.srv.DML)
	t.Setenv("DML_TOKEN", lc.Tokens["audit"])
	out := mustRunCLI(t, "audit", "log", "--subject", lc.Artifact)
	last := -1
	for _, want := range []string{"artifact.pushed", "evidence.added", "evidence.added", "admission.decided"} {
		i := strings.Index(out[last+1:], want)
		if i < 0 {
			t.Fatalf("timeline lacks %s after position %d:\n%s", want, last, out)
		}
		last += i + 1
	}
	if strings.Contains(out, "release.") || strings.Contains(out, "token.issued") {
		t.Errorf("subject filter let other records through:\n%s", out)
	}
	out = mustRunCLI(t, "audit", "log", "--subject", "release:"+lc.Release, "--output", "json")
	if n := strings.Count(out, `"action":"release.approval"`); n != 6 {
		t.Errorf("%d approval records for the release, want 6:\n%s", n, out)
	}
}
