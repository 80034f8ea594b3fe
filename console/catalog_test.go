package console_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
)

// TestBrowserCatalogue: an approver opens the catalogue from the
// navigation and sees every artifact with its state; searches it by name
// prefix and by state; opens an artifact's page and sees both digests,
// the evidence with its signer, the verified receipt, the release that
// includes it and where it runs; a quarantined artifact's page says in
// words what the policy still needs; a keylessly signed one names the
// identity, its subject and issuer.
func TestBrowserCatalogue(t *testing.T) {
	s := newCatalogScene(t)
	ctx := s.browser()
	s.signIn(ctx, s.lc.Tokens["cab-1"])

	s.run(ctx,
		chromedp.Click(chromedp.CSS(`nav[aria-label="Main"] a[href="/ui/artifacts"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.artifacts`)),
	)
	if got, want := s.catalogueRows(ctx), []string{"billing/ledger:3.1.0", "payments/api:1.4.1", "payments/api:1.4.2", "payments/api:1.4.3", "storefront/web:2.0.0"}; !slices.Equal(got, want) {
		t.Errorf("catalogue = %q; want %q", got, want)
	}
	if cur := s.text(ctx, `nav[aria-label="Main"] a[aria-current="page"]`); cur != "Catalogue" {
		t.Errorf("current navigation item %q", cur)
	}
	s.screenshot(ctx, "console-catalogue")

	search := func(prefix, state string) {
		t.Helper()
		s.run(ctx,
			chromedp.SetValue(chromedp.ID("name"), prefix),
			chromedp.SetValue(chromedp.ID("state"), state),
			chromedp.Submit(chromedp.ID("name")),
			chromedp.WaitVisible(chromedp.CSS(`main .empty, table.artifacts caption code`)),
		)
	}
	search("payments/", "quarantined")
	if got, want := s.catalogueRows(ctx), []string{"payments/api:1.4.3"}; !slices.Equal(got, want) {
		t.Errorf("payments/ quarantined = %q; want %q", got, want)
	}
	if loc := s.location(ctx); !strings.Contains(loc, "name=payments%2F") || !strings.Contains(loc, "state=quarantined") {
		t.Errorf("the search is not in the URL (bookmarkable): %s", loc)
	}
	search("payments/", "")
	if got, want := s.catalogueRows(ctx), []string{"payments/api:1.4.1", "payments/api:1.4.2", "payments/api:1.4.3"}; !slices.Equal(got, want) {
		t.Errorf("payments/ = %q; want %q", got, want)
	}
	search("pay", "rejected")
	if got, want := s.catalogueRows(ctx), []string{"payments/api:1.4.1"}; !slices.Equal(got, want) {
		t.Errorf("pay, rejected = %q; want %q", got, want)
	}
	search("inventory/", "")
	if got := s.text(ctx, `main .empty`); !strings.Contains(got, "No artifact whose name starts with inventory/ exists") {
		t.Errorf("an empty search says %q", got)
	}

	// The artifact page, from the catalogue.
	search("payments/", "admitted")
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`table.artifacts a[href="/ui/artifacts/payments/api/versions/1.4.2"]`)),
		chromedp.WaitVisible(chromedp.ID("sha512")),
	)
	sum := sha512.Sum512(s.tarball)
	for sel, want := range map[string]string{
		`h1`:                                   "payments/api 1.4.2",
		`#sha256`:                              digest.FromBytes(s.tarball).String(),
		`#sha512`:                              "sha512:" + hex.EncodeToString(sum[:]),
		`table.evidence tbody`:                 "key ci",
		`section[aria-labelledby="receipt-h"]`: "signature verified with this server's key",
		`table.releases`:                       "2026.11-payments",
		`ul.running`:                           "production: running since",
		`table.deployments`:                    "k8s/prod-eu",
		`#download`:                            "Download payments-api-1.4.2.tar.gz",
	} {
		if got := s.text(ctx, sel); !strings.Contains(got, want) {
			t.Errorf("artifact page %s = %q; want it to hold %q", sel, got, want)
		}
	}
	if got := s.text(ctx, `table.evidence tbody`); !strings.Contains(got, "Test results") || !strings.Contains(got, "result PASSED") {
		t.Errorf("the evidence does not show the test results: %q", got)
	}
	s.screenshot(ctx, "console-artifact")

	// What a quarantined artifact still needs, in words; no download for
	// an approver (content not admitted).
	s.run(ctx,
		chromedp.Navigate(s.url+"/ui/artifacts/payments/api/versions/1.4.3"),
		chromedp.WaitVisible(chromedp.CSS(`ul.unmet`)),
	)
	if got := s.text(ctx, `ul.unmet`); !strings.Contains(got, "A signature by the trusted signer ci is needed (0 of 1 so far).") ||
		!strings.Contains(got, "Passing test results, attested by the trusted signer ci, are needed.") {
		t.Errorf("unmet requirements of 1.4.3: %q", got)
	}
	if got := s.text(ctx, `#no-download`); !strings.Contains(got, "quarantined") {
		t.Errorf("an approver on quarantined content: %q", got)
	}

	// Keyless evidence names its signer's identity.
	s.run(ctx,
		chromedp.Navigate(s.url+"/ui/artifacts/storefront/web/versions/2.0.0"),
		chromedp.WaitVisible(chromedp.CSS(`table.evidence`)),
	)
	ev := s.text(ctx, `table.evidence tbody`)
	for _, want := range []string{"identity storefront-release", storefrontRelease, storefrontIssuer, "ci-sigstore", "Sigstore bundle"} {
		if !strings.Contains(ev, want) {
			t.Errorf("keyless evidence %q lacks %q", ev, want)
		}
	}
}

