package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/internal/testsigstore"
)

const gha = "https://token.actions.githubusercontent.com"

// code is the first error code of an answer, or "" for a success.
func code(ev errorView) string {
	if len(ev.Errors) == 0 {
		return ""
	}
	return ev.Errors[0].Code
}

// sameJSON compares documents as JSON: the answer re-encodes the stored
// document (encoding/json compacts it), and protojson, which made it,
// varies its whitespace on purpose.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var ca, cb bytes.Buffer
	if err := json.Compact(&ca, a); err != nil {
		t.Fatalf("%.40q: %v", a, err)
	}
	if err := json.Compact(&cb, b); err != nil {
		t.Fatalf("%.40q: %v", b, err)
	}
	return ca.String() == cb.String()
}

// TestTrustedRootRoutes: PUT installs (201, then 200 for the same or a
// new version), GET lists without documents and shows one with its
// document and summary, revoke is 204, and what cannot be a trusted root
// or is revoked is refused with its code.
func TestTrustedRootRoutes(t *testing.T) {
	srv, admin, _ := testserver.New(t)
	doc, _ := testkeys.TrustedRoot(t)
	url := srv.URL + "/api/v1/trust/roots/"

	var put wire.TrustedRoot
	if status := apiCall(t, http.MethodPut, url+"public-good", admin, doc, &put); status != http.StatusCreated {
		t.Fatalf("PUT a new root = %d; want 201", status)
	}
	if put.ID != "public-good" || put.Version != 1 || !sameJSON(t, put.Document, doc) || len(put.SHA256) != 64 ||
		len(put.Summary.CertificateAuthorities) != 1 || put.Summary.CertificateAuthorities[0].Subject == "" ||
		len(put.Summary.RekorLogs) != 1 || len(put.Summary.CTLogs) != 1 || len(put.Summary.TimestampAuthorities) != 1 {
		t.Errorf("PUT answered %+v; want version 1 with its document and summary", put)
	}
	if status := apiCall(t, http.MethodPut, url+"public-good", admin, doc, &put); status != http.StatusOK || put.Version != 1 {
		t.Errorf("PUT the same document = %d, version %d; want 200, version 1", status, put.Version)
	}
	other, _ := testkeys.TrustedRoot(t)
	if status := apiCall(t, http.MethodPut, url+"public-good", admin, other, &put); status != http.StatusOK || put.Version != 2 {
		t.Errorf("PUT another document = %d, version %d; want 200, version 2", status, put.Version)
	}
	if status := apiCall(t, http.MethodPut, url+"private", admin, doc, nil); status != http.StatusCreated {
		t.Errorf("PUT a second root = %d; want 201", status)
	}

	var list wire.TrustedRootList
	if status := apiCall(t, http.MethodGet, srv.URL+"/api/v1/trust/roots", admin, nil, &list); status != http.StatusOK {
		t.Fatalf("GET roots = %d", status)
	}
	if len(list.Roots) != 2 || list.Roots[0].ID != "private" || list.Roots[1].ID != "public-good" || list.Roots[1].Version != 2 ||
		list.Roots[0].Document != nil || len(list.Roots[0].Summary.RekorLogs) != 1 {
		t.Errorf("GET roots = %+v; want private then public-good v2, summaries without documents", list.Roots)
	}
	var got wire.TrustedRoot
	if status := apiCall(t, http.MethodGet, url+"public-good", admin, nil, &got); status != http.StatusOK || !sameJSON(t, got.Document, other) {
		t.Errorf("GET public-good = %d, document %.40q; want 200 and version 2's document", status, got.Document)
	}

	if status := apiCall(t, http.MethodPost, url+"private/revoke", admin, nil, nil); status != http.StatusNoContent {
		t.Errorf("revoke = %d; want 204", status)
	}
	if status := apiCall(t, http.MethodGet, url+"private", admin, nil, &got); status != http.StatusOK || got.RevokedAt == nil || got.RevokedBy == "" {
		t.Errorf("GET a revoked root = %d %+v; want it shown revoked", status, got)
	}

	for _, tc := range []struct {
		name, method, path string
		body               []byte
		status             int
		code               string
	}{
		{"not a trusted root", http.MethodPut, "x", []byte(`{"rules":[]}`), 400, "ROOT_INVALID"},
		{"not JSON", http.MethodPut, "x", []byte("mediaType: x"), 400, "ROOT_INVALID"},
		{"a revoked id", http.MethodPut, "private", doc, 409, "ROOT_REVOKED"},
		{"a bad id", http.MethodPut, "bad%20id", doc, 400, "INVALID_INPUT"},
		{"too large", http.MethodPut, "x", []byte(`{"a":"` + strings.Repeat("x", 1<<20) + `"}`), 413, "TOO_LARGE"},
		{"show unknown", http.MethodGet, "unknown", nil, 404, "NOT_FOUND"},
		{"revoke unknown", http.MethodPost, "unknown/revoke", nil, 404, "NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, url+tc.path, strings.NewReader(string(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+admin)
			status, ev := doJSON(t, req)
			if status != tc.status || code(ev) != tc.code {
				t.Errorf("%s %s = %d %s %+v; want %d %s", tc.method, tc.path, status, code(ev), ev, tc.status, tc.code)
			}
		})
	}
}

