package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/dmlproject/dml/api/wire"
)

// Trust is the client of the trusted keys, trusted roots, identities and
// the trust policy.
type Trust struct{ c *Client }

// AddKey registers a key (admins). An ID already registered is an *Error
// with code KEY_EXISTS; a key that does not parse, INVALID_INPUT.
func (x Trust) AddKey(ctx context.Context, req wire.TrustKeyRequest) (wire.TrustKey, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/trust/keys", req)
	if err != nil {
		return wire.TrustKey{}, err
	}
	var k wire.TrustKey
	_, err = x.c.call(ctx, r, &k, http.StatusCreated)
	return k, err
}

// Keys lists the registered keys, revoked ones included.
func (x Trust) Keys(ctx context.Context) ([]wire.TrustKey, error) {
	var list wire.TrustKeyList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/trust/keys"}, &list, http.StatusOK)
	return list.Keys, err
}

// RevokeKey revokes a key: evidence it signed no longer counts for new
// admissions. Artifacts already admitted stay admitted.
func (x Trust) RevokeKey(ctx context.Context, id string) error {
	path := "/api/v1/trust/keys/" + url.PathEscape(id) + "/revoke"
	_, err := x.c.call(ctx, request{method: http.MethodPost, path: path}, nil, http.StatusNoContent)
	return err
}

// SetPolicy stores doc, a policy in JSON or YAML, as the new current
// version; the server validates it (POLICY_INVALID lists every problem)
// and re-decides every quarantined artifact.
func (x Trust) SetPolicy(ctx context.Context, doc []byte) (wire.TrustPolicy, error) {
	ct := "application/yaml"
	if t := bytes.TrimSpace(doc); len(t) > 0 && t[0] == '{' {
		ct = "application/json"
	}
	var p wire.TrustPolicy
	_, err := x.c.call(ctx, request{
		method: http.MethodPut, path: "/api/v1/trust/policy",
		header: http.Header{"Content-Type": {ct}},
		body:   bytes.NewReader(doc), size: int64(len(doc)),
	}, &p, http.StatusOK)
	return p, err
}

// Policy returns the current policy; an *Error with code NOT_FOUND when
// none was ever set.
func (x Trust) Policy(ctx context.Context) (wire.TrustPolicy, error) {
	var p wire.TrustPolicy
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/trust/policy"}, &p, http.StatusOK)
	return p, err
}

// maxServerKey bounds the server's public key answer; a PEM key is well
// under a kilobyte.
const maxServerKey = 64 << 10

// ServerKey returns the server's public key (PEM), with which its
// admission receipts and sealed release manifests are verified. A key
// fetched from the server it is meant to check proves less than one
// obtained out of band: pin it.
func (x Trust) ServerKey(ctx context.Context) ([]byte, error) {
	resp, err := x.c.do(ctx, request{method: http.MethodGet, path: "/api/v1/keys/server", header: http.Header{"Accept": {"application/x-pem-file, */*"}}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxServerKey+1))
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	if len(data) > maxServerKey {
		return nil, fmt.Errorf("server key: answer longer than %d bytes", maxServerKey)
	}
	return data, nil
}

// PutRoot installs doc, a Sigstore trusted_root.json, under id (admins):
// a new id is version 1, another document under an id its next version,
// the same document again changes nothing. A document the server cannot
// load is an *Error with code ROOT_INVALID; a revoked id, ROOT_REVOKED.
// created reports a new id.
func (x Trust) PutRoot(ctx context.Context, id string, doc []byte) (r wire.TrustedRoot, created bool, err error) {
	status, err := x.c.call(ctx, request{
		method: http.MethodPut, path: "/api/v1/trust/roots/" + url.PathEscape(id),
		header: http.Header{"Content-Type": {"application/json"}},
		body:   bytes.NewReader(doc), size: int64(len(doc)),
	}, &r, http.StatusCreated, http.StatusOK)
	return r, status == http.StatusCreated, err
}

// Roots lists the current version of every trusted root, revoked ones
// included, without their documents.
func (x Trust) Roots(ctx context.Context) ([]wire.TrustedRoot, error) {
	var list wire.TrustedRootList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/trust/roots"}, &list, http.StatusOK)
	return list.Roots, err
}

// Root returns the current version of the root id, with its document.
func (x Trust) Root(ctx context.Context, id string) (wire.TrustedRoot, error) {
	var r wire.TrustedRoot
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/trust/roots/" + url.PathEscape(id)}, &r, http.StatusOK)
	return r, err
}

// RevokeRoot revokes a trusted root: the identities bound to it stop
// counting, as if revoked themselves.
func (x Trust) RevokeRoot(ctx context.Context, id string) error {
	path := "/api/v1/trust/roots/" + url.PathEscape(id) + "/revoke"
	_, err := x.c.call(ctx, request{method: http.MethodPost, path: path}, nil, http.StatusNoContent)
	return err
}

// AddIdentity registers a keyless signer (admins). An ID that a key or an
// identity holds is an *Error with code IDENTITY_EXISTS; a root not
// installed, ROOT_UNKNOWN; a revoked one, ROOT_REVOKED.
func (x Trust) AddIdentity(ctx context.Context, req wire.SignerIdentityRequest) (wire.SignerIdentity, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/trust/identities", req)
	if err != nil {
		return wire.SignerIdentity{}, err
	}
	var id wire.SignerIdentity
	_, err = x.c.call(ctx, r, &id, http.StatusCreated)
	return id, err
}

// Identities lists the identities, revoked ones included.
func (x Trust) Identities(ctx context.Context) ([]wire.SignerIdentity, error) {
	var list wire.SignerIdentityList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/trust/identities"}, &list, http.StatusOK)
	return list.Identities, err
}

// RevokeIdentity revokes an identity: evidence it signed no longer counts
// for new admissions, exactly as a revoked key's.
func (x Trust) RevokeIdentity(ctx context.Context, id string) error {
	path := "/api/v1/trust/identities/" + url.PathEscape(id) + "/revoke"
	_, err := x.c.call(ctx, request{method: http.MethodPost, path: path}, nil, http.StatusNoContent)
	return err
}
