package console_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/releases/lifecycle"
)

// TestBrowserApproveGate: an approver reads a release, approves its plan
// gate with a comment, and sees the quorum progress go from 1 of 2 to 2
// of 2 and the release move to building; the approval is recorded with
// the digest the page showed.
func TestBrowserApproveGate(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	s := sc.site
	ctx := s.browser()
	s.signIn(ctx, sc.tokens["cab-2"])

	s.run(ctx, chromedp.Navigate(s.url+"/ui/releases/2026.12-gateway"), chromedp.WaitVisible(chromedp.ID("gate-deploy-production")))
	s.screenshot(ctx, "console-release")

	shown := sc.release("2027.01-search").PlanDigest
	s.run(ctx, chromedp.Navigate(s.url+"/ui/releases/2027.01-search"), chromedp.WaitVisible(chromedp.ID("gate-plan")))
	if got := s.text(ctx, "#gate-plan .rel-quorum"); got != "1 of 2 approvals" {
		t.Fatalf("plan gate before approving shows %q; want 1 of 2 approvals", got)
	}
	if got := s.text(ctx, "#decide-gate-plan"); !strings.Contains(got, shown.String()) {
		t.Errorf("the decision form does not show the digest it binds to (%s): %q", shown, got)
	}
	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("comment-gate-plan"), "window agreed with the search team"),
	)
	s.submit(ctx, chromedp.Click(chromedp.CSS(`#decide-gate-plan button[value="approve"]`)), ".flash")
	if got := s.text(ctx, ".flash"); !strings.Contains(got, "2 of 2 approvals") || !strings.Contains(got, "building") {
		t.Errorf("after approving: %q; want 2 of 2 approvals and building", got)
	}
	if got := s.text(ctx, "#gate-plan .rel-quorum"); got != "2 of 2 approvals" {
		t.Errorf("plan gate after approving shows %q; want 2 of 2 approvals", got)
	}
	if got := s.text(ctx, "#gate-plan"); !strings.Contains(got, "authorised") || !strings.Contains(got, "window agreed with the search team") {
		t.Errorf("plan gate after approving: %q; want authorised, with the comment", got)
	}
	if got := s.text(ctx, `.rel-phases [aria-current="step"]`); got != "building" {
		t.Errorf("current phase %q; want building", got)
	}

	r := sc.release("2027.01-search")
	i := slices.IndexFunc(r.Approvals, func(a lifecycle.Approval) bool { return a.By == "cab-2" })
	if r.State != lifecycle.ReleaseBuilding || i < 0 || r.Approvals[i].Digest != shown || r.Approvals[i].Comment != "window agreed with the search team" {
		t.Errorf("recorded: state %s, approvals %+v; want building and cab-2's approval of %s with its comment", r.State, r.Approvals, shown)
	}
}

