package client

import (
	"context"
	"net/http"
	"time"
)

// GateDefaults are the admin's default quorums for new releases.
type GateDefaults struct {
	Gates     map[string]GateSetting `json:"gates"`
	UpdatedBy string                 `json:"updatedBy,omitempty"`
	UpdatedAt *time.Time             `json:"updatedAt,omitempty"`
}

// GateDefaults reads the default quorums.
func (c *Client) GateDefaults(ctx context.Context) (GateDefaults, error) {
	var d GateDefaults
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/settings/gates"}, &d, http.StatusOK)
	return d, err
}

// SetGateDefaults replaces the default quorums (admins): keys are plan,
// build, close, deploy:ENV or deploy:* (every environment).
func (c *Client) SetGateDefaults(ctx context.Context, gates map[string]GateSetting) (GateDefaults, error) {
	if gates == nil {
		gates = map[string]GateSetting{}
	}
	r, err := jsonRequest(http.MethodPut, "/api/v1/settings/gates", gates)
	if err != nil {
		return GateDefaults{}, err
	}
	var d GateDefaults
	_, err = c.call(ctx, r, &d, http.StatusOK)
	return d, err
}
