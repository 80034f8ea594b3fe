package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/internal/testsigstore"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// The admin pages' tests: each drives a real Chromium as an admin (or a
// publisher, who must not see them) and checks what changed through the
// domain, not only what the page says.

// adminPrincipal is the bootstrap admin as the domain knows it.
func adminPrincipal(t *testing.T, s *site) access.Principal {
	t.Helper()
	p, err := s.dml.Access.Authenticate(context.Background(), s.admin)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// adminTokenNamed is the token of that name the domain lists.
func adminTokenNamed(t *testing.T, s *site, name string) (access.Token, bool) {
	t.Helper()
	list, err := s.dml.Access.Tokens(context.Background(), adminPrincipal(t, s))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range list {
		if tok.Name == name {
			return tok, true
		}
	}
	return access.Token{}, false
}

// adminOpen navigates to path and returns the response's status.
func adminOpen(t *testing.T, ctx context.Context, s *site, path string) int64 {
	t.Helper()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(s.url+path))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// adminValue is the current value of a form field.
func adminValue(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBrowserAdminTokens: an admin opens Admin from the navigation, is
// told inline what is wrong with a deployer token without environments
// (what was typed stays), issues it with environments and an expiry, sees
// its secret once (it authenticates as asked), and revokes it.
func TestBrowserAdminTokens(t *testing.T) {
	s := newSite(t)
	ctx0 := context.Background()
	testserver.FullLifecycle(t, s.dml)
	if err := s.dml.Access.RevokeToken(ctx0, adminPrincipal(t, s), adminMustToken(t, s, "pipeline").ID); err != nil {
		t.Fatal(err)
	}
	ctx := s.browser()
	s.signIn(ctx, s.admin)
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`nav[aria-label="Main"] a[href="/ui/admin"]`)),
		chromedp.WaitVisible(chromedp.ID("token-name")),
	)
	if loc := s.location(ctx); !strings.HasSuffix(loc, "/ui/admin/tokens") {
		t.Errorf("Admin went to %s; want the tokens page", loc)
	}
	if got := s.text(ctx, `nav[aria-label="Admin"] [aria-current="page"]`); got != "Tokens" {
		t.Errorf("current admin tab = %q", got)
	}
	if got := s.text(ctx, "#token-"+adminMustToken(t, s, "pipeline").ID); !strings.Contains(got, "revoked") {
		t.Errorf("the revoked pipeline token's row: %q", got)
	}

	// A deployer without environments: refused on the form, as typed.
	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("token-name"), "deploy-eu"),
		chromedp.Click(chromedp.CSS(`input[name="role"][value="deployer"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/ui/admin/tokens"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.problem-list`)),
	)
	if got := s.text(ctx, ".problem-list"); !strings.Contains(got, "deployer token must name the environments") {
		t.Errorf("problem shown: %q", got)
	}
	if got := adminValue(t, ctx, "#token-name"); got != "deploy-eu" {
		t.Errorf("the name typed became %q", got)
	}
	checked, err := chromedp.Run(ctx, chromedp.JavascriptAttribute[bool](chromedp.CSS(`input[name="role"][value="deployer"]`), "checked"))
	if err != nil || !checked {
		t.Errorf("the deployer role is no longer checked (%v)", err)
	}
	if _, found := adminTokenNamed(t, s, "deploy-eu"); found {
		t.Fatal("a refused form issued a token")
	}

	// Corrected: environments and an expiry of 7 days.
	before := time.Now()
	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("token-envs"), "staging, production"),
		chromedp.SetValue(chromedp.ID("token-expires"), "168h"),
		chromedp.Click(chromedp.CSS(`form[action="/ui/admin/tokens"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("issued-secret")),
	)
	secret := s.text(ctx, "#issued-secret")
	p, err := s.dml.Access.Authenticate(ctx0, secret)
	if err != nil {
		t.Fatalf("the secret shown does not authenticate: %v", err)
	}
	if p.Name != "deploy-eu" || !slices.Equal(p.Roles, []access.Role{access.RoleDeployer}) || !slices.Equal(p.Environments, []string{"production", "staging"}) {
		t.Errorf("issued principal = %+v", p)
	}
	tok := adminMustToken(t, s, "deploy-eu")
	if tok.ExpiresAt == nil || tok.ExpiresAt.Before(before.Add(167*time.Hour)) || tok.ExpiresAt.After(time.Now().Add(169*time.Hour)) {
		t.Errorf("expiry = %v; want 7 days from now", tok.ExpiresAt)
	}
	if got := s.text(ctx, ".flash"); !strings.Contains(got, "deploy-eu") {
		t.Errorf("flash: %q", got)
	}
	if got := s.text(ctx, "#token-"+tok.ID); !strings.Contains(got, "active") || !strings.Contains(got, "production, staging") {
		t.Errorf("new token's row: %q", got)
	}
	s.screenshot(ctx, "console-admin-tokens")

	// Shown once: the page again does not show it.
	s.run(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("token-name")))
	if main := s.text(ctx, "main"); strings.Contains(main, secret) || strings.Contains(main, "shown this once") {
		t.Error("the secret is shown a second time")
	}

	// Revoked from its row: it no longer authenticates.
	s.submit(ctx, chromedp.Click(chromedp.CSS("#token-"+tok.ID+" button.danger")), ".flash")
	if got := s.text(ctx, "#token-"+tok.ID); !strings.Contains(got, "revoked") {
		t.Errorf("row after revoking: %q", got)
	}
	if _, err := s.dml.Access.Authenticate(ctx0, secret); err == nil {
		t.Error("the revoked token still authenticates")
	}
}

// adminPublicKeyPEM is the PEM of a fresh signer's public key.
func adminPublicKeyPEM(t *testing.T) string {
	t.Helper()
	pk, err := testkeys.Signer(t).PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(pk)
	if err != nil {
		t.Fatal(err)
	}
	return string(pub)
}

// adminMustToken is the token named name.
func adminMustToken(t *testing.T, s *site, name string) access.Token {
	t.Helper()
	tok, ok := adminTokenNamed(t, s, name)
	if !ok {
		t.Fatalf("no token %s", name)
	}
	return tok
}

// TestBrowserAdminSigners: an admin adds a key (a bad PEM is refused
// inline, the ID kept), installs a Sigstore trusted root, binds a keyless
// identity to it, and revokes the key; the domain holds each change.
func TestBrowserAdminSigners(t *testing.T) {
	s := newSite(t)
	ctx0 := context.Background()
	testserver.FullLifecycle(t, s.dml)
	pub := adminPublicKeyPEM(t)
	sig := testsigstore.New(t)

	ctx := s.browser()
	s.signIn(ctx, s.admin)
	if st := adminOpen(t, ctx, s, "/ui/admin/trust"); st != http.StatusOK {
		t.Fatalf("signers page: %d", st)
	}
	// A bad key first.
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`#keys details.add summary`)),
		chromedp.SendKeys(chromedp.ID("key-id"), "ci-payments"),
		chromedp.SetValue(chromedp.ID("key-pem"), "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n"),
		chromedp.Click(chromedp.CSS(`form[action="/ui/admin/trust/keys"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#keys .problem-list")),
	)
	if got := adminValue(t, ctx, "#key-id"); got != "ci-payments" {
		t.Errorf("key ID typed became %q", got)
	}
	s.run(ctx,
		chromedp.SetValue(chromedp.ID("key-pem"), pub),
		chromedp.SendKeys(chromedp.ID("key-comment"), "payments CI (GitLab runner)"),
	)
	s.submit(ctx, chromedp.Click(chromedp.CSS(`form[action="/ui/admin/trust/keys"] button`)), ".flash")
	if got := s.text(ctx, "#key-ci-payments"); !strings.Contains(got, "active") || !strings.Contains(got, "ecdsa") {
		t.Errorf("new key's row: %q", got)
	}

	// A trusted root, then an identity bound to it.
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`#roots details.add summary`)),
		chromedp.SendKeys(chromedp.ID("root-id"), "private-sigstore"),
		chromedp.SetValue(chromedp.ID("root-doc"), string(sig.RootJSON)),
	)
	s.submit(ctx, chromedp.Click(chromedp.CSS(`form[action="/ui/admin/trust/roots"] button`)), ".flash")
	if got := s.text(ctx, "#root-private-sigstore"); !strings.Contains(got, "v1") || !strings.Contains(got, "Fulcio CA") {
		t.Errorf("root's row: %q", got)
	}
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`#identities details.add summary`)),
		chromedp.SendKeys(chromedp.ID("identity-id"), "gh-release"),
		chromedp.SendKeys(chromedp.ID("identity-issuer"), "https://token.actions.githubusercontent.com"),
		chromedp.SendKeys(chromedp.ID("identity-regexp"), `https://github\.com/acme/payments/\.github/workflows/release\.yml@refs/tags/v.*`),
		chromedp.SetValue(chromedp.ID("identity-claims"), "sourceRepositoryURI=https://github.com/acme/payments\n"),
	)
	s.submit(ctx, chromedp.Click(chromedp.CSS(`form[action="/ui/admin/trust/identities"] button`)), ".flash")
	if got := s.text(ctx, "#identity-gh-release"); !strings.Contains(got, "private-sigstore") || !strings.Contains(got, "sourceRepositoryURI=https://github.com/acme/payments") {
		t.Errorf("identity's row: %q", got)
	}
	ids, err := s.dml.Trust.Identities(ctx0)
	if err != nil || len(ids) != 1 || ids[0].Root != "private-sigstore" || ids[0].Claims["sourceRepositoryURI"] != "https://github.com/acme/payments" {
		t.Errorf("identities = %+v, %v", ids, err)
	}
	adminOpen(t, ctx, s, "/ui/admin/trust")
	s.screenshot(ctx, "console-admin-trust")

	// Revoking the key.
	s.submit(ctx, chromedp.Click(chromedp.CSS("#key-ci-payments button.danger")), ".flash")
	keys, err := s.dml.Trust.TrustKeys(ctx0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == "ci-payments" && k.RevokedAt == nil {
			t.Error("the key is not revoked")
		}
	}
	if got := s.text(ctx, "#key-ci-payments"); !strings.Contains(got, "revoked") {
		t.Errorf("revoked key's row: %q", got)
	}
}