// TestBrowserStaleApproval: the plan changes while an approver reads it;
// the approval is refused and the page shows what changed, field by
// field, keeps the comment, and offers the new digest; approving again
// counts.
func TestBrowserStaleApproval(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	s := sc.site
	ctx := s.browser()
	s.signIn(ctx, sc.tokens["cab-2"])
	s.run(ctx, chromedp.Navigate(s.url+"/ui/releases/2027.01-search"), chromedp.WaitVisible(chromedp.ID("decide-gate-plan")))

	// Meanwhile the release manager raises the risk and moves the window.
	r := sc.release("2027.01-search")
	_, err := sc.d.Releases.SetPlan(sc.ctx, sc.who["rm"], r.Name, lifecycle.PlanRequest{ChangeRef: r.Plan.ChangeRef, Title: r.Plan.Title, Environments: r.Plan.Environments,
		Plan: lifecycle.PlanDetails{Description: r.Plan.Description, BackoutPlan: r.Plan.BackoutPlan, Risk: "high",
			Window: &lifecycle.Window{Start: day(time.December, 17, 20), End: day(time.December, 17, 22)}}})
	sc.must("change the plan", err)

	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("comment-gate-plan"), "ok for the 10th"),
		chromedp.Click(chromedp.CSS(`#decide-gate-plan button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(".rel-stale")),
	)
	stale := s.text(ctx, ".rel-stale")
	for _, want := range []string{"Plan changed since you opened this page", "rm changed it", "Risk", "medium", "high", "Window", "2026-12-10 20:00", "2026-12-17 20:00", "Nothing was recorded"} {
		if !strings.Contains(stale, want) {
			t.Errorf("the stale notice does not say %q:\n%s", want, stale)
		}
	}
	if strings.Contains(stale, "Backout plan") {
		t.Errorf("the stale notice lists a field that did not change:\n%s", stale)
	}
	comment, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("comment-gate-plan")))
	if err != nil {
		t.Fatal(err)
	}
	if comment != "ok for the 10th" {
		t.Errorf("the comment after the refusal is %q; want it kept", comment)
	}
	now := sc.release("2027.01-search")
	if slices.ContainsFunc(now.Approvals, func(a lifecycle.Approval) bool { return a.By == "cab-2" }) {
		t.Fatalf("a stale approval was recorded: %+v", now.Approvals)
	}
	if got := s.text(ctx, "#gate-plan .rel-quorum"); got != "0 of 2 approvals" {
		t.Errorf("after the plan changed the gate shows %q; want 0 of 2 (cab-1's approval was of the old plan)", got)
	}

	// Deciding again, on the plan as it is now, counts.
	s.run(ctx,
		chromedp.Clear(chromedp.ID("comment-gate-plan")),
		chromedp.SendKeys(chromedp.ID("comment-gate-plan"), "ok for the 17th"),
	)
	s.submit(ctx, chromedp.Click(chromedp.CSS(`#decide-gate-plan button[value="approve"]`)), ".flash")
	if got := s.text(ctx, "#gate-plan .rel-quorum"); got != "1 of 2 approvals" {
		t.Errorf("after approving the new plan the gate shows %q; want 1 of 2", got)
	}
	now = sc.release("2027.01-search")
	if !slices.ContainsFunc(now.Approvals, func(a lifecycle.Approval) bool {
		return a.By == "cab-2" && a.Digest == now.PlanDigest && a.Comment == "ok for the 17th"
	}) {
		t.Errorf("approval of the new plan not recorded: %+v", now.Approvals)
	}
}

// TestBrowserRecordDeployment: once deployment to production is
// authorised, the production deployer finds it waiting, records it on
// the release page with the digests it verified, and the timeline and the
// release show it. A deployer of another environment is offered nothing.
func TestBrowserRecordDeployment(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	sc.approve("cab-3", "2026.12-gateway", "deploy:production", "")
	s := sc.site
	ctx := s.browser()
	s.signIn(ctx, sc.tokens["deploy-prod"])

	item := relWaitText(t, s, ctx, "#inbox", "2026.12-gateway to production")
	if strings.Contains(item, "2026.12-reports") {
		t.Errorf("the inbox offers a deployment that is not authorised: %q", item)
	}
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`#inbox a[href="/ui/releases/2026.12-gateway#env-production"]`)),
		chromedp.WaitVisible(chromedp.ID("record-deployment")),
	)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#decide form, form.rel-decide").length`)); err != nil || n != 0 {
		t.Errorf("a deployer is offered %d decision forms (%v)", n, err)
	}
	r := sc.release("2026.12-gateway")
	s.run(ctx,
		chromedp.SendKeys(chromedp.ID("dep-target"), "k8s/prod-eu"),
		chromedp.SetValue(chromedp.ID("dep-status"), "succeeded"),
		chromedp.Click(chromedp.CSS(`#record-deployment input[value="`+r.ManifestDigest.String()+`"]`)),
		chromedp.SendKeys(chromedp.ID("dep-notes"), "canary 10% for an hour, then all"),
	)
	s.submit(ctx, chromedp.Click(chromedp.CSS(`#record-deployment button[type="submit"]`)), ".flash")
	if got := s.text(ctx, ".flash"); !strings.Contains(got, "Deployment to production recorded (succeeded); the release is deployed") {
		t.Errorf("after recording: %q", got)
	}
	if got := s.text(ctx, "#env-production"); !strings.Contains(got, "succeeded") || !strings.Contains(got, "k8s/prod-eu") || !strings.Contains(got, "deploy-prod") || !strings.Contains(got, "canary 10%") {
		t.Errorf("production's timeline: %q", got)
	}
	r = sc.release("2026.12-gateway")
	last := r.Deployments[len(r.Deployments)-1]
	if r.State != lifecycle.ReleaseDeployed || last.Environment != "production" || last.By != "deploy-prod" || !slices.Equal(last.VerifiedDigests, []digest.Digest{r.ManifestDigest}) {
		t.Errorf("recorded: state %s, deployment %+v", r.State, last)
	}

	// The staging deployer has nothing to record on a release whose
	// staging gate waits.
	ctx2 := s.browser()
	s.signIn(ctx2, sc.tokens["deploy-staging"])
	s.run(ctx2, chromedp.Navigate(s.url+"/ui/releases/2026.12-reports"), chromedp.WaitVisible(chromedp.ID("gate-deploy-staging")))
	if n, err := chromedp.Run(ctx2, chromedp.Evaluate[int](`document.querySelectorAll("#record-deployment").length`)); err != nil || n != 0 {
		t.Errorf("deployment form offered before deploy:staging is authorised (%d, %v)", n, err)
	}
}

