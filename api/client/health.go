package client

import (
	"context"
	"net/http"
)

// Health is the answer of /readyz or /healthz.
type Health struct {
	// Status is "ready" (/readyz) or "ok" (/healthz).
	Status string `json:"status"`
	// Dependencies: for /readyz, "ok" or "unavailable" for the database
	// and the blob store.
	Dependencies map[string]string `json:"dependencies,omitempty"`
}

// Ready asks /readyz whether the server can serve: it answers, and its
// database and blob store do. A server that is not ready answers an
// *Error (503 NOT_READY) whose message names what is down. No token is
// needed.
func (c *Client) Ready(ctx context.Context) (Health, error) {
	return c.health(ctx, "/readyz")
}

// Live asks /healthz whether the server process answers at all.
func (c *Client) Live(ctx context.Context) (Health, error) {
	return c.health(ctx, "/healthz")
}

func (c *Client) health(ctx context.Context, path string) (Health, error) {
	var h Health
	_, err := c.call(ctx, request{method: http.MethodGet, path: path}, &h, http.StatusOK)
	return h, err
}

// URL is the address of path (starting with /) on the client's server.
func (c *Client) URL(path string) string { return c.base + path }
