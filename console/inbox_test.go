package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// TestBrowserLiveRefresh: the inbox and the board follow changes made
// elsewhere without reloading the page, and a half-written comment on a
// release page survives its live regions being refreshed.
func TestBrowserLiveRefresh(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	s := sc.site
	ctx := s.browser()
	s.signIn(ctx, sc.tokens["cab-2"])
	s.run(ctx, chromedp.Navigate(s.url+"/ui/releases"), chromedp.WaitVisible(chromedp.ID("board")))
	s.screenshot(ctx, "console-releases")
	s.run(ctx, chromedp.Navigate(s.url+"/ui/"))

	// The inbox: cab-2 may decide six gates, with what each covers
	// (deploy gates of a sealed release can be decided in any order).
	s.run(ctx, chromedp.WaitVisible(chromedp.ID("inbox")))
	inbox := strings.Join(strings.Fields(s.text(ctx, "#inbox")), " ")
	for _, want := range []string{"Plan of 2027.01-search", "Build of 2026.12-ledger", "Deploy to staging of 2026.12-reports",
		"Deploy to production of 2026.12-reports", "Deploy to production of 2026.12-gateway", "Close of 2026.11-notify",
		"Change CHG-1115", "Risk medium", "1 of 2 approvals (cab-1)", "platform/ledger:2.1.0 admitted · sha256:",
		"Outcome successful with issues"} {
		if !strings.Contains(inbox, want) {
			t.Errorf("cab-2's inbox does not show %q:\n%s", want, inbox)
		}
	}
	if got := s.text(ctx, "#in-gates .rel-count"); got != "6" {
		t.Errorf("cab-2 has %s gates to decide; want 6", got)
	}
	s.screenshot(ctx, "console-inbox")

	// cab-3 authorises the plan of 2027.01-search: its plan gate leaves
	// cab-2's inbox and its build gate arrives, without a reload.
	relMarkPage(t, s, ctx)
	sc.approve("cab-3", "2027.01-search", "plan", "")
	inbox = relWaitText(t, s, ctx, "#inbox", "Build of 2027.01-search")
	if strings.Contains(inbox, "Plan of 2027.01-search") {
		t.Errorf("the authorised plan gate is still in the inbox:\n%s", inbox)
	}
	if !relSamePage(t, s, ctx) {
		t.Error("the inbox was reloaded to refresh")
	}

	// The board: a release planned elsewhere appears under planning.
	s.run(ctx, chromedp.Navigate(s.url+"/ui/releases"), chromedp.WaitVisible(chromedp.ID("board")))
	if got := s.text(ctx, "#board"); !strings.Contains(got, "2027.01-search") {
		t.Fatalf("the board does not show 2027.01-search: %q", got)
	}
	relMarkPage(t, s, ctx)
	sc.create("2027.02-mobile", relPlan{change: "CHG-1130", title: "Mobile API 1.0", envs: []string{"staging"}, risk: "low", backout: "switch off"}, "platform/gateway:3.3.0")
	relWaitText(t, s, ctx, `#board section[aria-labelledby="col-planning"]`, "2027.02-mobile")
	if !relSamePage(t, s, ctx) {
		t.Error("the board was reloaded to refresh")
	}

	// A release page: cab-2 starts a comment on deploy:production; cab-3
	// approves meanwhile; the gates region shows it, the comment stays.
	s.run(ctx,
		chromedp.Navigate(s.url+"/ui/releases/2026.12-gateway"),
		chromedp.WaitVisible(chromedp.ID("comment-gate-deploy-production")),
		chromedp.SendKeys(chromedp.ID("comment-gate-deploy-production"), "half-written: staging looked"),
	)
	relMarkPage(t, s, ctx)
	sc.approve("cab-3", "2026.12-gateway", "deploy:production", "")
	relWaitText(t, s, ctx, "#gate-deploy-production", "2 of 2 approvals")
	comment, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("comment-gate-deploy-production")))
	if err != nil {
		t.Fatal(err)
	}
	if comment != "half-written: staging looked" {
		t.Errorf("the half-written comment is now %q", comment)
	}
	if !relSamePage(t, s, ctx) {
		t.Error("the release page was reloaded to refresh")
	}
}

