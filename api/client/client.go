package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to one dml server with one token. It is safe for
// concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], without a trailing slash
	token     string
	http      *http.Client
	userAgent string
}

// The API by resource. Each is a small client over c's one transport:
// one way to send a request, decode its answer and turn an error answer
// into an *Error.

// Artifacts pushes, pulls, lists and retires artifact versions.
func (c *Client) Artifacts() Artifacts { return Artifacts{c} }

// Evidence adds and reads the signatures and attestations of artifacts.
func (c *Client) Evidence() Evidence { return Evidence{c} }

// Releases plans, approves, deploys, reviews and reads releases.
func (c *Client) Releases() Releases { return Releases{c} }

// Settings reads and sets the admin's settings (gate defaults).
func (c *Client) Settings() Settings { return Settings{c} }

// Trust manages the trusted keys and the trust policy.
func (c *Client) Trust() Trust { return Trust{c} }

// Tokens issues, lists and revokes tokens (admins).
func (c *Client) Tokens() Tokens { return Tokens{c} }

// Audit reads the audit log, its proofs, and the access log.
func (c *Client) Audit() Audit { return Audit{c} }

// Admin runs fsck and gc on the server (admins).
func (c *Client) Admin() Admin { return Admin{c} }

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (transport, TLS, proxies). Its
// Timeout, if any, bounds whole transfers, so leave it zero for large
// artifacts and use contexts instead.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the server at baseURL ("https://dml.example.com",
// optionally with a path prefix) that authenticates with token. An empty
// token sends no Authorization header.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://HOST[:PORT]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: must not have a query or fragment", baseURL)
	}
	c := &Client{
		base:      strings.TrimRight(u.String(), "/"),
		token:     token,
		http:      http.DefaultClient,
		userAgent: "dml-client",
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// maxJSONResponse bounds a JSON answer; the largest, a list page of 1000
// artifacts, is a few hundred KiB.
const maxJSONResponse = 16 << 20

// request is one API call. path is already escaped and starts with
// /api/v1.
type request struct {
	method string
	path   string
	query  url.Values
	header http.Header
	body   io.Reader
	// size is the body length, or -1 for unknown (chunked).
	size int64
}

// do sends r and returns the response when its status is 2xx; any other
// status is turned into an *Error and the body is closed.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	body := r.body
	if body != nil && r.size == 0 {
		body = http.NoBody
	}
	if body != nil && body != http.NoBody {
		// Hide Close: the transport closes a request body that is an
		// io.Closer, and the caller's file is not ours to close.
		body = struct{ io.Reader }{body}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil && body != http.NoBody {
		req.ContentLength = r.size
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.userAgent)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, errorFrom(resp)
	}
	return resp, nil
}

// call sends r, expects one of the wanted statuses and decodes a JSON
// answer into out (when out is not nil). It returns the status.
func (c *Client) call(ctx context.Context, r request, out any, want ...int) (int, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if !contains(want, resp.StatusCode) {
		return resp.StatusCode, fmt.Errorf("%s %s: unexpected status %s", r.method, r.path, resp.Status)
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONResponse)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: decoding the answer: %w", r.method, r.path, err)
	}
	return resp.StatusCode, nil
}

// jsonRequest is a request whose body is v encoded as JSON.
func jsonRequest(method, path string, v any) (request, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return request{}, err
	}
	return request{
		method: method,
		path:   path,
		header: http.Header{"Content-Type": {"application/json"}},
		body:   strings.NewReader(string(data)),
		size:   int64(len(data)),
	}, nil
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// ErrInvalidReference is returned, before anything is sent, for a name or
// version that cannot be put into a URL path unambiguously (empty, empty
// or dot path components, a slash in a version). Everything else is left
// to the server, which knows the grammar.
var ErrInvalidReference = errors.New("invalid artifact reference")

// artifactPath is /api/v1/artifacts/NAME/versions/VERSION[/ACTION]. The
// name's slashes stay path separators (the server splits on them); every
// component is escaped on its own.
func artifactPath(name, version, action string) (string, error) {
	var b strings.Builder
	b.WriteString("/api/v1/artifacts")
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("%w: name %q", ErrInvalidReference, name)
		}
		b.WriteString("/" + url.PathEscape(part))
	}
	if version == "" || version == "." || version == ".." || strings.Contains(version, "/") {
		return "", fmt.Errorf("%w: version %q", ErrInvalidReference, version)
	}
	b.WriteString("/versions/" + url.PathEscape(version))
	if action != "" {
		b.WriteString("/" + action)
	}
	return b.String(), nil
}

// allPages yields the items of every page from cursor on, where page
// fetches one page and the cursor of the next ("" at the end). It stops at
// the first error, which it yields, and at a cursor that does not move.
func allPages[T any](cursor string, page func(cursor string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			items, next, err := page(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" || next == cursor {
				return
			}
			cursor = next
		}
	}
}
