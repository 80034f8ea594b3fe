package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/signing"
)

// fixtures are real cosign v2.6.2 outputs (see testdata/cosign/README.md).
const fixtures = "../../testdata/cosign"

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testResultType = "https://in-toto.io/attestation/test-result/v0.1"

const ciPolicy = `rules:
  - match: payments/*
    signatures: {keys: [ci]}
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [ci]
`

func TestTrustKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	pub := fixture(t, "cosign.pub")

	k, err := e.admin.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "ci", PublicKey: string(pub), Comment: "build pipeline"})
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "ci" || k.Algorithm != "ecdsa-p256" || k.Comment != "build pipeline" || k.CreatedBy != "bootstrap-admin" || k.CreatedAt.IsZero() || k.RevokedAt != nil {
		t.Errorf("added key = %+v", k)
	}
	if _, err := signing.LoadPublicKey("ci", []byte(k.PublicKey)); err != nil {
		t.Errorf("the key the server returns does not parse: %v", err)
	}

	tests := []struct {
		name   string
		c      *client.Client
		req    wire.TrustKeyRequest
		status int
		code   string
	}{
		{"same ID again", e.admin, wire.TrustKeyRequest{ID: "ci", PublicKey: string(fixture(t, "untrusted/cosign.pub"))}, http.StatusConflict, "KEY_EXISTS"},
		{"not a PEM key", e.admin, wire.TrustKeyRequest{ID: "bad", PublicKey: "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"}, http.StatusBadRequest, "INVALID_INPUT"},
		{"private key material", e.admin, wire.TrustKeyRequest{ID: "oops", PublicKey: string(fixture(t, "cosign.key"))}, http.StatusBadRequest, "INVALID_INPUT"},
		{"bad ID", e.admin, wire.TrustKeyRequest{ID: "a b", PublicKey: string(pub)}, http.StatusBadRequest, "INVALID_INPUT"},
		{"not an admin", e.as(t, "ci-payments", access.RolePublisher), wire.TrustKeyRequest{ID: "mine", PublicKey: string(pub)}, http.StatusForbidden, "DENIED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Trust().AddKey(ctx, tt.req)
			wantCode(t, err, tt.status, tt.code)
		})
	}

	if _, err := e.admin.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "release", PublicKey: string(fixture(t, "untrusted/cosign.pub"))}); err != nil {
		t.Fatal(err)
	}
	// Public keys are public: any principal may list them.
	keys, err := e.as(t, "audit", access.RoleAuditor).Trust().Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "ci" || keys[1].ID != "release" {
		t.Fatalf("keys = %+v, want ci and release", keys)
	}

	wantCode(t, e.as(t, "x", access.RolePublisher).Trust().RevokeKey(ctx, "ci"), http.StatusForbidden, "DENIED")
	if err := e.admin.Trust().RevokeKey(ctx, "release"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.admin.Trust().RevokeKey(ctx, "nobody"), http.StatusNotFound, "NOT_FOUND")
	keys, err = e.admin.Trust().Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if revoked := k.RevokedAt != nil; revoked != (k.ID == "release") {
			t.Errorf("key %s revokedAt = %v", k.ID, k.RevokedAt)
		}
	}
}

func TestTrustPolicy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)

	_, err := e.admin.Trust().Policy(ctx)
	wantCode(t, err, http.StatusNotFound, "NOT_FOUND")

	// YAML in, canonical JSON out.
	p, err := e.admin.Trust().SetPolicy(ctx, []byte(ciPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 1 || p.CreatedBy != "bootstrap-admin" || p.CreatedAt.IsZero() {
		t.Errorf("set = %+v", p)
	}
	var doc signing.Policy
	if err := json.Unmarshal(p.Policy, &doc); err != nil || len(doc.Rules) != 1 || doc.Rules[0].Match != "payments/*" {
		t.Fatalf("stored policy %s (%v)", p.Policy, err)
	}

	p2, err := e.admin.Trust().SetPolicy(ctx, []byte(`{"rules":[{"match":"payments/**","signatures":{"keys":["ci"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.as(t, "audit", access.RoleAuditor).Trust().Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Version != 2 || got.Version != 2 || !strings.Contains(string(got.Policy), "payments/**") {
		t.Errorf("after the second set: set %d, current %d %s", p2.Version, got.Version, got.Policy)
	}

	tests := []struct {
		name, doc string
		code      string
	}{
		{"rule asks for nothing", `{"rules":[{"match":"payments/*"}]}`, "POLICY_INVALID"},
		{"misspelt field", `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"],"treshold":1}}]}`, "POLICY_INVALID"},
		{"threshold above the keys", "rules:\n  - match: x\n    signatures: {keys: [ci], threshold: 2}\n", "POLICY_INVALID"},
		{"not a document", "{", "POLICY_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.admin.Trust().SetPolicy(ctx, []byte(tt.doc))
			wantCode(t, err, http.StatusBadRequest, tt.code)
		})
	}
	_, err = e.as(t, "ci-payments", access.RolePublisher).Trust().SetPolicy(ctx, []byte(ciPolicy))
	wantCode(t, err, http.StatusForbidden, "DENIED")
	if got, _ := e.admin.Trust().Policy(ctx); got.Version != 2 {
		t.Errorf("refused policies changed the version to %d", got.Version)
	}
}

func TestServerKey(t *testing.T) {
	e := newEnv(t)
	pem, err := e.as(t, "deploy", access.RoleDeployer).Trust().ServerKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	k, err := signing.LoadPublicKey("server", pem)
	if err != nil {
		t.Fatalf("server key %q: %v", pem, err)
	}
	if k.Algorithm() != "ecdsa-p256" {
		t.Errorf("server key algorithm %s", k.Algorithm())
	}
	if string(pem) != string(e.svc.ServerPublicKeyPEM()) {
		t.Errorf("ServerKey = %q, the service's key is %q", pem, e.svc.ServerPublicKeyPEM())
	}
}
