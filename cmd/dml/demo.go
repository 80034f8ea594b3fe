package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"
)

// demoPolicy is the demo's trust policy: each team's pipeline key signs
// and attests a passing test run for the team's names. The payments rule
// is the README's and docs/quickstart.md's.
const demoPolicy = `rules:
  - match: payments/**
    signatures:
      keys: [payments-ci]
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [payments-ci]
  - match: web/**
    signatures:
      keys: [web-ci]
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [web-ci]
  - match: ledger/**
    signatures:
      keys: [ledger-ci]
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [ledger-ci]
`

func newDemoCmd(app *cli) *cobra.Command {
	var start, listen string
	cmd := &cobra.Command{
		Use:   "demo [--data-dir DIR [--listen ADDR]]",
		Short: "Fill an empty DML with a realistic data set, to look around (admins)",
		Long: `Seed an empty DML with demo data, so that every screen of the web console and every
command has something to show: four services of three teams (payments/api, payments/worker,
web/storefront, ledger/batch), each team's signing key trusted and a trust policy, signed and
tested versions, a rejected push (failed tests) and a quarantined one (no test result), a
token per role, and releases in every state — planning, building, released, deploying,
deployed, review, closed, cancelled — with approvals, deployments to staging and production,
and a post-implementation review.

With --server and an admin --token it seeds that server; it refuses a DML that already holds
artifacts, releases or a trust policy, so it never mixes with real data (run it once, on a
fresh server). With --data-dir DIR it starts a server on loopback (--listen, default
127.0.0.1:8080) with its data in DIR, a directory that must not exist or be empty, seeds it,
and keeps serving until interrupted (Ctrl-C); start it again later with
dml serve --data-dir DIR.

It prints what it made, the tokens (each role's secret, to sign in to the console with) and
where to look.`,
		Example: `  dml demo --data-dir ./demo-data
  DML_SERVER=http://127.0.0.1:8080 DML_TOKEN=<admin token> dml demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if start == "" {
				if cmd.Flags().Changed("listen") {
					return errors.New("--listen is for the server dml demo --data-dir starts")
				}
				return app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
					return runDemo(cmd, app, app.server, c, "", "")
				})(cmd, nil)
			}
			return startDemo(cmd, app, start, listen)
		},
	}
	cmd.Flags().StringVar(&start, "data-dir", "", "start a server with its data in DIR (new or empty) on loopback and seed it")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address the server started with --data-dir listens on")
	return cmd
}

// demoSummary is what the demo made, as printed.
type demoSummary struct {
	Server    string                `json:"server"`
	Console   string                `json:"console"`
	Tokens    []wire.IssuedToken    `json:"tokens"`
	Keys      []string              `json:"keys"`
	Artifacts []demoArtifactSummary `json:"artifacts"`
	Releases  []demoReleaseSummary  `json:"releases"`
	Try       []string              `json:"try"`
	DataDir   string                `json:"dataDir,omitempty"`
	// AdminToken is the admin token of a server the demo started itself
	// (--data-dir); never the token the demo was given.
	AdminToken string `json:"adminToken,omitempty"`
}

type demoArtifactSummary struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	State   string `json:"state"`
}

type demoReleaseSummary struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Title string `json:"title"`
}

// demoEnvironments are every demo release's environments, in order.
var demoEnvironments = []string{"staging", "production"}

// runDemo seeds the server c talks to (as an admin) and prints the summary.
// dataDir and adminSecret are those of a server the demo started itself.
func runDemo(cmd *cobra.Command, app *cli, server string, admin *client.Client, dataDir, adminSecret string) error {
	ctx := cmd.Context()
	if err := demoRefuseNonEmpty(ctx, admin); err != nil {
		return err
	}
	sum := demoSummary{Server: server, Console: strings.TrimRight(server, "/") + "/", DataDir: dataDir, Try: demoTry}
	sum.AdminToken = adminSecret
	s := demoSeeder{ctx: ctx, app: app, server: server, admin: admin, sum: &sum}
	if err := s.seed(); err != nil {
		return fmt.Errorf("dml demo: %w (the DML is now partly seeded: start again from a fresh data directory)", err)
	}
	return app.emit(cmd.OutOrStdout(), sum, func(w io.Writer) error { return printDemoSummary(w, sum) })
}

// demoRefuseNonEmpty refuses a DML that already holds data: the demo's
// names and its trust policy would mix with, or replace, real ones.
func demoRefuseNonEmpty(ctx context.Context, c *client.Client) error {
	var held []string
	arts, err := c.Artifacts().List(ctx, client.ArtifactFilter{Limit: 1})
	if err != nil {
		return err
	}
	if len(arts.Artifacts) > 0 {
		held = append(held, "artifacts")
	}
	rels, err := c.Releases().List(ctx, client.ReleaseFilter{Limit: 1})
	if err != nil {
		return err
	}
	if len(rels.Releases) > 0 {
		held = append(held, "releases")
	}
	if _, err := c.Trust().Policy(ctx); err == nil {
		held = append(held, "a trust policy")
	} else if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Code != "NOT_FOUND" {
		return err
	}
	if len(held) > 0 {
		return fmt.Errorf("this DML already holds %s (seeded by dml demo before, or real data): dml demo seeds only an empty DML; run it against a fresh server, or with --data-dir DIR to start one", strings.Join(held, " and "))
	}
	return nil
}

// demoSeeder makes the demo data through the API, as each role would.
type demoSeeder struct {
	ctx    context.Context
	app    *cli
	server string
	admin  *client.Client
	sum    *demoSummary
	as     map[string]*client.Client // by token name
	keys   map[string]signature.Signer
}

func (s *demoSeeder) seed() error {
	if err := s.tokens(); err != nil {
		return err
	}
	if err := s.trust(); err != nil {
		return err
	}
	if err := s.artifacts(); err != nil {
		return err
	}
	return s.releases()
}

func (s *demoSeeder) tokens() error {
	s.as = map[string]*client.Client{}
	for _, req := range []wire.TokenRequest{
		{Name: "build-pipeline", Roles: []string{"publisher"}},
		{Name: "carol", Roles: []string{"release-manager"}},
		{Name: "alice", Roles: []string{"approver"}},
		{Name: "bob", Roles: []string{"approver"}},
		{Name: "deploy-staging", Roles: []string{"deployer"}, Environments: []string{"staging"}},
		{Name: "deploy-prod", Roles: []string{"deployer"}, Environments: []string{"production"}},
		{Name: "audit", Roles: []string{"auditor"}},
	} {
		t, err := s.admin.Tokens().Create(s.ctx, req)
		if err != nil {
			return fmt.Errorf("token %s: %w", req.Name, err)
		}
		c, err := s.app.clientFor(s.server, t.Token)
		if err != nil {
			return err
		}
		s.as[req.Name] = c
		s.sum.Tokens = append(s.sum.Tokens, t)
	}
	return nil
}

// trust makes one key pair per team's pipeline, registers the public
// halves and sets the policy. The private halves live only in memory.
func (s *demoSeeder) trust() error {
	s.keys = map[string]signature.Signer{}
	for _, team := range []string{"payments", "web", "ledger"} {
		id := team + "-ci"
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
		if err != nil {
			return err
		}
		pub, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
		if err != nil {
			return err
		}
		if _, err := s.admin.Trust().AddKey(s.ctx, wire.TrustKeyRequest{ID: id, PublicKey: string(pub), Comment: team + " build pipeline (dml demo)"}); err != nil {
			return fmt.Errorf("key %s: %w", id, err)
		}
		s.keys[team] = sv
		s.sum.Keys = append(s.sum.Keys, id)
	}
	if _, err := s.admin.Trust().SetPolicy(s.ctx, []byte(demoPolicy)); err != nil {
		return fmt.Errorf("trust policy: %w", err)
	}
	return nil
}

// demoArtifacts are the pushes: "PASSED" and "FAILED" attest a test run
// with that result, "" attests none (the artifact stays quarantined).
var demoArtifacts = []struct{ name, version, tests string }{
	{"ledger/batch", "2.0.0", "PASSED"},
	{"ledger/batch", "2.1.0", "PASSED"},
	{"web/storefront", "3.2.0", "PASSED"},
	{"web/storefront", "3.3.0", "FAILED"},
	{"payments/api", "1.4.2", "PASSED"},
	{"payments/api", "1.4.3", "PASSED"},
	{"payments/api", "1.5.0", "PASSED"},
	{"payments/worker", "1.0.0", "PASSED"},
	{"payments/worker", "1.1.0", ""},
}

func (s *demoSeeder) artifacts() error {
	publisher := s.as["build-pipeline"]
	for _, a := range demoArtifacts {
		team, _, _ := strings.Cut(a.name, "/")
		signer := s.keys[team]
		// A small, distinct package: what it is, then some bytes.
		data := []byte(fmt.Sprintf("dml demo package %s %s\n", a.name, a.version))
		data = append(data, bytes.Repeat([]byte(a.name+":"+a.version+"\n"), 256)...)
		d := digest.FromBytes(data)
		if _, _, err := publisher.Artifacts().Push(s.ctx, client.PushRequest{
			Name: a.name, Version: a.version, MediaType: "application/gzip", Digest: d, Size: int64(len(data)), Body: bytes.NewReader(data),
		}); err != nil {
			return fmt.Errorf("push %s:%s: %w", a.name, a.version, err)
		}
		sig, err := signing.SignBlobCosign(signer, bytes.NewReader(data))
		if err != nil {
			return err
		}
		if _, _, err := publisher.Evidence().AddSignature(s.ctx, a.name, a.version, signatureFile(sig)); err != nil {
			return fmt.Errorf("signature of %s:%s: %w", a.name, a.version, err)
		}
		art, err := publisher.Artifacts().Get(s.ctx, a.name, a.version)
		if err != nil {
			return err
		}
		if a.tests != "" {
			env, err := signing.AttestBlob(signer, filepath.Base(a.name)+"-"+a.version+".tar.gz", d, signing.PredicateTestResult, demoTestResult(team, a.version, a.tests))
			if err != nil {
				return err
			}
			if _, art, err = publisher.Evidence().AddAttestation(s.ctx, a.name, a.version, env); err != nil {
				return fmt.Errorf("test result of %s:%s: %w", a.name, a.version, err)
			}
		}
		s.sum.Artifacts = append(s.sum.Artifacts, demoArtifactSummary{Name: a.name, Version: a.version, State: art.State})
	}
	return nil
}

// demoTestResult is an in-toto test-result predicate with that result
// ("PASSED" or "FAILED", when TestCheckout failed).
func demoTestResult(team, version, result string) []byte {
	run := "https://ci.example.internal/" + team + "/pipelines/" + version
	failed := []string{}
	if result == "FAILED" {
		failed = append(failed, "TestCheckout")
	}
	b, _ := json.Marshal(map[string]any{ // strings and lists of strings always marshal
		"result":        result,
		"configuration": []map[string]string{{"name": "ci", "uri": run}},
		"url":           run + "/tests",
		"passedTests":   []string{"TestSmoke"},
		"warnedTests":   []string{},
		"failedTests":   failed,
	})
	return b
}

// demoRelease is one release and how far the demo takes it.
type demoRelease struct {
	name, title, changeRef string
	artifacts              []wire.ReleaseArtifactRef
	gates                  map[string]wire.GateSetting
	// steps run in order; each takes the release one step further.
	steps []string
}

func demoRefs(nv ...string) []wire.ReleaseArtifactRef {
	var out []wire.ReleaseArtifactRef
	for _, s := range nv {
		n, v, _ := strings.Cut(s, ":")
		out = append(out, wire.ReleaseArtifactRef{Name: n, Version: v})
	}
	return out
}

// demoLife is a release's life, step by step, in process order.
var demoLife = []string{
	"approve:plan", "approve:build",
	"approve:deploy:staging", "deploy:staging", "approve:deploy:production", "deploy:production",
	"review", "approve:close",
}

// through returns the steps of demoLife up to and including last.
func through(last string) []string {
	return demoLife[:slices.Index(demoLife, last)+1]
}

var demoReleases = []demoRelease{
	{name: "2026.09-ledger", title: "Ledger batch 2.0: new settlement format", changeRef: "CHG-0917", artifacts: demoRefs("ledger/batch:2.0.0"), steps: through("approve:close")},
	{name: "2026.10-storefront", title: "Storefront autumn campaign", changeRef: "CHG-1003", artifacts: demoRefs("web/storefront:3.2.0"), steps: through("review")},
	{name: "2026.11-payments", title: "Payments November release", changeRef: "CHG-1042", artifacts: demoRefs("payments/api:1.4.2", "payments/worker:1.0.0"),
		gates: map[string]wire.GateSetting{"deploy:production": {Approvals: 2}}, steps: through("deploy:production")},
	{name: "2026.11-payments-fix", title: "Payments API fix for refunds", changeRef: "CHG-1077", artifacts: demoRefs("payments/api:1.4.3"), steps: through("deploy:staging")},
	{name: "2026.12-payments", title: "Payments December release", changeRef: "CHG-1101", artifacts: demoRefs("payments/api:1.5.0"), steps: through("approve:build")},
	{name: "2026.12-ledger", title: "Ledger batch 2.1", changeRef: "CHG-1112", artifacts: demoRefs("ledger/batch:2.1.0"), steps: through("approve:plan")},
	{name: "2027.01-storefront", title: "Storefront January sale", changeRef: "CHG-1130", artifacts: demoRefs("web/storefront:3.2.0")},
	{name: "2026.11-storefront-redesign", title: "Storefront redesign", changeRef: "CHG-1050", artifacts: demoRefs("web/storefront:3.2.0"), steps: []string{"cancel"}},
}

func (s *demoSeeder) releases() error {
	carol := s.as["carol"]
	for _, d := range demoReleases {
		r, err := carol.Releases().Create(s.ctx, wire.CreateReleaseRequest{
			Name: d.name,
			PlanRequest: wire.PlanRequest{ChangeRef: d.changeRef, Title: d.title, Environments: demoEnvironments, Plan: wire.PlanDetails{
				Description: d.title + " (dml demo)", Risk: "medium", BackoutPlan: "redeploy the previous release",
			}},
			Artifacts: d.artifacts, Gates: d.gates,
		})
		if err != nil {
			return fmt.Errorf("release %s: %w", d.name, err)
		}
		for _, step := range d.steps {
			if r, err = s.step(r, step); err != nil {
				return fmt.Errorf("release %s, %s: %w", d.name, step, err)
			}
		}
		s.sum.Releases = append(s.sum.Releases, demoReleaseSummary{Name: r.Name, State: r.State, Title: d.title})
	}
	return nil
}

// step takes release r one step: an approval of a gate (alice, and bob
// too when the gate needs two), a successful deployment, the review, or
// cancelling it.
func (s *demoSeeder) step(r wire.Release, step string) (wire.Release, error) {
	switch {
	case strings.HasPrefix(step, "approve:"):
		gate := strings.TrimPrefix(step, "approve:")
		g, ok := r.Gate(gate)
		if !ok {
			return r, fmt.Errorf("no gate %s", gate)
		}
		var err error
		for i, who := range []string{"alice", "bob"} {
			if i >= g.Required {
				break
			}
			r, err = s.as[who].Releases().Decide(s.ctx, r.Name, wire.ApprovalRequest{Gate: gate, Decision: wire.DecisionApprove, Digest: g.ExpectedDigest, Comment: "CAB: approved (dml demo)"})
			if err != nil {
				return r, err
			}
		}
		return r, nil
	case strings.HasPrefix(step, "deploy:"):
		env := strings.TrimPrefix(step, "deploy:")
		agent := map[string]string{"staging": "deploy-staging", "production": "deploy-prod"}[env]
		res, err := s.as[agent].Releases().RecordDeployment(s.ctx, r.Name, wire.DeploymentRequest{
			Environment: env, Target: "k8s/" + env + "-eu", Status: "succeeded", Notes: "smoke tests green",
			VerifiedDigests: []digest.Digest{r.ManifestDigest},
		})
		return res.Release, err
	case step == "review":
		return s.as["carol"].Releases().FileReview(s.ctx, r.Name, wire.ReviewRequest{
			Outcome: "successful_with_issues", Summary: "Deployed in the window; one slow checkout page for an hour after the change.",
			Incidents: []string{"INC-2048"}, ObjectivesMet: true,
		})
	case step == "cancel":
		return s.as["carol"].Releases().Cancel(s.ctx, r.Name, "superseded by 2027.01-storefront")
	}
	return r, fmt.Errorf("unknown demo step %q", step)
}

func printDemoSummary(w io.Writer, s demoSummary) error {
	fmt.Fprintf(w, "dml demo seeded %s\n", s.Server)
	if s.DataDir != "" {
		fmt.Fprintf(w, "data directory: %s\n", s.DataDir)
	}
	fmt.Fprintf(w, "trusted keys:   %s\n\nRELEASES\n", strings.Join(s.Keys, ", "))
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSTATE\tTITLE")
	for _, r := range s.Releases {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.State, r.Title)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nARTIFACTS")
	tw = newTable(w)
	fmt.Fprintln(tw, "NAME\tVERSION\tSTATE")
	for _, a := range s.Artifacts {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.Version, a.State)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nTOKENS (sign in to the console with any of them; shown once)")
	tw = newTable(w)
	fmt.Fprintln(tw, "NAME\tROLES\tENVIRONMENTS\tTOKEN")
	for _, t := range s.Tokens {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, listOrNone(t.Roles), listOrNone(t.Environments), t.Token)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nLook at it:\n  console: %s (sign in with a token above, or the admin token)\n", s.Console)
	admin := "<admin token>"
	if s.AdminToken != "" {
		admin = s.AdminToken
		fmt.Fprintf(w, "  admin token: %s (the bootstrap admin of the server started in %s)\n", s.AdminToken, s.DataDir)
	}
	fmt.Fprintf(w, "  export DML_SERVER=%s DML_TOKEN=%s\n", s.Server, admin)
	for _, c := range demoTry {
		fmt.Fprintf(w, "  %s\n", c)
	}
	return nil
}

// demoTry are the commands the summary suggests.
var demoTry = []string{
	"dml release list",
	"dml release show 2026.11-payments",
	"dml artifact list",
	"dml status web/storefront 3.3.0      # rejected: its tests failed",
	"dml status payments/worker 1.1.0     # quarantined: no test result yet",
	"dml audit log --subject payments/api",
	"dml audit verify",
}

// listeningRE finds the address in serve's "dml listening" log line.
var listeningRE = regexp.MustCompile(`msg="dml listening" addr=(\S+)`)

// startDemo starts `dml serve` on loopback with its data in dir, seeds it
// and serves until interrupted. The server is this same binary, run as a
// child process: exactly what `dml serve --data-dir DIR` runs later.
func startDemo(cmd *cobra.Command, app *cli, dir, listen string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("--data-dir %s: the directory is not empty; give a new or empty one (to run the DML it holds: dml serve --data-dir %s)", dir, dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	secret := access.NewSecret()
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	srv := exec.Command(exe, "serve", "--listen", listen, "--data-dir", dir)
	srv.Env = append(os.Environ(), "DML_BOOTSTRAP_TOKEN="+secret)
	stderr, err := srv.StderrPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, logFile))
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		exited <- srv.Wait()
	}()
	shutdown := func() error {
		_ = srv.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			return err
		case <-time.After(40 * time.Second):
			_ = srv.Process.Kill()
			return <-exited
		}
	}
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		return fmt.Errorf("dml serve exited before listening (%v); its log: %s", err, logPath)
	case <-time.After(60 * time.Second):
		_ = shutdown()
		return fmt.Errorf("dml serve did not start listening within a minute; its log: %s", logPath)
	case <-ctx.Done():
		return shutdown()
	}
	server := "http://" + addr
	admin, err := app.clientFor(server, secret)
	if err != nil {
		_ = shutdown()
		return err
	}
	if err := runDemo(cmd, app, server, admin, dir, secret); err != nil {
		_ = shutdown()
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "\nServing %s from %s (log: %s). Ctrl-C stops it; dml serve --data-dir %s starts it again.\n", server, dir, logPath, dir)
	select {
	case err := <-exited:
		return fmt.Errorf("dml serve stopped: %v; its log: %s", err, logPath)
	case <-ctx.Done():
		return shutdown()
	}
}
