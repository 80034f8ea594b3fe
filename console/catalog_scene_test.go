package console_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/internal/testsigstore"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/trust"
)

// catalogScene is a catalogue with a history, built through the domain
// services: testserver.FullLifecycle's payments/api 1.4.2 (signed and
// tested with the CI key, admitted, released to staging and production,
// reviewed, closed), and around it what a catalogue also holds —
//
//   - storefront/web 2.0.0, admitted on a keyless signature by the
//     storefront release workflow (a virtual Sigstore);
//   - payments/api 1.4.3, pushed without evidence: quarantined, needing a
//     signature and test results;
//   - payments/api 1.4.1, whose CI test results failed: rejected;
//   - billing/ledger 3.1.0, which no policy rule covers: quarantined.
type catalogScene struct {
	*catalogSite
	lc testserver.Lifecycle
	// tarball is the bytes of payments/api 1.4.2 (and 1.4.1).
	tarball []byte
}

const (
	storefrontIssuer  = "https://token.actions.example.test"
	storefrontRelease = "https://example.test/acme/storefront/.github/workflows/release.yml@refs/heads/main"
)

func newCatalogScene(t *testing.T) *catalogScene {
	t.Helper()
	s := &catalogScene{catalogSite: &catalogSite{newSite(t)}}
	d, ctx := s.dml, context.Background()
	s.lc = testserver.FullLifecycle(t, d)
	admin := s.principal(testserver.AdminToken)
	pipeline := s.principal(s.lc.Tokens["pipeline"])
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	var err error
	s.tarball, err = os.ReadFile(filepath.Join(testserver.FixturesDir(), "payments-api-1.4.2.tar.gz"))
	must("fixture", err)

	sigstore := testsigstore.New(t)
	_, _, err = d.Trust.PutTrustedRoot(ctx, admin, "ci-sigstore", sigstore.RootJSON)
	must("trusted root", err)
	_, err = d.Trust.AddIdentity(ctx, admin, trust.Identity{ID: "storefront-release", Root: "ci-sigstore", Issuer: storefrontIssuer, Subject: storefrontRelease})
	must("identity", err)
	_, err = d.Trust.SetTrustPolicy(ctx, admin, []byte(`{"rules":[
		{"match":"payments/*","signatures":{"keys":["ci"]},"attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"]}]},
		{"match":"storefront/*","signatures":{"keys":["storefront-release"]}}]}`))
	must("policy", err)

	push := func(name, version, mediaType string, content []byte) {
		t.Helper()
		_, _, err := d.Catalog.Push(ctx, pipeline, catalog.PushRequest{Name: name, Version: version, MediaType: mediaType, Size: int64(len(content)), Body: bytes.NewReader(content)})
		must("push "+name+":"+version, err)
	}
	web := []byte("storefront web 2.0.0: the shop's front end, built by its release workflow\n")
	push("storefront/web", "2.0.0", "application/octet-stream", web)
	_, a, err := d.Catalog.AddEvidence(ctx, pipeline, catalog.EvidenceRequest{Name: "storefront/web", Version: "2.0.0", Kind: catalog.EvidenceSignature,
		Body: sigstore.SignBlob(t, storefrontRelease, storefrontIssuer, web, time.Now().Add(5*time.Minute))})
	must("keyless signature", err)
	if a.State != catalog.StateAdmitted {
		t.Fatalf("storefront/web 2.0.0 is %s after its keyless signature", a.State)
	}

	push("payments/api", "1.4.3", "application/gzip", []byte("payments api 1.4.3, not signed yet\n"))
	push("payments/api", "1.4.1", "application/gzip", s.tarball)
	failed, err := os.ReadFile(filepath.Join(testserver.FixturesDir(), "test-result-failed.dsse.json"))
	must("fixture", err)
	_, a, err = d.Catalog.AddEvidence(ctx, pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "1.4.1", Kind: catalog.EvidenceAttestation, Body: failed})
	must("failed tests", err)
	if a.State != catalog.StateRejected {
		t.Fatalf("payments/api 1.4.1 is %s after failed tests", a.State)
	}
	push("billing/ledger", "3.1.0", "application/java-archive", []byte("PK ledger 3.1.0\n"))
	return s
}

// catalogSite is a test site with the helpers of the catalogue's and the
// audit pages' tests.
type catalogSite struct{ *site }

