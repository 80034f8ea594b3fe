package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/opencontainers/go-digest"
)

// isolateCLI keeps the developer's DML_* variables, config file and
// session out of in-process CLI runs.
func isolateCLI(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DML_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
}

// cliEnv points the client commands at a fresh in-process server through
// DML_SERVER and DML_TOKEN, with no config file and no other DML_*
// variable leaking in from the developer's shell.
func cliEnv(t *testing.T, opts ...testserver.Option) (serverURL, adminToken string) {
	t.Helper()
	serverURL, adminToken, _ = cliEnvDML(t, opts...)
	return serverURL, adminToken
}

// cliEnvDML is cliEnv that also returns the server's domain.
func cliEnvDML(t *testing.T, opts ...testserver.Option) (serverURL, adminToken string, svc *releases.DML) {
	t.Helper()
	isolateCLI(t)
	srv, admin, svc := testserver.New(t, opts...)
	t.Setenv("DML_SERVER", srv.URL)
	t.Setenv("DML_TOKEN", admin)
	return srv.URL, admin, svc
}

// runCLI runs the dml root command in-process.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func mustRunCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("dml %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func writeRandomFile(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pkg.tar.gz")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestCLIPushPull(t *testing.T) {
	cliEnv(t)
	src, data := writeRandomFile(t, 3<<20+5)

	out, errOut, err := runCLI(t, "push", "payments/api", "1.4.2", src, "--media-type", "application/gzip")
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if errOut != "" {
		t.Errorf("push wrote to a non-terminal stderr: %q", errOut)
	}
	for _, want := range []string{"payments/api:1.4.2 created", digest.FromBytes(data).String(), "admission: QUARANTINED"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output %q lacks %q", out, want)
		}
	}

	out = mustRunCLI(t, "push", "payments/api", "1.4.2", src, "--output", "json")
	var pushed struct {
		wire.Artifact
		Created bool `json:"created"`
	}
	if err := json.Unmarshal([]byte(out), &pushed); err != nil {
		t.Fatalf("push json %q: %v", out, err)
	}
	if pushed.Created || pushed.Digest != digest.FromBytes(data) || pushed.MediaType != "application/gzip" {
		t.Errorf("second push = %+v, want not created with the same digest", pushed)
	}

	dst := filepath.Join(t.TempDir(), "out", "api.tar.gz")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out = mustRunCLI(t, "pull", "payments/api", "1.4.2", "--output-file", dst)
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("pulled file differs from the pushed one (%d vs %d bytes)", len(got), len(data))
	}
	if !strings.Contains(out, dst) || !strings.Contains(out, digest.FromBytes(data).String()) {
		t.Errorf("pull output %q", out)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Errorf("pull left %d entries in the target directory, want just the file", len(entries))
	}

	stdout, stderr, err := runCLI(t, "pull", "payments/api", "1.4.2", "--output-file", "-")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(data) {
		t.Errorf("pull -o - wrote %d bytes that differ from the artifact", len(stdout))
	}
	if !strings.Contains(stderr, digest.FromBytes(data).String()) {
		t.Errorf("pull -o - summary on stderr = %q", stderr)
	}
}

func TestCLIErrors(t *testing.T) {
	cliEnv(t)
	src, _ := writeRandomFile(t, 1024)
	other, _ := writeRandomFile(t, 1024)
	mustRunCLI(t, "push", "payments/api", "1", src)
	dst := filepath.Join(t.TempDir(), "x")
	// Without --output-file, pull writes NAME's last component-VERSION in
	// the current directory, and does not replace a file already there.
	t.Chdir(t.TempDir())
	if err := os.WriteFile("api-1", []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"conflicting push", []string{"push", "payments/api", "1", other}, "VERSION_EXISTS"},
		{"invalid name", []string{"push", "Payments", "1", src}, "NAME_INVALID"},
		{"missing file", []string{"push", "payments/api", "2", filepath.Join(t.TempDir(), "nope")}, "no such file"},
		{"directory", []string{"push", "payments/api", "2", t.TempDir()}, "not a regular file"},
		{"unknown version", []string{"pull", "payments/api", "9", "--output-file", dst}, "NOT_FOUND"},
		{"pull will not replace the default file", []string{"pull", "payments/api", "1"}, "output-file"},
		{"bad token", []string{"whoami", "--token", "dml_nope"}, "UNAUTHORIZED"},
		{"bad output format", []string{"whoami", "--output", "yaml"}, "--output"},
		{"unknown role", []string{"token", "create", "--name", "x", "--role", "wizard"}, "INVALID_INPUT"},
		{"revoke unknown", []string{"token", "revoke", "tok_0000"}, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("dml %s: err = %v, want one mentioning %q", strings.Join(tt.args, " "), err, tt.want)
			}
		})
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed pull created %s", dst)
	}

	t.Run("no token", func(t *testing.T) {
		t.Setenv("DML_TOKEN", "")
		os.Unsetenv("DML_TOKEN")
		_, _, err := runCLI(t, "whoami")
		if err == nil || !strings.Contains(err.Error(), "DML_TOKEN") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestCLITokens(t *testing.T) {
	cliEnv(t)
	out := mustRunCLI(t, "token", "create", "--name", "deploy-eu", "--role", "deployer", "--env", "staging", "--env", "prod-eu", "--output", "json")
	var issued wire.IssuedToken
	if err := json.Unmarshal([]byte(out), &issued); err != nil {
		t.Fatalf("token create json %q: %v", out, err)
	}
	if issued.ID == "" || issued.Token == "" || !slices.Equal(issued.Environments, []string{"prod-eu", "staging"}) {
		t.Fatalf("issued = %+v", issued)
	}

	out = mustRunCLI(t, "whoami", "--token", issued.Token, "--output", "json")
	var who wire.Identity
	if err := json.Unmarshal([]byte(out), &who); err != nil {
		t.Fatal(err)
	}
	if who.TokenID != issued.ID || who.Name != "deploy-eu" || !slices.Equal(who.Roles, []string{"deployer"}) {
		t.Errorf("whoami = %+v", who)
	}
	out = mustRunCLI(t, "whoami", "--token", issued.Token)
	if !strings.Contains(out, "deploy-eu") || !strings.Contains(out, "prod-eu, staging") {
		t.Errorf("whoami table = %q", out)
	}

	out, stderr, err := runCLI(t, "token", "create", "--name", "ci", "--role", "publisher,auditor")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "tok_") || !strings.Contains(out, "dml_") || !strings.Contains(out, "auditor, publisher") || !strings.Contains(stderr, "not shown again") {
		t.Errorf("token create table = %q, stderr %q", out, stderr)
	}

	if out := mustRunCLI(t, "token", "revoke", issued.ID); !strings.Contains(out, issued.ID) {
		t.Errorf("revoke output = %q", out)
	}
	if _, _, err := runCLI(t, "whoami", "--token", issued.Token); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("whoami with a revoked token: %v", err)
	}
}

