package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/internal/testserver"
	"golang.org/x/mod/sumdb/note"
)

// TestTrustLogKey: `dml trust log-key` saves the audit log's verifier key
// (the --log-key of provenance verify and audit verify) with its
// fingerprint; a provenance document then verifies offline with it, and
// fails with another log key.
func TestTrustLogKey(t *testing.T) {
	e := newAuditEnv(t)
	lc := testserver.FullLifecycle(t, e.srv.DML)
	t.Setenv("DML_TOKEN", lc.Tokens["audit"])
	dir := t.TempDir()
	lk, sk := filepath.Join(dir, "log.key"), filepath.Join(dir, "server.pub")

	out := mustRunCLI(t, "trust", "log-key", "--output-file", lk)
	c, err := client.New(e.srv.URL, lc.Tokens["audit"])
	if err != nil {
		t.Fatal(err)
	}
	served, err := c.Audit().Key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(lk)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(saved)) != strings.TrimSpace(string(served)) {
		t.Fatalf("log.key = %q, the server serves %q", saved, served)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(served)))
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, "log-key report", out, "log key → "+lk, "digest:", "key:", v.Name(), "fingerprint:")
	t.Logf("dml trust log-key --output-file log.key:\n%s", out)

	// To stdout, the key alone; with --output json, the report says which key.
	stdout, stderr, err := runCLI(t, "trust", "log-key")
	if err != nil || strings.TrimSpace(stdout) != strings.TrimSpace(string(served)) {
		t.Fatalf("log-key to stdout: %q (%v)", stdout, err)
	}
	wantContains(t, "log-key stderr", stderr, "log key → stdout", "fingerprint:")
	var rep struct {
		Key, Fingerprint string
	}
	if err := json.Unmarshal([]byte(mustRunCLI(t, "trust", "log-key", "--output-file", filepath.Join(dir, "again.key"), "--output", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Key != v.Name() || rep.Fingerprint == "" {
		t.Errorf("json report %+v", rep)
	}

	mustRunCLI(t, "trust", "server-key", "--output-file", sk)
	prov := filepath.Join(dir, "prov.json")
	mustRunCLI(t, "provenance", "export", lc.Artifact, lc.Version, "--output-file", prov)
	// From here on, no server.
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	wantContains(t, "verify with the fetched key", mustRunCLI(t, "provenance", "verify", prov, "--log-key", lk, "--server-key", sk), "verified offline")

	_, wrongVKey, err := note.GenerateKey(rand.Reader, v.Name())
	if err != nil {
		t.Fatal(err)
	}
	wrong := writeTemp(t, "wrong.key", wrongVKey+"\n")
	_, _, err = runCLI(t, "provenance", "verify", prov, "--log-key", wrong, "--server-key", sk)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("verify with another log key: %v", err)
	}
	t.Logf("with another log key: %v", err)
}

// TestNoteKeyFingerprint: the fingerprint is the SHA-256 of the key's
// bytes, read correctly when the base64 key holds a '+'; anything that is
// not a verifier key is refused.
func TestNoteKeyFingerprint(t *testing.T) {
	withPlus := ""
	for i := 0; i < 200 && withPlus == ""; i++ {
		_, vkey, err := note.GenerateKey(rand.Reader, "dml")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.SplitN(vkey, "+", 3)[2], "+") {
			withPlus = vkey
		}
	}
	if withPlus == "" {
		t.Fatal("no generated key had a '+' in its base64")
	}
	name, fp, err := noteKeyFingerprint(withPlus + "\n")
	if err != nil || name != "dml" || !strings.HasPrefix(fp, "SHA256:") {
		t.Fatalf("noteKeyFingerprint(%q) = %q, %q, %v", withPlus, name, fp, err)
	}
	_, other, _ := note.GenerateKey(rand.Reader, "dml")
	if _, fp2, _ := noteKeyFingerprint(other); fp2 == fp {
		t.Errorf("two keys share the fingerprint %s", fp)
	}
	for _, bad := range []string{"", "dml", "-----BEGIN PUBLIC KEY-----", "dml+00000000+AAAA"} {
		if _, _, err := noteKeyFingerprint(bad); err == nil {
			t.Errorf("%q accepted as a log key", bad)
		}
	}
}