// principal authenticates a token.
func (s *catalogSite) principal(token string) access.Principal {
	s.t.Helper()
	p, err := s.dml.Access.Authenticate(context.Background(), token)
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// tokenFor issues a token with roles and environments.
func (s *catalogSite) tokenFor(name string, envs []string, roles ...access.Role) string {
	s.t.Helper()
	ctx := context.Background()
	admin, err := s.dml.Access.Authenticate(ctx, s.admin)
	if err != nil {
		s.t.Fatal(err)
	}
	issued, err := s.dml.Access.IssueToken(ctx, admin, access.TokenRequest{Name: name, Roles: roles, Environments: envs})
	if err != nil {
		s.t.Fatal(err)
	}
	return issued.Secret
}

// accessRecords are the access log's records about subject.
func (s *catalogSite) accessRecords(subject string) []audit.AccessRecord {
	s.t.Helper()
	ctx := context.Background()
	admin, err := s.dml.Access.Authenticate(ctx, s.admin)
	if err != nil {
		s.t.Fatal(err)
	}
	list, _, err := s.dml.Audit.AccessRecords(ctx, admin, audit.AccessFilter{Subject: subject, Limit: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	return list
}

// catalogClient is a signed-in HTTP client of the console, for what is
// simpler to check without a browser (statuses, headers, many pages).
type catalogClient struct {
	t    *testing.T
	base string
	http *http.Client
}

var catCSRF = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// client signs in with token through the sign-in form, as a browser
// would, and keeps the session cookie.
func (s *catalogSite) client(token string) *catalogClient {
	s.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	c := &catalogClient{t: s.t, base: s.url, http: &http.Client{Jar: jar}}
	_, body := c.get("/ui/signin")
	m := catCSRF.FindStringSubmatch(body)
	if m == nil {
		s.t.Fatalf("sign-in page without a CSRF token:\n%s", body)
	}
	res, err := c.http.PostForm(s.url+"/ui/signin", url.Values{"_csrf": {m[1]}, "token": {token}, "next": {"/ui/"}})
	if err != nil {
		s.t.Fatal(err)
	}
	res.Body.Close()
	if res.Request.URL.Path != "/ui/" {
		s.t.Fatalf("signing in ended at %s, status %d", res.Request.URL, res.StatusCode)
	}
	return c
}

// get fetches a console path and returns the answer and its body.
func (c *catalogClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	res, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return res, string(b)
}

// page fetches a page that must answer status.
func (c *catalogClient) page(path string, status int) string {
	c.t.Helper()
	res, body := c.get(path)
	if res.StatusCode != status {
		c.t.Fatalf("GET %s: %d, want %d:\n%s", path, res.StatusCode, status, body)
	}
	return body
}

// catRowsOf lists the texts of the first cell of each table body row of
// class table in html: the names a page lists.
func catRowsOf(html, table string) []string {
	start := strings.Index(html, `<table class="`+table+`"`)
	if start < 0 {
		return nil
	}
	html = html[start:]
	if end := strings.Index(html, "</table>"); end >= 0 {
		html = html[:end]
	}
	var out []string
	for _, m := range catRowCell.FindAllStringSubmatch(html, -1) {
		out = append(out, strings.TrimSpace(catTags.ReplaceAllString(m[1], "")))
	}
	return out
}

var (
	catRowCell = regexp.MustCompile(`(?s)<tr>\s*<th scope="row">(.*?)</th>`)
	catTags    = regexp.MustCompile(`<[^>]*>`)
)

// catArtifactRows lists name:version of a catalogue page's table.
func catArtifactRows(html string) []string {
	var out []string
	for _, m := range catArtifactLink.FindAllStringSubmatch(html, -1) {
		out = append(out, m[1]+":"+m[2])
	}
	return out
}

var catArtifactLink = regexp.MustCompile(`<td><a href="/ui/artifacts/([a-z0-9/._-]+)/versions/([A-Za-z0-9._-]+)">`)

// catLink is the href of the link whose text starts with text.
func catLink(t *testing.T, html, text string) string {
	t.Helper()
	m := regexp.MustCompile(`<a href="([^"]+)"[^>]*>` + regexp.QuoteMeta(text)).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no link %q in the page", text)
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}
