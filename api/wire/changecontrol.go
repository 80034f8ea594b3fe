package wire

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// GateEmergency is the gate an emergency change opens.
const GateEmergency = "emergency"

// Emergency statuses (Emergency.Status).
const (
	EmergencyRequested  = "requested"
	EmergencyAuthorized = "authorized"
	EmergencyRejected   = "rejected"
)

// EmergencyRequest is the body of POST /releases/{name}/emergency
// (release managers): an emergency change lets the release deploy outside
// its window once its "emergency" gate is authorised, until Until (null:
// 24 hours from now; at most 72 hours).
type EmergencyRequest struct {
	Reason string     `json:"reason"`
	Until  *time.Time `json:"until,omitempty"`
}

// Emergency is a release's latest emergency change.
type Emergency struct {
	Reason      string    `json:"reason"`
	Until       time.Time `json:"until"`
	RequestedBy string    `json:"requestedBy"`
	TokenID     string    `json:"tokenId"`
	RequestedAt time.Time `json:"requestedAt"`
	// Digest is what approvals of the emergency gate name.
	Digest digest.Digest `json:"digest"`
	// Status is requested, authorized or rejected. An authorised
	// emergency change is in force until Until.
	Status       string     `json:"status"`
	AuthorizedAt *time.Time `json:"authorizedAt,omitempty"`
}

// ChangeSystemSetting is where the external change system is asked, in
// ChangePolicyUpdate: an https URL (http only to a loopback address) and
// the secret requests are signed with ("" unsigned). An empty URL removes
// the change system.
type ChangeSystemSetting struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// ChangeSystemInfo is the change system as GET /settings/change shows
// it: the secret is never sent back, only whether there is one.
type ChangeSystemInfo struct {
	URL    string `json:"url"`
	Signed bool   `json:"signed"`
}

// ChangePolicy answers GET and PATCH /settings/change: the admin's change
// control (settings require_change_window, risk_levels,
// change_ref_pattern and change_system).
type ChangePolicy struct {
	// RequireChangeWindow: plans without a window are refused.
	RequireChangeWindow bool `json:"requireChangeWindow"`
	// RiskLevels are the risks a plan may name (default low, medium, high).
	RiskLevels []string `json:"riskLevels"`
	// ChangeRefPattern is the Go regular expression change references
	// must match; "" accepts any.
	ChangeRefPattern string            `json:"changeRefPattern"`
	ChangeSystem     *ChangeSystemInfo `json:"changeSystem,omitempty"`
	UpdatedBy        string            `json:"updatedBy,omitempty"`
	UpdatedAt        *time.Time        `json:"updatedAt,omitempty"`
}

// ChangePolicyUpdate is the body of PATCH /settings/change (admins):
// what is absent or null stays as it is. An empty riskLevels list goes
// back to the defaults; a changeSystem with an empty url removes it.
type ChangePolicyUpdate struct {
	RequireChangeWindow *bool                `json:"requireChangeWindow,omitempty"`
	RiskLevels          []string             `json:"riskLevels,omitempty"`
	ChangeRefPattern    *string              `json:"changeRefPattern,omitempty"`
	ChangeSystem        *ChangeSystemSetting `json:"changeSystem,omitempty"`
}

// OutsideWindowDetail is the detail of OUTSIDE_CHANGE_WINDOW: the
// release's window (null when it has none and windows are required) and
// the server's time when the deployment was asked for.
type OutsideWindowDetail struct {
	Window *Window   `json:"window"`
	Now    time.Time `json:"now"`
}

// ChangeRefDetail is the detail of CHANGE_REF_INVALID.
type ChangeRefDetail struct {
	ChangeRef string `json:"changeRef"`
	Pattern   string `json:"pattern"`
}

// RiskDetail is the detail of RISK_INVALID: the risk asked for and the
// levels allowed.
type RiskDetail struct {
	Risk    string   `json:"risk"`
	Allowed []string `json:"allowed"`
}

// ChangeNotApprovedDetail is the detail of CHANGE_NOT_APPROVED: the
// change system's status ("pending", "rejected", "error" when it did not
// answer, "not asked" when the release changed meanwhile) and message.
type ChangeNotApprovedDetail struct {
	ChangeRef string `json:"changeRef"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}