// TestIdentityRoutes: POST adds (201), GET lists, revoke is 204; each
// refusal has its code, and a key's ID is not an identity's.
func TestIdentityRoutes(t *testing.T) {
	srv, admin, _ := testserver.New(t)
	doc, _ := testkeys.TrustedRoot(t)
	for _, id := range []string{"public-good", "old"} {
		if status := apiCall(t, http.MethodPut, srv.URL+"/api/v1/trust/roots/"+id, admin, doc, nil); status != http.StatusCreated {
			t.Fatalf("PUT root %s = %d", id, status)
		}
	}
	if status := apiCall(t, http.MethodPost, srv.URL+"/api/v1/trust/roots/old/revoke", admin, nil, nil); status != http.StatusNoContent {
		t.Fatal(status)
	}
	key, _ := json.Marshal(map[string]string{"id": "ci", "publicKey": string(fixture(t, "cosign.pub"))})
	if status := apiCall(t, http.MethodPost, srv.URL+"/api/v1/trust/keys", admin, key, nil); status != http.StatusCreated {
		t.Fatalf("add key: %d", status)
	}
	url := srv.URL + "/api/v1/trust/identities"
	valid := func() map[string]any {
		return map[string]any{"id": "gha-release", "root": "public-good", "issuer": gha,
			"subjectRegexp": `https://github\.com/org/repo/\.github/workflows/release\.yml@refs/tags/v.*`,
			"claims":        map[string]string{"sourceRepositoryURI": "https://github.com/org/repo", "githubWorkflowTrigger": "push"}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(map[string]any)
		status int
		code   string
	}{
		{"a key's id", func(b map[string]any) { b["id"] = "ci" }, 409, "IDENTITY_EXISTS"},
		{"unknown root", func(b map[string]any) { b["root"] = "missing" }, 400, "ROOT_UNKNOWN"},
		{"revoked root", func(b map[string]any) { b["root"] = "old" }, 409, "ROOT_REVOKED"},
		{"unknown claim", func(b map[string]any) { b["claims"] = map[string]string{"repo": "x"} }, 400, "INVALID_INPUT"},
		{"subject and regexp", func(b map[string]any) { b["subject"] = "x" }, 400, "INVALID_INPUT"},
		{"regexp that does not compile", func(b map[string]any) { b["subjectRegexp"] = "(" }, 400, "INVALID_INPUT"},
		{"unknown field", func(b map[string]any) { b["keys"] = "x" }, 400, "MALFORMED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := valid()
			tc.mutate(b)
			body, _ := json.Marshal(b)
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+admin)
			status, ev := doJSON(t, req)
			if status != tc.status || code(ev) != tc.code {
				t.Errorf("POST = %d %s %+v; want %d %s", status, code(ev), ev, tc.status, tc.code)
			}
		})
	}

	body, _ := json.Marshal(valid())
	var added wire.SignerIdentity
	if status := apiCall(t, http.MethodPost, url, admin, body, &added); status != http.StatusCreated {
		t.Fatalf("POST identity = %d; want 201", status)
	}
	if added.ID != "gha-release" || added.Root != "public-good" || added.Claims["githubWorkflowTrigger"] != "push" || added.CreatedBy == "" {
		t.Errorf("POST answered %+v", added)
	}
	key, _ = json.Marshal(map[string]string{"id": "gha-release", "publicKey": string(fixture(t, "cosign.pub"))})
	var ev errorView
	if status := apiCall(t, http.MethodPost, srv.URL+"/api/v1/trust/keys", admin, key, &ev); status != http.StatusConflict || code(ev) != "KEY_EXISTS" {
		t.Errorf("a key with an identity's id = %d %s; want 409 KEY_EXISTS", status, code(ev))
	}
	if status := apiCall(t, http.MethodPost, url+"/gha-release/revoke", admin, nil, nil); status != http.StatusNoContent {
		t.Errorf("revoke = %d; want 204", status)
	}
	var list wire.SignerIdentityList
	if status := apiCall(t, http.MethodGet, url, admin, nil, &list); status != http.StatusOK || len(list.Identities) != 1 || list.Identities[0].RevokedAt == nil {
		t.Errorf("GET identities = %d %+v; want gha-release, revoked", status, list)
	}
	if status := apiCall(t, http.MethodPost, url+"/unknown/revoke", admin, nil, nil); status != http.StatusNotFound {
		t.Errorf("revoke unknown = %d; want 404", status)
	}
}

