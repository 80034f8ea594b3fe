package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/wire"
)

// cliToken issues a token through `dml token create` as the admin.
func cliToken(t *testing.T, name string, roles ...string) string {
	t.Helper()
	args := []string{"token", "create", "--name", name, "--output", "json"}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	var issued wire.IssuedToken
	if err := json.Unmarshal([]byte(mustRunCLI(t, args...)), &issued); err != nil {
		t.Fatal(err)
	}
	return issued.Token
}

func wantContains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

func TestCLIRelease(t *testing.T) {
	cliEnv(t)
	src, _ := writeRandomFile(t, 1024)
	mustRunCLI(t, "push", "payments/api", "1.4.2", src)
	rm := cliToken(t, "rm", "release-manager")
	alice := cliToken(t, "alice", "approver")
	bob := cliToken(t, "bob", "approver")
	const name = "2026.11-payments"

	out := mustRunCLI(t, "release", "create", name, "--token", rm,
		"--change-ref", "CHG-4711", "--title", "Payments November release",
		"--env", "staging", "--env", "production", "--risk", "medium", "--backout-plan", "redeploy 2026.10-payments",
		"--window-start", "2026-11-14T22:00:00Z", "--window-end", "2026-11-15T02:00:00Z",
		"--artifact", "payments/api:1.4.2", "--gate", "deploy:production=2")
	wantContains(t, "create output", out, "planning", "GATES", "staging → production")

	show := func(args ...string) wire.Release {
		t.Helper()
		var r wire.Release
		out := mustRunCLI(t, append([]string{"release", "show", name, "--output", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("show json %q: %v", out, err)
		}
		return r
	}
	r := show()
	if r.State != "planning" || r.Plan.ChangeRef != "CHG-4711" || r.Plan.Window == nil || len(r.Artifacts) != 1 || len(r.Gates) != 5 {
		t.Fatalf("show json = %+v", r)
	}
	if g, _ := r.Gate("deploy:production"); g.Required != 2 {
		t.Errorf("deploy:production %+v", g)
	}

	out = mustRunCLI(t, "release", "show", name)
	wantContains(t, "show table", out, "state:", "planning", "plan digest:", r.PlanDigest.String(), "GATES", "REQUIRED", "RECEIVED",
		"EXPECTED DIGEST", "deploy:production", "payments/api", r.Artifacts[0].Digest.String(), "next:", "approve:plan")

	// The creator may not approve; an approver approves the digest the
	// CLI fetched and printed.
	if _, _, err := runCLI(t, "release", "approve", name, "--gate", "plan", "--token", rm); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("approve as the release manager: %v", err)
	}
	if _, _, err := runCLI(t, "release", "approve", name, "--gate", "plan", "--digest", "sha256:"+strings.Repeat("0", 64), "--token", alice); err == nil || !strings.Contains(err.Error(), "STALE_APPROVAL") {
		t.Fatalf("approve a stale digest: %v", err)
	}
	out = mustRunCLI(t, "release", "approve", name, "--gate", "plan", "--token", alice)
	wantContains(t, "approve output", out, "approving plan digest "+r.PlanDigest.String(), "state:", "building")
	if r = show(); r.State != "building" {
		t.Fatalf("after approve: %s", r.State)
	}
	if g, _ := r.Gate("plan"); !g.Authorized || len(g.Approvers) != 1 || g.Approvers[0] != "alice" {
		t.Errorf("plan gate %+v", g)
	}

	// A rejection needs a comment and is shown on the release; with
	// --output json the digest note goes to stderr and stdout stays JSON.
	if _, _, err := runCLI(t, "release", "reject", name, "--gate", "build", "--token", bob); err == nil || !strings.Contains(err.Error(), "comment") {
		t.Fatalf("reject without a comment: %v", err)
	}
	stdout, stderr, err := runCLI(t, "release", "reject", name, "--gate", "build", "--comment", "artifact not admitted yet", "--token", bob, "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("reject json %q: %v", stdout, err)
	}
	if r.State != "building" || r.LastRejection == nil || r.LastRejection.Comment != "artifact not admitted yet" || r.LastRejection.By != "bob" {
		t.Fatalf("after reject: %s %+v", r.State, r.LastRejection)
	}
	wantContains(t, "reject stderr", stderr, "rejecting manifest digest sha256:")
	wantContains(t, "show after reject", mustRunCLI(t, "release", "show", name), "LAST REJECTION", "artifact not admitted yet")

	// The build gate refuses a quarantined artifact.
	if _, _, err := runCLI(t, "release", "approve", name, "--gate", "build", "--token", alice); err == nil || !strings.Contains(err.Error(), "BUILD_BLOCKED") {
		t.Fatalf("approve build of a quarantined artifact: %v", err)
	}

	// Illegal transitions name the state.
	_, _, err = runCLI(t, "release", "set-plan", name, "--risk", "high", "--token", rm)
	if err == nil || !strings.HasPrefix(err.Error(), "INVALID_STATE: ") || !strings.Contains(err.Error(), "building") {
		t.Fatalf("set-plan while building: %v", err)
	}

	// Listing.
	var page wire.ReleasePage
	if err := json.Unmarshal([]byte(mustRunCLI(t, "release", "list", "--output", "json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Releases) != 1 || page.Releases[0].Name != name {
		t.Fatalf("list %+v", page)
	}
	wantContains(t, "list table", mustRunCLI(t, "release", "list", "--state", "building"), name, "building", "CHG-4711", "build (0/1)")
	if out := mustRunCLI(t, "release", "list", "--state", "closed"); strings.Contains(out, name) {
		t.Errorf("closed list shows %s:\n%s", name, out)
	}

	// Cancel, then nothing more can be decided.
	wantContains(t, "cancel output", mustRunCLI(t, "release", "cancel", name, "--reason", "superseded", "--token", rm), "cancelled", "none (final state)")
	if _, _, err := runCLI(t, "release", "approve", name, "--gate", "build", "--token", alice); err == nil || !strings.Contains(err.Error(), "INVALID_STATE") {
		t.Fatalf("approve a cancelled release: %v", err)
	}
	if _, _, err := runCLI(t, "release", "manifest", name); err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("manifest of an unsealed release: %v", err)
	}
}

func TestCLIReleaseFileAndRetire(t *testing.T) {
	cliEnv(t)
	src, _ := writeRandomFile(t, 1024)
	mustRunCLI(t, "push", "payments/api", "1.4.2", src)
	rm := cliToken(t, "rm", "release-manager")

	body := `{"name":"2026.12-payments","changeRef":"CHG-5000","title":"December","environments":["staging"],
	  "plan":{"risk":"low","backoutPlan":"redeploy"},"artifacts":[{"name":"payments/api","version":"1.4.2"}],
	  "gates":{"plan":{"approvals":2}}}`
	file := filepath.Join(t.TempDir(), "release.json")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var r wire.Release
	out := mustRunCLI(t, "release", "create", "--file", file, "--title", "December release", "--token", rm, "--output", "json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if g, _ := r.Gate("plan"); r.Name != "2026.12-payments" || r.Plan.Title != "December release" || r.Plan.Risk != "low" || g.Required != 2 || len(r.Artifacts) != 1 {
		t.Fatalf("created from file %+v", r)
	}

	// set-plan without --file keeps what the flags do not change.
	out = mustRunCLI(t, "release", "set-plan", r.Name, "--risk", "high", "--token", rm, "--output", "json")
	var r2 wire.Release
	if err := json.Unmarshal([]byte(out), &r2); err != nil {
		t.Fatal(err)
	}
	if r2.Plan.Risk != "high" || r2.Plan.Title != "December release" || r2.PlanDigest == r.PlanDigest {
		t.Errorf("after set-plan: %+v", r2.Plan)
	}
	wantContains(t, "set-artifacts", mustRunCLI(t, "release", "set-artifacts", r.Name, "--artifact", "payments/api:1.4.2", "--token", rm), "payments/api", "1.4.2")
	if _, _, err := runCLI(t, "release", "create", "x", "--change-ref", "C", "--title", "T", "--env", "staging", "--artifact", "nope", "--token", rm); err == nil || !strings.Contains(err.Error(), "NAME:VERSION") {
		t.Errorf("bad --artifact: %v", err)
	}

	wantContains(t, "retire output", mustRunCLI(t, "artifact", "retire", "payments/api", "1.4.2"), "retired by", "bootstrap-admin")
	_, _, err := runCLI(t, "release", "create", "2027.01-payments", "--change-ref", "CHG-6000", "--title", "January", "--env", "staging",
		"--artifact", "payments/api:1.4.2", "--token", rm)
	if err == nil || !strings.Contains(err.Error(), "ARTIFACT_RETIRED") {
		t.Fatalf("create with a retired artifact: %v", err)
	}
}

// TestCLIGateDefaults: an admin sets default quorums with the CLI and a
// new release picks them up.
func TestCLIGateDefaults(t *testing.T) {
	cliEnv(t)
	out := mustRunCLI(t, "release", "gate-defaults")
	if !strings.Contains(out, "no defaults") {
		t.Fatalf("defaults before any set:\n%s", out)
	}
	out = mustRunCLI(t, "release", "gate-defaults", "--set", "deploy:production=2", "--set", "close=2")
	if !strings.Contains(out, "deploy:production  2") || !strings.Contains(out, "close              2") {
		t.Fatalf("defaults after set:\n%s", out)
	}
	if _, _, err := runCLI(t, "release", "gate-defaults", "--set", "merge=2"); err == nil || !strings.Contains(err.Error(), "INVALID_INPUT") {
		t.Fatalf("unknown gate: %v", err)
	}
	rm := strings.TrimSpace(mustRunCLI(t, "token", "create", "--name", "rm", "--role", "release-manager", "--output", "json"))
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(rm), &tok); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DML_TOKEN", tok.Token)
	out = mustRunCLI(t, "release", "create", "r1", "--change-ref", "CHG-1", "--title", "t", "--env", "staging", "--env", "production", "--output", "json")
	var rel struct {
		Gates []struct {
			Gate     string `json:"gate"`
			Required int    `json:"required"`
		} `json:"gates"`
	}
	if err := json.Unmarshal([]byte(out), &rel); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, g := range rel.Gates {
		want := 1
		if g.Gate == "deploy:production" || g.Gate == "close" {
			want = 2
		}
		if g.Required != want {
			t.Errorf("gate %s needs %d, want %d", g.Gate, g.Required, want)
		}
	}
}
