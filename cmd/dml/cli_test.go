package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/events"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestEveryCommandPrintsJSON walks the command tree and runs every command
// that prints (every runnable command but serve, help and completion;
// command groups only print their help) with -o json, in one realistic
// sequence against an in-process server: its stdout must be exactly one
// JSON document, or, for the commands marked as streams (fsck, gc, audit
// log), one JSON object per line, and every time in it must be RFC 3339
// in UTC. A command added without a step here fails the test.
func TestEveryCommandPrintsJSON(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer receiver.Close()
	serverURL, _ := cliEnv(t, testserver.WithDispatcher(events.DispatchConfig{Poll: 20 * time.Millisecond, Backoff: 10 * time.Millisecond}))
	t.Setenv("COSIGN_PASSWORD", "")
	r := &jsonRun{t: t, seen: map[string]bool{}}
	dir := t.TempDir()
	pkg, key, pub := fixturePath(fixtureArtifact), fixturePath("cosign.key"), fixturePath("cosign.pub")

	r.json("version")
	r.json("--version")
	r.json("trust", "key", "add", "ci", pub, "--comment", "payments pipeline")
	r.json("trust", "key", "add", "old", fixturePath("untrusted/cosign.pub"))
	r.json("trust", "key", "revoke", "old")
	r.json("trust", "key", "list")
	r.json("trust", "policy", "set", writeTemp(t, "policy.yaml", ciPolicyYAML))
	r.json("trust", "policy", "show")
	rootDoc, _ := testkeys.TrustedRoot(t)
	rootFile := writeTemp(t, "trusted_root.json", string(rootDoc))
	r.json("trust", "root", "add", "public-good", rootFile)
	r.json("trust", "root", "add", "old", rootFile)
	r.json("trust", "root", "list")
	r.json("trust", "root", "show", "public-good")
	r.json("trust", "identity", "add", "gha-release", "--root", "public-good", "--issuer", "https://token.actions.githubusercontent.com",
		"--subject-regexp", `https://github\.com/acme/payments/\.github/workflows/release\.yml@refs/tags/v.*`,
		"--claim", "sourceRepositoryURI=https://github.com/acme/payments", "--claim", "githubWorkflowTrigger=push")
	r.json("trust", "identity", "add", "gha-old", "--root", "old", "--issuer", "https://token.actions.githubusercontent.com",
		"--subject", "https://github.com/acme/old/.github/workflows/release.yml@refs/heads/main")
	r.json("trust", "identity", "revoke", "gha-old")
	r.json("trust", "identity", "list")
	r.json("trust", "root", "revoke", "old")
	serverKey := filepath.Join(dir, "server.pub")
	r.json("trust", "server-key", "--output-file", serverKey)

	token := func(name string, extra ...string) (id, secret string) {
		var tok wire.IssuedToken
		r.decode(r.json(append([]string{"token", "create", "--name", name}, extra...)...), &tok)
		return tok.ID, tok.Token
	}
	_, publisher := token("pipeline", "--role", "publisher")
	_, rm := token("rm", "--role", "release-manager")
	_, approver := token("alice", "--role", "approver")
	_, deployer := token("deploy-staging", "--role", "deployer", "--env", "staging")
	spareID, _ := token("spare", "--role", "auditor", "--expires-in", "1h")
	r.json("token", "list")
	r.json("whoami")
	var hook wire.Webhook
	r.decode(r.json("webhook", "add", "--url", receiver.URL, "--secret-file", writeTemp(t, "hook.secret", "cli-test-secret-0123456789"),
		"--event", "token.*"), &hook)
	r.json("webhook", "list")
	r.json("webhook", "show", hook.ID)
	token("hooked", "--role", "auditor") // a token.issued event for the webhook
	delivered := waitDelivered(t, serverURL, hook.ID)
	r.json("webhook", "deliveries", hook.ID)
	r.json("webhook", "redeliver", hook.ID, strconv.FormatInt(delivered, 10))
	r.json("webhook", "delete", hook.ID)

	r.json("push", "payments/api", "1.4.2", pkg, "--token", publisher, "--sign-key", key,
		"--attest", fixturePath("test-result-passed.json"), "--type", testResultType, "--wait-admitted")
	r.json("push", "payments/api", "1.4.3", pkg, "--token", publisher)
	r.json("evidence", "add", "payments/api", "1.4.3", fixturePath(fixtureArtifact+".sig"))
	r.json("evidence", "list", "payments/api", "1.4.2")
	r.json("status", "payments/api", "1.4.2")
	r.json("artifact", "show", "payments/api", "1.4.2")
	r.json("artifact", "list")
	r.json("verify", "payments/api", "1.4.2", "--key", pub, "--server-key", serverKey)
	r.json("pull", "payments/api", "1.4.2", "--output-file", dir)
	r.json("sign", pkg, "--key", key, "--output-file", filepath.Join(dir, "pkg.sig"))
	r.json("attest", pkg, "--key", key, "--predicate", fixturePath("test-result-passed.json"), "--type", testResultType,
		"--output-file", filepath.Join(dir, "pkg.att.json"))

	r.json("release", "gate-defaults")
	r.json("release", "create", "r1", "--change-ref", "CHG-1", "--title", "one", "--env", "staging",
		"--artifact", "payments/api:1.4.2", "--token", rm)
	r.json("release", "show", "r1")
	r.json("release", "list")
	r.json("release", "set-plan", "r1", "--risk", "low", "--token", rm)
	r.json("release", "set-artifacts", "r1", "--artifact", "payments/api:1.4.2", "--token", rm)
	r.json("release", "reject", "r1", "--gate", "plan", "--comment", "no backout plan", "--token", approver)
	r.json("release", "approve", "r1", "--gate", "plan", "--token", approver)
	r.json("release", "approve", "r1", "--gate", "build", "--token", approver)
	r.json("release", "manifest", "r1", "--output-file", filepath.Join(dir, "r1.index.json"))
	r.json("release", "approve", "r1", "--gate", "deploy:staging", "--token", approver)
	r.json("release", "emergency", "r1", "--reason", "INC-1", "--until", "2h", "--token", rm)
	r.json("release", "change-policy", "--risk-level", "low", "--risk-level", "high")
	r.json("release", "change-policy")
	var dep wire.DeploymentResult
	r.decode(r.json("release", "deploy", "r1", "--env", "staging", "--target", "k8s/staging", "--token", deployer), &dep)
	r.json("release", "deploy", "r1", "--update", dep.Deployment.ID, "--status", "succeeded", "--token", deployer)
	r.json("release", "review", "r1", "--outcome", "successful", "--summary", "no incidents", "--token", rm)
	r.json("release", "wait", "r1", "--state", "review", "--timeout", "1m")
	r.json("events", "--event", "gate.*")
	r.json("release", "create", "r2", "--change-ref", "CHG-2", "--title", "two", "--env", "staging", "--token", rm)
	r.json("release", "cancel", "r2", "--reason", "superseded", "--token", rm)
	r.json("artifact", "retire", "payments/api", "1.4.3")

	r.json("audit", "verify", "--state-file", filepath.Join(dir, "audit-state.json"))
	r.json("audit", "log")
	r.json("audit", "access")
	prov := filepath.Join(dir, "prov.json")
	r.json("provenance", "export", "payments/api", "1.4.2", "--output-file", prov)
	c, err := client.New(serverURL, os.Getenv("DML_TOKEN"))
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := c.Audit().Key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.json("provenance", "verify", prov, "--log-key", writeTemp(t, "log.key", string(logKey)), "--server-key", serverKey, "--content-file", pkg)
	r.json("trust", "log-key", "--output-file", filepath.Join(dir, "log.key"))
	r.json("retention", "policy", "set", "payments", "--pattern", "payments/**", "--keep-admitted", "5", "--delete-rejected-after", "7")
	r.json("retention", "policy", "set", "spare", "--pattern", "spare/*", "--delete-quarantined-after", "1")
	r.json("retention", "policy", "list")
	r.json("retention", "policy", "delete", "spare")
	r.json("retention", "run", "--dry-run")
	r.json("retention", "run")
	r.json("quota", "set", "payments/", "--max-artifacts", "100")
	r.json("quota", "set", "spare/", "--max-bytes", "1000")
	r.json("quota", "list")
	r.json("quota", "delete", "spare/")
	r.json("healthcheck")
	r.json("fsck")
	r.json("gc", "--dry-run")
	r.json("token", "revoke", spareID)

	// The admin commands work on the storage of a stopped DML.
	embedded, moved := t.TempDir(), t.TempDir()
	stopped, err := testserver.Start(embedded)
	if err != nil {
		t.Fatal(err)
	}
	if err := stopped.Close(); err != nil {
		t.Fatal(err)
	}
	r.json("admin", "migrate-metadata", "--from", "sqlite:"+filepath.Join(embedded, "dml.db"), "--to", "sqlite:"+filepath.Join(moved, "dml.db"))
	r.json("admin", "copy-blobs", "--data-dir", embedded, "--to-data-dir", moved)
	r.json("admin", "reset-token", "--data-dir", embedded)

	// dml login and logout need the test OpenID provider: TestLoginCLI
	// runs them with -o json and checks what they print.
	r.seen["dml login"], r.seen["dml logout"] = true, true
	// dml demo seeds only an empty DML: TestDemoJSON runs it with -o json
	// on a fresh server and checks what it prints.
	r.seen["dml demo"] = true
	// dml bench starts its own servers: TestBenchShort runs it with -o json
	// from a built binary and checks the report it prints.
	r.seen["dml bench"] = true
	for _, cmd := range printingCommands(newRootCmd()) {
		if !r.seen[cmd.CommandPath()] {
			t.Errorf("%s prints, but was not run with --output json here: add a step for it", cmd.CommandPath())
		}
	}
}

