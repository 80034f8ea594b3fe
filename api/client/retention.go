package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/dmlproject/dml/api/wire"
)

// Retention is the client of retention policies and runs (admins).
type Retention struct{ c *Client }

// Retention returns the client of retention policies and runs.
func (c *Client) Retention() Retention { return Retention{c} }

// Policies lists the retention policies.
func (x Retention) Policies(ctx context.Context) ([]wire.RetentionPolicy, error) {
	var out wire.RetentionPolicyList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/retention/policies"}, &out, http.StatusOK)
	return out.Policies, err
}

// SetPolicy creates or replaces policy p.ID.
func (x Retention) SetPolicy(ctx context.Context, p wire.RetentionPolicy) (wire.RetentionPolicy, error) {
	r, err := jsonRequest(http.MethodPut, "/api/v1/retention/policies/"+url.PathEscape(p.ID), p)
	if err != nil {
		return wire.RetentionPolicy{}, err
	}
	var out wire.RetentionPolicy
	_, err = x.c.call(ctx, r, &out, http.StatusOK)
	return out, err
}

// DeletePolicy deletes policy id.
func (x Retention) DeletePolicy(ctx context.Context, id string) error {
	_, err := x.c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/retention/policies/" + url.PathEscape(id)}, nil, http.StatusNoContent)
	return err
}

// Run runs the policies now; a dry run only lists what would go.
func (x Retention) Run(ctx context.Context, dryRun bool) (wire.RetentionRun, error) {
	r := request{method: http.MethodPost, path: "/api/v1/retention/run"}
	if dryRun {
		r.query = url.Values{"dryRun": {"true"}}
	}
	var out wire.RetentionRun
	_, err := x.c.call(ctx, r, &out, http.StatusOK)
	return out, err
}

// Quotas is the client of quotas (admins).
type Quotas struct{ c *Client }

// Quotas returns the client of quotas.
func (c *Client) Quotas() Quotas { return Quotas{c} }

// quotaPath is the path of prefix's quota: each segment escaped, the
// slashes kept (the server reads the rest of the path as the prefix).
func quotaPath(prefix string) string {
	segs := strings.Split(prefix, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/api/v1/quotas/" + strings.Join(segs, "/")
}

// List lists the quotas with their usage.
func (x Quotas) List(ctx context.Context) ([]wire.Quota, error) {
	var out wire.QuotaList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/quotas"}, &out, http.StatusOK)
	return out.Quotas, err
}

// Set creates or replaces the quota of q.Prefix.
func (x Quotas) Set(ctx context.Context, q wire.Quota) (wire.Quota, error) {
	r, err := jsonRequest(http.MethodPut, quotaPath(q.Prefix), q)
	if err != nil {
		return wire.Quota{}, err
	}
	var out wire.Quota
	_, err = x.c.call(ctx, r, &out, http.StatusOK)
	return out, err
}

// Delete deletes the quota of prefix.
func (x Quotas) Delete(ctx context.Context, prefix string) error {
	_, err := x.c.call(ctx, request{method: http.MethodDelete, path: quotaPath(prefix)}, nil, http.StatusNoContent)
	return err
}
