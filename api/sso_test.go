package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/internal/testoidc"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// The single sign-on tests run against a real OpenID provider on loopback
// (internal/testoidc: zitadel/oidc's example provider, which
// scripts/test.sh starts), through the CLI's flow: a native client with
// PKCE and a loopback redirect gets an ID token, which
// POST /api/v1/sso/sessions exchanges for a session.

// corpConfig is a provider mapping groups, plus a provider mapping the
// e-mail address mapped (emailRole) to the auditor role.
func corpConfig(p testoidc.Provider, mappedEmail string) string {
	return fmt.Sprintf(`{"providers": [
	  {"name": "corp", "displayName": "Corp SSO", "issuer": %[1]q, "clientId": %[2]q, "clientSecret": %[3]q, "cliClientId": %[4]q,
	   "claim": "groups",
	   "roles": {"dml-approvers": ["approver"], "dml-auditors": ["auditor"], "dml-deployers": ["deployer"], "dml-admins": ["admin"]},
	   "environments": {"dml-deployers": ["staging"]},
	   "sessionTTL": "1h"},
	  {"name": "mail", "issuer": %[1]q, "clientId": %[2]q, "clientSecret": %[3]q, "cliClientId": %[4]q,
	   "claim": "email", "roles": {%[5]q: ["auditor"]}}
	]}`, p.Issuer, testoidc.ConsoleClient, p.ConsoleSecret, testoidc.CLIClient, mappedEmail)
}

type ssoEnv struct {
	*relEnv
	idp testoidc.Provider
}

func newSSOEnv(t *testing.T, mappedEmail string) *ssoEnv {
	t.Helper()
	idp := testoidc.Require(t)
	settings, err := sso.ParseConfig([]byte(corpConfig(idp, mappedEmail)), "test-oidc.json")
	if err != nil {
		t.Fatal(err)
	}
	providers := sso.New(settings, nil)
	e := newRelEnv(t, true, testserver.WithAPI(func(c *api.Config) { c.SSO = providers }))
	return &ssoEnv{relEnv: e, idp: idp}
}

type ssoSession struct {
	Token        string    `json:"token"`
	TokenID      string    `json:"tokenId"`
	Name         string    `json:"name"`
	Provider     string    `json:"provider"`
	Issuer       string    `json:"issuer"`
	Subject      string    `json:"subject"`
	Roles        []string  `json:"roles"`
	Environments []string  `json:"environments"`
	Errors       []errItem `json:"errors"`
}

type errItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

var ssoScopes = []string{"openid", "email", "profile", "groups"}

// tokens signs who in at the provider with the CLI's client and returns
// the ID token and access token, with the nonce asked for.
func (e *ssoEnv) tokens(t *testing.T, clientID, secret string, who testoidc.Person, nonce string) (idToken, accessToken string) {
	t.Helper()
	idt, at, err := e.idp.Tokens(t.Context(), testoidc.NewBrowser(), clientID, secret, ssoScopes, who, nonce)
	if err != nil {
		t.Fatalf("signing in at the provider as %s: %v", who.Username, err)
	}
	return idt, at
}

// exchange posts an ID token to /api/v1/sso/sessions.
func (e *ssoEnv) exchange(t *testing.T, provider, idToken, accessToken, nonce string) (int, ssoSession) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"provider": provider, "idToken": idToken, "accessToken": accessToken, "nonce": nonce})
	var s ssoSession
	code := apiCall(t, http.MethodPost, e.url+"/api/v1/sso/sessions", "", body, &s)
	return code, s
}

// signIn runs the whole CLI sign-in as who and fails unless a session is
// issued.
func (e *ssoEnv) signIn(t *testing.T, provider string, who testoidc.Person) ssoSession {
	t.Helper()
	idt, at := e.tokens(t, testoidc.CLIClient, "", who, "nonce-"+who.ID)
	code, s := e.exchange(t, provider, idt, at, "nonce-"+who.ID)
	if code != http.StatusCreated {
		t.Fatalf("sign-in of %s through %s: %d %+v", who.Username, provider, code, s.Errors)
	}
	return s
}

type identityView struct {
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Issuer  string   `json:"issuer"`
	Subject string   `json:"subject"`
	TokenID string   `json:"tokenId"`
}

func TestSSOProvidersListed(t *testing.T) {
	e := newSSOEnv(t, "nobody@example.com")
	var list struct {
		Providers []struct {
			Name, DisplayName, Issuer, CLIClientID string
			Scopes                                 []string
		} `json:"providers"`
	}
	if code := apiCall(t, http.MethodGet, e.url+"/api/v1/sso/providers", "", nil, &list); code != http.StatusOK {
		t.Fatalf("GET /sso/providers without a token: %d", code)
	}
	if len(list.Providers) != 2 || list.Providers[0].Name != "corp" || list.Providers[0].DisplayName != "Corp SSO" ||
		list.Providers[0].CLIClientID != testoidc.CLIClient || !slices.Equal(list.Providers[0].Scopes, ssoScopes) {
		t.Errorf("providers = %+v", list.Providers)
	}
}