// jsonRun runs commands with -o json and checks what they print.
type jsonRun struct {
	t    *testing.T
	seen map[string]bool // command paths run
}

func (r *jsonRun) json(args ...string) []byte {
	r.t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append(args, "-o", "json"))
	cmd, err := root.ExecuteContextC(context.Background())
	if err != nil {
		r.t.Fatalf("dml %s -o json: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
	}
	r.seen[cmd.CommandPath()] = true
	if cmd.Annotations[ndjsonAnnotation] != "" {
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		for _, line := range lines {
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				r.t.Fatalf("dml %s -o json: line %q is not a JSON object: %v", strings.Join(args, " "), line, err)
			}
			checkTimesUTC(r.t, cmd.CommandPath(), v)
		}
		return out.Bytes()
	}
	checkOneJSONDocument(r.t, cmd.CommandPath(), out.Bytes())
	return out.Bytes()
}

func (r *jsonRun) decode(data []byte, v any) {
	r.t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		r.t.Fatal(err)
	}
}

// checkOneJSONDocument fails unless data is one JSON value and nothing
// else, with its times in UTC.
func checkOneJSONDocument(t *testing.T, what string, data []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s -o json printed %q: %v", what, data, err)
	}
	if err := dec.Decode(new(any)); err != io.EOF {
		t.Fatalf("%s -o json printed more than one JSON document: %q", what, data)
	}
	checkTimesUTC(t, what, v)
}

