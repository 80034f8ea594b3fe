package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// TestDemo seeds a fresh server with `dml demo` and checks, through the
// API, that it holds what the demo promises: a release in every state,
// deployments to staging and production, a review, a rejected and a
// quarantined artifact, and an audit log that verifies. A second run
// refuses, saying why.
func TestDemo(t *testing.T) {
	serverURL, admin := cliEnv(t)
	out := mustRunCLI(t, "demo")
	t.Logf("dml demo:\n%s", out)
	wantContains(t, "demo output", out, "RELEASES", "ARTIFACTS", "TOKENS", "console: "+serverURL+"/", "dml release list")

	ctx := context.Background()
	c, err := client.New(serverURL, admin)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]bool{}
	envs := map[string]bool{}
	reviewed := false
	for r, err := range c.Releases().All(ctx, client.ReleaseFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		states[r.State] = true
		for _, d := range r.Deployments {
			if d.Status == "succeeded" {
				envs[d.Environment] = true
			}
		}
		reviewed = reviewed || r.Review != nil
	}
	for _, s := range []lifecycle.ReleaseState{
		lifecycle.ReleasePlanning, lifecycle.ReleaseBuilding, lifecycle.ReleaseReleased, lifecycle.ReleaseDeploying,
		lifecycle.ReleaseDeployed, lifecycle.ReleaseReview, lifecycle.ReleaseClosed, lifecycle.ReleaseCancelled,
	} {
		if !states[string(s)] {
			t.Errorf("no release in state %s (states: %v)", s, states)
		}
	}
	if !envs["staging"] || !envs["production"] {
		t.Errorf("successful deployments to %v, want staging and production", envs)
	}
	if !reviewed {
		t.Error("no release has a review")
	}

	artStates := map[string][]string{}
	for a, err := range c.Artifacts().All(ctx, client.ArtifactFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		artStates[a.State] = append(artStates[a.State], a.Name+":"+a.Version)
	}
	if len(artStates["rejected"]) == 0 || len(artStates["quarantined"]) == 0 || len(artStates["admitted"]) < 4 {
		t.Errorf("artifacts by state %v: want a rejected, a quarantined and admitted ones", artStates)
	}
	names := map[string]bool{}
	for _, list := range artStates {
		for _, nv := range list {
			n, _, _ := strings.Cut(nv, ":")
			names[n] = true
		}
	}
	for _, n := range []string{"payments/api", "payments/worker", "web/storefront", "ledger/batch"} {
		if !names[n] {
			t.Errorf("no artifact %s", n)
		}
	}
	// Every role has a principal.
	toks, err := c.Tokens().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]bool{}
	for _, tk := range toks {
		for _, r := range tk.Roles {
			roles[r] = true
		}
	}
	for _, r := range []string{"publisher", "release-manager", "approver", "deployer", "auditor"} {
		if !roles[r] {
			t.Errorf("no token with role %s", r)
		}
	}

	wantContains(t, "audit verify", mustRunCLI(t, "audit", "verify"), "audit log OK")

	// Again: refused, nothing added.
	before := len(toks)
	_, _, err = runCLI(t, "demo")
	if err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("second dml demo: %v", err)
	}
	if toks, _ := c.Tokens().List(ctx); len(toks) != before {
		t.Errorf("the refused demo issued tokens: %d, was %d", len(toks), before)
	}
}

// TestDemoJSON: with --output json the summary is one JSON document with
// the releases, artifacts and tokens.
func TestDemoJSON(t *testing.T) {
	cliEnv(t)
	var sum struct {
		Releases  []struct{ Name, State string }
		Artifacts []struct{ Name, Version, State string }
		Tokens    []wire.IssuedToken
		Try       []string
	}
	if err := json.Unmarshal([]byte(mustRunCLI(t, "demo", "--output", "json")), &sum); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, r := range sum.Releases {
		states = append(states, r.State)
	}
	if len(sum.Releases) != len(demoReleases) || !slices.Contains(states, "closed") || len(sum.Tokens) == 0 || sum.Tokens[0].Token == "" || len(sum.Try) == 0 {
		t.Errorf("summary %+v", sum)
	}
}

// TestDemoDataDir runs the built binary as a newcomer would: `dml demo
// --data-dir DIR` starts a server on loopback, seeds it, prints how to
// reach it and serves until interrupted; the printed admin token works.
// A second run on the same directory refuses to touch it.
func TestDemoDataDir(t *testing.T) {
	bin := dmlBinary(t)
	dir := filepath.Join(t.TempDir(), "demo-data")
	cmd := exec.Command(bin, "demo", "--data-dir", dir, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var out strings.Builder
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var server, token string
	exportRE := regexp.MustCompile(`export DML_SERVER=(\S+) DML_TOKEN=(\S+)`)
	for l := range lines {
		out.WriteString(l + "\n")
		if m := exportRE.FindStringSubmatch(l); m != nil {
			server, token = m[1], m[2]
		}
		if strings.Contains(l, "dml audit verify") {
			break
		}
	}
	t.Logf("dml demo --data-dir:\n%s%s", out.String(), stderr.String())
	if server == "" || !strings.HasPrefix(server, "http://127.0.0.1:") {
		t.Fatalf("no server in the summary")
	}
	c, err := client.New(server, token)
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.Releases().List(context.Background(), client.ReleaseFilter{})
	if err != nil {
		t.Fatalf("the printed admin token: %v", err)
	}
	if len(page.Releases) != len(demoReleases) {
		t.Errorf("%d releases, want %d", len(page.Releases), len(demoReleases))
	}

	// Interrupted, it stops its server and exits cleanly.
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("dml demo after Ctrl-C: %v\n%s", err, stderr.String())
	}
	again, err := exec.Command(bin, "demo", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(again), "not empty") {
		t.Fatalf("dml demo on a used directory: %v\n%s", err, again)
	}
}
