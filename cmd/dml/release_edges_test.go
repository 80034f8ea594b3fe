package main

import (
	"strings"
	"testing"
)

// The edges a newcomer meets in the release commands: warnings about
// artifacts not admitted, an approval already counted, a role refusal
// that names the roles, a not-found that suggests the name meant, and a
// cancel that needs a reason.
func TestCLIReleaseEdges(t *testing.T) {
	cliEnv(t)
	src, _ := writeRandomFile(t, 1024)
	mustRunCLI(t, "push", "payments/api", "1.4.2", src) // no trust policy: quarantined
	rm := cliToken(t, "rm", "release-manager")
	alice := cliToken(t, "alice", "approver")
	pipeline := cliToken(t, "pipeline-2", "publisher")
	const name = "2026.11-payments"

	out, errOut, err := runCLI(t, "release", "create", name, "--token", rm, "--change-ref", "CHG-4711", "--title", "Payments",
		"--env", "staging", "--artifact", "payments/api:1.4.2", "--gate", "plan=2")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, errOut)
	}
	wantContains(t, "create output", out, "planning")
	wantContains(t, "create warnings (stderr)", errOut, "warning: payments/api:1.4.2 is quarantined, still unmet: no trust policy")
	_, errOut, err = runCLI(t, "release", "set-artifacts", name, "--token", rm, "--artifact", "payments/api:1.4.2")
	if err != nil {
		t.Fatalf("set-artifacts: %v\n%s", err, errOut)
	}
	wantContains(t, "set-artifacts warnings (stderr)", errOut, "warning: payments/api:1.4.2 is quarantined")

	// The same approver approving twice is told the second one was
	// already counted.
	_, errOut = mustRunCLIErr(t, "release", "approve", name, "--gate", "plan", "--token", alice)
	if strings.Contains(errOut, "already counted") {
		t.Fatalf("the first approval says already counted: %s", errOut)
	}
	_, errOut = mustRunCLIErr(t, "release", "approve", name, "--gate", "plan", "--token", alice)
	wantContains(t, "repeated approval (stderr)", errOut, "already counted", "1 of 2")

	// A publisher approving is told which role it lacks and which it has.
	_, _, err = runCLI(t, "release", "approve", name, "--gate", "plan", "--token", pipeline)
	if err == nil || !strings.Contains(err.Error(), "needs the approver role; your token has: publisher") {
		t.Fatalf("approve as a publisher: %v", err)
	}

	// A wrong name is answered with the name meant.
	if _, _, err = runCLI(t, "release", "show", "2026.11-paymnts"); err == nil || !strings.Contains(err.Error(), "did you mean "+name+"?") {
		t.Fatalf("show a misspelt release: %v", err)
	}
	if _, _, err = runCLI(t, "artifact", "show", "payments/ap", "1.4.2"); err == nil || !strings.Contains(err.Error(), "did you mean payments/api?") {
		t.Fatalf("show a misspelt artifact: %v", err)
	}

	// Cancel needs a reason.
	for _, args := range [][]string{{}, {"--reason", "  "}} {
		if _, _, err = runCLI(t, append([]string{"release", "cancel", name, "--token", rm}, args...)...); err == nil || !strings.Contains(err.Error(), "reason") {
			t.Fatalf("cancel %q: %v, want a refusal asking for a reason", args, err)
		}
	}
	out = mustRunCLI(t, "release", "cancel", name, "--token", rm, "--reason", "superseded by 2026.12-payments")
	wantContains(t, "cancel output", out, "cancelled")
	out = mustRunCLI(t, "audit", "log", "--subject", "release:"+name, "--output", "json")
	wantContains(t, "audit events", out, "superseded by 2026.12-payments")
}

// mustRunCLIErr is mustRunCLI that also returns stderr.
func mustRunCLIErr(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("dml %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}