var rfc3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)

// checkTimesUTC fails for a time in v that is not in UTC.
func checkTimesUTC(t *testing.T, what string, v any) {
	t.Helper()
	switch v := v.(type) {
	case string:
		if rfc3339.MatchString(v) && !strings.HasSuffix(v, "Z") {
			t.Errorf("%s printed the time %s, not in UTC", what, v)
		}
	case []any:
		for _, e := range v {
			checkTimesUTC(t, what, e)
		}
	case map[string]any:
		for _, e := range v {
			checkTimesUTC(t, what, e)
		}
	}
}

// printingCommands are the commands that print records: every runnable
// command but groups (which print their help), serve, help and
// completion.
func printingCommands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && !c.HasSubCommands() && c.Annotations[noOutputAnnotation] == "" {
			out = append(out, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// TestDocumentReportOnStderr: when stdout carries the document, the
// report (here as JSON) goes to stderr.
func TestDocumentReportOnStderr(t *testing.T) {
	cliEnv(t)
	src, data := writeRandomFile(t, 4096)
	mustRunCLI(t, "push", "payments/api", "1", src)
	stdout, stderr, err := runCLI(t, "pull", "payments/api", "1", "--output-file", "-", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(data) {
		t.Errorf("stdout is not the artifact's bytes")
	}
	var d document
	if err := json.Unmarshal([]byte(stderr), &d); err != nil {
		t.Fatalf("stderr %q: %v", stderr, err)
	}
	if d.File != "-" || d.Size != int64(len(data)) || d.Subject != "payments/api:1" || d.State != "quarantined" {
		t.Errorf("report = %+v", d)
	}
}

// flagMeanings is the CLI's vocabulary: the one meaning of every flag
// name. A new flag takes an existing name only if it means the same; a
// new name is added here, after checking no name already says it.
var flagMeanings = map[string]string{
	// Every command.
	"config":  "the config file",
	"server":  "the dml server's URL",
	"token":   "the bearer token",
	"output":  "the output format: table or json",
	"help":    "help for the command",
	"version": "print the build's version (dml --version)",
	// Files.
	"output-file":  "the file a command writes its document to (- for stdout)",
	"force":        "replace an existing --output-file",
	"file":         "a JSON request body to start from (release create, set-plan)",
	"content-file": "an artifact's bytes, to check against its digest",
	"state-file":   "the file audit verify keeps its state in",
	// Keys.
	"key":          "a cosign key file: the private key to sign with, or a public key to verify with",
	"sign-key":     "the cosign private key push signs with",
	"server-key":   "the server's key: its signing key for serve, a copy of its public key for verifiers",
	"log-key":      "the audit log's key: its note signing key for serve, its verifier key for verifiers",
	"trusted-keys": "a directory of trusted public keys",
	// Keyless verification, named as cosign names it.
	"trusted-root":                "a Sigstore trusted_root.json to verify keyless evidence with",
	"certificate-oidc-issuer":     "keyless: the OIDC issuer the certificate must name",
	"certificate-identity":        "keyless: the subject the certificate must name",
	"certificate-identity-regexp": "keyless: a regular expression the certificate's subject must match whole",
	"certificate-claim":           "keyless: a certificate extension the certificate must carry",
	// Listing.
	"all":       "follow cursors and list every page",
	"cursor":    "the page to start at",
	"limit":     "at most this many records (per page)",
	"start":     "the first audit record",
	"page-size": "records fetched per request",
	"state":     "a state (of an artifact, a release): to list only it, or to wait for",
	"name":      "a name: an artifact's (to list, to attest) or a principal's (a token's)",
	"subject":   "a subject: the records' to show (audit access), a certificate's (an identity's)",
	"principal": "only records of this principal",
	"since":     "only records from this point on: a time (audit access), after an event id (events)",
	// Artifacts and evidence.
	"media-type": "the artifact's media type",
	"attest":     "a predicate file to attest",
	"predicate":  "a predicate file to attest",
	"type":       "a predicate type URI",
	"kind":       "the kind of evidence",
	// Releases.
	"artifact":                  "an artifact version NAME:VERSION",
	"gate":                      "a gate (plan, build, deploy:ENV, close), with its quorum where one is set",
	"set":                       "a default gate quorum",
	"clear":                     "remove every default",
	"env":                       "an environment",
	"change-ref":                "the change record",
	"title":                     "the release title",
	"description":               "what the release changes",
	"window-start":              "the start of the deployment window",
	"window-end":                "the end of the deployment window",
	"backout-plan":              "the backout plan",
	"risk":                      "the risk assessment",
	"digest":                    "the digest decided on",
	"comment":                   "a comment",
	"root":                      "a trusted root's ID",
	"issuer":                    "an OIDC issuer URL",
	"subject-regexp":            "a regular expression a whole certificate subject matches",
	"claim":                     "a certificate extension NAME=VALUE an identity pins",
	"target":                    "what was deployed to",
	"status":                    "a deployment's status",
	"notes":                     "a deployment's notes",
	"verified":                  "a digest verified before deploying",
	"update":                    "the deployment to update",
	"outcome":                   "the review's outcome",
	"summary":                   "the review's summary",
	"incident":                  "an incident reference",
	"objectives-met":            "the release met its objectives",
	"reason":                    "why: a release is cancelled, an emergency change is needed",
	"until":                     "when an emergency change ends",
	"require-window":            "plans must have a change window",
	"risk-level":                "a risk level a plan may name",
	"change-ref-pattern":        "the pattern change references must match",
	"change-system-url":         "the external change system",
	"change-system-secret-file": "the change system's signing secret",
	// Tokens and maintenance.
	"role":       "a role to grant",
	"expires-in": "how long a token works",
	"grace":      "what gc leaves alone: younger than this",
	"dry-run":    "report, change nothing",
	// serve.
	"rotate-keys": "pin this server's signing keys in place of the pinned ones",
	"database":    "the metadata database: sqlite:PATH or a PostgreSQL URL",
	"listen":      "the address to listen on", "data-dir": "the data directory", "log-origin": "the audit log's origin",
	"log-level": "the log level", "log-format": "the log format", "staging-max-age": "the staging sweep's age",
	"upload-max-age": "the OCI upload sweep's age", "access-log-max-age": "the access log's retention",
	"access-log-max-records": "the access log's size", "shutdown-timeout": "the shutdown grace",
	"body-timeout": "the request body timeout", "body-min-bytes": "the request body rate",
	"console-session": "how long a web console sign-in lasts",
	"oidc-config":     "the single sign-on (OIDC) providers file",
	// TLS, the bootstrap token and the health check.
	"tls-cert": "the server's TLS certificate file", "tls-key": "the server's TLS key file",
	"ca-cert":              "a CA to trust for the server's certificate",
	"bootstrap-token-file": "the file a generated bootstrap admin token is written to",
	"live":                 "check that the server answers, not that it is ready",
	// login.
	"provider": "the single sign-on provider", "no-browser": "print the sign-in URL only",
	"s3-endpoint": "the S3 endpoint", "s3-bucket": "the S3 bucket", "s3-prefix": "the S3 key prefix",
	"s3-region": "the S3 region", "s3-insecure": "plain HTTP to S3", "s3-path-style": "path-style S3 addressing",
	"s3-part-size-mib": "the S3 part size",
	// Retention and quotas.
	"retention-interval":       "how often the retention policies run",
	"pattern":                  "the artifact name pattern a retention policy governs",
	"keep-admitted":            "the admitted versions a retention policy keeps per name",
	"delete-quarantined-after": "the days after which a quarantined push is deleted",
	"delete-rejected-after":    "the days after which a rejected push is deleted",
	"max-bytes":                "the bytes a quota allows",
	"max-artifacts":            "the versions a quota allows",
	// dml admin: moving storage.
	"from": "the database a copy reads", "to": "the database a copy writes", "to-data-dir": "the data directory a copy writes blobs to",
	// Events and webhooks.
	"event":            "an event type or prefix pattern (gate.*)",
	"match":            "an artifact or release name pattern (payments/*)",
	"follow":           "keep waiting for new events",
	"url":              "the URL a webhook posts to",
	"secret-file":      "the file holding a webhook's signing secret",
	"wait-admitted":    "block after a push until the version is admitted or rejected",
	"require-admitted": "fail a push unless the version is admitted",
	"token-file":       "the file a new token's secret is written to (mode 0600)",
	"timeout":          "how long a waiting command waits",
	"webhook-attempts": "attempts of a webhook delivery", "webhook-backoff": "the first webhook retry's pause",
	"webhook-max-backoff": "the longest webhook retry pause", "webhook-timeout": "a webhook call's time limit",
	"webhook-poll": "how often the webhook outbox is read",
	// completion.
	"no-descriptions": "completion without descriptions",
	// Metrics.
	"audit-verify-interval": "how often the server verifies its audit log",
	// bench.
	"dml-bin": "the dml executable bench measures", "registry-bin": "the reference registry's executable",
	"s3-access-key": "the S3 access key", "s3-secret-key": "the S3 secret key",
	"reps": "repetitions of each side of a bench scenario", "short": "a quick bench run",
	"json": "print the report as JSON (as --output json)", "clients": "concurrent clients of a bench scenario",
	"large-mib": "bench's large push size", "oci-mib": "bench's /v2/ blob size", "chunk-mib": "bench's PATCH size",
	"small-kib": "bench's small push size", "small-ops": "bench's small pushes per repetition",
	"admit-ops": "bench's admissions per repetition", "streams": "bench's concurrent pushes",
	"stream-mib": "bench's concurrent push size", "audit-records": "bench's audit log size",
	"verify-ops": "bench's verifications per repetition", "scenario": "a bench scenario to run",
	"work-dir": "where bench keeps its data",
}

// TestFlagsHaveOneMeaning walks every flag of every command: a shorthand
// stands for one flag name everywhere (-o is --output, the format); a name
// has one value type and one shorthand everywhere, and one meaning, in
// flagMeanings; --server, --token and --output exist once, on the root.
func TestFlagsHaveOneMeaning(t *testing.T) {
	type use struct{ typ, shorthand, where string }
	uses := map[string][]use{}
	shorthands := map[string]map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag() // cobra adds it when the command runs
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			uses[f.Name] = append(uses[f.Name], use{valueKind(f.Value.Type()), f.Shorthand, c.CommandPath()})
			if f.Shorthand != "" {
				if shorthands[f.Shorthand] == nil {
					shorthands[f.Shorthand] = map[string]bool{}
				}
				shorthands[f.Shorthand][f.Name] = true
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRootCmd()
	walk(root)

	for sh, names := range shorthands {
		if len(names) > 1 {
			t.Errorf("-%s stands for %v", sh, slices.Sorted(maps.Keys(names)))
		}
	}
	if o := shorthands["o"]; len(o) != 1 || !o["output"] {
		t.Errorf("-o stands for %v, want --output (the format)", o)
	}
	for name, us := range uses {
		if _, ok := flagMeanings[name]; !ok {
			t.Errorf("--%s (%s) is not in flagMeanings: give it a meaning there, or use a name that already has it", name, us[0].where)
		}
		for _, u := range us[1:] {
			if u.typ != us[0].typ || u.shorthand != us[0].shorthand {
				t.Errorf("--%s is a %s (-%s) on %s but a %s (-%s) on %s", name, us[0].typ, us[0].shorthand, us[0].where, u.typ, u.shorthand, u.where)
			}
		}
	}
	for name := range flagMeanings {
		if _, ok := uses[name]; !ok {
			t.Errorf("flagMeanings has --%s, which no command has", name)
		}
	}
	for _, name := range []string{"server", "token", "output"} {
		if us := uses[name]; len(us) != 1 || us[0].where != "dml" || root.PersistentFlags().Lookup(name) == nil {
			t.Errorf("--%s is defined on %v, want once, as a persistent flag of the root", name, us)
		}
	}
}

// valueKind is a flag value's type with lists and integer sizes folded:
// --env ENV and --env ENV... take the same kind of value.
func valueKind(typ string) string {
	typ = strings.TrimSuffix(strings.TrimSuffix(typ, "Slice"), "Array")
	if strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint") {
		return "int"
	}
	return typ
}

// TestOneClientBuilder: the client is built in one place, from the
// persistent flags; no command builds its own.
func TestOneClientBuilder(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var sites []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, "client.New(") {
				sites = append(sites, f+":"+strconv.Itoa(i+1))
			}
		}
	}
	if len(sites) != 1 || !strings.HasPrefix(sites[0], "cli.go:") {
		t.Errorf("client.New is called at %v, want once, in cli.go (cli.client)", sites)
	}
}

