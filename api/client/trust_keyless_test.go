package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testkeys"
)

// TestTrustRootsAndIdentities drives every method of roots and
// identities against a real server.
func TestTrustRootsAndIdentities(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	doc, _ := testkeys.TrustedRoot(t)
	tr := e.admin.Trust()

	r, created, err := tr.PutRoot(ctx, "public-good", doc)
	if err != nil || !created || r.Version != 1 || len(r.Summary.CertificateAuthorities) != 1 {
		t.Fatalf("PutRoot = %+v, created %v, %v; want version 1, created", r, created, err)
	}
	if r, created, err = tr.PutRoot(ctx, "public-good", doc); err != nil || created || r.Version != 1 {
		t.Errorf("PutRoot again = version %d, created %v, %v; want version 1, not created", r.Version, created, err)
	}
	_, _, err = tr.PutRoot(ctx, "bad", []byte(`{}`))
	wantCode(t, err, http.StatusBadRequest, "ROOT_INVALID")
	roots, err := tr.Roots(ctx)
	if err != nil || len(roots) != 1 || roots[0].Document != nil {
		t.Errorf("Roots = %+v, %v; want public-good without its document", roots, err)
	}
	got, err := tr.Root(ctx, "public-good")
	var gotDoc, wantDoc bytes.Buffer // the answer's JSON is compact; protojson varies whitespace
	if err == nil {
		err = errors.Join(json.Compact(&gotDoc, got.Document), json.Compact(&wantDoc, doc))
	}
	if err != nil || gotDoc.String() != wantDoc.String() {
		t.Errorf("Root = %.60q, %v; want the document", got.Document, err)
	}

	id, err := tr.AddIdentity(ctx, wire.SignerIdentityRequest{ID: "gha", Root: "public-good", Issuer: "https://token.actions.githubusercontent.com",
		Subject: "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main", Claims: map[string]string{"runnerEnvironment": "github-hosted"}})
	if err != nil || id.ID != "gha" || id.Claims["runnerEnvironment"] != "github-hosted" {
		t.Fatalf("AddIdentity = %+v, %v", id, err)
	}
	_, err = tr.AddIdentity(ctx, wire.SignerIdentityRequest{ID: "gha", Root: "public-good", Issuer: "https://x.example", Subject: "s"})
	wantCode(t, err, http.StatusConflict, "IDENTITY_EXISTS")
	if err := tr.RevokeIdentity(ctx, "gha"); err != nil {
		t.Fatal(err)
	}
	ids, err := tr.Identities(ctx)
	if err != nil || len(ids) != 1 || ids[0].RevokedAt == nil {
		t.Errorf("Identities = %+v, %v; want gha revoked", ids, err)
	}
	if err := tr.RevokeRoot(ctx, "public-good"); err != nil {
		t.Fatal(err)
	}
	_, _, err = tr.PutRoot(ctx, "public-good", doc)
	wantCode(t, err, http.StatusConflict, "ROOT_REVOKED")
}
