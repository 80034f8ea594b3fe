package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// TokenRequest asks for a new token (admins only).
type TokenRequest struct {
	Name string `json:"name"`
	// Roles: admin, publisher, release-manager, approver, deployer, auditor.
	Roles []string `json:"roles"`
	// Environments a deployer token may deploy to.
	Environments []string `json:"environments"`
	// ExpiresIn, when set, is how long the token works: a Go duration
	// such as "720h".
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// IssuedToken is a new token. Token is the secret, shown only here.
type IssuedToken struct {
	ID           string    `json:"id"`
	Token        string    `json:"token"`
	Name         string    `json:"name"`
	Roles        []string  `json:"roles"`
	Environments []string  `json:"environments"`
	CreatedAt    time.Time `json:"createdAt"`
	// ExpiresAt is nil for a token that does not expire.
	ExpiresAt *time.Time `json:"expiresAt"`
}

// TokenInfo is a token as listed: never its secret. Times that are not
// set are nil.
type TokenInfo struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Roles        []string   `json:"roles"`
	Environments []string   `json:"environments"`
	CreatedBy    string     `json:"createdBy"`
	CreatedAt    time.Time  `json:"createdAt"`
	LastUsedAt   *time.Time `json:"lastUsedAt"`
	ExpiresAt    *time.Time `json:"expiresAt"`
	RevokedAt    *time.Time `json:"revokedAt"`
}

// ListTokens lists every token, revoked and expired ones included, oldest
// first (admins).
func (c *Client) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	var out struct {
		Tokens []TokenInfo `json:"tokens"`
	}
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/tokens"}, &out, http.StatusOK)
	return out.Tokens, err
}

// Identity is who the client's token authenticates as.
type Identity struct {
	TokenID      string   `json:"tokenId"`
	Name         string   `json:"name"`
	Roles        []string `json:"roles"`
	Environments []string `json:"environments"`
}

// CreateToken issues a token.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (IssuedToken, error) {
	if req.Environments == nil {
		req.Environments = []string{}
	}
	r, err := jsonRequest(http.MethodPost, "/api/v1/tokens", req)
	if err != nil {
		return IssuedToken{}, err
	}
	var t IssuedToken
	_, err = c.call(ctx, r, &t, http.StatusCreated)
	return t, err
}

// RevokeToken revokes a token by its id; requests with it fail from then on.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/tokens/" + url.PathEscape(id)}, nil, http.StatusNoContent)
	return err
}

// Whoami returns the identity behind the client's token.
func (c *Client) Whoami(ctx context.Context) (Identity, error) {
	var id Identity
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/whoami"}, &id, http.StatusOK)
	return id, err
}
