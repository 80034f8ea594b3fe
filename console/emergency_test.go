package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/lifecycle"
)

// TestEmergencyHighlighted: an emergency change and the deployment made
// under it stand out on the audit page (a badge and a row class on each
// of their records, and on no other) and on the release's page.
func TestEmergencyHighlighted(t *testing.T) {
	sc := newRelScene(t)
	sc.seedReleases()
	const name = "2026.12-gateway"
	sc.approve("cab-2", name, "deploy:production", "")
	sc.clock.set(day(time.December, 4, 9)) // the window ended yesterday
	_, _, err := sc.d.Releases.RecordDeployment(sc.ctx, sc.who["deploy-prod"], name, lifecycle.DeploymentRequest{Environment: "production", Target: "k8s/prod-eu"})
	if err == nil {
		t.Fatal("a deployment after the window was recorded")
	}
	_, err = sc.d.Releases.RequestEmergency(sc.ctx, sc.who["rm"], name, lifecycle.EmergencyRequest{Reason: "INC-2042: tenants flood the gateway"})
	sc.must("emergency", err)
	// Approvers find it waiting for them, with what they would approve.
	inbox := relHTTP(t, sc.site.url, sc.tokens["cab-2"])
	if code, body := relGet(t, inbox, sc.site.url+"/ui/"); code != http.StatusOK || !strings.Contains(body, "INC-2042: tenants flood the gateway") ||
		!strings.Contains(body, "Deploys outside the window until") {
		t.Errorf("cab-2's inbox (%d) does not show the emergency change to decide", code)
	}
	sc.approve("cab-2", name, lifecycle.GateEmergency, "CAB chair by phone")
	sc.approve("cab-3", name, lifecycle.GateEmergency, "")
	dep := sc.deploy("deploy-prod", name, "production", "k8s/prod-eu", lifecycle.DeploymentSucceeded)
	if !dep.Emergency {
		t.Fatalf("deployment %+v is not marked as an emergency", dep)
	}

	cl := relHTTP(t, sc.site.url, sc.tokens["auditor"])
	code, audit := relGet(t, cl, sc.site.url+"/ui/audit?subject=release:"+name)
	if code != http.StatusOK {
		t.Fatalf("audit page: %d", code)
	}
	// requested, two approvals, the deployment.
	if n := strings.Count(audit, `<tr class="emergency">`); n != 4 {
		t.Errorf("%d emergency rows on the audit page, want 4", n)
	}
	if n := strings.Count(audit, `<span class="badge emergency">emergency</span>`); n != 4 {
		t.Errorf("%d emergency badges on the audit page, want 4", n)
	}
	for _, action := range []string{lifecycle.ActionEmergencyRequested, lifecycle.ActionEmergencyApproved} {
		if !strings.Contains(audit, `<span class="badge emergency">emergency</span> <code class="action">`+action+`</code>`) {
			t.Errorf("the audit page does not highlight %s", action)
		}
	}

	code, page := relGet(t, cl, sc.site.url+"/ui/releases/"+name)
	if code != http.StatusOK {
		t.Fatalf("release page: %d", code)
	}
	for _, want := range []string{"<dt>Emergency change</dt>", `<span class="badge authorized">authorized</span>`, "INC-2042: tenants flood the gateway",
		`<span class="badge emergency" title="INC-2042: tenants flood the gateway">emergency</span>`, "Emergency change <span class=\"badge ok\">authorised</span>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the release page lacks %q", want)
		}
	}
	if n := strings.Count(page, `<tr class="emergency">`); n != 4 {
		t.Errorf("%d emergency rows among the release's audit records, want 4", n)
	}
}
