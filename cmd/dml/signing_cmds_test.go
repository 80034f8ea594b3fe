package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// The cosign v2.6.2 fixtures (testdata/cosign/README.md); the key's
// password is empty.
func fixturePath(name string) string { return filepath.Join("../../testdata/cosign", name) }

const (
	fixtureArtifact = "payments-api-1.4.2.tar.gz"
	testResultType  = "https://in-toto.io/attestation/test-result/v0.1"
	slsaType        = "https://slsa.dev/provenance/v1"
)

// ciPolicyYAML needs a signature by ci and a passing test result it
// attested, for payments/*.
const ciPolicyYAML = `rules:
  - match: payments/*
    signatures:
      keys: [ci]
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [ci]
`

// signingEnv is cliEnv with the fixture key trusted as "ci", ciPolicyYAML
// set (both through the CLI, as an admin), the key password empty, and a
// publisher token.
func signingEnv(t *testing.T) (serverURL, publisher string) {
	t.Helper()
	serverURL, _ = cliEnv(t)
	t.Setenv("COSIGN_PASSWORD", "")
	mustRunCLI(t, "trust", "key", "add", "ci", fixturePath("cosign.pub"), "--comment", "payments pipeline")
	mustRunCLI(t, "trust", "policy", "set", writeTemp(t, "policy.yaml", ciPolicyYAML))
	var issued wire.IssuedToken
	out := mustRunCLI(t, "token", "create", "--name", "pipeline", "--role", "publisher", "--output", "json")
	if err := json.Unmarshal([]byte(out), &issued); err != nil {
		t.Fatal(err)
	}
	return serverURL, issued.Token
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func wantCLIError(t *testing.T, want string, args ...string) (stdout string) {
	t.Helper()
	out, _, err := runCLI(t, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("dml %s: err = %v, want one mentioning %q", strings.Join(args, " "), err, want)
	}
	return out
}

func artifactJSON(t *testing.T, name, version string) wire.Artifact {
	t.Helper()
	var a wire.Artifact
	if err := json.Unmarshal([]byte(mustRunCLI(t, "artifact", "show", name, version, "--output", "json")), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCLISigningPipeline is the whole flow: an admin trusts the pipeline's
// key and sets a policy; the pipeline pushes, signs and attests in one
// command; the artifact is admitted; anyone can check that offline.
func TestCLISigningPipeline(t *testing.T) {
	serverURL, publisher := signingEnv(t)
	pkg := fixturePath(fixtureArtifact)
	push := []string{"push", "payments/api", "1.4.2", pkg, "--token", publisher,
		"--sign-key", fixturePath("cosign.key"),
		"--attest", fixturePath("test-result-passed.json"), "--type", testResultType}

	t.Run("a wrong key password pushes nothing", func(t *testing.T) {
		t.Setenv("COSIGN_PASSWORD", "not-the-password")
		wantCLIError(t, "wrong password", push...)
		// DML_KEY_PASSWORD is read when COSIGN_PASSWORD is unset.
		os.Unsetenv("COSIGN_PASSWORD")
		t.Setenv("DML_KEY_PASSWORD", "not-the-password")
		wantCLIError(t, "wrong password", push...)
		wantCLIError(t, "NOT_FOUND", "artifact", "show", "payments/api", "1.4.2")
	})
	t.Run("flag mistakes push nothing", func(t *testing.T) {
		wantCLIError(t, "2 --attest but 1 --type", append(push, "--attest", fixturePath("slsa-provenance.json"))...)
		wantCLIError(t, "--attest needs --sign-key", "push", "payments/api", "1.4.2", pkg, "--attest", fixturePath("test-result-passed.json"), "--type", testResultType)
		wantCLIError(t, "must be a predicate type URI", "push", "payments/api", "1.4.2", pkg, "--sign-key", fixturePath("cosign.key"), "--attest", fixturePath("test-result-passed.json"), "--type", "test-result")
		wantCLIError(t, "must be a JSON object", "push", "payments/api", "1.4.2", pkg, "--sign-key", fixturePath("cosign.key"), "--attest", fixturePath(fixtureArtifact+".sig"), "--type", testResultType)
		wantCLIError(t, "NOT_FOUND", "artifact", "show", "payments/api", "1.4.2")
	})

	out := mustRunCLI(t, push...)
	for _, want := range []string{"payments/api:1.4.2 created", "posted signature", "posted attestation", testResultType + " PASSED", "admission:", "ADMITTED"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "still needed") {
		t.Errorf("an admitted push lists unmet requirements:\n%s", out)
	}

	out = mustRunCLI(t, "status", "payments/api", "1.4.2")
	for _, want := range []string{"payments/api:1.4.2 is ADMITTED", "rule:", "payments/*", "1 signature, 1 attestation", "PASSED", "receipt:"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	a := artifactJSON(t, "payments/api", "1.4.2")
	if a.State != "admitted" || a.Admission == nil || a.Admission.Receipt == nil || len(a.Admission.Evidence) != 2 {
		t.Fatalf("artifact = %+v, admission %+v", a, a.Admission)
	}
	// The signature push posted is byte for byte what `dml sign` writes,
	// and has the same shape as what cosign writes.
	var list struct{ Evidence []wire.Evidence }
	if err := json.Unmarshal([]byte(mustRunCLI(t, "evidence", "list", "payments/api", "1.4.2", "--output", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Evidence) != 2 || list.Evidence[0].Format != "signature" || list.Evidence[1].Format != "dsse" || list.Evidence[1].Result != "PASSED" {
		t.Fatalf("evidence = %+v", list.Evidence)
	}

	t.Run("verify with the trusted key", func(t *testing.T) {
		out, stderr, err := runCLI(t, "verify", "payments/api", "1.4.2", "--key", fixturePath("cosign.pub"))
		if err != nil {
			t.Fatalf("verify: %v\n%s", err, out)
		}
		for _, want := range []string{"OK  content", "OK  signature", "OK  attestation", "OK  receipt", "key cosign", "verified:"} {
			if !strings.Contains(out, want) {
				t.Errorf("verify output lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, "--server-key") {
			t.Errorf("no warning about a server key fetched from the server: %q", stderr)
		}
	})

	serverKey := fetchServerKey(t, serverURL, publisher)
	t.Run("verify with a pinned server key", func(t *testing.T) {
		out, stderr, err := runCLI(t, "verify", "payments/api", "1.4.2", "--key", "ci="+fixturePath("cosign.pub"), "--server-key", serverKey, "--output", "json")
		if err != nil {
			t.Fatalf("verify: %v\n%s", err, out)
		}
		if stderr != "" {
			t.Errorf("stderr = %q, want no warning", stderr)
		}
		var rep verifyReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		var items []string
		for _, c := range rep.Checks {
			items = append(items, c.Item+":"+c.Status+":"+c.KeyID)
		}
		want := "content:OK: signature:OK:ci attestation:OK:ci receipt:OK:"
		if !rep.OK || strings.Join(items, " ") != want {
			t.Errorf("report ok=%v checks %v, want %s", rep.OK, items, want)
		}
	})

	t.Run("verify with only an untrusted key fails", func(t *testing.T) {
		out := wantCLIError(t, "no signature verifies", "verify", "payments/api", "1.4.2", "--key", fixturePath("untrusted/cosign.pub"), "--server-key", serverKey)
		if strings.Count(out, "not verified: untrusted key") != 2 || strings.Contains(out, "FAILED") {
			t.Errorf("verify output:\n%s", out)
		}
	})

	t.Run("verify with a wrong server key fails", func(t *testing.T) {
		out := wantCLIError(t, "receipt", "verify", "payments/api", "1.4.2", "--key", fixturePath("cosign.pub"), "--server-key", fixturePath("cosign.pub"))
		if !strings.Contains(out, "FAILED  receipt") {
			t.Errorf("verify output:\n%s", out)
		}
	})

	t.Run("a quarantined artifact says what it still needs", func(t *testing.T) {
		mustRunCLI(t, "push", "payments/api", "1.4.3", pkg, "--token", publisher, "--sign-key", fixturePath("cosign.key"))
		out, _, err := runCLI(t, "status", "payments/api", "1.4.3")
		if err != nil {
			t.Fatalf("status of a quarantined artifact: %v", err)
		}
		for _, want := range []string{"is QUARANTINED", "still needed:", "  - attestation " + testResultType, "1 signature, 0 attestations"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		// Its evidence verifies; there is no receipt yet, and that is said.
		out = mustRunCLI(t, "verify", "payments/api", "1.4.3", "--key", fixturePath("cosign.pub"), "--server-key", serverKey)
		if !strings.Contains(out, "none: the artifact is quarantined") || !strings.Contains(out, "not admitted") {
			t.Errorf("verify of a quarantined artifact:\n%s", out)
		}
	})
}

// fetchServerKey saves the server's public key with `dml trust
// server-key`, as an admin would at install time, and checks it is the
// key the API serves.
func fetchServerKey(t *testing.T, serverURL, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dml-server.pub")
	mustRunCLI(t, "trust", "server-key", "--output-file", path, "--token", token)
	c, err := client.New(serverURL, token)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := c.Trust().ServerKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if saved := mustRead(t, path); !bytes.Equal(saved, pem) {
		t.Fatalf("dml trust server-key wrote %q, the server serves %q", saved, pem)
	}
	return path
}

// TestCLISign: the signature is cosign's: base64 of an ASN.1 DER ECDSA
// signature over the file's SHA-256, on one line.
func TestCLISign(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "")
	pkg := fixturePath(fixtureArtifact)
	data, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.LoadPublicKey("ci", mustRead(t, fixturePath("cosign.pub")))
	if err != nil {
		t.Fatal(err)
	}

	stdout := mustRunCLI(t, "sign", pkg, "--key", fixturePath("cosign.key"))
	dst := filepath.Join(t.TempDir(), "pkg.sig")
	mustRunCLI(t, "sign", pkg, "--key", fixturePath("cosign.key"), "--output-file", dst)
	toFile := string(mustRead(t, dst))

	for name, sig := range map[string]string{"stdout": stdout, "--output-file": toFile, "cosign's fixture": string(mustRead(t, pkg+".sig"))} {
		t.Run(name, func(t *testing.T) {
			if !strings.HasSuffix(sig, "\n") || strings.Count(sig, "\n") != 1 {
				t.Errorf("signature %q is not one line", sig)
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
			if err != nil {
				t.Fatalf("not base64: %v", err)
			}
			var rs struct{ R, S *big.Int }
			if rest, err := asn1.Unmarshal(raw, &rs); err != nil || len(rest) != 0 {
				t.Fatalf("not an ASN.1 ECDSA signature: %v (%d bytes left)", err, len(rest))
			}
			sum := sha256.Sum256(data)
			if !ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), sum[:], raw) {
				t.Error("ECDSA over the file's SHA-256 does not verify")
			}
			ev, err := signing.VerifyEvidenceWithKey(key, digest.FromBytes(data), []byte(sig), nil)
			if err != nil || ev.Kind != signing.KindSignature || ev.Format != signing.FormatSignature {
				t.Errorf("VerifyEvidenceWithKey = %+v, %v", ev, err)
			}
		})
	}

	t.Setenv("COSIGN_PASSWORD", "wrong")
	wantCLIError(t, "wrong password", "sign", pkg, "--key", fixturePath("cosign.key"))
	wantCLIError(t, "required flag", "sign", pkg)
}

// TestCLIAttest: the envelope verifies and names the file by digest.
func TestCLIAttest(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "")
	pkg := fixturePath(fixtureArtifact)
	d := digest.FromBytes(mustRead(t, pkg))
	key, err := signing.LoadPublicKey("ci", mustRead(t, fixturePath("cosign.pub")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, predicate, typ string
		extra                []string
		wantSubject          string
	}{
		{"test result", "test-result-passed.json", testResultType, nil, fixtureArtifact},
		{"provenance named", "slsa-provenance.json", slsaType, []string{"--name", "payments/api"}, "payments/api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := mustRunCLI(t, append([]string{"attest", pkg, "--key", fixturePath("cosign.key"), "--predicate", fixturePath(tt.predicate), "--type", tt.typ}, tt.extra...)...)
			ev, err := signing.VerifyEvidenceWithKey(key, d, []byte(out), nil)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != signing.KindAttestation || ev.Format != signing.FormatDSSE || ev.PredicateType != tt.typ {
				t.Errorf("verified %+v", ev)
			}
			if st := ev.Statement; st.Type != signing.StatementV1 || len(st.Subject) != 1 || st.Subject[0].Name != tt.wantSubject {
				t.Errorf("statement %+v, want v1 about %s", st, tt.wantSubject)
			}
			var want, got any
			_ = json.Unmarshal(mustRead(t, fixturePath(tt.predicate)), &want)
			_ = json.Unmarshal(ev.Predicate, &got)
			if !jsonEqual(want, got) {
				t.Errorf("predicate %s differs from the file", ev.Predicate)
			}
		})
	}
	notObject := writeTemp(t, "p.json", `["PASSED"]`)
	wantCLIError(t, "must be a JSON object", "attest", pkg, "--key", fixturePath("cosign.key"), "--predicate", notObject, "--type", testResultType)
	wantCLIError(t, "must be a predicate type URI", "attest", pkg, "--key", fixturePath("cosign.key"), "--predicate", fixturePath("test-result-passed.json"), "--type", "custom")
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCLIEvidenceAdd posts every cosign format without saying which kind
// it is, and checks the refusals come through with their codes.
func TestCLIEvidenceAdd(t *testing.T) {
	signingEnv(t)
	mustRunCLI(t, "push", "payments/api", "1.4.2", fixturePath(fixtureArtifact))
	tests := []struct {
		file, kind, format string
	}{
		{fixtureArtifact + ".sig", "signature", "signature"},
		{fixtureArtifact + ".sigstore.json", "signature", "sigstore-bundle"},
		{"slsa-provenance.dsse.json", "attestation", "dsse"},
		{"test-result-passed.sigstore.json", "attestation", "sigstore-bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out := mustRunCLI(t, "evidence", "add", "payments/api", "1.4.2", fixturePath(tt.file), "--output", "json")
			var res struct {
				Evidence wire.Evidence
				Artifact wire.Artifact
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatal(err)
			}
			if res.Evidence.Kind != tt.kind || res.Evidence.Format != tt.format || res.Evidence.KeyID != "ci" {
				t.Errorf("evidence = %+v, want a %s (%s) by ci", res.Evidence, tt.kind, tt.format)
			}
		})
	}
	if a := artifactJSON(t, "payments/api", "1.4.2"); a.State != "admitted" {
		t.Errorf("state %s after a signature and a passing test result", a.State)
	}
	out := mustRunCLI(t, "evidence", "list", "payments/api", "1.4.2")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 || !strings.HasPrefix(lines[0], "DIGEST") {
		t.Errorf("evidence list table:\n%s", out)
	}

	// stdin, and a table answer that shows the decision.
	root := newRootCmd()
	var stdout bytes.Buffer
	root.SetIn(bytes.NewReader(mustRead(t, fixturePath("test-result-passed.dsse.json"))))
	root.SetOut(&stdout)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"evidence", "add", "payments/api", "1.4.2", "-"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "attestation accepted") || !strings.Contains(stdout.String(), "ADMITTED") {
		t.Errorf("evidence add from stdin:\n%s", stdout.String())
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"untrusted key", []string{fixturePath("untrusted/" + fixtureArtifact + ".sig")}, "KEY_UNTRUSTED"},
		{"attestation forced to be a signature", []string{fixturePath("test-result-passed.dsse.json"), "--kind", "signature"}, "MALFORMED"},
		{"bad kind", []string{fixturePath(fixtureArtifact + ".sig"), "--kind", "sbom"}, "--kind"},
		{"empty file", []string{writeTemp(t, "empty", "")}, "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCLIError(t, tt.want, append([]string{"evidence", "add", "payments/api", "1.4.2"}, tt.args...)...)
		})
	}
}

func TestDetectEvidenceKind(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{"MEUCIB0vPQ0C02wckf8HNr35HjnxY2RPEjW==\n", "signature"},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","messageSignature":{}}`, "signature"},
		{` {"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`, "attestation"},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payloadType":"x"}}`, "attestation"},
		{`{"mediaType":"x","dsseEnvelope":null}`, "signature"},
		{`{"broken`, "signature"},
		{"", "signature"},
	}
	for _, tt := range tests {
		if got := detectEvidenceKind([]byte(tt.body)); got != tt.want {
			t.Errorf("detectEvidenceKind(%q) = %s, want %s", tt.body, got, tt.want)
		}
	}
}

func TestCLITrust(t *testing.T) {
	_, publisher := func() (string, string) {
		url, _ := cliEnv(t)
		var issued wire.IssuedToken
		if err := json.Unmarshal([]byte(mustRunCLI(t, "token", "create", "--name", "ci", "--role", "publisher", "--output", "json")), &issued); err != nil {
			t.Fatal(err)
		}
		return url, issued.Token
	}()

	wantCLIError(t, "NOT_FOUND", "trust", "policy", "show")
	out := mustRunCLI(t, "trust", "key", "add", "ci", fixturePath("cosign.pub"), "--comment", "payments pipeline")
	if !strings.Contains(out, "trusted key ci added") || !strings.Contains(out, "ecdsa-p256") {
		t.Errorf("key add output:\n%s", out)
	}
	mustRunCLI(t, "trust", "key", "add", "release", fixturePath("untrusted/cosign.pub"))

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"same ID twice", []string{"trust", "key", "add", "ci", fixturePath("untrusted/cosign.pub")}, "KEY_EXISTS"},
		{"bad PEM", []string{"trust", "key", "add", "bad", writeTemp(t, "bad.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}, "INVALID_INPUT"},
		{"not PEM at all", []string{"trust", "key", "add", "bad", fixturePath(fixtureArtifact + ".sig")}, "INVALID_INPUT"},
		{"missing file", []string{"trust", "key", "add", "bad", filepath.Join(t.TempDir(), "nope.pub")}, "no such file"},
		{"bad key ID", []string{"trust", "key", "add", "a b", fixturePath("cosign.pub")}, "INVALID_INPUT"},
		{"not an admin", []string{"trust", "key", "add", "mine", fixturePath("cosign.pub"), "--token", publisher}, "DENIED"},
		{"revoke unknown", []string{"trust", "key", "revoke", "nobody"}, "NOT_FOUND"},
		{"policy asking for nothing", []string{"trust", "policy", "set", writeTemp(t, "p.yaml", "rules:\n  - match: payments/*\n")}, "POLICY_INVALID"},
		{"policy with a misspelt field", []string{"trust", "policy", "set", writeTemp(t, "p.json", `{"rules":[{"match":"x","signatures":{"keys":["ci"],"treshold":1}}]}`)}, "POLICY_INVALID"},
		{"policy by a publisher", []string{"trust", "policy", "set", writeTemp(t, "p.yaml", ciPolicyYAML), "--token", publisher}, "DENIED"},
	} {
		t.Run(tt.name, func(t *testing.T) { wantCLIError(t, tt.want, tt.args...) })
	}

	if out := mustRunCLI(t, "trust", "key", "revoke", "release"); !strings.Contains(out, "revoked trusted key release") {
		t.Errorf("revoke output %q", out)
	}
	var keys struct{ Keys []wire.TrustKey }
	if err := json.Unmarshal([]byte(mustRunCLI(t, "trust", "key", "list", "--output", "json", "--token", publisher)), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 2 || keys.Keys[0].ID != "ci" || keys.Keys[0].RevokedAt != nil || keys.Keys[1].RevokedAt == nil {
		t.Errorf("keys = %+v", keys.Keys)
	}
	table := mustRunCLI(t, "trust", "key", "list")
	if !strings.Contains(table, "payments pipeline") || !strings.Contains(table, "active") || !strings.Contains(table, "revoked 2") {
		t.Errorf("key table:\n%s", table)
	}

	// YAML in; JSON out; what show prints can be set again.
	if out := mustRunCLI(t, "trust", "policy", "set", writeTemp(t, "policy.yaml", ciPolicyYAML)); !strings.Contains(out, "version 1") {
		t.Errorf("policy set output %q", out)
	}
	shown, stderr, err := runCLI(t, "trust", "policy", "show")
	if err != nil {
		t.Fatal(err)
	}
	p, err := signing.ParsePolicy([]byte(shown))
	if err != nil || len(p.Rules) != 1 || p.Rules[0].Attestations[0].PredicateType != testResultType {
		t.Fatalf("shown policy %s: %v", shown, err)
	}
	if !strings.Contains(stderr, "version 1") {
		t.Errorf("show stderr %q", stderr)
	}
	if out := mustRunCLI(t, "trust", "policy", "set", writeTemp(t, "again.json", shown)); !strings.Contains(out, "version 2") {
		t.Errorf("setting the shown policy again: %q", out)
	}
	var current wire.TrustPolicy
	if err := json.Unmarshal([]byte(mustRunCLI(t, "trust", "policy", "show", "--output", "json")), &current); err != nil || current.Version != 2 {
		t.Errorf("show json: %+v %v", current, err)
	}
}

// TestCLIVerifyEd25519: Ed25519 signs the whole file, so verify keeps the
// downloaded content in a temporary file for it; push signs with an
// unencrypted PKCS#8 key as well.
func TestCLIVerifyEd25519(t *testing.T) {
	cliEnv(t)
	t.Setenv("COSIGN_PASSWORD", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where verify keeps the content for Ed25519
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath, pubPath := filepath.Join(dir, "ed.key"), filepath.Join(dir, "ed.pub")
	if err := os.WriteFile(keyPath, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "trust", "key", "add", "ed", pubPath)
	mustRunCLI(t, "trust", "policy", "set", writeTemp(t, "p.yaml", "rules:\n  - match: tools/*\n    signatures: {keys: [ed]}\n"))
	src, _ := writeRandomFile(t, 200<<10)

	if out := mustRunCLI(t, "push", "tools/cli", "1", src, "--sign-key", keyPath); !strings.Contains(out, "ADMITTED") {
		t.Fatalf("push signed with Ed25519:\n%s", out)
	}
	out := mustRunCLI(t, "verify", "tools/cli", "1", "--key", pubPath)
	if !strings.Contains(out, "OK  signature") || !strings.Contains(out, "key ed") {
		t.Errorf("verify:\n%s", out)
	}
	// No temporary copy is left behind.
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("verify left %v", left)
	}
}

func TestLoadVerifyKeys(t *testing.T) {
	ci, untrusted := fixturePath("cosign.pub"), fixturePath("untrusted/cosign.pub")
	tests := []struct {
		name    string
		specs   []string
		wantIDs []string
		wantErr string
	}{
		{"named after the file", []string{ci}, []string{"cosign"}, ""},
		{"ID=PATH", []string{"ci=" + ci, "other=" + untrusted}, []string{"ci", "other"}, ""},
		{"same name twice", []string{ci, untrusted}, nil, "both named"},
		{"not a key", []string{"x=" + fixturePath(fixtureArtifact+".sig")}, nil, "invalid public key"},
		{"bad ID", []string{"a b=" + ci}, nil, "key ID"},
		{"missing", []string{"x=/nonexistent.pub"}, nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := loadVerifyKeys(tt.specs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID())
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("IDs %v, want %v", ids, tt.wantIDs)
			}
		})
	}
}