// TestConnectionFlagsPrecedence: --server, --token and --output come from
// the flag, else DML_<FLAG>, else the config file, for every command.
func TestConnectionFlagsPrecedence(t *testing.T) {
	serverURL, _ := cliEnv(t)
	secret := func(name string) string {
		var tok wire.IssuedToken
		if err := json.Unmarshal([]byte(mustRunCLI(t, "token", "create", "--name", name, "--role", "auditor", "-o", "json")), &tok); err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	fromConfig, fromEnv, fromFlag := secret("from-config"), secret("from-env"), secret("from-flag")
	t.Setenv("DML_CONFIG", writeTemp(t, "config.yaml", "server: "+serverURL+"\ntoken: "+fromConfig+"\noutput: json\n"))
	os.Unsetenv("DML_SERVER")
	os.Unsetenv("DML_TOKEN")

	whoami := func(args ...string) (name string, isJSON bool) {
		t.Helper()
		out := mustRunCLI(t, append([]string{"whoami"}, args...)...)
		var id wire.Identity
		if json.Unmarshal([]byte(out), &id) == nil {
			return id.Name, true
		}
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "name:"); ok {
				return strings.TrimSpace(v), false
			}
		}
		t.Fatalf("whoami printed %q", out)
		return "", false
	}
	if name, isJSON := whoami(); name != "from-config" || !isJSON {
		t.Errorf("config file only: %s (json %v), want from-config as JSON", name, isJSON)
	}
	t.Setenv("DML_TOKEN", fromEnv)
	t.Setenv("DML_OUTPUT", "table")
	t.Setenv("DML_SERVER", "http://127.0.0.1:1") // nothing listens there
	if name, isJSON := whoami("--server", serverURL); name != "from-env" || isJSON {
		t.Errorf("environment over the file: %s (json %v), want from-env as a table", name, isJSON)
	}
	if name, isJSON := whoami("--server", serverURL, "--token", fromFlag, "-o", "json"); name != "from-flag" || !isJSON {
		t.Errorf("flags over the environment: %s (json %v), want from-flag as JSON", name, isJSON)
	}
	if _, _, err := runCLI(t, "whoami"); err == nil {
		t.Error("DML_SERVER pointing nowhere did not win over the config file")
	}
}

