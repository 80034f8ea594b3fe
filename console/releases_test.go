package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/lifecycle"
)

// TestReleasePagesRender: every page of the releases area renders for
// every role.
func TestReleasePagesRender(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	base := sc.site.url
	pages := []string{"/ui/", "/ui/releases", "/ui/releases?state=closed", "/ui/environments", "/ui/live/board", "/ui/live/inbox",
		"/ui/releases/2026.10-gateway", "/ui/releases/2026.10-billing", "/ui/releases/2026.11-payments", "/ui/releases/2026.11-notify",
		"/ui/releases/2026.12-auth", "/ui/releases/2026.12-gateway", "/ui/releases/2026.12-reports", "/ui/releases/2026.12-ledger",
		"/ui/releases/2027.01-search", "/ui/live/releases/2026.12-gateway/gates", "/ui/live/releases/2026.12-gateway/deployments"}
	for _, who := range []string{"admin", "pipeline", "rm", "cab-2", "deploy-prod", "auditor"} {
		cl := relHTTP(t, base, sc.tokens[who])
		for _, p := range pages {
			if code, body := relGet(t, cl, base+p); code != http.StatusOK {
				t.Errorf("%s: GET %s = %d\n%s", who, p, code, body)
			}
		}
	}
	cl := relHTTP(t, base, sc.tokens["cab-2"])
	if code, _ := relGet(t, cl, base+"/ui/releases/no-such-release"); code != http.StatusNotFound {
		t.Errorf("an unknown release answers %d; want 404", code)
	}
	if code, _ := relGet(t, cl, base+"/ui/releases?state=nonsense"); code != http.StatusBadRequest {
		t.Errorf("an unknown state answers %d; want 400", code)
	}
}

// TestLiveRegionsAnswerNotModified: a live region answers its HTML with
// an ETag, 304 while nothing changed, and new HTML after a change.
func TestLiveRegionsAnswerNotModified(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	cl := relHTTP(t, sc.site.url, sc.tokens["cab-2"])
	for _, region := range []string{"/ui/live/board", "/ui/live/inbox", "/ui/live/releases/2027.01-search/gates"} {
		u := sc.site.url + region
		res, err := cl.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		first, etag := relBody(t, res), res.Header.Get("ETag")
		if res.StatusCode != http.StatusOK || etag == "" || strings.Contains(first, "<html") {
			t.Fatalf("%s: %d, ETag %q, a whole page: %v", region, res.StatusCode, etag, strings.Contains(first, "<html"))
		}
		if got := relConditional(t, cl, u, etag); got != http.StatusNotModified {
			t.Errorf("%s unchanged answers %d; want 304", region, got)
		}
	}
	sc.approve("cab-3", "2027.01-search", "plan", "")
	res, err := cl.Get(sc.site.url + "/ui/live/releases/2027.01-search/gates")
	if err != nil {
		t.Fatal(err)
	}
	if body := relBody(t, res); !strings.Contains(body, "2 of 2 approvals") {
		t.Errorf("the gates region after a change does not show it:\n%s", body)
	}
}