// TestSSOSignInCLIFlow: a person in the approvers and auditors groups
// signs in; the session authenticates as them, with their provider
// identity and the roles their groups map to; signing out ends it.
func TestSSOSignInCLIFlow(t *testing.T) {
	e := newSSOEnv(t, "nobody@example.com")
	pat := testoidc.NewPerson(t, "pat", "dml-approvers", "dml-auditors", "unmapped")
	e.idp.SetPeople(t, pat)
	s := e.signIn(t, "corp", pat)
	if s.Issuer != e.idp.Issuer || s.Subject != pat.ID || s.Name != pat.Email || !slices.Equal(s.Roles, []string{"approver", "auditor"}) || !strings.HasPrefix(s.Token, "dml_") {
		t.Fatalf("session = %+v; want %s at %s, roles approver, auditor", s, pat.ID, e.idp.Issuer)
	}
	var id identityView
	if code := apiCall(t, http.MethodGet, e.url+"/api/v1/whoami", s.Token, nil, &id); code != http.StatusOK {
		t.Fatalf("whoami with the session: %d", code)
	}
	if id.Issuer != e.idp.Issuer || id.Subject != pat.ID || id.TokenID != s.TokenID {
		t.Errorf("whoami = %+v", id)
	}
	if code := apiCall(t, http.MethodDelete, e.url+"/api/v1/sso/session", s.Token, nil, nil); code != http.StatusNoContent {
		t.Fatalf("sign out: %d", code)
	}
	if code := apiCall(t, http.MethodGet, e.url+"/api/v1/whoami", s.Token, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("whoami after signing out: %d; want 401", code)
	}
	// A machine's token is no session to sign out of.
	var ev errorView
	if code := apiCall(t, http.MethodDelete, e.url+"/api/v1/sso/session", e.auditor, nil, &ev); code != http.StatusBadRequest {
		t.Errorf("sign out with a token: %d %+v; want 400", code, ev)
	}
}

