package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testoidc"
	"github.com/dmlproject/dml/internal/testserver"
)

// loginEnv is a server configured with the test OpenID provider, and no
// token in the environment: the CLI must use the session of dml login.
func loginEnv(t *testing.T) (serverURL string, idp testoidc.Provider) {
	t.Helper()
	idp = testoidc.Require(t)
	settings, err := sso.ParseConfig([]byte(fmt.Sprintf(`{"providers": [{"name": "corp", "issuer": %q,
		"clientId": %q, "clientSecret": %q, "cliClientId": %q, "claim": "groups",
		"roles": {"dml-auditors": ["auditor"], "dml-approvers": ["approver"]}}]}`,
		idp.Issuer, testoidc.ConsoleClient, idp.ConsoleSecret, testoidc.CLIClient)), "test")
	if err != nil {
		t.Fatal(err)
	}
	providers := sso.New(settings, nil)
	serverURL, _ = cliEnv(t, testserver.WithAPI(func(c *api.Config) { c.SSO = providers }))
	t.Setenv("DML_TOKEN", "")
	os.Unsetenv("DML_TOKEN")
	return serverURL, idp
}

// login runs `dml login --no-browser -o json` in-process, plays the
// browser: opens the URL it prints, signs in as who at the provider and
// follows the redirect back to its loopback listener.
func login(t *testing.T, who testoidc.Person, args ...string) (stdout string, err error) {
	t.Helper()
	root := newRootCmd()
	pr, pw := io.Pipe()
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(pw)
	root.SetArgs(append([]string{"login", "--no-browser", "--timeout", "1m", "-o", "json"}, args...))
	done := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(context.Background())
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	var authURL string
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "http://") || strings.HasPrefix(line, "https://") {
			authURL = line
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if authURL == "" {
		return "", fmt.Errorf("dml login printed no URL: %v", <-done)
	}
	b := testoidc.NewBrowser()
	resp, body, err := b.SignIn(context.Background(), authURL, who)
	if err != nil {
		t.Fatalf("signing in at %s: %v", authURL, err)
	}
	if !strings.HasPrefix(resp.Request.URL.String(), "http://127.0.0.1:") || !strings.Contains(body, "Signed in") {
		t.Errorf("the browser ended at %s: %.200s; want dml login's loopback listener", resp.Request.URL, body)
	}
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(time.Minute):
		t.Fatal("dml login did not finish after the browser came back")
	}
	return "", nil
}

