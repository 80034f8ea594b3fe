package console_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
)

// The releases area's tests share one scene: the releases of an
// organisation over two months, in every phase, seeded through the domain
// services with distinct principals, and a clock the scene sets so that
// what the pages show has realistic dates.

// relClock is the domain's clock in these tests: set by the scene, and a
// second further on each reading, so that records keep their order.
type relClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *relClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func (c *relClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// relScene is the seeded domain, its principals and their tokens.
type relScene struct {
	t      *testing.T
	site   *site
	d      *releases.DML
	ctx    context.Context
	clock  *relClock
	who    map[string]access.Principal
	tokens map[string]string
	build  func(content []byte) string // a signature by the trusted key "build"
}

// day is a time of the scene: day d of the 2026 calendar month m.
func day(m time.Month, d, hour int) time.Time { return time.Date(2026, m, d, hour, 0, 0, 0, time.UTC) }

// newRelScene starts a site and seeds principals and the trust policy.
func newRelScene(t *testing.T) *relScene {
	t.Helper()
	clock := &relClock{t: day(time.October, 1, 9)}
	s := newSite(t, testserver.WithClock(clock.now))
	sc := &relScene{t: t, site: s, d: s.dml, ctx: context.Background(), clock: clock, who: map[string]access.Principal{}, tokens: map[string]string{}}
	admin, err := s.dml.Access.Authenticate(sc.ctx, s.admin)
	if err != nil {
		t.Fatal(err)
	}
	sc.who["admin"], sc.tokens["admin"] = admin, s.admin
	sc.principal("pipeline", nil, access.RolePublisher)
	sc.principal("rm", nil, access.RoleReleaseManager)
	sc.principal("cab-1", nil, access.RoleApprover)
	sc.principal("cab-2", nil, access.RoleApprover)
	sc.principal("cab-3", nil, access.RoleApprover)
	sc.principal("deploy-staging", []string{"staging"}, access.RoleDeployer)
	sc.principal("deploy-prod", []string{"production"}, access.RoleDeployer)
	sc.principal("auditor", nil, access.RoleAuditor)

	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(testserver.FixturesDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := testkeys.Signer(t)
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	sc.build = func(content []byte) string {
		sig, err := key.SignMessage(bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(sig)
	}
	sc.must("trust ci", second(s.dml.Trust.AddTrustKey(sc.ctx, admin, trust.AddTrustKeyRequest{ID: "ci", PublicKey: string(fixture("cosign.pub")), Comment: "payments CI"})))
	sc.must("trust build", second(s.dml.Trust.AddTrustKey(sc.ctx, admin, trust.AddTrustKeyRequest{ID: "build", PublicKey: string(pemKey), Comment: "platform build"})))
	sc.must("policy", second(s.dml.Trust.SetTrustPolicy(sc.ctx, admin, []byte(`{"rules":[
		{"match":"payments/*","signatures":{"keys":["ci"]},"attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"]}]},
		{"match":"platform/**","signatures":{"keys":["build"]}}]}`))))

	// payments/api 1.4.2 is the cosign fixture, with its real evidence.
	content := fixture("payments-api-1.4.2.tar.gz")
	pipeline := sc.who["pipeline"]
	_, _, err = s.dml.Catalog.Push(sc.ctx, pipeline, catalog.PushRequest{Name: "payments/api", Version: "1.4.2", MediaType: "application/gzip", Size: int64(len(content)), Body: bytes.NewReader(content)})
	sc.must("push payments/api", err)
	sig := `{"keyId":"ci","signature":"` + strings.TrimSpace(string(fixture("payments-api-1.4.2.tar.gz.sig"))) + `"}`
	_, _, err = s.dml.Catalog.AddEvidence(sc.ctx, pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "1.4.2", Kind: catalog.EvidenceSignature, Body: []byte(sig)})
	sc.must("payments signature", err)
	_, _, err = s.dml.Catalog.AddEvidence(sc.ctx, pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "1.4.2", Kind: catalog.EvidenceAttestation, Body: fixture("test-result-passed.dsse.json")})
	sc.must("payments attestation", err)
	return sc
}

func second[T any](_ T, err error) error { return err }

func (sc *relScene) must(what string, err error) {
	sc.t.Helper()
	if err != nil {
		sc.t.Fatalf("%s: %v", what, err)
	}
}

func (sc *relScene) principal(name string, envs []string, roles ...access.Role) {
	sc.t.Helper()
	issued, err := sc.d.Access.IssueToken(sc.ctx, sc.who["admin"], access.TokenRequest{Name: name, Roles: roles, Environments: envs})
	sc.must("issue "+name, err)
	p, err := sc.d.Access.Authenticate(sc.ctx, issued.Secret)
	sc.must("authenticate "+name, err)
	sc.who[name], sc.tokens[name] = p, issued.Secret
}

// push publishes a platform artifact, signed by the trusted build key
// (admitted) or not (quarantined).
func (sc *relScene) push(name, version string, signed bool) {
	sc.pushBy("pipeline", name, version, signed)
}

func (sc *relScene) pushBy(who, name, version string, signed bool) {
	sc.t.Helper()
	content := []byte(fmt.Sprintf("%s %s: a release build of the platform\n", name, version))
	_, _, err := sc.d.Catalog.Push(sc.ctx, sc.who[who], catalog.PushRequest{Name: name, Version: version, MediaType: "application/gzip", Size: int64(len(content)), Body: bytes.NewReader(content)})
	sc.must("push "+name, err)
	if signed {
		body, _ := json.Marshal(map[string]string{"keyId": "build", "signature": sc.build(content)})
		_, a, err := sc.d.Catalog.AddEvidence(sc.ctx, sc.who[who], catalog.EvidenceRequest{Name: name, Version: version, Kind: catalog.EvidenceSignature, Body: body})
		sc.must("sign "+name, err)
		if a.State != catalog.StateAdmitted {
			sc.t.Fatalf("%s:%s is %s after its signature; want admitted", name, version, a.State)
		}
	}
}

type relPlan struct {
	change, title, risk, backout, description string
	envs                                      []string
	window                                    *lifecycle.Window
	quorums                                   map[string]int
}

func (sc *relScene) create(name string, p relPlan, arts ...string) {
	sc.t.Helper()
	req := lifecycle.CreateReleaseRequest{Name: name, PlanRequest: lifecycle.PlanRequest{ChangeRef: p.change, Title: p.title, Environments: p.envs,
		Plan: lifecycle.PlanDetails{Description: p.description, Window: p.window, BackoutPlan: p.backout, Risk: p.risk}}, Gates: map[string]lifecycle.GateSetting{}}
	for g, n := range p.quorums {
		req.Gates[g] = lifecycle.GateSetting{Approvals: n}
	}
	for _, a := range arts {
		n, v, _ := strings.Cut(a, ":")
		req.Artifacts = append(req.Artifacts, lifecycle.ReleaseArtifactRef{Name: n, Version: v})
	}
	_, err := sc.d.Releases.CreateRelease(sc.ctx, sc.who["rm"], req)
	sc.must("create "+name, err)
}

func (sc *relScene) release(name string) lifecycle.Release {
	sc.t.Helper()
	r, err := sc.d.Releases.Release(sc.ctx, name)
	sc.must("read "+name, err)
	return r
}

func (sc *relScene) approve(who, name, gate, comment string) {
	sc.t.Helper()
	d, err := sc.d.Releases.ExpectedDigest(sc.ctx, sc.release(name), gate)
	sc.must("expected digest", err)
	_, err = sc.d.Releases.Decide(sc.ctx, sc.who[who], name, lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.DecisionApprove, Digest: d, Comment: comment})
	sc.must(who+" approves "+gate+" of "+name, err)
}