// TestKeylessEvidenceEndToEnd: over REST, a keyless signature and a
// keyless test-result attestation by a trusted identity admit the
// artifact; the evidence names the identity; keyless refusals answer
// their own codes with the verification detail.
func TestKeylessEvidenceEndToEnd(t *testing.T) {
	const (
		issuer  = "https://token.actions.example.test"
		release = "https://example.test/acme/payments/.github/workflows/release.yml@refs/tags/v1.4.2"
	)
	policy := `{"rules":[{"match":"payments/*","signatures":{"keys":["payments-release"]},
		"attestations":[{"predicateType":"` + predicateTestResult + `","keys":["payments-release"]}]}]}`
	e := newEnv(t, policy)
	sigstore := testsigstore.New(t)
	if status := apiCall(t, http.MethodPut, e.url+"/api/v1/trust/roots/ci-sigstore", e.admin, sigstore.RootJSON, nil); status != http.StatusCreated {
		t.Fatalf("PUT root = %d", status)
	}
	id, _ := json.Marshal(wire.SignerIdentityRequest{ID: "payments-release", Root: "ci-sigstore", Issuer: issuer, SubjectRegexp: `https://example\.test/acme/payments/\.github/workflows/release\.yml@refs/tags/v.*`})
	if status := apiCall(t, http.MethodPost, e.url+"/api/v1/trust/identities", e.admin, id, nil); status != http.StatusCreated {
		t.Fatalf("POST identity = %d", status)
	}
	content := fixture(t, "payments-api-1.4.2.tar.gz")
	a := e.artifact(t)
	statement, _ := json.Marshal(map[string]any{
		"_type": "https://in-toto.io/Statement/v1", "predicateType": predicateTestResult, "predicate": map[string]any{"result": "PASSED"},
		"subject": []map[string]any{{"name": "payments-api-1.4.2.tar.gz", "digest": map[string]string{"sha256": strings.TrimPrefix(a.Digest, "sha256:")}}},
	})

	// Refusals first: nothing is stored.
	for _, tc := range []struct {
		name, endpoint string
		body           []byte
		status         int
		code           string
	}{
		{"another workflow", "signatures", sigstore.SignBlob(t, strings.Replace(release, "release.yml", "nightly.yml", 1), issuer, content, time.Now().Add(5*time.Minute)), 403, "IDENTITY_MISMATCH"},
		{"another Sigstore", "signatures", testsigstore.New(t).SignBlob(t, release, issuer, content, time.Now().Add(5*time.Minute)), 403, "CERTIFICATE_UNTRUSTED"},
		// The certificate is valid for ten minutes; the virtual log's key
		// only until an hour after the log was made, so logging at "now +
		// 1h" lands outside the log's validity whenever a second boundary
		// passed since (TLOG_PROOF_INVALID, about 1 run in 10).
		{"logged after the certificate expired", "signatures", sigstore.SignBlob(t, release, issuer, content, time.Now().Add(30*time.Minute)), 400, "CERTIFICATE_EXPIRED_AT_SIGNING"},
		{"an attestation posted as a signature", "signatures", sigstore.Attest(t, release, issuer, statement), 400, "MALFORMED"},
	} {
		var ev errorView
		if status := apiCall(t, http.MethodPost, e.artifactURL+"/"+tc.endpoint, e.publisher, tc.body, &ev); status != tc.status || code(ev) != tc.code {
			t.Errorf("%s: %d %+v; want %d %s", tc.name, status, ev, tc.status, tc.code)
		}
	}
	if n := e.evidenceCount(t); n != 0 {
		t.Fatalf("%d evidence stored after refusals; want none", n)
	}

	var added wire.EvidenceAdded
	if status := apiCall(t, http.MethodPost, e.artifactURL+"/signatures", e.publisher, sigstore.SignBlob(t, release, issuer, content, time.Now().Add(5*time.Minute)), &added); status != http.StatusCreated {
		t.Fatalf("keyless signature = %d", status)
	}
	if k := added.Evidence.Keyless; added.Evidence.KeyID != "payments-release" || k == nil || k.Root != "ci-sigstore" || k.Issuer != issuer || k.Subject != release || k.IntegratedTime.IsZero() {
		t.Fatalf("evidence = %+v (keyless %+v); want signed by payments-release with its issuer, subject and log time", added.Evidence, added.Evidence.Keyless)
	}
	if status := apiCall(t, http.MethodPost, e.artifactURL+"/attestations", e.publisher, sigstore.Attest(t, release, issuer, statement), &added); status != http.StatusCreated {
		t.Fatalf("keyless attestation = %d", status)
	}
	if added.Artifact.State != "admitted" {
		t.Fatalf("state = %s (%+v); want admitted", added.Artifact.State, added.Artifact.Admission)
	}
	var list wire.EvidenceList
	if status := apiCall(t, http.MethodGet, e.artifactURL+"/evidence", e.publisher, nil, &list); status != http.StatusOK || len(list.Evidence) != 2 {
		t.Fatalf("evidence list = %d, %d items", status, len(list.Evidence))
	}
	for _, ev := range list.Evidence {
		if ev.Keyless == nil || ev.Keyless.Subject != release {
			t.Errorf("listed %s without its keyless signer: %+v", ev.Kind, ev)
		}
	}
}
