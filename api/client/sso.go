package client

import (
	"context"
	"net/http"

	"github.com/dmlproject/dml/api/wire"
)

// SSO is the client of single sign-on (docs/sso.md). Providers and
// SignIn need no token.
type SSO struct{ c *Client }

// SSO returns the client of single sign-on.
func (c *Client) SSO() SSO { return SSO{c} }

// Providers lists the configured providers.
func (x SSO) Providers(ctx context.Context) ([]wire.SSOProvider, error) {
	var out wire.SSOProviderList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/sso/providers"}, &out, http.StatusOK)
	return out.Providers, err
}

// SignIn exchanges an ID token from a provider for a session; the answer
// holds the session's secret, shown only once.
func (x SSO) SignIn(ctx context.Context, req wire.SSOSessionRequest) (wire.SSOSession, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/sso/sessions", req)
	if err != nil {
		return wire.SSOSession{}, err
	}
	var s wire.SSOSession
	_, err = x.c.call(ctx, r, &s, http.StatusCreated)
	return s, err
}

// SignOut ends the client's own session.
func (x SSO) SignOut(ctx context.Context) error {
	_, err := x.c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/sso/session"}, nil, http.StatusNoContent)
	return err
}
