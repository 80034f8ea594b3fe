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

// ChangePolicy reads the admin's change control: windows required, risk
// levels, change-reference pattern, change system.
func (x Settings) ChangePolicy(ctx context.Context) (wire.ChangePolicy, error) {
	var p wire.ChangePolicy
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/settings/change"}, &p, http.StatusOK)
	return p, err
}

// SetChangePolicy changes the admin's change control (admins): what upd
// leaves out stays as it is.
func (x Settings) SetChangePolicy(ctx context.Context, upd wire.ChangePolicyUpdate) (wire.ChangePolicy, error) {
	r, err := jsonRequest(http.MethodPatch, "/api/v1/settings/change", upd)
	if err != nil {
		return wire.ChangePolicy{}, err
	}
	var p wire.ChangePolicy
	_, err = x.c.call(ctx, r, &p, http.StatusOK)
	return p, err
}
