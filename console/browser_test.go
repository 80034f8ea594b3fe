package console_test

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
)

// The console's end-to-end tests drive a real Chromium (Debian's chromium
// package; scripts/test.sh installs it) with chromedp, headless, against a
// test server on loopback. Without Chromium they fail in CI and are
// skipped elsewhere.

var updateScreenshots = flag.Bool("update-screenshots", false, "write the screenshots the tests take into docs/img/ (else into a temporary directory)")

// chromium is the browser's path: $DML_CHROMIUM, or chromium on $PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DML_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not installed: the console's browser tests need it (scripts/test.sh installs Debian's chromium)")
	}
	t.Skip("Chromium is not installed; scripts/test.sh installs it")
	return ""
}

// site is a test server with the console, and a browser pointed at it.
type site struct {
	t     *testing.T
	url   string
	admin string
	dml   *releases.DML
	srv   *httptest.Server
}

func newSite(t *testing.T, opts ...testserver.Option) *site {
	t.Helper()
	srv, admin, d := testserver.New(t, opts...)
	return &site{t: t, url: srv.URL, admin: admin, dml: d, srv: srv}
}

// browser starts a fresh headless Chromium (its own profile, no
// background networking, which this machine's closed network refuses)
// with a 1280×800 viewport, and returns a context to drive it with.
func (s *site) browser() context.Context {
	t := s.t
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancel := chromedp.NewContext(allocCtx)
	// The first run starts the browser, which lives as long as its
	// context: no timeout on that one; the steps after it have one.
	if err := chromedp.Do(browserCtx, chromedp.EmulateViewport(1280, 800)); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(browserCtx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// run runs browser steps, failing the test on error.
func (s *site) run(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		s.t.Fatal(err)
	}
}

// signIn signs in with token and waits for the console's navigation.
func (s *site) signIn(ctx context.Context, token string) {
	s.t.Helper()
	// By way of an empty page: the page before may be a sign-in page
	// too, whose #token would be found before the new one replaces it.
	s.run(ctx,
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(s.url+"/ui/signin"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)),
	)
}

// submit runs step — a click or a submit that loads a page — and waits
// until the NEW page shows sel. The old page is marked first, so that a sel
// it shows too (an error list, a form field) is not taken for the new
// page's while the browser is still navigating.
func (s *site) submit(ctx context.Context, step chromedp.Action[chromedp.Void], sel string) {
	s.t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.dataset.old = "1", true`)); err != nil {
		s.t.Fatal(err)
	}
	s.run(ctx, step, chromedp.WaitVisible(chromedp.CSS(`html:not([data-old]) `+sel)))
}

// text is the visible text of the first element matching sel. A read
// is tried again when the node it found was replaced before its text
// was read (staleNode, CDP error -32000: chromedp's
// node ids go stale when the document is updated between its query and
// its read; seen once in a cold CI run, reading the navigation right
// after a sign-in). Reading twice changes nothing; a missing element
// still fails on the wait, and a wrong text on the test's assertion.
func (s *site) text(ctx context.Context, sel string) string {
	s.t.Helper()
	var err error
	for range 3 {
		var out string
		out, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err == nil {
			return out
		}
		if !staleNode(err) {
			break
		}
	}
	s.t.Fatal(err)
	return ""
}

// staleNode reports whether err is CDP's answer about a node id that went
// stale between a query and its read (-32000: Chrome says it as "No node
// with given id found" or "Could not find node with given id").
func staleNode(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "No node with given id found") || strings.Contains(msg, "Could not find node with given id")
}

// location is the page's URL.
func (s *site) location(ctx context.Context) string {
	s.t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		s.t.Fatal(err)
	}
	return loc
}

// screenshot takes a PNG of the viewport (1280×800), into docs/img/ with
// -update-screenshots, else into a temporary directory, and checks that
// it is a PNG.
func (s *site) screenshot(ctx context.Context, name string) {
	s.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		s.t.Fatal(err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		s.t.Fatalf("screenshot %s: not a PNG (%d bytes)", name, len(png))
	}
	dir := s.t.TempDir()
	if *updateScreenshots {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "docs", "img")
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// TestBrowserSignIn: a token of each role signs in (the navigation shows
// what its role may see); a wrong token is refused on the form; signing out ends
// the session, and a page then asks to sign in again.
func TestBrowserSignIn(t *testing.T) {
	s := newSite(t)
	ctx := s.browser()

	s.run(ctx, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	s.screenshot(ctx, "console-signin")
	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("token"), "dml_not-a-token"),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`.error`)),
	)
	if got := s.text(ctx, `.error`); !strings.Contains(got, "not valid") {
		t.Errorf("wrong token: %q", got)
	}

	// Each role signs in and sees the pages its API grants: Audit for
	// auditors and admins, Admin for admins only.
	everyone := []string{"Waiting for me", "Releases", "Environments", "Catalogue"}
	for _, role := range access.Roles {
		token := s.admin
		if role != access.RoleAdmin {
			issued, err := s.dml.Access.IssueToken(context.Background(), adminPrincipal(t, s), access.TokenRequest{
				Name: "as-" + string(role), Roles: []access.Role{role}, Environments: []string{"staging"}})
			if err != nil {
				t.Fatal(err)
			}
			token = issued.Secret
		}
		s.signIn(ctx, token)
		nav := s.text(ctx, `nav[aria-label="Main"]`)
		for _, page := range everyone {
			if !strings.Contains(nav, page) {
				t.Errorf("%s's navigation %q lacks %s", role, nav, page)
			}
		}
		if got, want := strings.Contains(nav, "Audit"), role == access.RoleAdmin || role == access.RoleAuditor; got != want {
			t.Errorf("%s's navigation %q: Audit shown %v, want %v", role, nav, got, want)
		}
		if got, want := strings.Contains(nav, "Admin"), role == access.RoleAdmin; got != want {
			t.Errorf("%s's navigation %q: Admin shown %v, want %v", role, nav, got, want)
		}
		if who := s.text(ctx, "form.who"); !strings.Contains(who, string(role)) {
			t.Errorf("signed in as %s, the header says %q", role, who)
		}
	}
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`form.who button`)),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	if got := s.text(ctx, `.flash`); !strings.Contains(got, "signed out") {
		t.Errorf("after signing out: %q", got)
	}
	s.run(ctx, chromedp.Navigate(s.url+"/ui/releases"), chromedp.WaitVisible(chromedp.ID("token")))
	loc := s.location(ctx)
	if !strings.Contains(loc, "/ui/signin") {
		t.Errorf("a page after signing out went to %s; want the sign-in page", loc)
	}
}

// TestConsoleHeaders: every console answer carries the strict CSP and
// the page is not framed; the session cookie is HttpOnly and
// SameSite=Strict.
func TestConsoleHeaders(t *testing.T) {
	s := newSite(t)
	res, err := http.Get(s.url + "/ui/signin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers: CSP %q, X-Frame-Options %q", csp, res.Header.Get("X-Frame-Options"))
	}
}

// TestLiveRegionWithoutSession: a live region's refresh without a session
// answers 401, so that the script reloads the page, rather than the
// sign-in page, which would land inside the region; a page without a
// session still goes to sign-in.
func TestLiveRegionWithoutSession(t *testing.T) {
	s := newSite(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		live bool
		want int
	}{{true, http.StatusUnauthorized}, {false, http.StatusSeeOther}} {
		req, err := http.NewRequest(http.MethodGet, s.url+"/ui/live/board", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.live {
			req.Header.Set("X-DML-Live", "1")
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("live=%v: %d; want %d", tc.live, res.StatusCode, tc.want)
		}
	}
}
