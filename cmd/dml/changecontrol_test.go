package main

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testserver"
)

// serverClock is the test server's clock, moved by the test.
type serverClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *serverClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// TestCLIEmergencyChange: a deployment asked for before the release's
// change window is refused with OUTSIDE_CHANGE_WINDOW; a release manager
// records an emergency change, two approvers authorise it, and the same
// deployment is recorded as an emergency deployment, highlighted in
// `dml release show` and in `dml audit log`.
func TestCLIEmergencyChange(t *testing.T) {
	base := time.Now().UTC().Truncate(time.Second)
	clock := &serverClock{t: base}
	cliEnv(t, testserver.WithClock(clock.now))
	t.Setenv("COSIGN_PASSWORD", "")
	mustRunCLI(t, "trust", "key", "add", "ci", fixturePath("cosign.pub"), "--comment", "payments pipeline")
	mustRunCLI(t, "trust", "policy", "set", writeTemp(t, "policy.yaml", ciPolicyYAML))
	pipeline := cliToken(t, "pipeline", "publisher")
	rm := cliToken(t, "rm", "release-manager")
	alice := cliToken(t, "alice", "approver")
	bob := cliToken(t, "bob", "approver")
	carol := cliToken(t, "carol", "approver")
	var deployer wire.IssuedToken
	if err := json.Unmarshal([]byte(mustRunCLI(t, "token", "create", "--name", "deploy-staging", "--role", "deployer", "--env", "staging", "--output", "json")), &deployer); err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "push", "payments/api", "1.4.2", fixturePath(fixtureArtifact), "--token", pipeline, "--sign-key", fixturePath("cosign.key"),
		"--attest", fixturePath("test-result-passed.json"), "--type", testResultType)

	// The window opens tomorrow evening; the server's clock says now.
	start, end := base.Add(24*time.Hour), base.Add(27*time.Hour)
	const rel = "2026.12-hotfix"
	mustRunCLI(t, "release", "create", rel, "--change-ref", "CHG-7001", "--title", "Payments hotfix", "--env", "staging",
		"--artifact", "payments/api:1.4.2", "--risk", "high", "--backout-plan", "redeploy 1.4.1",
		"--window-start", formatTime(start), "--window-end", formatTime(end), "--token", rm)
	for _, gate := range []string{"plan", "build", "deploy:staging"} {
		mustRunCLI(t, "release", "approve", rel, "--gate", gate, "--token", alice)
	}

	deploy := []string{"release", "deploy", rel, "--env", "staging", "--target", "k8s/staging", "--status", "succeeded", "--token", deployer.Token}
	_, _, err := runCLI(t, deploy...)
	if err == nil || !strings.HasPrefix(err.Error(), "OUTSIDE_CHANGE_WINDOW: ") || !strings.Contains(err.Error(), formatTime(start)) || !strings.Contains(err.Error(), formatTime(base)) {
		t.Fatalf("deploy before the window: %v, want OUTSIDE_CHANGE_WINDOW naming the window and now", err)
	}
	t.Logf("$ dml release deploy %s --env staging ... (now %s, window %s – %s)\n%v", rel, formatTime(base), formatTime(start), formatTime(end), err)

	// The emergency change: asked by the release manager, decided by two
	// approvers; the requester cannot decide it.
	until := base.Add(6 * time.Hour)
	const reason = "INC-4711: card payments failing in staging since 09:12"
	out := mustRunCLI(t, "release", "emergency", rel, "--reason", reason, "--until", formatTime(until), "--token", rm)
	wantContains(t, "emergency output", out, "EMERGENCY CHANGE", "requested — waiting for the emergency gate", reason, "approve:emergency")
	if _, _, err := runCLI(t, "release", "approve", rel, "--gate", "emergency", "--token", rm); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("the release manager approving the emergency: %v", err)
	}
	mustRunCLI(t, "release", "approve", rel, "--gate", "emergency", "--token", bob)
	if _, _, err := runCLI(t, deploy...); err == nil || !strings.Contains(err.Error(), "OUTSIDE_CHANGE_WINDOW") {
		t.Fatalf("deploy with one of two emergency approvals: %v", err)
	}
	mustRunCLI(t, "release", "approve", rel, "--gate", "emergency", "--token", carol)

	out = mustRunCLI(t, "release", "deploy", rel, "--env", "staging", "--target", "k8s/staging", "--status", "succeeded", "--token", deployer.Token)
	wantContains(t, "deploy under the emergency", out, "succeeded [EMERGENCY]")
	show := mustRunCLI(t, "release", "show", rel)
	wantContains(t, "release show", show, "EMERGENCY CHANGE", "AUTHORIZED", reason, formatTime(until), "succeeded [EMERGENCY]")
	t.Logf("$ dml release show %s\n%s", rel, show)

	audit := mustRunCLI(t, "audit", "log", "--subject", "release:"+rel)
	wantContains(t, "audit log", audit, "‼ EMERGENCY release.emergency.requested", "‼ EMERGENCY release.emergency.approved",
		"‼ EMERGENCY release.deployment", `"emergencyReason":"`+reason+`"`)
	for _, line := range strings.Split(audit, "\n") {
		if strings.Contains(line, "release.created") && strings.Contains(line, "EMERGENCY") {
			t.Errorf("an ordinary record is highlighted: %s", line)
		}
	}
	t.Logf("$ dml audit log --subject release:%s\n%s", rel, audit)
}
