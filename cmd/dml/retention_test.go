package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testserver"
)

// testClock is a clock the test moves; the server's domain reads it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestRetentionRunThenFsckClean is the demonstration: a seeded
// server (several names, admitted versions beyond the keep count,
// quarantined and rejected pushes older than their ages, versions in an
// open and in a closed release), a dry run that lists exactly what would
// go, the real run that deletes it and records each deletion, then dml
// fsck with nothing wrong, and every kept version still pulls with
// verified content.
func TestRetentionRunThenFsckClean(t *testing.T) {
	clock := &testClock{now: time.Now().UTC()}
	cliEnv(t, testserver.WithClock(clock.Now))
	t.Setenv("COSIGN_PASSWORD", "")
	mustRunCLI(t, "trust", "key", "add", "ci", fixturePath("cosign.pub"))
	mustRunCLI(t, "trust", "policy", "set", writeTemp(t, "policy.yaml", `rules:
  - match: payments/**
    signatures:
      keys: [ci]
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [ci]
`))
	publisher := cliToken(t, "pipeline", "publisher")
	rm := cliToken(t, "rm", "release-manager")
	approver := cliToken(t, "cab", "approver")
	var issued wire.IssuedToken
	if err := json.Unmarshal([]byte(mustRunCLI(t, "token", "create", "--name", "agent", "--role", "deployer", "--env", "staging", "--output", "json")), &issued); err != nil {
		t.Fatal(err)
	}
	deployer := issued.Token
	key := fixturePath("cosign.key")

	dir := t.TempDir()
	contents := map[string][]byte{}
	push := func(name, version, attest string) {
		t.Helper()
		body := []byte(strings.Repeat(name+"@"+version+"\n", 64))
		path := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+"-"+version)
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		contents[name+":"+version] = body
		args := []string{"push", name, version, path, "--token", publisher}
		if attest != "" {
			args = append(args, "--sign-key", key, "--attest", fixturePath(attest), "--type", testResultType)
		}
		if attest == "test-result-failed.json" {
			// A rejected push fails, saying why; the version is kept.
			var ee *exitError
			if _, _, err := runCLI(t, args...); !errors.As(err, &ee) || ee.code != exitUnreachable {
				t.Fatalf("dml %s: %v; want exit %d (rejected)", strings.Join(args, " "), err, exitUnreachable)
			}
		} else {
			mustRunCLI(t, args...)
		}
		clock.advance(time.Minute)
	}
	// payments/api: five admitted versions, one quarantined, one rejected.
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"} {
		push("payments/api", v, "test-result-passed.json")
	}
	push("payments/api", "2.0.0-rc.1", "")
	push("payments/api", "0.9.0", "test-result-failed.json")
	// payments/web: two admitted versions, within the keep count.
	push("payments/web", "1.0.0", "test-result-passed.json")
	push("payments/web", "1.1.0", "test-result-passed.json")
	// tools/lint: no policy governs it.
	push("tools/lint", "0.1.0", "")

	state := func(name, version string) string {
		var a wire.Artifact
		if err := json.Unmarshal([]byte(mustRunCLI(t, "artifact", "show", name, version, "--output", "json")), &a); err != nil {
			t.Fatal(err)
		}
		return a.State
	}
	for ref, want := range map[string]string{"payments/api:1.0.0": "admitted", "payments/api:2.0.0-rc.1": "quarantined", "payments/api:0.9.0": "rejected"} {
		name, version, _ := strings.Cut(ref, ":")
		if got := state(name, version); got != want {
			t.Fatalf("%s is %s, want %s", ref, got, want)
		}
	}

	// payments/api:1.0.0 goes through a release to its close; 1.0.1 is in
	// a release still in planning.
	mustRunCLI(t, "release", "create", "closed-one", "--token", rm, "--change-ref", "CHG-1", "--title", "closed", "--env", "staging",
		"--artifact", "payments/api:1.0.0")
	mustRunCLI(t, "release", "approve", "closed-one", "--gate", "plan", "--token", approver)
	mustRunCLI(t, "release", "approve", "closed-one", "--gate", "build", "--token", approver)
	mustRunCLI(t, "release", "approve", "closed-one", "--gate", "deploy:staging", "--token", approver)
	var dep wire.DeploymentResult
	if err := json.Unmarshal([]byte(mustRunCLI(t, "release", "deploy", "closed-one", "--env", "staging", "--target", "k8s/staging", "--token", deployer, "--output", "json")), &dep); err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "release", "deploy", "closed-one", "--update", dep.Deployment.ID, "--status", "succeeded", "--token", deployer)
	mustRunCLI(t, "release", "review", "closed-one", "--outcome", "successful", "--summary", "no incidents", "--token", rm)
	mustRunCLI(t, "release", "approve", "closed-one", "--gate", "close", "--token", approver)
	mustRunCLI(t, "release", "create", "open-one", "--token", rm, "--change-ref", "CHG-2", "--title", "open", "--env", "staging",
		"--artifact", "payments/api:1.0.1")
	var rel wire.Release
	if err := json.Unmarshal([]byte(mustRunCLI(t, "release", "show", "closed-one", "--output", "json")), &rel); err != nil || rel.State != "closed" {
		t.Fatalf("closed-one is %q (%v), want closed", rel.State, err)
	}

	// A month and more later, a young quarantined push, then the policy.
	clock.advance(40 * 24 * time.Hour)
	push("payments/web", "1.2.0-dev", "")
	mustRunCLI(t, "retention", "policy", "set", "payments", "--pattern", "payments/**",
		"--keep-admitted", "2", "--delete-quarantined-after", "30", "--delete-rejected-after", "7")

	gone := []string{"payments/api:0.9.0", "payments/api:1.0.2", "payments/api:2.0.0-rc.1"}
	items := func(run wire.RetentionRun) []string {
		var out []string
		for _, it := range run.Items {
			out = append(out, it.Name+":"+it.Version)
		}
		slices.Sort(out)
		return out
	}

	dryTable := mustRunCLI(t, "retention", "run", "--dry-run")
	t.Logf("$ dml retention run --dry-run\n%s", dryTable)
	wantContains(t, "dry run", dryTable, "payments/api", "1.0.2", "admitted, older than the newest 2", "quarantined for more than 30 days",
		"rejected for more than 7 days", "would delete", "nothing (dry run)")
	var dry wire.RetentionRun
	if err := json.Unmarshal([]byte(mustRunCLI(t, "retention", "run", "--dry-run", "--output", "json")), &dry); err != nil {
		t.Fatal(err)
	}
	if got := items(dry); !slices.Equal(got, gone) || dry.Summary.Deleted != 0 || dry.Summary.Planned != 3 {
		t.Fatalf("dry run lists %v (%+v), want %v and nothing deleted", got, dry.Summary, gone)
	}
	if got := state("payments/api", "1.0.2"); got != "admitted" {
		t.Fatalf("after the dry run payments/api:1.0.2 is %q, want still admitted", got)
	}

	realTable := mustRunCLI(t, "retention", "run")
	t.Logf("$ dml retention run\n%s", realTable)
	wantContains(t, "real run", realTable, "deleted", "blobs freed")
	for _, ref := range gone {
		name, version, _ := strings.Cut(ref, ":")
		if _, _, err := runCLI(t, "artifact", "show", name, version); err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
			t.Errorf("%s after the run: %v, want NOT_FOUND", ref, err)
		}
	}
	deleted := auditActions(t, "artifact.deleted")
	var subjects []string
	for _, r := range deleted {
		subjects = append(subjects, r["subject"].(string))
		d := r["details"].(map[string]any)
		if d["policy"] != "payments" || d["reason"] == "" || d["digest"] == "" || d["state"] == "" || d["name"] == "" || d["version"] == "" {
			t.Errorf("artifact.deleted details %v lack name, version, digest, state, policy or reason", d)
		}
		if actor := r["actor"].(map[string]any); actor["name"] != "bootstrap-admin" {
			t.Errorf("artifact.deleted by %v, want the admin who ran it", actor)
		}
	}
	slices.Sort(subjects)
	if !slices.Equal(subjects, gone) {
		t.Errorf("artifact.deleted records for %v, want %v", subjects, gone)
	}
	if n := len(auditActions(t, "blob.collected")); n < len(gone) {
		t.Errorf("%d blob.collected records, want at least one per deleted version (%d)", n, len(gone))
	}
	// A second run finds nothing more.
	var again wire.RetentionRun
	if err := json.Unmarshal([]byte(mustRunCLI(t, "retention", "run", "--output", "json")), &again); err != nil || len(again.Items) != 0 {
		t.Errorf("second run: %+v %v, want nothing", again, err)
	}

	fsck, stderr, err := runCLI(t, "fsck")
	t.Logf("$ dml fsck\n%s", fsck)
	if err != nil {
		t.Fatalf("dml fsck after the run: %v\n%s\n%s", err, fsck, stderr)
	}
	wantContains(t, "fsck", fsck, "catalogue")
	for _, line := range strings.Split(fsck, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && slices.Contains([]string{"corrupt:", "missing:", "mismatches:", "objects:", "catalogue:", "unreadable:", "orphans:"}, f[len(f)-2]) && f[len(f)-1] != "0" {
			t.Errorf("fsck reports %q", line)
		}
	}

	// What stays pulls, verified.
	kept := []string{"payments/api:1.0.0", "payments/api:1.0.1", "payments/api:1.0.3", "payments/api:1.0.4",
		"payments/web:1.0.0", "payments/web:1.1.0", "payments/web:1.2.0-dev", "tools/lint:0.1.0"}
	for _, ref := range kept {
		name, version, _ := strings.Cut(ref, ":")
		if st := state(name, version); st != "admitted" {
			continue // kept (state answered), but not served until admitted
		}
		out := filepath.Join(t.TempDir(), "pulled")
		mustRunCLI(t, "pull", name, version, "--output-file", out)
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, contents[ref]) {
			t.Errorf("%s pulled %d bytes (%v), want its %d bytes", ref, len(got), err, len(contents[ref]))
		}
	}
}

// auditActions lists the audit log's records of action, decoded.
func auditActions(t *testing.T, action string) []map[string]any {
	t.Helper()
	out := mustRunCLI(t, "audit", "log", "--output", "json")
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewBufferString(out))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r["action"] == action {
			recs = append(recs, r)
		}
	}
	return recs
}
