package main

import (
	"database/sql"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/pgtest"
	"github.com/dmlproject/dml/releases/sqlstore"
)

// TestServeOnPostgres runs two `dml serve` processes on one PostgreSQL
// database, named by --database and by DML_DATABASE: both start (the
// second finds the schema migrated), share the metadata (the admin token
// the first bootstrapped works on the second, and the second bootstraps
// none of its own), and neither logs the URL's password. The second signs
// with the first's keys (--server-key, DML_LOG_KEY); a third with keys of
// its own refuses to start, saying why and showing no private key. An
// older dml — the database's schema newer than it knows — refuses to
// start, saying why, and so does a database of no known kind.
func TestServeOnPostgres(t *testing.T) {
	database := pgtest.NewDatabase(t)
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	const first, second = "first-replica-admin-token-0123", "second-replica-admin-token-0123"
	keys := t.TempDir()
	a := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + first}, "--data-dir", keys, "--database", database)
	b := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + second, "DML_DATABASE=" + database, "DML_LOG_KEY=" + filepath.Join(keys, "log-key")},
		"--data-dir", t.TempDir(), "--server-key", filepath.Join(keys, "server-key.pem"))
	out, err := exec.Command(dmlBinary(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--database", database).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "signing keys differ from the ones pinned") || strings.Contains(string(out), "PRIVATE") {
		t.Errorf("a replica with keys of its own: %v\n%s\nwant a refusal saying its signing keys differ, without a private key", err, out)
	}
	for _, tc := range []struct {
		srv   *serverProc
		token string
		want  int
	}{
		{a, first, http.StatusOK},
		{b, first, http.StatusOK},
		{b, second, http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.srv.url()+"/api/v1/tokens", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /api/v1/tokens on %s with %s: %s; want %d", tc.srv.addr, tc.token, resp.Status, tc.want)
		}
	}
	for _, srv := range []*serverProc{a, b} {
		logs := srv.logs.String()
		if password == "" || strings.Contains(logs, password) {
			t.Errorf("the log carries the database password (or the test has none):\n%s", logs)
		}
		if want := `database="` + sqlstore.Redact(database) + `"`; !strings.Contains(logs, want) {
			t.Errorf("the log does not name the database as %s:\n%s", want, logs)
		}
	}
	a.stop()
	b.stop()

	db, err := sql.Open("pgx", database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ database, want string }{
		{database, "schema version 9999 is newer than this program's"},
		{"mysql://dml@localhost/dml", "must be sqlite:PATH or a postgres:// URL"},
	} {
		out, err := exec.Command(dmlBinary(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--database", tc.database).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) || (password != "" && strings.Contains(string(out), password)) {
			t.Errorf("dml serve --database %s: %v\n%s\nwant a refusal saying %q, without the password", sqlstore.Redact(tc.database), err, out, tc.want)
		}
	}
}