func (sc *relScene) deploy(who, name, env, target string, status lifecycle.DeploymentStatus) lifecycle.Deployment {
	sc.t.Helper()
	_, dep, err := sc.d.Releases.RecordDeployment(sc.ctx, sc.who[who], name, lifecycle.DeploymentRequest{Environment: env, Target: target, Status: status})
	sc.must(who+" deploys "+name+" to "+env, err)
	return dep
}

func (sc *relScene) review(name, outcome, summary string) {
	sc.t.Helper()
	_, err := sc.d.Releases.FileReview(sc.ctx, sc.who["rm"], name, lifecycle.ReviewRequest{Outcome: outcome, Summary: summary, Incidents: []string{}, ObjectivesMet: true})
	sc.must("review "+name, err)
}

// seedReleases writes two months of releases, one or more in each phase:
//
//	2026.10-gateway   closed     gateway 3.2.0 to staging and production
//	2026.10-billing   cancelled
//	2026.11-payments  closed     payments/api 1.4.2 to staging and production
//	2026.11-notify    review     the close gate waits (0 of 1)
//	2026.12-auth      deployed   the review is to be filed
//	2026.12-gateway   deploying  staging done; deploy:production 1 of 2 (cab-1)
//	2026.12-reports   released   deploy:staging 0 of 1
//	2026.12-ledger    building   build 0 of 1
//	2027.01-search    planning   plan 1 of 2 (cab-1), with a quarantined artifact
func (sc *relScene) seedReleases() {
	sc.t.Helper()
	c := sc.clock
	c.set(day(time.October, 2, 9))
	for _, a := range []struct {
		name, version string
		signed        bool
	}{
		{"platform/gateway", "3.2.0", true}, {"platform/gateway", "3.3.0", true}, {"platform/billing", "1.0.0", true},
		{"platform/notify", "1.2.0", true}, {"platform/auth", "5.0.1", true}, {"platform/reports", "4.0.0", true},
		{"platform/ledger", "2.1.0", true}, {"platform/search", "0.9.0", true}, {"platform/cache", "2.0.0", false},
	} {
		sc.push(a.name, a.version, a.signed)
	}
	both := []string{"staging", "production"}
	prod2 := map[string]int{"deploy:production": 2}

	c.set(day(time.October, 5, 9))
	sc.create("2026.10-gateway", relPlan{change: "CHG-0981", title: "Gateway 3.2 with HTTP/3", envs: both, quorums: prod2,
		risk: "medium", backout: "redeploy gateway 3.1.4", description: "HTTP/3 listeners behind a feature flag"}, "platform/gateway:3.2.0")
	c.set(day(time.October, 6, 10))
	sc.approve("cab-1", "2026.10-gateway", "plan", "CAB 2026-40")
	c.set(day(time.October, 7, 14))
	sc.approve("cab-2", "2026.10-gateway", "build", "tests green")
	c.set(day(time.October, 8, 9))
	sc.approve("cab-1", "2026.10-gateway", "deploy:staging", "")
	c.set(day(time.October, 8, 11))
	sc.deploy("deploy-staging", "2026.10-gateway", "staging", "k8s/staging-eu", lifecycle.DeploymentSucceeded)
	c.set(day(time.October, 12, 9))
	sc.approve("cab-1", "2026.10-gateway", "deploy:production", "staging soak clean")
	sc.approve("cab-3", "2026.10-gateway", "deploy:production", "")
	c.set(day(time.October, 13, 22))
	sc.deploy("deploy-prod", "2026.10-gateway", "production", "k8s/prod-eu", lifecycle.DeploymentSucceeded)
	c.set(day(time.October, 20, 10))
	sc.review("2026.10-gateway", "successful", "HTTP/3 on for 5% of traffic, no errors")
	c.set(day(time.October, 21, 10))
	sc.approve("cab-2", "2026.10-gateway", "close", "")

	c.set(day(time.October, 14, 9))
	sc.create("2026.10-billing", relPlan{change: "CHG-0990", title: "Billing export v1", envs: both, risk: "low", backout: "disable the export job"}, "platform/billing:1.0.0")
	c.set(day(time.October, 16, 15))
	_, err := sc.d.Releases.CancelRelease(sc.ctx, sc.who["rm"], "2026.10-billing", "superseded by the finance project")
	sc.must("cancel billing", err)

	c.set(day(time.November, 2, 9))
	sc.create("2026.11-payments", relPlan{change: "CHG-1042", title: "Payments API 1.4.2", envs: both, quorums: prod2,
		risk: "low", backout: "redeploy 1.4.1", description: "refund fixes"}, "payments/api:1.4.2")
	c.set(day(time.November, 3, 10))
	sc.approve("cab-1", "2026.11-payments", "plan", "")
	sc.approve("cab-2", "2026.11-payments", "build", "")
	c.set(day(time.November, 4, 9))
	sc.approve("cab-3", "2026.11-payments", "deploy:staging", "")
	sc.deploy("deploy-staging", "2026.11-payments", "staging", "k8s/staging-eu", lifecycle.DeploymentSucceeded)
	c.set(day(time.November, 6, 9))
	sc.approve("cab-1", "2026.11-payments", "deploy:production", "")
	sc.approve("cab-2", "2026.11-payments", "deploy:production", "")
	c.set(day(time.November, 6, 21))
	sc.deploy("deploy-prod", "2026.11-payments", "production", "k8s/prod-eu", lifecycle.DeploymentSucceeded)
	c.set(day(time.November, 10, 10))
	sc.review("2026.11-payments", "successful", "refunds settle in one day again")
	sc.approve("cab-3", "2026.11-payments", "close", "")

	c.set(day(time.November, 16, 9))
	sc.create("2026.11-notify", relPlan{change: "CHG-1077", title: "Notifications 1.2", envs: []string{"staging"}, risk: "low", backout: "redeploy 1.1"}, "platform/notify:1.2.0")
	sc.approve("cab-2", "2026.11-notify", "plan", "")
	sc.approve("cab-1", "2026.11-notify", "build", "")
	c.set(day(time.November, 18, 9))
	sc.approve("cab-3", "2026.11-notify", "deploy:staging", "")
	sc.deploy("deploy-staging", "2026.11-notify", "staging", "k8s/staging-eu", lifecycle.DeploymentSucceeded)
	c.set(day(time.November, 24, 10))
	sc.review("2026.11-notify", "successful_with_issues", "one retry storm on day two, fixed by config")

	c.set(day(time.November, 25, 9))
	sc.create("2026.12-auth", relPlan{change: "CHG-1090", title: "Auth 5.0.1 security fix", envs: []string{"staging"}, risk: "high", backout: "redeploy 5.0.0"}, "platform/auth:5.0.1")
	sc.approve("cab-1", "2026.12-auth", "plan", "emergency change")
	sc.approve("cab-3", "2026.12-auth", "build", "")
	sc.approve("cab-2", "2026.12-auth", "deploy:staging", "")
	c.set(day(time.November, 30, 16))
	sc.deploy("deploy-staging", "2026.12-auth", "staging", "k8s/staging-eu", lifecycle.DeploymentSucceeded)

	c.set(day(time.November, 26, 9))
	// The window holds both deployments: change windows are enforced.
	win := &lifecycle.Window{Start: day(time.December, 1, 10), End: day(time.December, 3, 23)}
	sc.create("2026.12-gateway", relPlan{change: "CHG-1101", title: "Gateway 3.3: rate limits per tenant", envs: both, quorums: prod2, window: win,
		risk: "medium", backout: "redeploy gateway 3.2.0 (release 2026.10-gateway)", description: "Per-tenant rate limits; the limits start in shadow mode."}, "platform/gateway:3.3.0")
	c.set(day(time.November, 27, 10))
	sc.approve("cab-1", "2026.12-gateway", "plan", "CAB 2026-48")
	c.set(day(time.November, 28, 15))
	sc.approve("cab-3", "2026.12-gateway", "build", "load tests attached to CHG-1101")
	c.set(day(time.December, 1, 9))
	sc.approve("cab-1", "2026.12-gateway", "deploy:staging", "")
	c.set(day(time.December, 1, 11))
	sc.deploy("deploy-staging", "2026.12-gateway", "staging", "k8s/staging-eu", lifecycle.DeploymentSucceeded)
	c.set(day(time.December, 2, 9))
	sc.approve("cab-1", "2026.12-gateway", "deploy:production", "staging clean for 24 h")

	c.set(day(time.November, 27, 9))
	sc.create("2026.12-reports", relPlan{change: "CHG-1104", title: "Reports 4.0", envs: both, risk: "low", backout: "redeploy 3.9"}, "platform/reports:4.0.0")
	sc.approve("cab-2", "2026.12-reports", "plan", "")
	c.set(day(time.December, 1, 14))
	sc.approve("cab-1", "2026.12-reports", "build", "")

	c.set(day(time.November, 28, 9))
	sc.create("2026.12-ledger", relPlan{change: "CHG-1107", title: "Ledger 2.1", envs: both, risk: "medium", backout: "redeploy 2.0.3"}, "platform/ledger:2.1.0")
	c.set(day(time.November, 29, 10))
	sc.approve("cab-2", "2026.12-ledger", "plan", "")

	c.set(day(time.December, 1, 9))
	search := relPlan{change: "CHG-1115", title: "Search 0.9 with a result cache", envs: both, quorums: map[string]int{"plan": 2},
		risk: "medium", backout: "disable the search feature flag", description: "New search service behind a flag, with its cache."}
	search.window = &lifecycle.Window{Start: day(time.December, 10, 20), End: day(time.December, 10, 22)}
	sc.create("2027.01-search", search, "platform/search:0.9.0", "platform/cache:2.0.0")
	c.set(day(time.December, 2, 9))
	sc.approve("cab-1", "2027.01-search", "plan", "fine by me")
	c.set(day(time.December, 2, 10))
}

