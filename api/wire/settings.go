package wire

import "time"

// GateDefaults answers GET and PUT /settings/gates: the admin's default
// quorums for new releases, by gate (plan, build, close, deploy:ENV, or
// deploy:* for every environment). The body of the PUT is the map of
// Gates alone.
type GateDefaults struct {
	Gates     map[string]GateSetting `json:"gates"`
	UpdatedBy string                 `json:"updatedBy,omitempty"`
	UpdatedAt *time.Time             `json:"updatedAt,omitempty"`
}
