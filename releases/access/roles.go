package access

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dmlproject/dml/releases/errdef"
)

// RoleError refuses a principal that has none of the roles an action
// needs, and says both sides: "deciding gates needs the approver role;
// your token has: publisher". It is errdef.ErrDenied.
type RoleError struct {
	// Action is what was asked, as a subject: "deciding gates",
	// "POST /api/v1/tokens".
	Action string
	// Have are the principal's roles, Need the roles any one of which
	// would do.
	Have, Need []Role
}

func (e *RoleError) Error() string {
	return fmt.Sprintf("%s needs the %s role; your token has: %s", e.Action, joinRoles(e.Need, " or "), joinRoles(e.Have, ", "))
}

// Unwrap makes errors.Is(err, errdef.ErrDenied) true.
func (e *RoleError) Unwrap() error { return errdef.ErrDenied }

// Require refuses p with a *RoleError unless it has one of roles; action
// names what p asked for.
func Require(p Principal, action string, roles ...Role) error {
	if p.Has(roles...) {
		return nil
	}
	return &RoleError{Action: action, Have: slices.Clone(p.Roles), Need: slices.Clone(roles)}
}

// joinRoles lists roles for a sentence; none is "no role".
func joinRoles(roles []Role, sep string) string {
	if len(roles) == 0 {
		return "no role"
	}
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, sep)
}
