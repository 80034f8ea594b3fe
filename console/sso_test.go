package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/internal/testoidc"
	"github.com/dmlproject/dml/internal/testserver"
)

// Single sign-on in the console, against the test OpenID provider
// (internal/testoidc; scripts/test.sh starts it).

func newSSOSite(t *testing.T) (*site, testoidc.Provider) {
	t.Helper()
	idp := testoidc.Require(t)
	settings, err := sso.ParseConfig([]byte(fmt.Sprintf(`{"providers": [{"name": "corp", "displayName": "Corp SSO",
		"issuer": %q, "clientId": %q, "clientSecret": %q, "claim": "groups",
		"roles": {"dml-approvers": ["approver"], "dml-auditors": ["auditor"]}}]}`,
		idp.Issuer, testoidc.ConsoleClient, idp.ConsoleSecret)), "test")
	if err != nil {
		t.Fatal(err)
	}
	providers := sso.New(settings, nil)
	return newSite(t, testserver.WithAPI(func(c *api.Config) { c.SSO = providers })), idp
}

// TestSSOConsoleBrowser: in Chromium, "Sign in with Corp SSO", the
// provider's form, and the console, signed in with the roles the groups
// map to; signing out ends the session.
func TestSSOConsoleBrowser(t *testing.T) {
	s, idp := newSSOSite(t)
	pat := testoidc.NewPerson(t, "pat", "dml-approvers", "dml-auditors")
	idp.SetPeople(t, pat)
	ctx := s.browser()
	s.run(ctx, chromedp.Navigate(s.url+"/ui/signin"), chromedp.WaitVisible(chromedp.CSS(`ul.sso a`)))
	if got := s.text(ctx, `ul.sso a`); got != "Sign in with Corp SSO" {
		t.Errorf("sign-in button %q", got)
	}
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`ul.sso a`)),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), pat.Username),
		chromedp.SendKeys(chromedp.ID("password"), pat.Password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)),
	)
	who := s.text(ctx, `form.who span`)
	if !strings.Contains(who, pat.Email) || !strings.Contains(who, "approver") || !strings.Contains(who, "auditor") {
		t.Errorf("signed in as %q; want %s with approver and auditor", who, pat.Email)
	}
	nav := s.text(ctx, `nav[aria-label="Main"]`)
	if !strings.Contains(nav, "Audit") {
		t.Errorf("navigation %q; an auditor sees Audit", nav)
	}
	p, err := s.dml.Access.Tokens(context.Background(), adminPrincipal(t, s))
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, tok := range p {
		if tok.Subject == pat.ID && tok.RevokedAt == nil {
			session = tok.ID
		}
	}
	if session == "" {
		t.Fatalf("no session of %s among the tokens", pat.ID)
	}
	s.run(ctx, chromedp.Click(chromedp.CSS(`form.who button`)), chromedp.WaitVisible(chromedp.ID("token")))
	list, _ := s.dml.Access.Tokens(context.Background(), adminPrincipal(t, s))
	for _, tok := range list {
		if tok.ID == session && tok.RevokedAt == nil {
			t.Errorf("session %s still valid after signing out", session)
		}
	}
}

// TestSSOConsoleFlow: the same sign-in with a scripted browser (no
// JavaScript: the page after the callback links on), and what the
// callback refuses: an answer of another sign-in (state), no flow
// cookie, the provider's error, a person without a role.
func TestSSOConsoleFlow(t *testing.T) {
	s, idp := newSSOSite(t)
	pat := testoidc.NewPerson(t, "pat", "dml-auditors")
	ivy := testoidc.NewPerson(t, "ivy", "interns")
	idp.SetPeople(t, pat, ivy)
	ctx := context.Background()
	start := s.url + "/ui/sso/corp/start?next=" + url.QueryEscape("/ui/audit")

	t.Run("signed in", func(t *testing.T) {
		b := testoidc.NewBrowser()
		resp, body, err := b.SignIn(ctx, start, pat)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/ui/audit" id="continue" data-follow`) {
			t.Fatalf("after the callback: %d %.500s", resp.StatusCode, body)
		}
		resp, body, err = b.Get(ctx, s.url+"/ui/audit")
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(body, pat.Email) {
			t.Fatalf("the console after signing in: %v %d %.300s", err, resp.StatusCode, body)
		}
	})

	// stopAt makes b stop before following a redirect to the callback.
	stopAt := func(b *testoidc.Browser) {
		b.HTTP.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.Path, "/ui/sso/corp/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}
	}
	callbackOf := func(resp *http.Response) string {
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("no redirect to the callback: %d", resp.StatusCode)
		}
		return loc.String()
	}
	wantRefused := func(what string, resp *http.Response, body string, status int, msg string) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(body, msg) || !strings.Contains(body, `id="token"`) {
			t.Errorf("%s: %d %.600s; want %d, the sign-in page saying %q", what, resp.StatusCode, body, status, msg)
		}
		if strings.Contains(body, `aria-label="Main"`) {
			t.Errorf("%s: signed in", what)
		}
	}

	t.Run("state of another sign-in", func(t *testing.T) {
		mine, theirs := testoidc.NewBrowser(), testoidc.NewBrowser()
		stopAt(mine)
		stopAt(theirs)
		if _, _, err := mine.Get(ctx, start); err != nil { // sets my flow cookie
			t.Fatal(err)
		}
		resp, _, err := theirs.SignIn(ctx, start, pat)
		if err != nil {
			t.Fatal(err)
		}
		resp, body, err := mine.Get(ctx, callbackOf(resp))
		if err != nil {
			t.Fatal(err)
		}
		wantRefused("their code with my cookie", resp, body, http.StatusBadRequest, "state mismatch")
	})
	t.Run("no flow cookie", func(t *testing.T) {
		b := testoidc.NewBrowser()
		stopAt(b)
		resp, _, err := b.SignIn(ctx, start, pat)
		if err != nil {
			t.Fatal(err)
		}
		resp, body, err := testoidc.NewBrowser().Get(ctx, callbackOf(resp))
		if err != nil {
			t.Fatal(err)
		}
		wantRefused("callback without the cookie", resp, body, http.StatusBadRequest, "not started here")
	})
	t.Run("provider error", func(t *testing.T) {
		b := testoidc.NewBrowser()
		if _, _, err := b.Get(ctx, start); err != nil {
			t.Fatal(err)
		}
		resp, body, err := b.Get(ctx, s.url+"/ui/sso/corp/callback?error=access_denied&error_description=the+user+said+no")
		if err != nil {
			t.Fatal(err)
		}
		wantRefused("provider error", resp, body, http.StatusUnauthorized, "Corp SSO refused the sign-in (access_denied: the user said no)")
	})
	t.Run("no role", func(t *testing.T) {
		resp, body, err := testoidc.NewBrowser().SignIn(ctx, start, ivy)
		if err != nil {
			t.Fatal(err)
		}
		wantRefused("interns only", resp, body, http.StatusForbidden, "NO_ROLE_GRANTED")
	})
	t.Run("unknown provider", func(t *testing.T) {
		resp, body, err := testoidc.NewBrowser().Get(ctx, s.url+"/ui/sso/nope/start")
		if err != nil {
			t.Fatal(err)
		}
		wantRefused("unknown provider", resp, body, http.StatusNotFound, "no single sign-on provider of that name")
	})
}
