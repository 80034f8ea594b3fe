package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
)

// The admin pages: tokens (admin_tokens.go), the signers admission trusts
// (admin_trust.go), the trust policy and the gate defaults
// (admin_policy.go).
//
// Each page is shown to a principal who may make the changes it offers:
// the API operation named below. Reading trusted keys or the policy is
// every role's right in the API (the CLI shows them to anyone), but these
// pages are where an administrator changes them, so a publisher is not
// shown them at all (403), exactly as it is not shown the Admin link.
var adminPages = []struct {
	label, href, operation string
}{
	{"Tokens", Prefix + "admin/tokens", "token_issue"},
	{"Signers", Prefix + "admin/trust", "trust_key_add"},
	{"Trust policy", Prefix + "admin/policy", "trust_policy_set"},
	{"Gate defaults", Prefix + "admin/gates", "gate_defaults_set"},
}

// routeAdmin registers the admin pages.
func (c *Console) routeAdmin(m *http.ServeMux) {
	// /ui/admin, the navigation's link, is the first admin page the
	// principal may see.
	m.HandleFunc("GET "+Prefix+"admin", c.page(func(v *view) error {
		for _, p := range adminPages {
			if v.can(p.operation) {
				http.Redirect(v.w, v.r, p.href, http.StatusSeeOther)
				return nil
			}
		}
		return v.require(adminPages[0].operation)
	}))
	c.routeAdminTokens(m)
	c.routeAdminTrust(m)
	c.routeAdminPolicy(m)
}

// adminTabs is the admin area's own navigation: the pages the principal
// may see, the current one marked.
func (v *view) adminTabs() []navItem {
	var out []navItem
	for _, p := range adminPages {
		if v.can(p.operation) {
			out = append(out, navItem{Label: p.label, Href: p.href, Current: v.r.URL.Path == p.href})
		}
	}
	return out
}

// adminProblem is an error the person at the form can fix: it is shown on
// the form, next to what they typed, with the status the API would
// answer. Anything else fails the page.
type adminProblem struct {
	Status int
	// Lines are the error's messages, one per problem found (a policy
	// reports all of its problems at once).
	Lines []string
}

// adminFormProblem sorts err: a problem for the form (bad input, a name
// taken, an invalid policy or trusted root), or nil when the page must fail (denied, not found, the server's own).
func adminFormProblem(err error) *adminProblem {
	status := 0
	switch {
	case errors.Is(err, signing.ErrInvalidPolicy), errors.Is(err, trust.ErrRootInvalid), errors.Is(err, errdef.ErrInvalidInput):
		status = http.StatusBadRequest
	case errors.Is(err, errdef.ErrConflict):
		status = http.StatusConflict
	default:
		return nil
	}
	return &adminProblem{Status: status, Lines: adminProblemLines(err)}
}

// adminProblemLines splits an error into its messages (errors.Join puts one on
// each line), without the sentinel's name at the front: the form says
// what is wrong, not which category of error it is.
func adminProblemLines(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		for _, prefix := range []string{signing.ErrInvalidPolicy.Error() + ": ", errdef.ErrInvalidInput.Error() + ": ", errdef.ErrConflict.Error() + ": "} {
			line = strings.TrimPrefix(line, prefix)
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// adminInvalid is a problem the console finds in a form before calling the
// domain (a number that is not one).
func adminInvalid(msg string) *adminProblem {
	return &adminProblem{Status: http.StatusBadRequest, Lines: []string{msg}}
}

// adminStatus is the status a page with a form answers: the problem's, or
// 200.
func adminStatus(p *adminProblem) int {
	if p == nil {
		return http.StatusOK
	}
	return p.Status
}
