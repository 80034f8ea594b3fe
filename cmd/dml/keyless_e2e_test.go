package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testsigstore"
	"github.com/dmlproject/dml/signing"
)

// TestCLIKeylessAdmissionAndProvenance is keyless signing end to end
// through the CLI: an admin installs a trusted root and an identity pinned
// to one repository's release workflow, and a policy naming it; a
// pipeline pushes and adds a keyless signature and a keyless test-result
// attestation; `dml status` shows the artifact admitted with the identity
// that signed; `dml verify` re-verifies the evidence against the root and
// identity given on the command line; the provenance document, exported
// and then verified with no server, re-verifies the keyless evidence
// against the roots it carries, or against a root the verifier gives.
// Run with -v to see each command's output.
func TestCLIKeylessAdmissionAndProvenance(t *testing.T) {
	url, admin := cliEnv(t)
	const (
		issuer  = "https://token.actions.githubusercontent.com"
		release = "https://github.com/acme/payments/.github/workflows/release.yml@refs/tags/v1.4.2"
	)
	sigstore := testsigstore.New(t)
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "ci-sigstore.json")
	if err := os.WriteFile(rootFile, sigstore.RootJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	show := func(args ...string) string {
		t.Helper()
		out := mustRunCLI(t, args...)
		t.Logf("$ dml %s\n%s", strings.Join(args, " "), out)
		return out
	}

	show("trust", "root", "add", "ci-sigstore", rootFile)
	show("trust", "identity", "add", "payments-release", "--root", "ci-sigstore", "--issuer", issuer,
		"--subject-regexp", `https://github\.com/acme/payments/\.github/workflows/release\.yml@refs/tags/v.*`)
	policy := writeTemp(t, "policy.yaml", `rules:
  - match: payments/*
    signatures:
      keys: [payments-release]
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [payments-release]
`)
	show("trust", "policy", "set", policy)

	pkg := fixturePath(fixtureArtifact)
	content, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	show("push", "payments/api", "1.4.2", pkg)
	sig := writeTemp(t, "payments-api-1.4.2.tar.gz.sigstore.json", string(sigstore.SignBlob(t, release, issuer, content, time.Now().Add(5*time.Minute))))
	st, err := json.Marshal(signing.Statement{Type: signing.StatementV1, PredicateType: "https://in-toto.io/attestation/test-result/v0.1",
		Predicate: json.RawMessage(`{"result":"PASSED","passedTests":["unit","integration"]}`),
		Subject:   []signing.Subject{{Name: "payments-api-1.4.2.tar.gz", Digest: map[string]string{"sha256": signing.EvidenceDigest(content).Encoded()}}}})
	if err != nil {
		t.Fatal(err)
	}
	att := writeTemp(t, "test-result.sigstore.json", string(sigstore.Attest(t, release, issuer, st)))
	show("evidence", "add", "payments/api", "1.4.2", sig)
	show("evidence", "add", "payments/api", "1.4.2", att, "--kind", "attestation")

	status := show("status", "payments/api", "1.4.2")
	for _, want := range []string{"ADMITTED", "payments-release (keyless)", "signed by identity payments-release: subject " + release + ", issuer " + issuer + ", root ci-sigstore"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q", want)
		}
	}

	lk, sk := saveTrustAnchors(t, url, admin, dir)
	verified := show("verify", "payments/api", "1.4.2", "--server-key", sk, "--trusted-root", rootFile,
		"--certificate-oidc-issuer", issuer, "--certificate-identity", release)
	if !strings.Contains(verified, "verified: content, 1 signature and 1 attestation") || !strings.Contains(verified, "keyless: "+release) {
		t.Errorf("verify did not verify the keyless evidence")
	}
	// Another workflow's identity verifies nothing: not a failure of the
	// evidence, but no signature verifies with what was given.
	out, _, err := runCLI(t, "verify", "payments/api", "1.4.2", "--server-key", sk, "--trusted-root", rootFile,
		"--certificate-oidc-issuer", issuer, "--certificate-identity", strings.Replace(release, "release.yml", "nightly.yml", 1))
	if err == nil || !strings.Contains(out, checkUntrusted) {
		t.Errorf("verify with another identity: %v\n%s", err, out)
	}

	prov := filepath.Join(dir, "provenance.json")
	show("provenance", "export", "payments/api", "1.4.2", "--output-file", prov)
	verifiedOffline := show("provenance", "verify", prov, "--log-key", lk, "--server-key", sk, "--content-file", pkg)
	for _, want := range []string{"verified offline", "trusted root ci-sigstore version 1 installed by", "identity payments-release",
		"signature", "verified keyless: identity payments-release, " + release + " from " + issuer} {
		if !strings.Contains(verifiedOffline, want) {
			t.Errorf("provenance verify lacks %q", want)
		}
	}
	show("provenance", "verify", prov, "--log-key", lk, "--server-key", sk, "--trusted-root", rootFile)
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, testsigstore.New(t).RootJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "provenance", "verify", prov, "--log-key", lk, "--server-key", sk, "--trusted-root", "ci-sigstore="+other); err == nil {
		t.Error("provenance verify with another Sigstore's root given succeeded")
	}
}