// TestBrowserAdminPolicy: the policy editor shows every validation error
// inline and keeps the text as typed; a valid policy is saved as the next
// version; a save over a version someone else set meanwhile is stopped,
// the text kept.
func TestBrowserAdminPolicy(t *testing.T) {
	s := newSite(t)
	ctx0 := context.Background()
	testserver.FullLifecycle(t, s.dml)
	before, err := s.dml.Trust.TrustPolicy(ctx0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := s.browser()
	s.signIn(ctx, s.admin)
	if st := adminOpen(t, ctx, s, "/ui/admin/policy"); st != http.StatusOK {
		t.Fatalf("policy page: %d", st)
	}
	if got := adminValue(t, ctx, "#policy-text"); !strings.Contains(got, `"match": "payments/*"`) {
		t.Errorf("the editor does not hold the policy in force: %q", got)
	}

	bad := `{
  "rules": [
    {"match": "payments/**", "signatures": {"keys": ["ci"], "threshold": 2}},
    {"match": "tools/*"}
  ]
}`
	s.run(ctx,
		chromedp.SetValue(chromedp.ID("policy-text"), bad),
		chromedp.Click(chromedp.CSS(`form.editor button`)),
		chromedp.WaitVisible(chromedp.CSS(".problem-list")),
	)
	problems := s.text(ctx, ".problem-list")
	for _, want := range []string{"2 problems", "threshold 2 exceeds the 1 keys", `rule 1 (match "tools/*"): requires no signature and no attestation`} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems shown %q lack %q", problems, want)
		}
	}
	if got := adminValue(t, ctx, "#policy-text"); got != bad {
		t.Errorf("the text typed became %q", got)
	}
	if cur, _ := s.dml.Trust.TrustPolicy(ctx0); cur.Version != before.Version {
		t.Fatalf("a refused policy was stored: version %d", cur.Version)
	}
	s.screenshot(ctx, "console-admin-policy")

	// Someone else sets a version meanwhile: saving is stopped, the text kept.
	good := `{"rules":[{"match":"payments/**","signatures":{"keys":["ci"]}},{"match":"tools/*","signatures":{"keys":["ci"]}}]}`
	if _, err := s.dml.Trust.SetTrustPolicy(ctx0, adminPrincipal(t, s), before.Document); err != nil {
		t.Fatal(err)
	}
	s.run(ctx, chromedp.SetValue(chromedp.ID("policy-text"), good))
	s.submit(ctx, chromedp.Click(chromedp.CSS(`form.editor button`)), ".problem-list")
	if got := s.text(ctx, ".problem-list"); !strings.Contains(got, "changed while you edited it") {
		t.Errorf("stale save: %q", got)
	}
	if got := adminValue(t, ctx, "#policy-text"); got != good {
		t.Errorf("the text typed became %q", got)
	}
	// Saving again replaces it knowingly.
	s.submit(ctx, chromedp.Click(chromedp.CSS(`form.editor button`)), ".flash")
	cur, err := s.dml.Trust.TrustPolicy(ctx0)
	if err != nil || cur.Version != before.Version+2 {
		t.Fatalf("policy = %+v, %v; want version %d", cur, err, before.Version+2)
	}
	var doc struct{ Rules []struct{ Match string } }
	if err := json.Unmarshal(cur.Document, &doc); err != nil || len(doc.Rules) != 2 || doc.Rules[1].Match != "tools/*" {
		t.Errorf("stored policy %s (%v)", cur.Document, err)
	}
	if got := s.text(ctx, ".flash"); !strings.Contains(got, "saved") {
		t.Errorf("flash: %q", got)
	}
}

