package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestPushSaysWhetherAdmitted: a rejected push fails (exit 3) and says
// why, with or without a flag; a quarantined one succeeds but says so on
// stderr; --require-admitted fails (exit 5) unless the version is
// admitted, printing on stderr what the trust policy still needs, and
// with --wait-admitted it waits first.
func TestPushSaysWhetherAdmitted(t *testing.T) {
	_, publisher := signingEnv(t)
	pkg, key := fixturePath(fixtureArtifact), fixturePath("cosign.key")
	signed := func(result string) []string {
		return []string{"--sign-key", key, "--attest", fixturePath(result), "--type", testResultType}
	}
	exitCode := func(err error) int {
		var ee *exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.code
		}
		return 1
	}

	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr []string // in stderr or the error main prints there
	}{
		{"admitted", signed("test-result-passed.json"), 0, nil},
		{"admitted, required", append(signed("test-result-passed.json"), "--require-admitted"), 0, nil},
		{"quarantined", nil, 0, nil},
		{"quarantined, required", []string{"--require-admitted"}, exitNotAdmitted,
			[]string{"not admitted", "is quarantined", "signature: 0 of 1 required signers", "attestation"}},
		{"quarantined, waited for and required", []string{"--require-admitted", "--wait-admitted", "--timeout", "1s"}, exitNotAdmitted,
			[]string{"not admitted", "signature: 0 of 1 required signers"}},
		{"rejected", signed("test-result-failed.json"), exitUnreachable, []string{"REJECTED", "FAILED"}},
		{"rejected, required", append(signed("test-result-failed.json"), "--require-admitted"), exitUnreachable, []string{"REJECTED"}},
		{"rejected, as JSON", append(signed("test-result-failed.json"), "-o", "json"), exitUnreachable, []string{"REJECTED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			version := strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)
			args := append([]string{"push", "payments/api", version, pkg, "--token", publisher}, tc.args...)
			out, stderr, err := runCLI(t, args...)
			if got := exitCode(err); got != tc.wantCode {
				t.Fatalf("dml %s: exit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, err, tc.wantCode, out, stderr)
			}
			if err != nil {
				stderr += "dml: " + err.Error() + "\n"
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if tc.wantCode == 0 && stderr != "" {
				t.Errorf("a push that succeeded wrote to stderr:\n%s", stderr)
			}
			if tc.name == "quarantined" && (!strings.Contains(out, "QUARANTINED") || !strings.Contains(out, "signature: 0 of 1 required signers")) {
				t.Errorf("a quarantined push does not say so, and what it needs:\n%s", out)
			}
			if strings.Contains(tc.name, "JSON") {
				var doc map[string]any
				if err := json.Unmarshal([]byte(out), &doc); err != nil || doc["state"] != "rejected" {
					t.Errorf("stdout is not the push's JSON document saying rejected: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestServerURLWithoutScheme: --server and DML_SERVER accept HOST:PORT,
// http for a loopback host and https for any other, and a value that is
// no URL is explained, not answered with Go's parse error.
func TestServerURLWithoutScheme(t *testing.T) {
	serverURL, _ := cliEnv(t)
	hostPort := strings.TrimPrefix(serverURL, "http://")
	if out := mustRunCLI(t, "whoami", "--server", hostPort); !strings.Contains(out, "admin") {
		t.Errorf("--server %s: whoami printed %q", hostPort, out)
	}
	t.Setenv("DML_SERVER", hostPort)
	if out := mustRunCLI(t, "whoami"); !strings.Contains(out, "admin") {
		t.Errorf("DML_SERVER=%s: whoami printed %q", hostPort, out)
	}

	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"localhost:8080", "http://localhost:8080"},
		{"[::1]:8080", "http://[::1]:8080"},
		{"dml.example.com", "https://dml.example.com"},
		{"dml.example.com:8443/", "https://dml.example.com:8443/"},
		{"10.0.0.5:8080", "https://10.0.0.5:8080"},
		{"http://dml.example.com", "http://dml.example.com"},
		{"https://127.0.0.1:8443", "https://127.0.0.1:8443"},
	} {
		got, err := completeServerURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("completeServerURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}

	for _, bad := range []string{"ftp://dml.example.com", "http://", "dml.example.com:port", "http://dml.example.com?x=1", " "} {
		for _, how := range []string{"flag", "env"} {
			args := []string{"whoami"}
			if how == "flag" {
				args = append(args, "--server", bad)
			} else {
				t.Setenv("DML_SERVER", bad)
			}
			_, _, err := runCLI(t, args...)
			if err == nil || !strings.Contains(err.Error(), "http(s)://HOST[:PORT]") || strings.Contains(err.Error(), "first path segment") {
				t.Errorf("server %q by %s: %v; want an explanation naming http(s)://HOST[:PORT]", bad, how, err)
			}
			if how == "env" && (err == nil || !strings.Contains(err.Error(), "DML_SERVER")) {
				t.Errorf("server %q by DML_SERVER: %v; want the error to name DML_SERVER", bad, err)
			}
		}
	}
}

// TestEmptyListsSaySo: every listing prints, as a table, one line saying
// that nothing matched (and what the filters were) rather than a lone
// header; as JSON it still prints its (empty) list.
func TestEmptyListsSaySo(t *testing.T) {
	cliEnv(t)
	src, _ := writeRandomFile(t, 64)
	mustRunCLI(t, "push", "payments/api", "1.0.0", src)
	var hook struct{ ID string }
	if err := json.Unmarshal([]byte(mustRunCLI(t, "webhook", "add", "--url", "http://127.0.0.1:1/hook",
		"--secret-file", writeTemp(t, "hook.secret", "cli-test-secret-0123456789"), "--event", "review.filed", "-o", "json")), &hook); err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "webhook", "delete", hook.ID)
	if err := json.Unmarshal([]byte(mustRunCLI(t, "webhook", "add", "--url", "http://127.0.0.1:1/hook",
		"--secret-file", writeTemp(t, "hook.secret", "cli-test-secret-0123456789"), "--event", "review.filed", "-o", "json")), &hook); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"artifact", "list", "--name", "payments/ap"}, `no artifacts match name "payments/ap"`},
		{[]string{"artifact", "list", "--name", "payments/api", "--state", "admitted"}, `no artifacts match name "payments/api", state admitted`},
		{[]string{"release", "list"}, "no releases"},
		{[]string{"release", "list", "--state", "deploying"}, "no releases match state deploying"},
		{[]string{"evidence", "list", "payments/api", "1.0.0"}, "no evidence for payments/api:1.0.0"},
		{[]string{"trust", "key", "list"}, "no trusted keys"},
		{[]string{"trust", "root", "list"}, "no trusted roots"},
		{[]string{"trust", "identity", "list"}, "no signer identities"},
		{[]string{"quota", "list"}, "no quotas"},
		{[]string{"retention", "policy", "list"}, "no retention policies"},
		{[]string{"webhook", "deliveries", hook.ID}, "no deliveries of webhook " + hook.ID},
		{[]string{"audit", "log", "--subject", "nothing/here"}, `no audit records match subject "nothing/here"`},
		{[]string{"audit", "access", "--principal", "nobody"}, `no access records match principal "nobody"`},
		{[]string{"events", "--match", "nothing/*"}, `no events match pattern "nothing/*"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := mustRunCLI(t, tc.args...)
			if strings.TrimSpace(out) != tc.want {
				t.Errorf("table output = %q, want %q", out, tc.want)
			}
			js := mustRunCLI(t, append(tc.args, "-o", "json")...)
			if strings.Contains(js, "no ") {
				t.Errorf("JSON output says %q", js)
			}
			for _, line := range strings.Split(strings.TrimSpace(js), "\n") {
				if line != "" && !json.Valid([]byte(js)) && !json.Valid([]byte(line)) {
					t.Errorf("JSON output is not JSON: %q", js)
				}
			}
		})
	}
	mustRunCLI(t, "webhook", "delete", hook.ID)
	if out := mustRunCLI(t, "webhook", "list"); strings.TrimSpace(out) != "no webhooks" {
		t.Errorf("webhook list = %q, want %q", out, "no webhooks")
	}
	if js := mustRunCLI(t, "webhook", "list", "-o", "json"); strings.TrimSpace(js) != "[]" {
		t.Errorf("webhook list -o json = %q, want []", js)
	}
}

// TestProgressLinesWithoutTerminal: where stderr is no terminal (a log,
// a pipe, a CI job) progress is a plain line every 5 seconds and, for a
// large transfer, at every tenth, never a bar; a small, quick transfer
// prints nothing.
func TestProgressLinesWithoutTerminal(t *testing.T) {
	const size = 1 << 30 // read from a reader that allocates nothing
	var log bytes.Buffer
	r, done := withProgress(&log, io.LimitReader(zeros{}, size), size, "uploading api.tar.gz")
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	done(true)
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 10 || lines[0] != "uploading api.tar.gz: 102.4 MiB of 1.0 GiB (10%)" ||
		lines[4] != "uploading api.tar.gz: 512.0 MiB of 1.0 GiB (50%)" || lines[9] != "uploading api.tar.gz: 1.0 GiB of 1.0 GiB (100%)" {
		t.Errorf("progress lines:\n%s\nwant ten lines, one per tenth, such as %q", log.String(), "uploading api.tar.gz: 512.0 MiB of 1.0 GiB (50%)")
	}
	if strings.ContainsAny(log.String(), "\r█|[") {
		t.Errorf("progress on a non-terminal draws a bar:\n%q", log.String())
	}

	log.Reset()
	r, done = withProgress(&log, bytes.NewReader(make([]byte, 1<<20)), 1<<20, "uploading small.tar.gz")
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	done(true)
	if log.Len() != 0 {
		t.Errorf("a small transfer printed progress: %q", log.String())
	}

	// Slow transfers, small ones too, get a line every 5 seconds.
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	p := newProgressLines(&log, 1<<20, "downloading payments/api:1.4.2", func() time.Time { return now })
	_, _ = p.Write(make([]byte, 1000))
	now = now.Add(4 * time.Second)
	_, _ = p.Write(make([]byte, 1000))
	now = now.Add(1 * time.Second)
	_, _ = p.Write(make([]byte, 1000))
	if got := log.String(); got != "downloading payments/api:1.4.2: 2.9 KiB of 1.0 MiB (0%)\n" {
		t.Errorf("after 5 s below a tenth: %q, want one line", got)
	}
	// A transfer of unknown size counts bytes.
	log.Reset()
	p = newProgressLines(&log, -1, "downloading payments/api:1.4.2", func() time.Time { return now })
	_, _ = p.Write(make([]byte, 3000))
	now = now.Add(5 * time.Second)
	_, _ = p.Write(make([]byte, 100))
	if got := log.String(); got != "downloading payments/api:1.4.2: 3.0 KiB\n" {
		t.Errorf("unknown size: %q", got)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