// TestUnknownSubcommand: a typo in a subcommand, at any level, fails with
// cobra's suggestion instead of printing help and exiting 0.
func TestUnknownSubcommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "aprove", "2026.11-payments"}, "approve"},
		{[]string{"pul", "payments/api", "1.4.2"}, "pull"},
		{[]string{"trust", "key", "revok", "ci"}, "revoke"},
	} {
		_, _, err := runCLI(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Fatalf("dml %s: err = %v, want an unknown command", strings.Join(tt.args, " "), err)
		}
		if !strings.Contains(err.Error(), "Did you mean this?\n\t"+tt.want) {
			t.Errorf("dml %s: err = %q, want it to suggest %s", strings.Join(tt.args, " "), err, tt.want)
		}
	}

	// Every group: its first subcommand with its second letter dropped.
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasSubCommands() {
			return
		}
		var sub *cobra.Command
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() && len(s.Name()) >= 3 {
				sub = s
				break
			}
		}
		if sub != nil {
			typo := sub.Name()[:1] + sub.Name()[2:]
			args := append(strings.Fields(c.CommandPath())[1:], typo)
			if _, _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), "Did you mean this?") || !strings.Contains(err.Error(), sub.Name()) {
				t.Errorf("dml %s: err = %v, want unknown command with a suggestion of %s", strings.Join(args, " "), err, sub.Name())
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())

	// A group without a subcommand still prints its help.
	if out, _, err := runCLI(t, "release"); err != nil || !strings.Contains(out, "Available Commands") {
		t.Errorf("dml release: %v\n%s", err, out)
	}
}