// TestInboxEmptyStates: each role sees the lists it may act on, and an
// empty list says what would appear in it; roles with none are told what
// the page is for.
func TestInboxEmptyStates(t *testing.T) {
	sc := newRelScene(t)
	base := sc.site.url
	for _, tc := range []struct {
		who       string
		want, not []string
	}{
		{"cab-1", []string{"Gates to decide", "No gate waits for your decision. When a release you neither created"}, []string{"Deployments to record", "Reviews to file"}},
		{"deploy-prod", []string{"Deployments to record", "No deployment waits for you. When a release is authorised for one of your environments"}, []string{"Gates to decide", "Reviews to file"}},
		{"rm", []string{"Reviews to file", "No review to file. When a release is deployed to every environment"}, []string{"Gates to decide", "Deployments to record"}},
		{"pipeline", []string{"Nothing waits for your roles on this page"}, []string{"Gates to decide", "Deployments to record", "Reviews to file"}},
		{"auditor", []string{"Nothing waits for your roles on this page"}, []string{"Gates to decide"}},
	} {
		cl := relHTTP(t, base, sc.tokens[tc.who])
		code, body := relGet(t, cl, base+"/ui/")
		if code != http.StatusOK {
			t.Fatalf("%s: inbox %d", tc.who, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s's inbox does not say %q", tc.who, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(body, n) {
				t.Errorf("%s's inbox shows %q", tc.who, n)
			}
		}
	}
}

// TestInboxSeparationOfDuties: a gate the principal may not decide is
// neither in its inbox nor offered on the release page, and a forged
// decision is refused by the domain with the reason, recording nothing.
// This ties what the console offers to what the domain allows.
func TestInboxSeparationOfDuties(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	base := sc.site.url
	// A release manager who is also an approver, and the release it plans.
	sc.principal("rm-cab", nil, access.RoleReleaseManager, access.RoleApprover)
	_, err := sc.d.Releases.CreateRelease(sc.ctx, sc.who["rm-cab"], lifecycle.CreateReleaseRequest{Name: "2027.02-own",
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-2000", Title: "Own release", Environments: []string{"staging"}, Plan: lifecycle.PlanDetails{Risk: "low", BackoutPlan: "none"}},
		Artifacts:   []lifecycle.ReleaseArtifactRef{{Name: "platform/search", Version: "0.9.0"}}})
	sc.must("create", err)

	cl := relHTTP(t, base, sc.tokens["rm-cab"])
	_, inbox := relGet(t, cl, base+"/ui/")
	if strings.Contains(inbox, "Plan of 2027.02-own") {
		t.Error("the inbox offers rm-cab the plan gate of its own release")
	}
	if !strings.Contains(inbox, "Plan of 2027.01-search") {
		t.Error("the inbox does not offer rm-cab a gate it may decide")
	}
	code, page := relGet(t, cl, base+"/ui/releases/2027.02-own")
	if code != http.StatusOK || strings.Contains(page, `id="decide-gate-plan"`) {
		t.Errorf("release page %d offers a decision on its own release", code)
	}
	if !strings.Contains(page, "Plan: separation of duties: rm-cab created release 2027.02-own and cannot decide its gates") {
		t.Error("the release page does not say why rm-cab may not decide its plan gate")
	}
	r := sc.release("2027.02-own")
	res, err := cl.PostForm(base+"/ui/releases/2027.02-own/decision", url.Values{"_csrf": {relCSRF(t, page)}, "gate": {"plan"},
		"decision": {"approve"}, "digest": {r.PlanDigest.String()}})
	if err != nil {
		t.Fatal(err)
	}
	body := relBody(t, res)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "created release 2027.02-own and cannot decide its gates") {
		t.Errorf("forged decision on its own release: %d\n%s", res.StatusCode, body)
	}
	if got := sc.release("2027.02-own"); len(got.Approvals) != 0 {
		t.Errorf("a refused decision was recorded: %+v", got.Approvals)
	}

	// An approver who published an artifact of a release decides none of
	// its gates either.
	sc.principal("pub-cab", nil, access.RolePublisher, access.RoleApprover)
	sc.pushBy("pub-cab", "platform/tools", "1.0.0", true)
	sc.create("2027.02-tools", relPlan{change: "CHG-2001", title: "Tools", envs: []string{"staging"}, risk: "low", backout: "none"}, "platform/tools:1.0.0")
	cl = relHTTP(t, base, sc.tokens["pub-cab"])
	if _, inbox := relGet(t, cl, base+"/ui/"); strings.Contains(inbox, "Plan of 2027.02-tools") || !strings.Contains(inbox, "Plan of 2027.01-search") {
		t.Error("pub-cab's inbox offers the plan gate of a release with its artifact, or not the one it may decide")
	}
	_, page = relGet(t, cl, base+"/ui/releases/2027.02-tools")
	if !strings.Contains(page, "Plan: separation of duties: pub-cab published platform/tools:1.0.0 in release 2027.02-tools and cannot decide its gates") {
		t.Error("the release page does not say why pub-cab may not decide")
	}
	r = sc.release("2027.02-tools")
	res, err = cl.PostForm(base+"/ui/releases/2027.02-tools/decision", url.Values{"_csrf": {relCSRF(t, page)}, "gate": {"plan"},
		"decision": {"approve"}, "digest": {r.PlanDigest.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if body := relBody(t, res); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "published platform/tools:1.0.0 in release 2027.02-tools") {
		t.Errorf("forged decision on a release with its artifact: %d\n%s", res.StatusCode, body)
	}
}
