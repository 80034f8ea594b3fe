package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/pgtest"
	"github.com/dmlproject/dml/store/s3/s3test"
)

// TestMigrateEmbeddedToShared grows an embedded DML into a shared one as
// docs/migrating.md tells an operator to: a `dml serve` on SQLite and a
// directory takes pushes with signatures and attestations, a release
// through its approvals, sealing and a deployment, and tokens (one
// revoked); `dml audit verify` saves its state; the server stops;
// `dml admin migrate-metadata` moves the metadata to PostgreSQL (the URL
// from DML_DATABASE) and `dml admin copy-blobs` the blobs to an S3 bucket
// (twice: the second run copies nothing); the keys are copied; a `dml
// serve` on PostgreSQL and the bucket starts. Then `dml audit verify` with
// the state saved before the move passes — the log is the same log, and
// it grows on from there — the artifacts pull with the same bytes, the
// tokens authenticate as before (the revoked one is still refused), the
// release and its sealed manifest read back the same, and fsck finds
// nothing wrong. No output carries the database password.
func TestMigrateEmbeddedToShared(t *testing.T) {
	database := pgtest.NewDatabase(t)
	bucket := s3test.Config(t)
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DML_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("COSIGN_PASSWORD", "")

	// The embedded DML, as `dml serve` starts with no flags but a data
	// directory.
	const admin = "embedded-admin-token-0123456789"
	embedded := t.TempDir()
	before := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + admin}, "--data-dir", embedded)
	t.Setenv("DML_SERVER", before.url())
	t.Setenv("DML_TOKEN", admin)

	mustRunCLI(t, "trust", "key", "add", "ci", fixturePath("cosign.pub"), "--comment", "payments pipeline")
	mustRunCLI(t, "trust", "policy", "set", writeTemp(t, "policy.yaml", ciPolicyYAML))
	issue := func(args ...string) wire.IssuedToken {
		t.Helper()
		var tok wire.IssuedToken
		if err := json.Unmarshal([]byte(mustRunCLI(t, append([]string{"token", "create", "--output", "json"}, args...)...)), &tok); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tokens := map[string]string{}
	for _, p := range []struct{ name, role string }{{"pipeline", "publisher"}, {"rm", "release-manager"}, {"alice", "approver"}, {"bob", "approver"}} {
		tokens[p.name] = issue("--name", p.name, "--role", p.role).Token
	}
	tokens["deploy-staging"] = issue("--name", "deploy-staging", "--role", "deployer", "--env", "staging").Token
	spare := issue("--name", "spare", "--role", "auditor")
	mustRunCLI(t, "token", "revoke", spare.ID)

	pkg := fixturePath(fixtureArtifact)
	mustRunCLI(t, "push", "payments/api", "1.4.2", pkg, "--token", tokens["pipeline"], "--sign-key", fixturePath("cosign.key"),
		"--attest", fixturePath("test-result-passed.json"), "--type", testResultType)
	tool, toolBytes := writeRandomFile(t, 256<<10)
	mustRunCLI(t, "push", "tools/migrator", "1.0.0", tool, "--token", tokens["pipeline"])

	const rel = "2026.12-payments"
	mustRunCLI(t, "release", "create", rel, "--change-ref", "CHG-5000", "--title", "Payments December", "--env", "staging",
		"--artifact", "payments/api:1.4.2", "--risk", "low", "--backout-plan", "redeploy 1.4.1", "--token", tokens["rm"])
	mustRunCLI(t, "release", "approve", rel, "--gate", "plan", "--token", tokens["alice"])
	mustRunCLI(t, "release", "approve", rel, "--gate", "build", "--token", tokens["alice"]) // seals
	mustRunCLI(t, "release", "approve", rel, "--gate", "deploy:staging", "--token", tokens["bob"])
	var dep wire.DeploymentResult
	if err := json.Unmarshal([]byte(mustRunCLI(t, "release", "deploy", rel, "--env", "staging", "--target", "k8s/staging",
		"--token", tokens["deploy-staging"], "--output", "json")), &dep); err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "release", "deploy", rel, "--update", dep.Deployment.ID, "--status", "succeeded", "--token", tokens["deploy-staging"])
	releaseBefore := mustRunCLI(t, "release", "show", rel, "--output", "json")
	manifestBefore := mustRunCLI(t, "release", "manifest", rel, "--output-file", "-")
	pullBefore := mustRunCLI(t, "pull", "payments/api", "1.4.2", "--output-file", "-") // and a download in the access log

	state := filepath.Join(t.TempDir(), "audit-state.json")
	saved := auditVerifyJSON(t, state)
	if !saved.OK || !saved.FirstVerification || saved.Records == 0 {
		t.Fatalf("audit verify before the move: %+v", saved)
	}
	before.stop()

	// The move. The URL, password and all, comes from DML_DATABASE.
	t.Setenv("DML_DATABASE", database)
	stdout, stderr, err := runCLI(t, "admin", "migrate-metadata", "--from", "sqlite:"+filepath.Join(embedded, "dml.db"), "--output", "json")
	if err != nil {
		t.Fatalf("migrate-metadata: %v\n%s", err, stderr)
	}
	t.Logf("dml admin migrate-metadata (stderr):\n%s", stderr)
	if password == "" || strings.Contains(stdout+stderr, password) {
		t.Errorf("migrate-metadata printed the database password (or the test has none)")
	}
	var m metadataCopy
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatal(err)
	}
	copied := map[string]int64{}
	for _, tr := range m.Tables {
		copied[tr.Table] = tr.Rows
	}
	for _, table := range []string{"artifacts", "tokens", "events", "evidence", "releases", "release_artifacts", "audit_records", "audit_hashes", "access_log"} {
		if copied[table] == 0 {
			t.Errorf("migrate-metadata copied no %s: %+v", table, m)
		}
	}
	if !m.Verified || m.AuditRecords != saved.Records || m.AuditRoot != saved.Root {
		t.Errorf("migrate-metadata: audit log of %d records, root %s (verified %v); audit verify saw %d, %s before the move",
			m.AuditRecords, m.AuditRoot, m.Verified, saved.Records, saved.Root)
	}
	// Run again, it is refused: the target holds the copy now.
	if _, _, err := runCLI(t, "admin", "migrate-metadata", "--from", "sqlite:"+filepath.Join(embedded, "dml.db")); err == nil ||
		!strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("a second migrate-metadata: %v; want a refusal, the target not being empty", err)
	}

	t.Setenv("DML_S3_ACCESS_KEY", bucket.AccessKey)
	t.Setenv("DML_S3_SECRET_KEY", bucket.SecretKey)
	s3Args := []string{"--s3-endpoint", bucket.Endpoint, "--s3-bucket", bucket.Bucket, "--s3-insecure"}
	var first, second blobCopy
	mustRunCLIJSON(t, &first, append([]string{"admin", "copy-blobs", "--data-dir", embedded}, s3Args...)...)
	mustRunCLIJSON(t, &second, append([]string{"admin", "copy-blobs", "--data-dir", embedded}, s3Args...)...)
	t.Logf("dml admin copy-blobs, twice: %+v; %+v", first, second)
	if first.Blobs < 4 || first.Copied != first.Blobs || first.Failed != 0 || second.Skipped != first.Blobs || second.Copied != 0 {
		t.Errorf("copy-blobs: first %+v, second %+v; want every blob copied, then every blob skipped", first, second)
	}

	// The shared DML: the same keys, metadata in PostgreSQL, blobs in S3.
	shared := t.TempDir()
	for _, key := range []string{"server-key.pem", "log-key"} {
		b, err := os.ReadFile(filepath.Join(embedded, key))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shared, key), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	after := startServer(t, []string{"DML_DATABASE=" + database, "DML_S3_ACCESS_KEY=" + bucket.AccessKey, "DML_S3_SECRET_KEY=" + bucket.SecretKey},
		append([]string{"--data-dir", shared}, s3Args...)...)
	t.Setenv("DML_SERVER", after.url())

	verified := auditVerifyJSON(t, state)
	t.Logf("dml audit verify --state-file (saved before the move) against the PostgreSQL+S3 server: %+v", verified)
	if !verified.OK || verified.FirstVerification || verified.PreviousRecords != saved.Records || verified.Records != saved.Records || verified.Root != saved.Root {
		t.Fatalf("audit verify after the move: %+v; saved before: %+v", verified, saved)
	}

	if got := mustRunCLI(t, "release", "show", rel, "--output", "json"); got != releaseBefore {
		t.Errorf("release after the move:\n%s\nbefore:\n%s", got, releaseBefore)
	}
	if got := mustRunCLI(t, "release", "manifest", rel, "--output-file", "-"); got != manifestBefore {
		t.Errorf("sealed manifest after the move differs")
	}
	if got := mustRunCLI(t, "pull", "payments/api", "1.4.2", "--output-file", "-"); got != pullBefore {
		t.Errorf("payments/api 1.4.2 pulls other bytes after the move")
	}
	if got := mustRunCLI(t, "pull", "tools/migrator", "1.0.0", "--output-file", "-"); !bytes.Equal([]byte(got), toolBytes) {
		t.Errorf("tools/migrator 1.0.0 pulls other bytes after the move")
	}
	for name, secret := range tokens {
		var who wire.Identity
		mustRunCLIJSON(t, &who, "whoami", "--token", secret)
		if who.Name != name {
			t.Errorf("token of %s is %s after the move", name, who.Name)
		}
	}
	if _, _, err := runCLI(t, "whoami", "--token", spare.Token); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("the revoked token after the move: %v; want it refused as revoked", err)
	}
	mustRunCLI(t, "fsck")

	// The log grows on from where it was.
	mustRunCLI(t, "push", "tools/migrator", "1.0.1", tool, "--token", tokens["pipeline"])
	grown := mustRunCLI(t, "audit", "verify", "--state-file", state)
	t.Logf("dml audit verify after one more push on the shared DML:\n%s", grown)
	wantContains(t, "audit verify after a push on the shared DML", grown, "audit log OK",
		fmt.Sprintf("consistent with the checkpoint saved earlier (%d records)", verified.Records))
	if logs := after.logs.String(); strings.Contains(logs, password) {
		t.Errorf("the shared server logged the database password")
	}
}

func auditVerifyJSON(t *testing.T, state string) auditVerifyReport {
	t.Helper()
	var rep auditVerifyReport
	stdout, stderr, err := runCLI(t, "audit", "verify", "--state-file", state, "--output", "json")
	if jerr := json.Unmarshal([]byte(stdout), &rep); jerr != nil || err != nil {
		t.Fatalf("audit verify: %v\n%s%s", err, stdout, stderr)
	}
	return rep
}

func mustRunCLIJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := mustRunCLI(t, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("dml %s --output json: %v\n%s", strings.Join(args, " "), err, out)
	}
}
