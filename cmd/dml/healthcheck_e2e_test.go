package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
)

// runHealthcheck runs the dml binary's healthcheck with env (and no
// DML_* variable of the developer's) and returns its exit status and
// output.
func runHealthcheck(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(dmlBinary(t), append([]string{"healthcheck"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DML_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// checkOneLine fails unless s is exactly one line.
func checkOneLine(t *testing.T, what, s string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s is not one line: %q", what, s)
	}
}

// TestHealthcheck runs dml healthcheck, the container's HEALTHCHECK,
// against a real dml serve: exit 0 when the server is ready (found from
// --server, or from the server's own DML_LISTEN as in the container),
// 1 with a one-line reason once it is stopped. Over TLS it trusts the
// server's own certificate file (DML_TLS_CERT, which it shares with the
// server in a container) even when the certificate does not name
// 127.0.0.1, and otherwise verifies as every command does.
func TestHealthcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dml binary")
	}
	srv := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=health-admin-0123456789"}, "--data-dir", t.TempDir())
	code, out, errOut := runHealthcheck(t, nil, "--server", srv.url())
	if code != 0 || !strings.HasPrefix(out, "ready") {
		t.Fatalf("healthcheck --server %s: exit %d, stdout %q, stderr %q; want 0 and ready", srv.url(), code, out, errOut)
	}
	checkOneLine(t, "ready output", out)
	t.Logf("ready: %s", out)
	if code, out, errOut := runHealthcheck(t, []string{"DML_LISTEN=" + srv.addr}); code != 0 || !strings.Contains(out, srv.addr) {
		t.Errorf("healthcheck with DML_LISTEN=%s: exit %d, stdout %q, stderr %q; want 0 for that address", srv.addr, code, out, errOut)
	}
	if code, out, errOut := runHealthcheck(t, nil, "--server", srv.url(), "--live"); code != 0 || !strings.Contains(out, "/healthz") {
		t.Errorf("healthcheck --live: exit %d, stdout %q, stderr %q; want 0 from /healthz", code, out, errOut)
	}

	srv.stop()
	code, out, errOut = runHealthcheck(t, nil, "--server", srv.url(), "--timeout", "5s")
	if code != 1 || out != "" || !strings.Contains(errOut, "not ready") || !strings.Contains(errOut, "connection refused") {
		t.Errorf("healthcheck of a stopped server: exit %d, stdout %q, stderr %q; want 1 and a reason", code, out, errOut)
	}
	checkOneLine(t, "not ready output", errOut)
	t.Logf("stopped: %s", errOut)

	// TLS, with a certificate only for the server's public name.
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := ca.issue(t, dir, "server", 42, "dml.example.test")
	tlsSrv := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=health-admin-0123456789"}, "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", certFile, "--tls-key", keyFile)
	container := []string{"DML_LISTEN=" + tlsSrv.addr, "DML_TLS_CERT=" + certFile, "DML_TLS_KEY=" + keyFile}
	if code, out, errOut := runHealthcheck(t, container); code != 0 || !strings.HasPrefix(out, "ready: https://"+tlsSrv.addr) {
		t.Errorf("healthcheck with the server's TLS environment: exit %d, stdout %q, stderr %q; want 0 over https", code, out, errOut)
	}
	// Another certificate file is no pin for the served one: the served
	// certificate is then verified, and fails.
	otherCert, _ := ca.issue(t, dir, "other", 43, "dml.example.test")
	if code, out, errOut := runHealthcheck(t, []string{"DML_LISTEN=" + tlsSrv.addr, "DML_TLS_CERT=" + otherCert}); code != 1 {
		t.Errorf("healthcheck trusting another certificate than the served one: exit %d, stdout %q, stderr %q; want 1", code, out, errOut)
	}
	// Without the server's certificate file, the certificate is verified
	// as usual, and it is not for 127.0.0.1.
	code, out, errOut = runHealthcheck(t, nil, "--server", "https://"+tlsSrv.addr, "--ca-cert", ca.file)
	if code != 1 || !strings.Contains(errOut, "a name the certificate holds") {
		t.Errorf("healthcheck of a TLS server by a name its certificate lacks: exit %d, stdout %q, stderr %q; want 1 and a hint at --server", code, out, errOut)
	}
	t.Logf("untrusted: %s", errOut)
}

// pingFails is a blob backend whose Ping fails: the server is up but not
// ready.
type pingFails struct{ store.Backend }

func (pingFails) Ping(context.Context) error { return errors.New("bucket unreachable (test)") }

// TestHealthcheckNotReady: a server that answers but whose blob store
// does not is not ready (exit 1, the reason from /readyz), though it is
// live.
func TestHealthcheckNotReady(t *testing.T) {
	blobs, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	serverURL, _ := cliEnv(t, testserver.WithBackend(pingFails{blobs}))
	_, _, err = runCLI(t, "healthcheck", "--server", serverURL)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(ee.msg, "blob store") || strings.Contains(ee.msg, "\n") {
		t.Fatalf("healthcheck of a server whose blob store is down: %v, want exit status 1 and a one-line reason naming the blob store", err)
	}
	t.Logf("not ready: %v", err)
	if out := mustRunCLI(t, "healthcheck", "--server", serverURL, "--live"); !strings.HasPrefix(out, "live") {
		t.Errorf("healthcheck --live printed %q", out)
	}
}

// TestLocalServerURL: without --server, dml healthcheck checks the
// server of --listen (DML_LISTEN) from the same host.
func TestLocalServerURL(t *testing.T) {
	for _, tt := range []struct {
		listen string
		https  bool
		want   string
	}{
		{"0.0.0.0:8080", false, "http://127.0.0.1:8080"},
		{":8080", true, "https://127.0.0.1:8080"},
		{"[::]:8443", true, "https://[::1]:8443"},
		{"127.0.0.1:9000", false, "http://127.0.0.1:9000"},
		{"10.0.0.5:8080", false, "http://10.0.0.5:8080"},
		{"dml.internal:8080", false, "http://dml.internal:8080"},
		{"127.0.0.1:0", false, ""},
		{"8080", false, ""},
	} {
		got, err := localServerURL(tt.listen, tt.https)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("localServerURL(%q, %v) = %q, %v; want %q", tt.listen, tt.https, got, err, tt.want)
		}
	}
}