// HTTP without a browser, for what is simpler to check that way.

// relHTTP signs in with token through the sign-in form and returns a
// client that keeps the session (and does not follow redirects).
func relHTTP(t *testing.T, base, token string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, body := relGet(t, cl, base+"/ui/signin")
	csrf := relCSRF(t, body)
	res, err := cl.PostForm(base+"/ui/signin", url.Values{"_csrf": {csrf}, "token": {token}, "next": {"/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in answered %d", res.StatusCode)
	}
	return cl
}

func relGet(t *testing.T, cl *http.Client, u string) (int, string) {
	t.Helper()
	res, err := cl.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

var relCSRFField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func relCSRF(t *testing.T, page string) string {
	t.Helper()
	m := relCSRFField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

// Browser helpers.

// relWaitText waits until the text of the first element matching sel
// contains want (the live regions refresh every few seconds). Polling is
// done from Go: chromedp's Poll builds its predicate with new Function,
// which the console's CSP forbids.
func relWaitText(t *testing.T, s *site, ctx context.Context, sel, want string) string {
	t.Helper()
	expr := fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		var err error
		got, err = chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, want) {
			return got
		}
		if err := chromedp.Do(ctx, chromedp.Sleep(250*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s never showed %q; it shows %q", sel, want, got)
	return got
}

// relMarkPage marks the page's window; relSamePage reports whether the
// mark is still there, which a reload or a navigation would lose.
func relMarkPage(t *testing.T, s *site, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.dmlNotReloaded = true`)); err != nil {
		t.Fatal(err)
	}
}

func relSamePage(t *testing.T, s *site, ctx context.Context) bool {
	t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.dmlNotReloaded === true`))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// relBody reads and closes a response's body.
func relBody(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