// catalogueRows lists name:version of the catalogue's table.
func (s *catalogScene) catalogueRows(ctx context.Context) []string {
	s.t.Helper()
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("table.artifacts tbody tr"), r => r.cells[0].innerText.trim() + ":" + r.cells[1].innerText.trim())`))
	if err != nil {
		s.t.Fatal(err)
	}
	return rows
}

// TestBrowserArtifactDownload: the download is offered to an approver
// (admitted content) and to a deployer whose environment the release is
// authorised for; clicking it saves the artifact's exact bytes under its
// name, and the access log records who downloaded what, as for the API.
// A deployer of another environment is not offered it, and the URL
// refuses it (403) and is recorded as refused.
func TestBrowserArtifactDownload(t *testing.T) {
	s := newCatalogScene(t)
	ctx := s.browser()
	page := s.url + "/ui/artifacts/payments/api/versions/1.4.2"

	s.signIn(ctx, s.lc.Tokens["cab-1"])
	s.run(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("download")))
	name, got := s.download(ctx, `#download`)
	if name != "payments-api-1.4.2.tar.gz" || string(got) != string(s.tarball) {
		t.Errorf("downloaded %s, %d bytes; want payments-api-1.4.2.tar.gz, the %d bytes pushed", name, len(got), len(s.tarball))
	}
	served := s.accessRecords("payments/api:1.4.2")
	if !slices.ContainsFunc(served, func(r audit.AccessRecord) bool {
		return r.Principal == "cab-1" && r.Outcome == audit.AccessServed && r.Status == 200 &&
			r.Route == "/ui/artifacts/{name}/versions/{version}/content" && r.Digest == digest.FromBytes(s.tarball)
	}) {
		t.Errorf("no access record of cab-1's download: %+v", served)
	}

	s.signOut(ctx)
	s.signIn(ctx, s.lc.Tokens["deploy-staging"])
	s.run(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("download")))

	qa := s.tokenFor("deploy-qa", []string{"qa"}, access.RoleDeployer)
	s.signOut(ctx)
	s.signIn(ctx, qa)
	s.run(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("no-download")))
	if got := s.text(ctx, `#no-download`); !strings.Contains(got, "no release authorised for deployment to qa") {
		t.Errorf("a deployer of qa is told %q", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#download").length`)); err != nil || n != 0 {
		t.Errorf("a deployer of qa is offered the download (%d, %v)", n, err)
	}
	s.run(ctx, chromedp.Navigate(page+"/content"), chromedp.WaitVisible(chromedp.CSS(`section.problem`)))
	if got := s.text(ctx, `section.problem`); !strings.Contains(got, "403") || !strings.Contains(got, "qa") {
		t.Errorf("the content URL for a deployer of qa: %q", got)
	}
	if !slices.ContainsFunc(s.accessRecords("payments/api:1.4.2"), func(r audit.AccessRecord) bool {
		return r.Principal == "deploy-qa" && r.Outcome == audit.AccessDenied && r.Status == 403
	}) {
		t.Error("the refused download is not in the access log")
	}
}

