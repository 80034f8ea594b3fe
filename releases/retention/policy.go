package retention

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/signing"
)

// Policy says how long the versions of the artifacts whose names Pattern
// covers are kept. Pattern is a trust policy pattern (signing.Rule: an
// exact name, or "/"-separated path.Match segments with "**" for any
// number of segments); when several policies match a name, the most
// specific pattern wins, ranked exactly as the trust policy ranks its
// rules (signing.Policy.RuleFor), and on a full tie the lower ID.
//
// A zero limit is no limit: KeepAdmitted 0 keeps every admitted version,
// DeleteQuarantinedAfterDays 0 never deletes a quarantined push.
type Policy struct {
	// ID names the policy in the API (PUT /api/v1/retention/policies/ID).
	ID      string `json:"id"`
	Pattern string `json:"pattern"`
	// KeepAdmitted: the newest N admitted, unretired versions of each
	// name are kept.
	KeepAdmitted int `json:"keepAdmitted"`
	// DeleteQuarantinedAfterDays, DeleteRejectedAfterDays: a push in that
	// state older than that many days (by its push time) is deleted.
	DeleteQuarantinedAfterDays int       `json:"deleteQuarantinedAfterDays"`
	DeleteRejectedAfterDays    int       `json:"deleteRejectedAfterDays"`
	UpdatedBy                  string    `json:"updatedBy"`
	UpdatedAt                  time.Time `json:"updatedAt"`
}

// Errors of retention.
var (
	// ErrReferenced: a version a release names is never deleted. The
	// run meets it when a release took the version after the plan.
	ErrReferenced = fmt.Errorf("%w: a release refers to the version", errdef.ErrConflict)
	// ErrChanged: the version is not what the plan decided on any more
	// (other bytes, another state, an OCI tag now holds it).
	ErrChanged = fmt.Errorf("%w: the version changed since the plan", errdef.ErrConflict)
)

// policyID is the grammar of a policy ID: short, URL-safe, no pattern
// characters, so it travels in a path segment as it is.
var policyID = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62})$`)

// maxDays bounds the ages a policy states (about 270 years): a time.Duration
// of more would overflow.
const maxDays = 100000

// Validate refuses a policy that could not be applied as written.
func (p Policy) Validate() error {
	var errs []error
	if !policyID.MatchString(p.ID) {
		errs = append(errs, fmt.Errorf("id %q must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit", p.ID))
	}
	if err := signing.ValidateNamePattern(p.Pattern); err != nil {
		errs = append(errs, err)
	}
	if p.KeepAdmitted < 0 {
		errs = append(errs, fmt.Errorf("keepAdmitted %d must not be negative (0 keeps every admitted version)", p.KeepAdmitted))
	}
	for what, d := range map[string]int{"deleteQuarantinedAfterDays": p.DeleteQuarantinedAfterDays, "deleteRejectedAfterDays": p.DeleteRejectedAfterDays} {
		if d < 0 || d > maxDays {
			errs = append(errs, fmt.Errorf("%s %d must be between 0 (never) and %d", what, d, maxDays))
		}
	}
	if p.KeepAdmitted == 0 && p.DeleteQuarantinedAfterDays == 0 && p.DeleteRejectedAfterDays == 0 {
		errs = append(errs, errors.New("a policy needs keepAdmitted or an age after which to delete quarantined or rejected pushes"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: retention policy %q: %w", errdef.ErrInvalidInput, p.ID, err)
	}
	return nil
}

// PolicyFor returns the policy that governs name (see Policy), or nil.
func PolicyFor(policies []Policy, name string) *Policy {
	var best *Policy
	for i := range policies {
		p := &policies[i]
		if !signing.MatchNamePattern(p.Pattern, name) {
			continue
		}
		if best == nil || signing.MoreSpecificPattern(p.Pattern, best.Pattern) ||
			(!signing.MoreSpecificPattern(best.Pattern, p.Pattern) && p.ID < best.ID) {
			best = p
		}
	}
	return best
}