// TestBrowserAdminGateDefaults: the admin sets a default for every deploy
// gate and a higher one for production; the domain holds them as floors,
// and clearing a field removes its default.
func TestBrowserAdminGateDefaults(t *testing.T) {
	s := newSite(t)
	ctx0 := context.Background()
	ctx := s.browser()
	s.signIn(ctx, s.admin)
	if st := adminOpen(t, ctx, s, "/ui/admin/gates"); st != http.StatusOK {
		t.Fatalf("gates page: %d", st)
	}
	s.run(ctx,
		chromedp.SetValue(chromedp.CSS(`input[name="approvals:deploy:*"]`), "2"),
		chromedp.SendKeys(chromedp.ID("gate-new-env"), "production"),
		chromedp.SetValue(chromedp.ID("gate-new-approvals"), "3"),
	)
	s.submit(ctx, chromedp.Click(chromedp.CSS(`form.gates button`)), ".flash")
	gates, st, err := s.dml.Releases.GateDefaults(ctx0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]lifecycle.GateSetting{"deploy:*": {Approvals: 2}, "deploy:production": {Approvals: 3}}
	if len(gates) != len(want) || gates["deploy:*"] != want["deploy:*"] || gates["deploy:production"] != want["deploy:production"] || st.UpdatedBy != "bootstrap-admin" {
		t.Errorf("gate defaults = %v by %q; want %v", gates, st.UpdatedBy, want)
	}
	if got := adminValue(t, ctx, `input[name="approvals:deploy:production"]`); got != "3" {
		t.Errorf("production's field shows %q", got)
	}
	s.screenshot(ctx, "console-admin-gates")

	// An environment named twice is refused inline, the form as typed.
	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("gate-new-env"), "production"),
		chromedp.SetValue(chromedp.ID("gate-new-approvals"), "1"),
		chromedp.Click(chromedp.CSS(`form.gates button`)),
		chromedp.WaitVisible(chromedp.CSS(".problem-list")),
	)
	if got := s.text(ctx, ".problem-list"); !strings.Contains(got, "deploy:production already has a default") {
		t.Errorf("problem: %q", got)
	}
	if got := adminValue(t, ctx, "#gate-new-env"); got != "production" {
		t.Errorf("typed environment became %q", got)
	}

	// Clearing production's field removes its default.
	s.run(ctx,
		chromedp.Clear(chromedp.ID("gate-new-env")),
		chromedp.Clear(chromedp.ID("gate-new-approvals")),
		chromedp.Clear(chromedp.CSS(`input[name="approvals:deploy:production"]`)),
	)
	s.submit(ctx, chromedp.Click(chromedp.CSS(`form.gates button`)), ".flash")
	gates, _, err = s.dml.Releases.GateDefaults(ctx0)
	if err != nil || len(gates) != 1 || gates["deploy:*"].Approvals != 2 {
		t.Errorf("after clearing production: %v, %v", gates, err)
	}
}