// TestPullDestination: without --output-file, pull writes NAME's last
// component-VERSION in the current directory; a directory gets that name
// inside it; an existing file is replaced only with --force; nothing else
// is left in the directory.
func TestPullDestination(t *testing.T) {
	cliEnv(t)
	src, data := writeRandomFile(t, 64<<10)
	mustRunCLI(t, "push", "payments/api", "1.4.2", src)
	dir := t.TempDir()
	t.Chdir(dir)

	out := mustRunCLI(t, "pull", "payments/api", "1.4.2")
	if got := mustRead(t, "api-1.4.2"); !bytes.Equal(got, data) {
		t.Fatal("api-1.4.2 does not hold the artifact")
	}
	wantContains(t, "pull report", out, "→ api-1.4.2", "digest:")

	if err := os.WriteFile("api-1.4.2", []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, "pull", "payments/api", "1.4.2")
	if !errors.Is(err, errFileExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("pull over an existing file: %v, want errFileExists naming --force", err)
	}
	if got := string(mustRead(t, "api-1.4.2")); got != "mine" {
		t.Fatalf("the existing file was changed to %d bytes", len(got))
	}
	mustRunCLI(t, "pull", "payments/api", "1.4.2", "--force")
	if got := mustRead(t, "api-1.4.2"); !bytes.Equal(got, data) {
		t.Fatal("--force did not replace the file")
	}

	if err := os.Mkdir("dist", 0o755); err != nil {
		t.Fatal(err)
	}
	var d document
	if err := json.Unmarshal([]byte(mustRunCLI(t, "pull", "payments/api", "1.4.2", "--output-file", "dist", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("dist", "api-1.4.2"); d.File != want || d.Size != int64(len(data)) || d.Digest == "" || d.State != "quarantined" {
		t.Errorf("report %+v, want file %s", d, want)
	}
	if got := mustRead(t, filepath.Join("dist", "api-1.4.2")); !bytes.Equal(got, data) {
		t.Fatal("dist/api-1.4.2 does not hold the artifact")
	}
	for _, sub := range []string{".", "dist"} {
		entries, _ := os.ReadDir(sub)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := map[string][]string{".": {"api-1.4.2", "dist"}, "dist": {"api-1.4.2"}}[sub]; !slices.Equal(names, want) {
			t.Errorf("%s holds %v, want %v", sub, names, want)
		}
	}
}

// TestPullInterrupted: a pull cut off in the middle, by the server or by
// an interrupt (main cancels the context on SIGINT), leaves nothing
// behind, not even its temporary file.
func TestPullInterrupted(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	halfway := make(chan struct{}, 1)
	for _, tc := range []struct {
		name string
		// content serves the first half, then ends the response.
		cut func(w http.ResponseWriter, r *http.Request)
		// cancel interrupts the command.
		cancel bool
	}{
		{"the server goes away", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }, false},
		{"the user interrupts", func(w http.ResponseWriter, r *http.Request) {
			halfway <- struct{}{}
			<-r.Context().Done()
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/content") {
					_ = json.NewEncoder(w).Encode(wire.Artifact{Name: "payments/api", Version: "1.4.2", Digest: digest.FromBytes(data), Size: int64(len(data)), State: "admitted"})
					return
				}
				w.Header().Set("Docker-Content-Digest", digest.FromBytes(data).String())
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				_, _ = w.Write(data[:len(data)/2])
				w.(http.Flusher).Flush()
				tc.cut(w, r)
			}))
			defer srv.Close()
			dir := t.TempDir()
			t.Chdir(dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				go func() { <-halfway; cancel() }()
			}
			root := newRootCmd()
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			root.SetArgs([]string{"pull", "payments/api", "1.4.2", "--server", srv.URL, "--token", "x"})
			if err := root.ExecuteContext(ctx); err == nil {
				t.Fatal("an interrupted pull succeeded")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("an interrupted pull left %v", entries)
			}
		})
	}
}

