package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCosignInterop runs the real cosign CLI, when it is on PATH, against
// what dml makes and what dml serves: `cosign verify-blob` accepts `dml
// sign`, `cosign verify-blob-attestation` accepts `dml attest` and the
// server's admission receipt (with only the server's public key), and
// `dml evidence add` accepts a fresh `cosign sign-blob`. ./scripts/test.sh
// installs cosign v2.6.2; run alone without it, the test skips (outside CI)
// and the fixtures in testdata/cosign, made by cosign, stand in for it.
func TestCosignInterop(t *testing.T) {
	cosign, err := exec.LookPath("cosign")
	if err != nil {
		cosignMissing(t)
	}
	serverURL, publisher := signingEnv(t)
	home := t.TempDir() // cosign's TUF cache goes here, not into ~
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cosign, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "COSIGN_PASSWORD=")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output() // stdout only: cosign chats on stderr
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	pkg, key, pub := fixturePath(fixtureArtifact), fixturePath("cosign.key"), fixturePath("cosign.pub")
	dir := t.TempDir()

	sig := filepath.Join(dir, "pkg.sig")
	mustRunCLI(t, "sign", pkg, "--key", key, "--output-file", sig)
	run("verify-blob", "--key", pub, "--signature", sig, "--insecure-ignore-tlog=true", pkg)

	att := filepath.Join(dir, "test-result.dsse.json")
	mustRunCLI(t, "attest", pkg, "--key", key, "--predicate", fixturePath("test-result-passed.json"), "--type", testResultType, "--output-file", att)
	run("verify-blob-attestation", "--key", pub, "--signature", att, "--type", testResultType, "--insecure-ignore-tlog=true", pkg)

	mustRunCLI(t, "push", "payments/api", "1.4.2", pkg, "--token", publisher)
	cosignSig := filepath.Join(dir, "cosign.sig")
	if err := os.WriteFile(cosignSig, []byte(run("sign-blob", "--key", key, "--tlog-upload=false", pkg)), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "evidence", "add", "payments/api", "1.4.2", cosignSig, "--token", publisher)
	mustRunCLI(t, "evidence", "add", "payments/api", "1.4.2", att, "--token", publisher)

	a := artifactJSON(t, "payments/api", "1.4.2")
	if a.State != "admitted" {
		t.Fatalf("state %s", a.State)
	}
	receipt := filepath.Join(dir, "receipt.json")
	if err := os.WriteFile(receipt, a.Admission.Receipt, 0o600); err != nil {
		t.Fatal(err)
	}
	run("verify-blob-attestation", "--key", fetchServerKey(t, serverURL, publisher), "--signature", receipt,
		"--type", "https://dml.dev/admission/v1", "--insecure-ignore-tlog=true", pkg)
}

// cosignMissing skips a test that needs the real cosign CLI, except in CI
// (CI set), where ./scripts/test.sh installs it and a missing one is a
// failure.
func cosignMissing(t *testing.T) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal("cosign is not on PATH; ./scripts/test.sh installs it (go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.2)")
	}
	t.Skip("cosign is not on PATH (./scripts/test.sh installs it)")
}
