package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/internal/pgtest"
)

// TestAdminResetTokenSQLite: with the admin token lost, dml admin
// reset-token --data-dir on the server's host issues a new admin token,
// while the server runs (SQLite's write lock shared with it) and while it
// is stopped, printed once or written to a 0600 --token-file, and audited
// as token.recovered with the host user.
func TestAdminResetTokenSQLite(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=lost-admin-token-0123456789"}, "--data-dir", dir)
	checkResetToken(t, srv, nil, "--data-dir", dir)

	srv.stop()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	out := runResetToken(t, nil, "--data-dir", dir, "--token-file", tokenFile)
	if out.Token != "" || out.TokenFile != tokenFile {
		t.Errorf("with --token-file: %+v; want the secret in the file only", out)
	}
	fi, err := os.Stat(tokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v; want mode 0600", fi, err)
	}
	secret, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, nil, "--data-dir", dir)
	checkRecovered(t, srv.url(), strings.TrimSpace(string(secret)), out.ID)

	// An existing token file is never replaced; a wrong directory is not
	// made into a new, empty database.
	if o, err := exec.Command(dmlBinary(t), "admin", "reset-token", "--data-dir", dir, "--token-file", tokenFile).CombinedOutput(); err == nil || !strings.Contains(string(o), "file exists") {
		t.Errorf("reset-token onto an existing --token-file: %v\n%s", err, o)
	}
	empty := t.TempDir()
	if o, err := exec.Command(dmlBinary(t), "admin", "reset-token", "--data-dir", empty).CombinedOutput(); err == nil || !strings.Contains(string(o), "no such file") {
		t.Errorf("reset-token on a directory without a database: %v\n%s", err, o)
	}
	if _, err := os.Stat(filepath.Join(empty, "dml.db")); err == nil {
		t.Error("reset-token created a database in an empty directory")
	}
}

// TestAdminResetTokenPostgres is the same recovery on the PostgreSQL
// database replicas share, named by DML_DATABASE, the server running.
func TestAdminResetTokenPostgres(t *testing.T) {
	database := pgtest.NewDatabase(t)
	srv := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=lost-admin-token-0123456789"}, "--data-dir", t.TempDir(), "--database", database)
	out := checkResetToken(t, srv, []string{"DML_DATABASE=" + database})
	if u, _ := pgPassword(database); u != "" && strings.Contains(out.Database, u) {
		t.Errorf("reset-token printed the database password: %s", out.Database)
	}
}

func pgPassword(database string) (string, bool) {
	_, rest, ok := strings.Cut(database, "://")
	if !ok {
		return "", false
	}
	userinfo, _, ok := strings.Cut(rest, "@")
	if !ok {
		return "", false
	}
	_, password, ok := strings.Cut(userinfo, ":")
	return password, ok
}

// resetTokenOutput is what dml admin reset-token -o json prints.
type resetTokenOutput struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	HostUser  string   `json:"hostUser"`
	Token     string   `json:"token"`
	TokenFile string   `json:"tokenFile"`
	Database  string   `json:"database"`
}

func runResetToken(t *testing.T, env []string, args ...string) resetTokenOutput {
	t.Helper()
	cmd := exec.Command(dmlBinary(t), append([]string{"admin", "reset-token", "-o", "json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("dml admin reset-token %s: %v\n%s%s", strings.Join(args, " "), err, raw, stderr.String())
	}
	var out resetTokenOutput
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("reset-token printed %q: %v", raw, err)
	}
	return out
}

// checkResetToken recovers a token on the running srv and checks it.
func checkResetToken(t *testing.T, srv *serverProc, env []string, args ...string) resetTokenOutput {
	t.Helper()
	out := runResetToken(t, env, args...)
	if out.Token == "" || out.Name != "recovered-admin" || len(out.Roles) != 1 || out.Roles[0] != "admin" {
		t.Fatalf("reset-token printed %+v; want an admin token's secret", out)
	}
	checkRecovered(t, srv.url(), out.Token, out.ID)
	return out
}

// checkRecovered: the secret authenticates as an admin, and the audit
// log (through the event stream) records the recovery with the host user.
func checkRecovered(t *testing.T, serverURL, secret, id string) {
	t.Helper()
	c, err := client.New(serverURL, secret)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tokens, err := c.Tokens().List(ctx) // needs the admin role
	if err != nil {
		t.Fatalf("the recovered token cannot list tokens: %v", err)
	}
	found := false
	for _, tok := range tokens {
		found = found || tok.ID == id
	}
	if !found {
		t.Errorf("token %s is not listed: %+v", id, tokens)
	}
	page, err := c.Events().List(ctx, client.EventQuery{Types: []string{"token.recovered"}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		var data struct{ HostUser, Host string }
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		if e.Subject == id {
			if data.HostUser != me.Username || !strings.HasPrefix(e.Principal.Name, me.Username+"@") {
				t.Errorf("token.recovered event %+v (data %s): want host user %s", e, e.Data, me.Username)
			}
			return
		}
	}
	t.Errorf("no token.recovered event for %s among %+v", id, page.Events)
}
