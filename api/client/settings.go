package client

import (
	"context"
	"net/http"

	"github.com/dmlproject/dml/api/wire"
)

// Settings is the client of the admin's settings.
type Settings struct{ c *Client }

// GateDefaults reads the default quorums.
func (x Settings) GateDefaults(ctx context.Context) (wire.GateDefaults, error) {
	var d wire.GateDefaults
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/settings/gates"}, &d, http.StatusOK)
	return d, err
}

// SetGateDefaults replaces the default quorums (admins): keys are plan,
// build, close, deploy:ENV or deploy:* (every environment).
func (x Settings) SetGateDefaults(ctx context.Context, gates map[string]wire.GateSetting) (wire.GateDefaults, error) {
	if gates == nil {
		gates = map[string]wire.GateSetting{}
	}
	r, err := jsonRequest(http.MethodPut, "/api/v1/settings/gates", gates)
	if err != nil {
		return wire.GateDefaults{}, err
	}
	var d wire.GateDefaults
	_, err = x.c.call(ctx, r, &d, http.StatusOK)
	return d, err
}
