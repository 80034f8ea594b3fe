package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
)

// The session's defences: a state-changing form without this session's
// CSRF token changes nothing; an expired session, or one whose token was
// revoked, is sent to sign in again.

// TestBrowserCSRFRefused: a form whose CSRF token was tampered with, or
// removed, is refused with 403 and changes nothing.
func TestBrowserCSRFRefused(t *testing.T) {
	s := newSite(t)
	ctx := s.browser()
	s.signIn(ctx, s.admin)
	before := len(adminTokens(t, s))
	for _, tc := range []struct {
		name   string
		tamper chromedp.Action[chromedp.Void]
	}{
		{"forged", chromedp.SetValue(chromedp.CSS(`form[action="/ui/admin/tokens"] input[name="_csrf"]`), "0123456789abcdef0123456789abcdef")},
		{"missing", chromedp.RemoveAttribute(chromedp.CSS(`form[action="/ui/admin/tokens"] input[name="_csrf"]`), "name")},
	} {
		if st := adminOpen(t, ctx, s, "/ui/admin/tokens"); st != http.StatusOK {
			t.Fatalf("tokens page: %d", st)
		}
		s.run(ctx,
			chromedp.SendKeys(chromedp.ID("token-name"), "mallory-"+tc.name),
			chromedp.Click(chromedp.CSS(`input[name="role"][value="admin"]`)),
			tc.tamper,
			chromedp.Click(chromedp.CSS(`form[action="/ui/admin/tokens"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`.problem [role="alert"]`)),
		)
		if h1 := s.text(ctx, "main h1"); !strings.Contains(h1, "403") {
			t.Errorf("%s CSRF token: %q", tc.name, h1)
		}
		if got := s.text(ctx, `.problem [role="alert"]`); !strings.Contains(got, "CSRF") || !strings.Contains(got, "Nothing was changed") {
			t.Errorf("%s CSRF token: %q", tc.name, got)
		}
		if after := len(adminTokens(t, s)); after != before {
			t.Errorf("%s CSRF token: %d tokens, was %d", tc.name, after, before)
		}
	}
}

// TestCSRFRefusedEverywhere: every admin form, posted with the session
// cookie but without this session's CSRF token (none, a wrong one, or
// another session's of the same token), answers 403 and changes nothing;
// with it, the same post is carried out.
func TestCSRFRefusedEverywhere(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	victim := testserver.Token(t, s.dml, "victim", access.RoleAuditor)
	victimID := adminMustToken(t, s, "victim").ID
	c := adminSignIn(t, s, s.admin)
	own := c.csrf("/ui/admin/tokens")
	other := adminSignIn(t, s, s.admin).csrf("/ui/admin/tokens")
	if own == other {
		t.Fatal("two sessions share a CSRF token")
	}

	forms := []struct {
		path string
		form url.Values
		// changed reports whether the post changed anything.
		changed func() bool
	}{
		{"/ui/admin/tokens", url.Values{"name": {"mallory"}, "role": {"admin"}}, func() bool {
			_, found := adminTokenNamed(t, s, "mallory")
			return found
		}},
		{"/ui/admin/tokens/revoke", url.Values{"id": {victimID}}, func() bool {
			_, err := s.dml.Access.Authenticate(ctx, victim)
			return err != nil
		}},
		{"/ui/admin/policy", url.Values{"base": {"0"}, "policy": {`{"rules":[{"match":"**","signatures":{"keys":["mallory"]}}]}`}}, func() bool {
			_, err := s.dml.Trust.TrustPolicy(ctx)
			return err == nil
		}},
		{"/ui/admin/gates", url.Values{"approvals:plan": {"5"}}, func() bool {
			g, _, err := s.dml.Releases.GateDefaults(ctx)
			return err != nil || len(g) > 0
		}},
		{"/ui/admin/trust/keys", url.Values{"id": {"mallory"}, "publicKey": {adminPublicKeyPEM(t)}}, func() bool {
			keys, err := s.dml.Trust.TrustKeys(ctx)
			return err != nil || len(keys) > 0
		}},
	}
	for _, f := range forms {
		for _, csrf := range []struct{ name, value string }{{"none", ""}, {"wrong", strings.Repeat("0", 32)}, {"another session's", other}, {"this session's", own}} {
			form := url.Values{}
			for k, v := range f.form {
				form[k] = v
			}
			if csrf.value != "" {
				form.Set("_csrf", csrf.value)
			}
			res, body := c.post(f.path, form)
			if csrf.value == own {
				// The control: the same post with the session's own
				// token is carried out.
				if res.StatusCode != http.StatusSeeOther || !f.changed() {
					t.Errorf("POST %s with %s CSRF token: %d %q, changed %v", f.path, csrf.name, res.StatusCode, adminExcerpt(body), f.changed())
				}
				continue
			}
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
				t.Errorf("POST %s with %s CSRF token: %d %q", f.path, csrf.name, res.StatusCode, adminExcerpt(body))
			}
			if f.changed() {
				t.Fatalf("POST %s with %s CSRF token changed something", f.path, csrf.name)
			}
		}
	}
}

// TestBrowserSessionExpiry: once a session's time is over on the server's
// clock, a form half filled in before is refused (nothing changes) and
// the browser goes to sign in, told that the session expired; signing in
// again returns to the page of the refused form. The session cookie
// outlives the session (by Max-Age, so the browser's clock does not
// matter), which is how the server can say it expired.
func TestBrowserSessionExpiry(t *testing.T) {
	const ttl = time.Hour
	clock := &relClock{t: time.Now().UTC()}
	s := newSite(t, testserver.WithClock(clock.now), testserver.WithAPI(func(c *api.Config) { c.ConsoleSessionTTL = ttl }))
	ctx := s.browser()
	s.signIn(ctx, s.admin)
	s.run(ctx,
		chromedp.Navigate(s.url+"/ui/admin/tokens"),
		chromedp.WaitVisible(chromedp.ID("token-name")),
		chromedp.SendKeys(chromedp.ID("token-name"), "late-token"),
		chromedp.Click(chromedp.CSS(`input[name="role"][value="auditor"]`)),
	)
	clock.set(clock.now().Add(ttl + time.Minute))
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/ui/admin/tokens"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	if loc := s.location(ctx); !strings.Contains(loc, "why=expired") {
		t.Errorf("an expired session's form went to %s", loc)
	}
	if got := s.text(ctx, ".flash"); !strings.Contains(got, "expired") {
		t.Errorf("the sign-in page says %q; want that the session expired", got)
	}
	if _, found := adminTokenNamed(t, s, "late-token"); found {
		t.Error("a form posted by an expired session issued a token")
	}
	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("token"), s.admin),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("token-name")),
	)
	if loc := s.location(ctx); !strings.HasSuffix(loc, "/ui/admin/tokens") {
		t.Errorf("signing in again went to %s; want the page of the refused form", loc)
	}
}

// TestBrowserRevokedTokenSessionEnds: revoking a token ends the sessions
// it signed in, at their next page, and it cannot sign in again.
func TestBrowserRevokedTokenSessionEnds(t *testing.T) {
	s := newSite(t)
	approver := testserver.Token(t, s.dml, "cab-alice", access.RoleApprover)
	ctx := s.browser()
	s.signIn(ctx, approver)
	if who := s.text(ctx, "form.who"); !strings.Contains(who, "cab-alice") {
		t.Fatalf("signed in as %q", who)
	}
	if err := s.dml.Access.RevokeToken(context.Background(), adminPrincipal(t, s), adminMustToken(t, s, "cab-alice").ID); err != nil {
		t.Fatal(err)
	}
	s.run(ctx, chromedp.Navigate(s.url+"/ui/releases"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := s.location(ctx); !strings.Contains(loc, "/ui/signin") {
		t.Errorf("the revoked token's session went on to %s", loc)
	}
	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("token"), approver),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(".error")),
	)
	if got := s.text(ctx, ".error"); !strings.Contains(got, "not valid") {
		t.Errorf("signing in with the revoked token: %q", got)
	}
}

// adminTokens lists every token.
func adminTokens(t *testing.T, s *site) []access.Token {
	t.Helper()
	list, err := s.dml.Access.Tokens(context.Background(), adminPrincipal(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// adminHTTPSession is a console session held by a plain HTTP client with a
// cookie jar, as a browser holds it, that does not follow redirects.
type adminHTTPSession struct {
	t   *testing.T
	url string
	c   *http.Client
}

var adminCSRFInput = regexp.MustCompile(`name="_csrf" value="([0-9a-f]+)"`)

// adminSignIn signs in with token through the sign-in form.
func adminSignIn(t *testing.T, s *site, token string) *adminHTTPSession {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &adminHTTPSession{t: t, url: s.url, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	res, body := h.post("/ui/signin", url.Values{"_csrf": {h.csrf("/ui/signin")}, "token": {token}, "next": {"/ui/"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %q", res.StatusCode, adminExcerpt(body))
	}
	return h
}

// get answers a page.
func (h *adminHTTPSession) get(path string) (*http.Response, string) {
	h.t.Helper()
	res, err := h.c.Get(h.url + path)
	if err != nil {
		h.t.Fatal(err)
	}
	return res, adminReadAll(h.t, res)
}

// csrf is the CSRF token of the first form of the page (every page of
// a session has one: the sign-out form).
func (h *adminHTTPSession) csrf(path string) string {
	h.t.Helper()
	res, body := h.get(path)
	m := adminCSRFInput.FindStringSubmatch(body)
	if m == nil {
		h.t.Fatalf("GET %s: %d, no CSRF token: %q", path, res.StatusCode, adminExcerpt(body))
	}
	return m[1]
}

func (h *adminHTTPSession) post(path string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	res, err := h.c.PostForm(h.url+path, form)
	if err != nil {
		h.t.Fatal(err)
	}
	return res, adminReadAll(h.t, res)
}

func adminReadAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// adminExcerpt is the text of a page's main element, for failure messages.
func adminExcerpt(body string) string {
	if i := strings.Index(body, "<main"); i >= 0 {
		body = body[i:]
	}
	if len(body) > 400 {
		body = body[:400]
	}
	return body
}