// TestVersion: dml version and dml --version print the same, as a table
// or JSON; values set with -ldflags -X win over the build info.
func TestVersion(t *testing.T) {
	var v versionInfo
	if err := json.Unmarshal([]byte(mustRunCLI(t, "version", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version == "" || v.Commit == "" || v.Go == "" {
		t.Errorf("version = %+v", v)
	}
	if a, b := mustRunCLI(t, "version"), mustRunCLI(t, "--version"); a != b || !strings.Contains(a, "version:") || !strings.Contains(a, "commit:") {
		t.Errorf("dml version %q, dml --version %q", a, b)
	}

	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tt := range []struct {
		name              string
		ldVersion, commit string
		bi                *debug.BuildInfo
		want              versionInfo
	}{
		{"ldflags win", "v9.0.0", "fff", bi, versionInfo{Version: "v9.0.0", Commit: "fff", Go: "go1.26.0"}},
		{"build info", "", "", bi, versionInfo{Version: "v1.2.3", Commit: "abc123", Modified: true, Go: "go1.26.0"}},
		{"nothing known", "", "", nil, versionInfo{Version: "unknown", Commit: "unknown", Go: runtime.Version()}},
	} {
		got := buildVersion(tt.ldVersion, tt.commit, tt.bi)
		got.Platform = ""
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestBinaryVersionAndExitStatus builds dml as the Dockerfile does, with
// the version and commit set by -ldflags -X, and runs it: version and
// --version print them, and an unknown subcommand exits 1 with a
// suggestion on stderr.
func TestBinaryVersionAndExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "dml")
	// The Dockerfile's own -ldflags, with its build arguments set.
	build := exec.Command("go", "build", "-ldflags", dockerfileLDFlags(t, "v9.9.9-test", "0123456789abcdef"), "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version", "--output", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil || v.Version != "v9.9.9-test" || v.Commit != "0123456789abcdef" {
		t.Errorf("dml --version -o json = %s (%v)", out, err)
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.Contains(string(out), "v9.9.9-test") {
		t.Errorf("dml version = %s (%v)", out, err)
	}

	cmd := exec.Command(bin, "release", "aprove", "x")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("dml release aprove: %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), "Did you mean this?\n\tapprove") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

// TestFormatTime: tables show times as RFC 3339 in UTC, and JSON output
// converts every time it holds to UTC (and shows a nil list as []).
func TestFormatTime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	at := time.Date(2026, 11, 14, 23, 0, 0, 500, cet)
	if got := formatTime(at); got != "2026-11-14T22:00:00Z" {
		t.Errorf("formatTime = %s", got)
	}
	if got := formatTimeOrDash(nil); got != "-" {
		t.Errorf("formatTimeOrDash(nil) = %s", got)
	}
	type inner struct {
		At    time.Time  `json:"at"`
		Maybe *time.Time `json:"maybe"`
	}
	v := struct {
		Inner inner            `json:"inner"`
		List  []inner          `json:"list"`
		Map   map[string]inner `json:"map"`
		Any   any              `json:"any"`
		Raw   json.RawMessage  `json:"raw"`
		Nil   *inner           `json:"nil"`
		Empty []string         `json:"empty"`
	}{inner{at, &at}, []inner{{At: at}}, map[string]inner{"k": {At: at}}, at, json.RawMessage(`"2026-11-14T23:00:00+01:00"`), nil, nil}
	var buf bytes.Buffer
	if err := printJSON(&buf, v); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "2026-11-14T22:00:00.0000005Z"); n != 5 {
		t.Errorf("%d times in UTC, want 5:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), `"raw": "2026-11-14T23:00:00+01:00"`) {
		t.Errorf("raw JSON was changed:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `"empty": []`) || !strings.Contains(buf.String(), `"nil": null`) {
		t.Errorf("a nil list is not [] or a nil pointer not null:\n%s", buf.String())
	}
	if at.Location() != cet || v.Inner.Maybe.Location() != cet {
		t.Error("printJSON changed its argument")
	}
}

// waitDelivered returns the id of a delivered delivery of webhook id,
// reading its deliveries until one is (a bounded number of times).
func waitDelivered(t *testing.T, serverURL, id string) int64 {
	t.Helper()
	c, err := client.New(serverURL, os.Getenv("DML_TOKEN"))
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		list, err := c.Webhooks().Deliveries(context.Background(), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			if d.State == "delivered" {
				return d.ID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no delivery of webhook %s was delivered", id)
	return 0
}