// TestLoginCLI: dml login signs a person in through the provider with
// the loopback redirect; the session file is private and every command
// given no token uses it; an expired one says so; dml logout ends it.
func TestLoginCLI(t *testing.T) {
	serverURL, idp := loginEnv(t)
	pat := testoidc.NewPerson(t, "pat", "dml-auditors")
	idp.SetPeople(t, pat)

	out, err := login(t, pat)
	if err != nil {
		t.Fatalf("dml login: %v", err)
	}
	checkOneJSONDocument(t, "dml login", []byte(out))
	t.Logf("$ dml login --no-browser -o json   (the test's browser signs %s in at the provider)\n%s", pat.Username, out)
	var sum sessionSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Server != serverURL || sum.Issuer != idp.Issuer || sum.Subject != pat.ID || !slices.Equal(sum.Roles, []string{"auditor"}) {
		t.Errorf("dml login printed %+v", sum)
	}
	if strings.Contains(out, "dml_") {
		t.Errorf("dml login printed the session's secret: %s", out)
	}
	path := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "dml", "session.json")
	if sum.File != path {
		t.Errorf("session file %s; want %s", sum.File, path)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %s; want %s", p, fi.Mode(), want)
		}
	}

	// No token given: the session answers.
	var id wire.Identity
	if err := json.Unmarshal([]byte(mustRunCLI(t, "whoami", "-o", "json")), &id); err != nil {
		t.Fatal(err)
	}
	if id.Issuer != idp.Issuer || id.Subject != pat.ID || id.TokenID != sum.TokenID {
		t.Errorf("whoami with the session = %+v", id)
	}
	table := mustRunCLI(t, "whoami")
	if !strings.Contains(table, pat.ID) || !strings.Contains(table, idp.Issuer) {
		t.Errorf("whoami table does not name the identity:\n%s", table)
	}
	t.Logf("$ dml whoami   (no token given: the session file answers)\n%s", table)
	// The audit log names the person's identity behind their session.
	if log := mustRunCLI(t, "audit", "log"); !strings.Contains(log, pat.Email+" ["+pat.ID+" @ "+idp.Issuer+"]") || !strings.Contains(log, "session.started") {
		t.Errorf("dml audit log does not show the session's identity:\n%s", log)
	}
	// A session for another server is not used for this one.
	if _, _, err := runCLI(t, "whoami", "--server", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "dml login --server http://127.0.0.1:1") {
		t.Errorf("whoami for another server: %v; want a hint to sign in there", err)
	}

	// An expired session says so, and is not sent.
	s, _, err := loadSession()
	if err != nil {
		t.Fatal(err)
	}
	saved := s
	s.ExpiresAt = time.Now().Add(-time.Minute)
	if _, err := saveSession(s); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "whoami"); err == nil || !strings.Contains(err.Error(), "session expired") || !strings.Contains(err.Error(), "run dml login") {
		t.Errorf("whoami with an expired session: %v; want \"session expired ... run dml login\"", err)
	}
	if _, err := saveSession(saved); err != nil {
		t.Fatal(err)
	}

	logout := mustRunCLI(t, "logout", "-o", "json")
	checkOneJSONDocument(t, "dml logout", []byte(logout))
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("session file after logout: %v; want removed", err)
	}
	// The session itself ended on the server, not only the file.
	_, _, err = runCLI(t, "whoami", "--token", saved.Token)
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("the session's token after logout: %v; want UNAUTHORIZED", err)
	}
	if _, _, err := runCLI(t, "whoami"); err == nil || !strings.Contains(err.Error(), "dml login") {
		t.Errorf("whoami after logout: %v; want a hint to sign in", err)
	}
}

// TestLoginCLINoRole: a person whose groups map to no role is refused,
// and no session file is written.
func TestLoginCLINoRole(t *testing.T) {
	_, idp := loginEnv(t)
	ivy := testoidc.NewPerson(t, "ivy", "interns")
	idp.SetPeople(t, ivy)
	_, err := login(t, ivy)
	if err == nil || !strings.Contains(err.Error(), "NO_ROLE_GRANTED") {
		t.Fatalf("dml login: %v; want NO_ROLE_GRANTED", err)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "dml", "session.json")); !os.IsNotExist(err) {
		t.Errorf("session file after a refused login: %v; want none", err)
	}
}

// TestServeRefusesBadOIDCConfig: dml serve does not start with an OIDC
// configuration it cannot use, and says which field is wrong.
func TestServeRefusesBadOIDCConfig(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ config, want string }{
		"unknown field": {`{"providers":[{"name":"corp","issuer":"https://idp.example.com","clientID":"x"}]}`, `unknown field "providers[0].clientID" (did you mean "clientId"?)`},
		"no secret":     {`{"providers":[{"name":"corp","issuer":"https://idp.example.com","clientId":"x","claim":"groups","roles":{"g":["auditor"]}}]}`, "provider corp: clientSecret or clientSecretFile: required"},
		"bad role":      {`{"providers":[{"name":"corp","issuer":"https://idp.example.com","clientId":"x","clientSecret":"s","claim":"groups","roles":{"g":["root"]}}]}`, `provider corp: roles["g"]: unknown role "root"`},
		"http issuer":   {`{"providers":[{"name":"corp","issuer":"http://idp.example.com","clientId":"x","clientSecret":"s","claim":"groups","roles":{"g":["auditor"]}}]}`, "provider corp: issuer"},
		"no providers":  {`{"providers":[]}`, "providers: at least one provider"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(path, []byte(tc.config), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := runCLI(t, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--oidc-config", path)
		if err == nil || !strings.Contains(err.Error(), "--oidc-config") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: dml serve = %v; want an error containing %q", name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("dml serve with a bad OIDC configuration created its data directory: %v", err)
	}
}
