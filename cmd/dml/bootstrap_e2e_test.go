package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootstrapTokenNeverInLogs: a dml serve whose stderr is not a
// terminal (a container, a service, a pipe — here a pipe) never writes
// the generated bootstrap admin token to its output. It writes it, mode
// 0600, to --bootstrap-token-file (DML_BOOTSTRAP_TOKEN_FILE), or else to
// DATA_DIR/bootstrap-token, and logs only where it is. The token written
// works; a restart issues none and leaves the file alone.
func TestBootstrapTokenNeverInLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dml binary")
	}
	isolateCLI(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		env     []string
		args    []string
		dataDir string
		file    string
	}{
		{name: "no terminal, no flag", dataDir: filepath.Join(dir, "c"), file: filepath.Join(dir, "c", "bootstrap-token")},
		{name: "flag", dataDir: filepath.Join(dir, "a"), file: filepath.Join(dir, "secrets", "admin-token"),
			args: []string{"--bootstrap-token-file", filepath.Join(dir, "secrets", "admin-token")}},
		{name: "environment", dataDir: filepath.Join(dir, "b"), file: filepath.Join(dir, "b-token"),
			env: []string{"DML_BOOTSTRAP_TOKEN_FILE=" + filepath.Join(dir, "b-token")}},
	} {
		if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
			t.Fatal(err)
		}
		srv := startServer(t, tt.env, append([]string{"--data-dir", tt.dataDir}, tt.args...)...)
		info, err := os.Stat(tt.file)
		if err != nil {
			t.Errorf("%s: no token file: %v\nlogs:\n%s", tt.name, err, srv.logs.String())
			srv.stop()
			continue
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %s has mode %o, want 600", tt.name, tt.file, info.Mode().Perm())
		}
		b, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		token := strings.TrimSpace(string(b))
		if len(token) < 16 || strings.Contains(srv.logs.String(), token) {
			t.Errorf("%s: token %q (from the file) is in the server's output:\n%s", tt.name, token, srv.logs.String())
		}
		if !strings.Contains(srv.logs.String(), tt.file) {
			t.Errorf("%s: the log does not say where the token is:\n%s", tt.name, srv.logs.String())
		}
		if out := mustRunCLI(t, "whoami", "--server", srv.url(), "--token", token); !strings.Contains(out, "bootstrap-admin") {
			t.Errorf("%s: whoami with the token from the file printed %q", tt.name, out)
		}
		t.Logf("%s: log lines about the token: %s", tt.name, grepLines(srv.logs.String(), "bootstrap"))
		srv.stop()

		// A restart issues no token: the file keeps the one that works.
		again := startServer(t, tt.env, append([]string{"--data-dir", tt.dataDir}, tt.args...)...)
		if b2, err := os.ReadFile(tt.file); err != nil || string(b2) != string(b) {
			t.Errorf("%s: after a restart the file holds %q (%v), want the first token", tt.name, b2, err)
		}
		again.stop()
	}
}

// TestBootstrapTokenFileUnwritable: a --bootstrap-token-file that cannot
// be written stops dml serve before the token is issued, so no token is
// lost: the next start, with a good path, still issues one.
func TestBootstrapTokenFileUnwritable(t *testing.T) {
	isolateCLI(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	_, _, err := runCLI(t, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--bootstrap-token-file", filepath.Join(dir, "missing-dir", "token"))
	if err == nil || !strings.Contains(err.Error(), "--bootstrap-token-file") {
		t.Fatalf("dml serve with a token file in a missing directory: %v, want an error naming --bootstrap-token-file", err)
	}
	t.Logf("unwritable: %v", err)
	if _, err := os.Stat(filepath.Join(data, "dml.db")); err == nil {
		t.Errorf("the database was created before the token file was checked")
	}
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(strings.ToLower(l), word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, " | ")
}

// TestBootstrapTokenDestination: the rule of bootstrap.go. The file flag
// always wins; without it a terminal gets the token printed (a person
// watches it) and anything else gets DATA_DIR/bootstrap-token.
func TestBootstrapTokenDestination(t *testing.T) {
	for _, tt := range []struct {
		flag     string
		terminal bool
		want     string
	}{
		{"/run/secrets/dml-admin", true, "/run/secrets/dml-admin"},
		{"/run/secrets/dml-admin", false, "/run/secrets/dml-admin"},
		{"", true, ""},
		{"", false, filepath.Join("/data", "bootstrap-token")},
	} {
		if got := bootstrapTokenFile(tt.flag, "/data", tt.terminal); got != tt.want {
			t.Errorf("bootstrapTokenFile(%q, terminal %v) = %q, want %q", tt.flag, tt.terminal, got, tt.want)
		}
	}
	// On a terminal the token is printed once, as before.
	var terminal strings.Builder
	if err := deliverBootstrapToken("dml_secret_for_the_terminal", "", &terminal, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(terminal.String(), "dml_secret_for_the_terminal") {
		t.Errorf("printed %q", terminal.String())
	}
}