// signOut signs out with the navigation's button.
func (s *catalogScene) signOut(ctx context.Context) {
	s.t.Helper()
	s.run(ctx, chromedp.Click(chromedp.CSS(`form.who button`)), chromedp.WaitVisible(chromedp.ID("token")))
}

// download clicks the link sel, lets Chromium save the file into a
// temporary directory, and returns the name it suggested and the bytes.
func (s *catalogScene) download(ctx context.Context, sel string) (string, []byte) {
	s.t.Helper()
	dir := s.t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
	}); err != nil {
		s.t.Fatal(err)
	}
	begins := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	s.run(ctx, chromedp.Click(chromedp.CSS(sel)))
	var guid, name string
	for ev, err := range begins {
		if err != nil {
			s.t.Fatal(err)
		}
		guid, name = ev.GUID, ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			s.t.Fatal(err)
		}
		if ev.GUID != guid {
			continue
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			s.t.Fatalf("the download of %s was cancelled", name)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, guid))
	if err != nil {
		s.t.Fatal(err)
	}
	return name, b
}

// TestCatalogueSearchPages: the catalogue is paged by fifty, in name and
// version order, each page continuing where the last stopped (also in the
// middle of what the catalogue lists at once), with the search kept; a
// name prefix selects its run of names; a sparse prefix stops after
// reading its share of the catalogue and offers to keep searching, which
// finds the rest.
func TestCatalogueSearchPages(t *testing.T) {
	s := &catalogSite{newSite(t)}
	ctx := context.Background()
	publisher := s.principal(s.tokenFor("pipeline", nil, access.RolePublisher))
	push := func(name string, n int) {
		for i := range n {
			b := []byte(name + strconv.Itoa(i))
			if _, _, err := s.dml.Catalog.Push(ctx, publisher, catalog.PushRequest{Name: name, Version: fmt.Sprintf("v%03d", i),
				MediaType: "application/octet-stream", Size: int64(len(b)), Body: bytes.NewReader(b)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	push("aaa/filler", 400)
	push("tools/cli", 120)
	push("zzz/app", 2)
	c := s.client(s.tokenFor("cab", nil, access.RoleApprover))

	// Every page of tools/, by following Next page.
	var seen []string
	path := "/ui/artifacts?name=tools/"
	for pages := 0; path != ""; pages++ {
		if pages == 4 {
			t.Fatal("more than three pages of tools/")
		}
		body := c.page(path, http.StatusOK)
		rows := catArtifactRows(body)
		if want := []int{50, 50, 20}[pages]; len(rows) != want {
			t.Errorf("page %d of tools/: %d artifacts; want %d", pages+1, len(rows), want)
		}
		seen = append(seen, rows...)
		path = ""
		if strings.Contains(body, `rel="next"`) {
			path = catLink(t, body, "Next page")
			if !strings.Contains(path, "name=tools%2F") {
				t.Errorf("the next page forgets the search: %s", path)
			}
		}
	}
	var want []string
	for i := range 120 {
		want = append(want, fmt.Sprintf("tools/cli:v%03d", i))
	}
	if !slices.Equal(seen, want) {
		t.Errorf("the pages of tools/ list %d artifacts, %q…; want tools/cli v000 to v119 once each, in order", len(seen), seen[:min(3, len(seen))])
	}

	// zzz/ is read past 500 artifacts: the first page stops short.
	body := c.page("/ui/artifacts?name=zzz/", http.StatusOK)
	if rows := catArtifactRows(body); len(rows) != 0 || !strings.Contains(body, "Keep searching") {
		t.Fatalf("zzz/ at first: %q, and no offer to keep searching", rows)
	}
	body = c.page(catLink(t, body, "Keep searching"), http.StatusOK)
	if rows := catArtifactRows(body); !slices.Equal(rows, []string{"zzz/app:v000", "zzz/app:v001"}) {
		t.Errorf("zzz/ after searching on: %q", rows)
	}

	// A state and a prefix together; the first page without a search.
	if rows := catArtifactRows(c.page("/ui/artifacts?name=tools/&state=admitted", http.StatusOK)); len(rows) != 0 {
		t.Errorf("admitted tools/: %q", rows)
	}
	if rows := catArtifactRows(c.page("/ui/artifacts", http.StatusOK)); len(rows) != 50 || rows[0] != "aaa/filler:v000" {
		t.Errorf("the catalogue's first page: %d rows from %q", len(rows), rows[:min(1, len(rows))])
	}
	c.page("/ui/artifacts?state=lost", http.StatusBadRequest)
	c.page("/ui/artifacts?after=not-a-cursor", http.StatusBadRequest)
}

// TestContentDownload: the console's download answers as the API's
// content route decides — the same refusals, recorded in the access log
// with who and what — and serves the bytes as an attachment no browser
// renders (whatever media type the publisher named).
func TestContentDownload(t *testing.T) {
	s := newCatalogScene(t)
	content := "/ui/artifacts/payments/api/versions/1.4.2/content"

	auditor := s.client(s.lc.Tokens["audit"])
	res, body := auditor.get(content)
	if res.StatusCode != http.StatusOK || body != string(s.tarball) {
		t.Fatalf("an auditor's download: %d, %d bytes", res.StatusCode, len(body))
	}
	for h, want := range map[string]string{
		"Content-Type":            "application/octet-stream",
		"Content-Disposition":     `attachment; filename=payments-api-1.4.2.tar.gz`,
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox; default-src 'none'",
		"Docker-Content-Digest":   digest.FromBytes(s.tarball).String(),
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s: %q; want %q", h, got, want)
		}
	}

	// A HEAD says what a download would be, and is no download.
	head, err := auditor.http.Head(auditor.base + content)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusOK || head.Header.Get("Content-Length") != strconv.Itoa(len(s.tarball)) {
		t.Errorf("HEAD: %d, length %q", head.StatusCode, head.Header.Get("Content-Length"))
	}

	// Not admitted: refused to an approver (403), served to its publisher.
	approver := s.client(s.lc.Tokens["cab-1"])
	approver.page("/ui/artifacts/payments/api/versions/1.4.3/content", http.StatusForbidden)
	approver.page("/ui/artifacts/payments/api/versions/9.9.9/content", http.StatusNotFound)
	pipeline := s.client(s.lc.Tokens["pipeline"])
	if body := pipeline.page("/ui/artifacts/payments/api/versions/1.4.3/content", http.StatusOK); body != "payments api 1.4.3, not signed yet\n" {
		t.Errorf("the publisher's own quarantined content: %q", body)
	}
	// The receipt, for everyone who may read the artifact.
	res, body = approver.get("/ui/artifacts/payments/api/versions/1.4.2/receipt")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"payloadType":"application/vnd.in-toto+json"`) {
		t.Errorf("the receipt: %d %s", res.StatusCode, body)
	}
	approver.page("/ui/artifacts/payments/api/versions/1.4.3/receipt", http.StatusNotFound)

	records := s.accessRecords("payments/api")
	find := func(who string, outcome audit.AccessOutcome, version string) bool {
		return slices.ContainsFunc(records, func(r audit.AccessRecord) bool {
			return r.Principal == who && r.Outcome == outcome && r.Version == version && r.Method == "GET" &&
				r.Route == "/ui/artifacts/{name}/versions/{version}/content" && r.Path == "/ui/artifacts/payments/api/versions/"+version+"/content"
		})
	}
	if !find("audit", audit.AccessServed, "1.4.2") || !find("cab-1", audit.AccessDenied, "1.4.3") || !find("pipeline", audit.AccessServed, "1.4.3") {
		t.Errorf("the access log lacks a download or a refusal: %+v", records)
	}
	if slices.ContainsFunc(records, func(r audit.AccessRecord) bool { return r.Version == "9.9.9" }) {
		t.Error("a download of nothing was recorded (the API records no 404)")
	}
	if n := len(slices.DeleteFunc(slices.Clone(records), func(r audit.AccessRecord) bool { return r.Principal != "audit" })); n != 1 {
		t.Errorf("the auditor's GET and HEAD made %d access records; want 1 (the download)", n)
	}
}