// TestBrowserPublisherSeesNoAdmin: a publisher's navigation has no Admin,
// and every admin page answers 403 to it.
func TestBrowserPublisherSeesNoAdmin(t *testing.T) {
	s := newSite(t)
	publisher := testserver.Token(t, s.dml, "ci-payments", access.RolePublisher)
	ctx := s.browser()
	s.signIn(ctx, publisher)
	if nav := s.text(ctx, `nav[aria-label="Main"]`); strings.Contains(nav, "Admin") {
		t.Errorf("a publisher's navigation shows Admin: %q", nav)
	}
	for _, path := range []string{"/ui/admin", "/ui/admin/tokens", "/ui/admin/trust", "/ui/admin/policy", "/ui/admin/gates"} {
		if st := adminOpen(t, ctx, s, path); st != http.StatusForbidden {
			t.Errorf("%s answered a publisher %d; want 403", path, st)
		}
		if h1 := s.text(ctx, "main h1"); !strings.Contains(h1, "403") {
			t.Errorf("%s: %q", path, h1)
		}
	}
}

// TestAdminRefusesOtherRoles: every role but admin is answered 403 by
// every admin page and form, even with its session's CSRF token, and
// nothing changes; the pages are not in its navigation.
func TestAdminRefusesOtherRoles(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	victim := testserver.Token(t, s.dml, "victim", access.RoleAuditor)
	victimID := adminMustToken(t, s, "victim").ID
	pages := []string{"/ui/admin", "/ui/admin/tokens", "/ui/admin/trust", "/ui/admin/policy", "/ui/admin/gates"}
	posts := []struct {
		path string
		form url.Values
	}{
		{"/ui/admin/tokens", url.Values{"name": {"escalated"}, "role": {"admin"}}},
		{"/ui/admin/tokens/revoke", url.Values{"id": {victimID}}},
		{"/ui/admin/trust/keys", url.Values{"id": {"rogue"}, "publicKey": {adminPublicKeyPEM(t)}}},
		{"/ui/admin/trust/keys/revoke", url.Values{"id": {"rogue"}}},
		{"/ui/admin/trust/identities", url.Values{"id": {"rogue-id"}, "root": {"r"}, "issuer": {"https://issuer.example"}, "subject": {"me"}}},
		{"/ui/admin/trust/identities/revoke", url.Values{"id": {"rogue-id"}}},
		{"/ui/admin/trust/roots", url.Values{"id": {"rogue-root"}, "document": {"{}"}}},
		{"/ui/admin/trust/roots/revoke", url.Values{"id": {"rogue-root"}}},
		{"/ui/admin/policy", url.Values{"base": {"0"}, "policy": {`{"rules":[{"match":"**","signatures":{"keys":["rogue"]}}]}`}}},
		{"/ui/admin/gates", url.Values{"approvals:plan": {"1"}}},
	}
	for _, role := range access.Roles {
		if role == access.RoleAdmin {
			continue
		}
		t.Run(string(role), func(t *testing.T) {
			req := access.TokenRequest{Name: "as-" + string(role), Roles: []access.Role{role}}
			if role == access.RoleDeployer {
				req.Environments = []string{"staging"}
			}
			issued, err := s.dml.Access.IssueToken(ctx, adminPrincipal(t, s), req)
			if err != nil {
				t.Fatal(err)
			}
			h := adminSignIn(t, s, issued.Secret)
			if _, body := h.get("/ui/"); strings.Contains(body, `href="/ui/admin"`) {
				t.Errorf("the navigation offers Admin to %s", role)
			}
			for _, p := range pages {
				if res, body := h.get(p); res.StatusCode != http.StatusForbidden {
					t.Errorf("GET %s as %s: %d %q", p, role, res.StatusCode, adminExcerpt(body))
				}
			}
			csrf := h.csrf("/ui/")
			for _, p := range posts {
				form := url.Values{"_csrf": {csrf}}
				for k, v := range p.form {
					form[k] = v
				}
				if res, body := h.post(p.path, form); res.StatusCode != http.StatusForbidden {
					t.Errorf("POST %s as %s: %d %q", p.path, role, res.StatusCode, adminExcerpt(body))
				}
			}
		})
	}
	// Nothing changed.
	if _, found := adminTokenNamed(t, s, "escalated"); found {
		t.Error("a token was issued")
	}
	if _, err := s.dml.Access.Authenticate(ctx, victim); err != nil {
		t.Errorf("the victim's token was revoked: %v", err)
	}
	keys, _ := s.dml.Trust.TrustKeys(ctx)
	ids, _ := s.dml.Trust.Identities(ctx)
	roots, _ := s.dml.Trust.TrustedRoots(ctx)
	gates, _, _ := s.dml.Releases.GateDefaults(ctx)
	if len(keys)+len(ids)+len(roots)+len(gates) != 0 {
		t.Errorf("trust or gate defaults changed: keys %v, identities %v, roots %v, gates %v", keys, ids, roots, gates)
	}
	if _, err := s.dml.Trust.TrustPolicy(ctx); err == nil {
		t.Error("a trust policy was set")
	}
}

