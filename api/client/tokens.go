package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/dmlproject/dml/api/wire"
)

// Tokens is the client of tokens (admins).
type Tokens struct{ c *Client }

// List lists every token, revoked and expired ones included, oldest first.
func (x Tokens) List(ctx context.Context) ([]wire.Token, error) {
	var out wire.TokenList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/tokens"}, &out, http.StatusOK)
	return out.Tokens, err
}

// Create issues a token; the answer holds its secret, shown only once.
func (x Tokens) Create(ctx context.Context, req wire.TokenRequest) (wire.IssuedToken, error) {
	if req.Environments == nil {
		req.Environments = []string{}
	}
	r, err := jsonRequest(http.MethodPost, "/api/v1/tokens", req)
	if err != nil {
		return wire.IssuedToken{}, err
	}
	var t wire.IssuedToken
	_, err = x.c.call(ctx, r, &t, http.StatusCreated)
	return t, err
}

// Revoke revokes a token by its id; requests with it fail from then on.
func (x Tokens) Revoke(ctx context.Context, id string) error {
	_, err := x.c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/tokens/" + url.PathEscape(id)}, nil, http.StatusNoContent)
	return err
}

// Whoami returns the identity behind the client's token.
func (c *Client) Whoami(ctx context.Context) (wire.Identity, error) {
	var id wire.Identity
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/whoami"}, &id, http.StatusOK)
	return id, err
}