// TestBrowserEnvironments: the matrix shows which version of each
// artifact runs in each environment, from which release and since when;
// an auditor also sees a release's audit records on its page.
func TestBrowserEnvironments(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	s := sc.site
	ctx := s.browser()
	s.signIn(ctx, sc.tokens["auditor"])
	s.run(ctx, chromedp.Navigate(s.url+"/ui/environments"), chromedp.WaitVisible(chromedp.CSS("table.rel-matrix")))
	s.screenshot(ctx, "console-environments")

	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("table.rel-matrix tr")).map(tr => Array.from(tr.children).map(c => c.textContent.trim().replace(/\s+/g, " ")))`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"":                 {"Artifact", "staging", "production"},
		"platform/gateway": {"3.3.0", "2026.12-gateway, since 2026-12-01 11:00 UTC", "3.2.0", "2026.10-gateway, since 2026-10-13 22:00 UTC"},
		"payments/api":     {"1.4.2", "2026.11-payments", "1.4.2", "2026.11-payments, since 2026-11-06 21:00 UTC"},
		"platform/auth":    {"5.0.1", "2026.12-auth", "not deployed"},
		"platform/notify":  {"1.2.0", "not deployed"},
	}
	seen := map[string]bool{}
	for _, row := range rows {
		key := row[0]
		if key == "Artifact" {
			key = ""
		}
		w, ok := want[key]
		if !ok {
			continue
		}
		seen[key] = true
		line := strings.Join(row, " | ")
		for _, part := range w {
			if !strings.Contains(line, part) {
				t.Errorf("matrix row %q: %q; want %q in it", key, line, part)
			}
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("matrix has no row %q: %q", key, rows)
		}
	}
	if strings.Contains(strings.Join(flatten(rows), " "), "platform/reports") {
		t.Errorf("the matrix lists an artifact that was never deployed: %q", rows)
	}

	s.run(ctx, chromedp.Navigate(s.url+"/ui/releases/2026.11-payments"), chromedp.WaitVisible(chromedp.CSS("table.rel-audit")))
	audit := s.text(ctx, "table.rel-audit")
	for _, want := range []string{"release.created", "release.approval", "release.deployment", "release.review", "rm", "cab-1", "deploy-prod"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the release's audit records do not show %q:\n%s", want, audit)
		}
	}
}

func flatten(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}