// auditRecords reads the whole audit log as the admin.
func (e *ssoEnv) auditRecords(t *testing.T) []struct {
	Actor   map[string]string `json:"actor"`
	Action  string            `json:"action"`
	Subject string            `json:"subject"`
} {
	t.Helper()
	code, _, body := fetch(t, e.url+"/api/v1/audit/entries", e.admin)
	if code != http.StatusOK {
		t.Fatalf("audit entries: %d", code)
	}
	var out []struct {
		Actor   map[string]string `json:"actor"`
		Action  string            `json:"action"`
		Subject string            `json:"subject"`
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Actor   map[string]string `json:"actor"`
			Action  string            `json:"action"`
			Subject string            `json:"subject"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestSSOApprovalAndDeploymentRecordIdentity: an approval and a
// deployment made in single sign-on sessions keep the provider identity
// in the release and in the audit log.
func TestSSOApprovalAndDeploymentRecordIdentity(t *testing.T) {
	e := newSSOEnv(t, "nobody@example.com")
	approver := testoidc.NewPerson(t, "ann", "dml-approvers")
	deployer := testoidc.NewPerson(t, "dan", "dml-deployers")
	e.idp.SetPeople(t, approver, deployer)
	a := e.signIn(t, "corp", approver)
	d := e.signIn(t, "corp", deployer)
	if !slices.Equal(d.Environments, []string{"staging"}) {
		t.Fatalf("deployer session environments %v; want [staging]", d.Environments)
	}
	name := e.create(t, nil).Name
	for _, gate := range []string{"plan", "build", "deploy:staging"} {
		e.approve(t, a.Token, name, gate)
	}
	e.mustDeploy(t, d.Token, name, "staging", "succeeded")

	r := e.get(t, name)
	for _, ap := range r.Approvals {
		if ap.By != approver.Email || ap.Issuer != e.idp.Issuer || ap.Subject != approver.ID {
			t.Errorf("approval of %s = by %q issuer %q subject %q; want %s, %s, %s", ap.Gate, ap.By, ap.Issuer, ap.Subject, approver.Email, e.idp.Issuer, approver.ID)
		}
	}
	if len(r.Approvals) != 3 {
		t.Errorf("%d approvals; want 3", len(r.Approvals))
	}
	if len(r.Deployments) != 1 || r.Deployments[0].Issuer != e.idp.Issuer || r.Deployments[0].Subject != deployer.ID {
		t.Errorf("deployments = %+v; want one by %s at %s", r.Deployments, deployer.ID, e.idp.Issuer)
	}

	seen := map[string]int{}
	for _, rec := range e.auditRecords(t) {
		if rec.Subject != "release:"+name {
			continue
		}
		switch rec.Action {
		case lifecycle.ActionReleaseApproval:
			if rec.Actor["issuer"] != e.idp.Issuer || rec.Actor["subject"] != approver.ID || rec.Actor["tokenId"] != a.TokenID {
				t.Errorf("approval record actor = %v; want the approver's session and identity", rec.Actor)
			}
		case lifecycle.ActionReleaseDeployment:
			if rec.Actor["issuer"] != e.idp.Issuer || rec.Actor["subject"] != deployer.ID {
				t.Errorf("deployment record actor = %v; want the deployer's identity", rec.Actor)
			}
		case lifecycle.ActionReleaseCreated:
			// Made with a machine's token: no identity, and so the
			// record's encoding is the one it always had.
			if _, ok := rec.Actor["issuer"]; ok {
				t.Errorf("created by a token, yet the record names an issuer: %v", rec.Actor)
			}
		}
		seen[rec.Action]++
	}
	if seen[lifecycle.ActionReleaseApproval] != 3 || seen[lifecycle.ActionReleaseDeployment] != 1 {
		t.Errorf("audit records about %s: %v; want 3 approvals and a deployment", name, seen)
	}
	// The log still verifies with the new records in it.
	if code, _, body := fetch(t, e.url+"/api/v1/audit/checkpoint", e.admin); code != http.StatusOK {
		t.Fatalf("checkpoint: %d %s", code, body)
	}
}

// TestSSOGroupChange: a person removed from the approvers group loses the
// approver role at the next sign-in, and that sign-in ends the earlier
// session that still held it.
func TestSSOGroupChange(t *testing.T) {
	e := newSSOEnv(t, "nobody@example.com")
	pat := testoidc.NewPerson(t, "pat", "dml-approvers", "dml-auditors")
	e.idp.SetPeople(t, pat)
	before := e.signIn(t, "corp", pat)
	if !slices.Contains(before.Roles, "approver") {
		t.Fatalf("roles %v; want approver", before.Roles)
	}
	t.Logf("sign-in 1 at %s: %s in groups [dml-approvers dml-auditors] -> roles %v (session %s)", e.idp.Issuer, pat.Username, before.Roles, before.TokenID)
	name := e.create(t, nil).Name

	pat.Groups = []string{"dml-auditors"}
	e.idp.SetPeople(t, pat)
	after := e.signIn(t, "corp", pat)
	if !slices.Equal(after.Roles, []string{"auditor"}) {
		t.Fatalf("roles after the group change %v; want [auditor]", after.Roles)
	}
	code, _, ev := e.decide(t, after.Token, name, "plan", "approve")
	if code != http.StatusForbidden || len(ev.Errors) == 0 || ev.Errors[0].Code != "DENIED" || !strings.Contains(ev.Errors[0].Message, "approver") {
		t.Errorf("approving after the group change: %d %+v; want 403 DENIED naming the approver role", code, ev)
	}
	if len(ev.Errors) > 0 {
		t.Logf("sign-in 2 after the provider dropped dml-approvers: roles %v; approving the plan: %d %s: %s", after.Roles, code, ev.Errors[0].Code, ev.Errors[0].Message)
	}
	if code := apiCall(t, http.MethodGet, e.url+"/api/v1/whoami", before.Token, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("the earlier session, which held approver: %d; want 401 (ended)", code)
	}
	ended := false
	for _, rec := range e.auditRecords(t) {
		if rec.Action == access.ActionSessionEnded && rec.Subject == before.TokenID && rec.Actor["subject"] == pat.ID {
			ended = true
		}
	}
	if !ended {
		t.Errorf("no %s record for %s", access.ActionSessionEnded, before.TokenID)
	}
	t.Logf("the earlier session %s (approver) now answers 401, audited as %s", before.TokenID, access.ActionSessionEnded)
}

// TestSSOEmailMapping: a provider that maps the e-mail claim. The ID
// token of the code flow carries no email (the provider issues it with an
// access token), so the claim comes from the userinfo endpoint. An
// address the provider has not verified maps to nothing.
func TestSSOEmailMapping(t *testing.T) {
	mapped := testoidc.NewPerson(t, "mia")
	e := newSSOEnv(t, mapped.Email)
	unverified := mapped
	unverified.ID, unverified.Username, unverified.EmailVerified = mapped.ID+"-2", mapped.Username+"-2", false
	e.idp.SetPeople(t, mapped, unverified)
	s := e.signIn(t, "mail", mapped)
	if !slices.Equal(s.Roles, []string{"auditor"}) || s.Name != mapped.Email {
		t.Errorf("session = %+v; want auditor named %s", s, mapped.Email)
	}
	idt, at := e.tokens(t, testoidc.CLIClient, "", unverified, "n-unverified")
	code, refused := e.exchange(t, "mail", idt, at, "n-unverified")
	if code != http.StatusForbidden || len(refused.Errors) == 0 || refused.Errors[0].Code != "NO_ROLE_GRANTED" {
		t.Errorf("unverified address: %d %+v; want 403 NO_ROLE_GRANTED", code, refused.Errors)
	}
	// Without the access token there is no userinfo to read the address
	// from, and so no role.
	idt, _ = e.tokens(t, testoidc.CLIClient, "", mapped, "n-no-at")
	if code, refused := e.exchange(t, "mail", idt, "", "n-no-at"); code != http.StatusForbidden {
		t.Errorf("no access token: %d %+v; want 403", code, refused.Errors)
	}
}

// TestSSORefusals: what the sign-in refuses, and how it says so.
func TestSSORefusals(t *testing.T) {
	e := newSSOEnv(t, "nobody@example.com")
	pat := testoidc.NewPerson(t, "pat", "dml-approvers")
	intern := testoidc.NewPerson(t, "ivy", "interns")
	e.idp.SetPeople(t, pat, intern)

	want := func(what string, code int, s ssoSession, status int, errCode, msg string) {
		t.Helper()
		if code != status || len(s.Errors) == 0 || s.Errors[0].Code != errCode || !strings.Contains(s.Errors[0].Message, msg) {
			t.Errorf("%s: %d %+v; want %d %s containing %q", what, code, s.Errors, status, errCode, msg)
		}
		if s.Token != "" {
			t.Errorf("%s: a session was issued", what)
		}
	}

	t.Run("no role granted", func(t *testing.T) {
		idt, at := e.tokens(t, testoidc.CLIClient, "", intern, "n1")
		code, s := e.exchange(t, "corp", idt, at, "n1")
		want("interns only", code, s, http.StatusForbidden, "NO_ROLE_GRANTED", "interns")
		refused := false
		for _, rec := range e.auditRecords(t) {
			if rec.Action == access.ActionSignInRefused && rec.Actor["subject"] == intern.ID {
				refused = true
			}
		}
		if !refused {
			t.Errorf("no %s record of %s", access.ActionSignInRefused, intern.ID)
		}
	})
	t.Run("another client's token", func(t *testing.T) {
		idt, at := e.tokens(t, testoidc.OtherClient, testoidc.OtherSecret, pat, "n2")
		code, s := e.exchange(t, "corp", idt, at, "n2")
		want("audience other-app", code, s, http.StatusUnauthorized, "SSO_TOKEN_INVALID", "audience")
	})
	t.Run("the console's token", func(t *testing.T) {
		// The console's client is confidential: its ID tokens are the
		// server's own business, never a CLI's to present.
		idt, at := e.tokens(t, testoidc.ConsoleClient, e.idp.ConsoleSecret, pat, "n3")
		code, s := e.exchange(t, "corp", idt, at, "n3")
		want("audience dml-console", code, s, http.StatusUnauthorized, "SSO_TOKEN_INVALID", "audience")
	})
	t.Run("wrong nonce", func(t *testing.T) {
		idt, at := e.tokens(t, testoidc.CLIClient, "", pat, "n4")
		code, s := e.exchange(t, "corp", idt, at, "another nonce")
		want("nonce", code, s, http.StatusUnauthorized, "SSO_TOKEN_INVALID", "nonce")
	})
	t.Run("tampered token", func(t *testing.T) {
		idt, at := e.tokens(t, testoidc.CLIClient, "", pat, "n5")
		sig := []byte(idt[strings.LastIndexByte(idt, '.')+10:])
		sig[0] ^= 'A' ^ 'B' // A <-> B, and any other letter to another
		tampered := idt[:strings.LastIndexByte(idt, '.')+10] + string(sig)
		code, s := e.exchange(t, "corp", tampered, at, "n5")
		want("tampered", code, s, http.StatusUnauthorized, "SSO_TOKEN_INVALID", "")
	})
	t.Run("unknown provider", func(t *testing.T) {
		code, s := e.exchange(t, "nope", "x.y.z", "", "n")
		want("unknown provider", code, s, http.StatusNotFound, "NOT_FOUND", "nope")
	})
	// None of these issued a token.
	var list struct {
		Tokens []struct {
			Name string `json:"name"`
		} `json:"tokens"`
	}
	apiCall(t, http.MethodGet, e.url+"/api/v1/tokens", e.admin, nil, &list)
	for _, tok := range list.Tokens {
		if tok.Name == pat.Email || tok.Name == intern.Email {
			t.Errorf("a refused sign-in issued token %s", tok.Name)
		}
	}
}