func TestCLIArtifacts(t *testing.T) {
	cliEnv(t)
	src, data := writeRandomFile(t, 2048)
	refs := [][2]string{{"payments/api", "1.0.0"}, {"payments/api", "1.1.0"}, {"payments/worker", "1"}, {"shop/web", "7"}}
	for _, r := range refs {
		mustRunCLI(t, "push", r[0], r[1], src)
	}

	out := mustRunCLI(t, "artifact", "show", "payments/api", "1.1.0", "--output", "json")
	var a wire.Artifact
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if a.Name != "payments/api" || a.Version != "1.1.0" || a.Digest != digest.FromBytes(data) {
		t.Errorf("show = %+v", a)
	}
	if out := mustRunCLI(t, "artifact", "show", "payments/api", "1.1.0"); !strings.Contains(out, "quarantined") || !strings.Contains(out, a.Digest.String()) {
		t.Errorf("show table = %q", out)
	}

	list := func(args ...string) (names []string, next string) {
		t.Helper()
		out := mustRunCLI(t, append([]string{"artifact", "list", "--output", "json"}, args...)...)
		var page wire.ArtifactPage
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("list json %q: %v", out, err)
		}
		for _, a := range page.Artifacts {
			names = append(names, a.Name+":"+a.Version)
		}
		return names, page.NextCursor
	}
	all := []string{"payments/api:1.0.0", "payments/api:1.1.0", "payments/worker:1", "shop/web:7"}
	tests := []struct {
		name     string
		args     []string
		want     []string
		wantNext bool
	}{
		{"everything", nil, all, false},
		{"one page", []string{"--limit", "3"}, all[:3], true},
		{"every page", []string{"--limit", "1", "--all"}, all, false},
		{"by name", []string{"--name", "payments/api"}, all[:2], false},
		{"by state", []string{"--state", "admitted", "--all"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := list(tt.args...)
			if !slices.Equal(got, tt.want) || (next != "") != tt.wantNext {
				t.Fatalf("list %v = %v next %q, want %v (next: %v)", tt.args, got, next, tt.want, tt.wantNext)
			}
		})
	}

	// Continuing from a cursor yields the rest.
	_, next := list("--limit", "3")
	if rest, _ := list("--cursor", next); !slices.Equal(rest, all[3:]) {
		t.Errorf("after the cursor: %v, want %v", rest, all[3:])
	}

	out, stderr, err := runCLI(t, "artifact", "list", "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Errorf("table = %q", out)
	}
	if !strings.Contains(stderr, "--cursor") {
		t.Errorf("no next-page hint on stderr: %q", stderr)
	}
}

// TestSaveVerified feeds the pull-verification step bytes that do not
// match the digest: nothing may be left behind, nothing overwritten.
func TestSaveVerified(t *testing.T) {
	good := []byte("the package the catalogue describes")
	tests := []struct {
		name    string
		body    []byte
		size    int64
		wantErr bool
	}{
		{"matching bytes", good, int64(len(good)), false},
		{"size unknown", good, -1, false},
		{"tampered bytes, same length", bytes.ToUpper(good), int64(len(good)), true},
		{"truncated", good[:10], int64(len(good)), true},
		{"appended", append(append([]byte{}, good...), "!"...), int64(len(good)), true},
		{"tampered bytes, size unknown", []byte("something else"), -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "pkg.tar.gz")
			// An older file at the target must survive a failed pull.
			if err := os.WriteFile(dst, []byte("previous"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := saveVerified(dst, bytes.NewReader(tt.body), digest.FromBytes(good), tt.size, true)
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %v, want only the target", names)
			}
			got, _ := os.ReadFile(dst)
			if tt.wantErr {
				if !errors.Is(err, errDigestMismatch) {
					t.Fatalf("err = %v, want errDigestMismatch", err)
				}
				if string(got) != "previous" {
					t.Errorf("target overwritten with %q after a failed pull", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, good) {
				t.Errorf("target = %q", got)
			}
		})
	}
}

func TestSaveVerifiedLeavesNothingWithoutTarget(t *testing.T) {
	dir := t.TempDir()
	err := saveVerified(filepath.Join(dir, "new"), strings.NewReader("forged"), digest.FromString("real"), -1, true)
	if !errors.Is(err, errDigestMismatch) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed pull left %d files behind", len(entries))
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