// TestIssuedSecretOnlyToItsSession: the secret of a new token is shown
// once, to the session that issued it: its sealed cookie, replayed in
// another session of the same admin token, shows nothing, and the page
// deletes it once shown.
func TestIssuedSecretOnlyToItsSession(t *testing.T) {
	s := newSite(t)
	a := adminSignIn(t, s, s.admin)
	res, body := a.post("/ui/admin/tokens", url.Values{"_csrf": {a.csrf("/ui/admin/tokens")}, "name": {"ci-tools"}, "role": {"publisher"}, "expires": {"720h"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("issue: %d %q", res.StatusCode, adminExcerpt(body))
	}
	var issued *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "dml_issued" {
			issued = ck
		}
	}
	if issued == nil || !issued.HttpOnly || issued.SameSite != http.SameSiteStrictMode || strings.Contains(issued.Value, "dml_") {
		t.Fatalf("the secret's cookie: %+v", issued)
	}

	// Another session, given the cookie, shows no secret.
	b := adminSignIn(t, s, s.admin)
	u, _ := url.Parse(s.url + "/ui/admin/tokens")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: issued.Name, Value: issued.Value, Path: issued.Path}})
	if _, body := b.get("/ui/admin/tokens"); strings.Contains(body, "issued-secret") {
		t.Error("another session was shown the secret")
	}

	// Its own session: shown once, and it authenticates.
	_, body = a.get("/ui/admin/tokens")
	m := regexp.MustCompile(`id="issued-secret" class="secret">([^<]+)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the issuing session is not shown the secret: %q", adminExcerpt(body))
	}
	if p, err := s.dml.Access.Authenticate(context.Background(), m[1]); err != nil || p.Name != "ci-tools" {
		t.Errorf("the secret shown authenticates as %+v, %v", p, err)
	}
	if _, body := a.get("/ui/admin/tokens"); strings.Contains(body, "issued-secret") {
		t.Error("the secret was shown twice")
	}
}
