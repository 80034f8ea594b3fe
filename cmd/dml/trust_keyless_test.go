package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testkeys"
)

// TestCLITrustRootsAndIdentities: the root and identity commands, their
// tables, and the refusals a user meets, with the server's codes.
func TestCLITrustRootsAndIdentities(t *testing.T) {
	cliEnv(t)
	doc, _ := testkeys.TrustedRoot(t)
	rootFile := writeTemp(t, "trusted_root.json", string(doc))

	out := mustRunCLI(t, "trust", "root", "add", "public-good", rootFile)
	for _, want := range []string{"trusted root public-good installed", "fulcio CA", "rekor log", "ct log", "timestamp authority"} {
		if !strings.Contains(out, want) {
			t.Errorf("root add printed no %q:\n%s", want, out)
		}
	}
	out = mustRunCLI(t, "trust", "root", "add", "public-good", rootFile)
	if !strings.Contains(out, "is at version 1") {
		t.Errorf("adding the same root again printed:\n%s", out)
	}
	var shown wire.TrustedRoot
	if err := json.Unmarshal([]byte(mustRunCLI(t, "trust", "root", "show", "public-good", "-o", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	var got, want bytes.Buffer
	if err := json.Compact(&got, shown.Document); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&want, doc); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() || shown.Version != 1 {
		t.Errorf("root show -o json = version %d, document %.40q; want the document installed", shown.Version, shown.Document)
	}
	table := mustRunCLI(t, "trust", "root", "list")
	for _, want := range []string{"ID", "VERSION", "REKOR LOGS", "public-good", "active"} {
		if !strings.Contains(table, want) {
			t.Errorf("root list lacks %q:\n%s", want, table)
		}
	}

	mustRunCLI(t, "trust", "identity", "add", "gha-release", "--root", "public-good", "--issuer", "https://token.actions.githubusercontent.com",
		"--subject", "https://github.com/acme/payments/.github/workflows/release.yml@refs/heads/main",
		"--claim", "sourceRepositoryURI=https://github.com/acme/payments", "--claim", "runnerEnvironment=github-hosted")
	table = mustRunCLI(t, "trust", "identity", "list")
	for _, want := range []string{"gha-release", "public-good", "runnerEnvironment=github-hosted, sourceRepositoryURI=https://github.com/acme/payments", "active"} {
		if !strings.Contains(table, want) {
			t.Errorf("identity list lacks %q:\n%s", want, table)
		}
	}

	identity := func(extra ...string) []string {
		return append([]string{"trust", "identity", "add", "x", "--root", "public-good", "--issuer", "https://token.actions.githubusercontent.com"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a file that is no trusted root", []string{"trust", "root", "add", "bad", writeTemp(t, "bad.json", `{"rules":[]}`)}, "ROOT_INVALID"},
		{"an unknown claim", identity("--subject", "s", "--claim", "repository=acme/payments"), "unknown claim"},
		{"a claim without a value", identity("--subject", "s", "--claim", "runnerEnvironment"), "want NAME=VALUE"},
		{"a claim twice", identity("--subject", "s", "--claim", "runnerEnvironment=a", "--claim", "runnerEnvironment=b"), "given twice"},
		{"subject and regexp", identity("--subject", "s", "--subject-regexp", ".*"), "subject"},
		{"neither subject nor regexp", identity(), "subject"},
		{"no root", []string{"trust", "identity", "add", "x", "--issuer", "https://i.example", "--subject", "s"}, "root"},
		{"an unknown root", []string{"trust", "identity", "add", "x", "--root", "missing", "--issuer", "https://i.example", "--subject", "s"}, "ROOT_UNKNOWN"},
		{"an identity's id", []string{"trust", "identity", "add", "gha-release", "--root", "public-good", "--issuer", "https://i.example", "--subject", "s"}, "IDENTITY_EXISTS"},
		{"a key under an identity's id", []string{"trust", "key", "add", "gha-release", fixturePath("cosign.pub")}, "KEY_EXISTS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("dml %s = %v; want an error with %q", strings.Join(tc.args, " "), err, tc.want)
			}
		})
	}

	mustRunCLI(t, "trust", "identity", "revoke", "gha-release")
	mustRunCLI(t, "trust", "root", "revoke", "public-good")
	if table = mustRunCLI(t, "trust", "identity", "list"); !strings.Contains(table, "revoked") {
		t.Errorf("identity list after revoke:\n%s", table)
	}
	if _, _, err := runCLI(t, "trust", "root", "add", "public-good", rootFile); err == nil || !strings.Contains(err.Error(), "ROOT_REVOKED") {
		t.Errorf("re-adding a revoked root = %v; want ROOT_REVOKED", err)
	}
}