// TestReleaseFormsHTTP: each form of the release page, as the browser
// sends it without JavaScript, does what the API would, or shows the
// page again with the domain's refusal next to the form, keeping what
// was typed, under the API's status; a refusal records nothing.
func TestReleaseFormsHTTP(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	base := sc.site.url
	post := func(who, path string, form url.Values) (int, string, string) {
		t.Helper()
		cl := relHTTP(t, base, sc.tokens[who])
		_, page := relGet(t, cl, base+"/ui/")
		form.Set("_csrf", relCSRF(t, page))
		res, err := cl.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, res.Header.Get("Location"), relBody(t, res)
	}
	gateway := sc.release("2026.12-gateway")

	for _, tc := range []struct {
		name, who, path string
		form            url.Values
		status          int
		want            []string
	}{
		{"a rejection needs a reason", "cab-2", "/ui/releases/2026.12-gateway/decision",
			url.Values{"gate": {"deploy:production"}, "decision": {"reject"}, "digest": {gateway.ManifestDigest.String()}},
			http.StatusBadRequest, []string{"a rejection needs a comment giving the reason", `id="decide-gate-deploy-production"`}},
		{"a digest that is not one", "cab-2", "/ui/releases/2026.12-gateway/decision",
			url.Values{"gate": {"deploy:production"}, "decision": {"approve"}, "digest": {"sha256:nothex"}, "comment": {"kept"}},
			http.StatusBadRequest, []string{"kept</textarea>"}},
		{"a gate that is not open", "cab-2", "/ui/releases/2026.12-gateway/decision",
			url.Values{"gate": {"close"}, "decision": {"approve"}, "digest": {gateway.ManifestDigest.String()}},
			http.StatusConflict, []string{"Your decision on Close was not recorded", "release 2026.12-gateway is deploying"}},
		{"an approver cannot record deployments", "cab-2", "/ui/releases/2026.12-gateway/deployments",
			url.Values{"environment": {"production"}, "target": {"k8s/prod-eu"}, "status": {"succeeded"}},
			http.StatusForbidden, []string{"release_deployment_record"}},
		{"a deployment not yet authorised", "deploy-prod", "/ui/releases/2026.12-gateway/deployments",
			url.Values{"environment": {"production"}, "target": {"k8s/prod-eu"}, "status": {"succeeded"}},
			http.StatusForbidden, []string{"The deployment was not recorded", "deploy:production of release 2026.12-gateway is not authorised"}},
		{"a deployment to another's environment", "deploy-staging", "/ui/releases/2026.12-gateway/deployments",
			url.Values{"environment": {"production"}, "target": {"k8s/prod-eu"}, "status": {"succeeded"}},
			http.StatusForbidden, []string{"deploy-staging may not deploy to production"}},
		{"a review before the release is deployed", "rm", "/ui/releases/2026.12-reports/review",
			url.Values{"outcome": {"successful"}, "summary": {"early"}},
			http.StatusConflict, []string{"The review was not filed", "release 2026.12-reports is released"}},
		{"cancelling after a deployment", "rm", "/ui/releases/2026.12-gateway/cancel", url.Values{"reason": {"changed our minds"}},
			http.StatusConflict, []string{"The release was not cancelled", "cancel is not allowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := sc.release(strings.Split(tc.path, "/")[3])
			status, _, body := post(tc.who, tc.path, tc.form)
			if status != tc.status {
				t.Errorf("status %d; want %d\n%s", status, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("the answer does not show %q:\n%s", w, body)
				}
			}
			if after := sc.release(before.Name); after.Revision != before.Revision {
				t.Errorf("a refused form changed the release (revision %d → %d)", before.Revision, after.Revision)
			}
		})
	}

	t.Run("an approval already counted says so", func(t *testing.T) {
		// cab-1 gave deploy:production of 2026.12-gateway its first of two
		// approvals; approving again changes nothing, and the page says so.
		cl := relHTTP(t, base, sc.tokens["cab-1"])
		_, page := relGet(t, cl, base+"/ui/")
		res, err := cl.PostForm(base+"/ui/releases/2026.12-gateway/decision", url.Values{"_csrf": {relCSRF(t, page)},
			"gate": {"deploy:production"}, "decision": {"approve"}, "digest": {gateway.ManifestDigest.String()}})
		if err != nil {
			t.Fatal(err)
		}
		loc := res.Header.Get("Location")
		if body := relBody(t, res); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d\n%s", res.StatusCode, body)
		}
		if _, shown := relGet(t, cl, base+loc); !strings.Contains(shown, "already counted") || !strings.Contains(shown, "1 of 2") {
			t.Errorf("the page after a repeated approval does not say it was already counted:\n%s", shown)
		}
		if after := sc.release("2026.12-gateway"); after.Revision != gateway.Revision {
			t.Errorf("a repeated approval changed the release (revision %d → %d)", gateway.Revision, after.Revision)
		}
	})
	t.Run("the review is filed", func(t *testing.T) {
		status, loc, body := post("rm", "/ui/releases/2026.12-auth/review", url.Values{"outcome": {"successful"},
			"summary": {"fix verified by the security team"}, "incidents": {"none worth a ticket\n\nINC-7 login latency\n"}, "objectivesMet": {"yes"}})
		if status != http.StatusSeeOther || loc != "/ui/releases/2026.12-auth#review" {
			t.Fatalf("status %d, Location %q\n%s", status, loc, body)
		}
		r := sc.release("2026.12-auth")
		if r.State != lifecycle.ReleaseReview || r.Review == nil || r.Review.Summary != "fix verified by the security team" ||
			strings.Join(r.Review.Incidents, "|") != "none worth a ticket|INC-7 login latency" || !r.Review.ObjectivesMet {
			t.Errorf("recorded: %s %+v", r.State, r.Review)
		}
	})
	t.Run("a deployment is updated", func(t *testing.T) {
		sc.approve("cab-3", "2026.12-gateway", "deploy:production", "")
		dep := sc.deploy("deploy-prod", "2026.12-gateway", "production", "k8s/prod-eu", lifecycle.DeploymentInProgress)
		status, loc, body := post("deploy-prod", "/ui/releases/2026.12-gateway/deployments/"+dep.ID, url.Values{"status": {"failed"}, "notes": {"pods crash-looped"}})
		if status != http.StatusSeeOther || loc != "/ui/releases/2026.12-gateway#env-production" {
			t.Fatalf("status %d, Location %q\n%s", status, loc, body)
		}
		r := sc.release("2026.12-gateway")
		last := r.Deployments[len(r.Deployments)-1]
		if last.ID != dep.ID || last.Status != lifecycle.DeploymentFailed || last.Notes != "pods crash-looped" {
			t.Errorf("recorded: %+v", last)
		}
		// A failed deployment ends in a review: the release manager's
		// inbox has it to file.
		cl := relHTTP(t, base, sc.tokens["rm"])
		if _, inbox := relGet(t, cl, base+"/ui/"); !strings.Contains(inbox, "Review of 2026.12-gateway") {
			t.Error("the release manager's inbox has no review to file after a failed deployment")
		}
	})
	t.Run("a release is cancelled", func(t *testing.T) {
		status, _, body := post("rm", "/ui/releases/2026.12-ledger/cancel", url.Values{"reason": {"ledger moves to Q1"}})
		if status != http.StatusSeeOther {
			t.Fatalf("status %d\n%s", status, body)
		}
		if r := sc.release("2026.12-ledger"); r.State != lifecycle.ReleaseCancelled {
			t.Errorf("state %s; want cancelled", r.State)
		}
	})
}

func relConditional(t *testing.T, cl *http.Client, u, etag string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", etag)
	res, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
