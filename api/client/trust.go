package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// TrustKeyRequest registers a public key that may sign evidence (admins
// only).
type TrustKeyRequest struct {
	// ID names the key in trust policies: letters, digits and . _ : @ / + -.
	ID string `json:"id"`
	// PublicKey is a PEM "PUBLIC KEY", as cosign.pub: ECDSA P-256/384/521,
	// Ed25519 or RSA of 2048 bits or more.
	PublicKey string `json:"publicKey"`
	Comment   string `json:"comment"`
}

// TrustKey is a registered key.
type TrustKey struct {
	ID        string `json:"id"`
	PublicKey string `json:"publicKey"`
	// Algorithm is ecdsa-p256, ecdsa-p384, ecdsa-p521, ed25519 or rsa-BITS.
	Algorithm string     `json:"algorithm"`
	Comment   string     `json:"comment"`
	CreatedBy string     `json:"createdBy"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	RevokedBy string     `json:"revokedBy,omitempty"`
}

// TrustPolicy is a version of the trust policy.
type TrustPolicy struct {
	// Version grows by one with every change; the highest is current.
	Version int64 `json:"version"`
	// Policy is the document as the server stored it (canonical JSON).
	Policy    json.RawMessage `json:"policy"`
	CreatedBy string          `json:"createdBy"`
	CreatedAt time.Time       `json:"createdAt"`
}

// AddTrustKey registers a key. An ID already registered is an *Error with
// code KEY_EXISTS; a key that does not parse, INVALID_INPUT.
func (c *Client) AddTrustKey(ctx context.Context, req TrustKeyRequest) (TrustKey, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/trust/keys", req)
	if err != nil {
		return TrustKey{}, err
	}
	var k TrustKey
	_, err = c.call(ctx, r, &k, http.StatusCreated)
	return k, err
}

// TrustKeys lists the registered keys, revoked ones included.
func (c *Client) TrustKeys(ctx context.Context) ([]TrustKey, error) {
	var list struct {
		Keys []TrustKey `json:"keys"`
	}
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/trust/keys"}, &list, http.StatusOK)
	return list.Keys, err
}

// RevokeTrustKey revokes a key: evidence it signed no longer counts for
// new admissions. Artifacts already admitted stay admitted.
func (c *Client) RevokeTrustKey(ctx context.Context, id string) error {
	path := "/api/v1/trust/keys/" + url.PathEscape(id) + "/revoke"
	_, err := c.call(ctx, request{method: http.MethodPost, path: path}, nil, http.StatusNoContent)
	return err
}

// SetTrustPolicy stores doc, a policy in JSON or YAML, as the new current
// version; the server validates it (POLICY_INVALID lists every problem)
// and re-decides every quarantined artifact.
func (c *Client) SetTrustPolicy(ctx context.Context, doc []byte) (TrustPolicy, error) {
	ct := "application/yaml"
	if t := bytes.TrimSpace(doc); len(t) > 0 && t[0] == '{' {
		ct = "application/json"
	}
	var p TrustPolicy
	_, err := c.call(ctx, request{
		method: http.MethodPut, path: "/api/v1/trust/policy",
		header: http.Header{"Content-Type": {ct}},
		body:   bytes.NewReader(doc), size: int64(len(doc)),
	}, &p, http.StatusOK)
	return p, err
}

// TrustPolicy returns the current policy; an *Error with code NOT_FOUND
// when none was ever set.
func (c *Client) TrustPolicy(ctx context.Context) (TrustPolicy, error) {
	var p TrustPolicy
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/trust/policy"}, &p, http.StatusOK)
	return p, err
}

// maxServerKey bounds the server's public key answer; a PEM key is well
// under a kilobyte.
const maxServerKey = 64 << 10

// ServerKey returns the server's public key (PEM), with which its
// admission receipts are verified. A key fetched from the server it is
// meant to check proves less than one obtained out of band: pin it.
func (c *Client) ServerKey(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/keys/server", header: http.Header{"Accept": {"application/x-pem-file, */*"}}})
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
