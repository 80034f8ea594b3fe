package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestJSONBodiesAreUnambiguous: a JSON request body is one value and
// nothing after it, names each key once (case-insensitively, as the decoder
// matches fields) and nests boundedly; anything else is refused with 400
// and a detail naming the problem, and changes nothing. Before, the first
// value was decoded and trailing data ignored, and the last of two equal
// keys silently won ({"roles":["auditor"],"roles":["admin"]}).
func TestJSONBodiesAreUnambiguous(t *testing.T) {
	e := newEnv(t, ciPolicy)
	sig := strings.TrimSpace(string(fixture(t, "payments-api-1.4.2.tar.gz.sig")))
	dsse := fixture(t, "test-result-passed.dsse.json")
	dupDSSE := append(bytes.TrimRight(bytes.TrimSpace(dsse), "}"), []byte(`,"payloadType":"application/vnd.in-toto+json"}`)...)
	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65)
	reg := registry{t: t, base: e.url, token: e.publisher}
	img := reg.pushImage("payments/web", "json test", nil, "")
	dupManifest := append(bytes.TrimSuffix(img.manifest, []byte("}")), []byte(`,"layers":[]}`)...)
	rm := testserver.Token(t, e.svc, "rm", access.RoleReleaseManager)
	state := observer{svc: e.svc}
	before := state.capture(t)

	for _, tc := range []struct {
		name, method, path, token string
		body                      []byte
		contentType               string
		status                    int
		code, problem             string
	}{
		{"token: a second value", "POST", "/api/v1/tokens", e.admin, []byte(`{"name":"t1","roles":["auditor"]} {"name":"t2","roles":["admin"]}`), "", 400, "MALFORMED", "trailing_data"},
		{"token: garbage after the value", "POST", "/api/v1/tokens", e.admin, []byte(`{"name":"t1","roles":["auditor"]}garbage`), "", 400, "MALFORMED", "trailing_data"},
		{"token: duplicate roles", "POST", "/api/v1/tokens", e.admin, []byte(`{"name":"t1","roles":["auditor"],"roles":["admin"]}`), "", 400, "MALFORMED", "duplicate_key"},
		{"token: duplicate by case", "POST", "/api/v1/tokens", e.admin, []byte(`{"name":"t1","roles":["auditor"],"ROLES":["admin"]}`), "", 400, "MALFORMED", "duplicate_key"},
		{"token: duplicate by escape", "POST", "/api/v1/tokens", e.admin, []byte(`{"name":"t1","roles":["auditor"],"r\u006fles":["admin"]}`), "", 400, "MALFORMED", "duplicate_key"},
		{"gate defaults: nested duplicate", "PUT", "/api/v1/settings/gates", e.admin, []byte(`{"deploy:*":{"approvals":3,"approvals":1}}`), "", 400, "MALFORMED", "duplicate_key"},
		{"release: too deep", "POST", "/api/v1/releases", rm, []byte(`{"name":"r1","plan":` + deep + `}`), "", 400, "MALFORMED", "too_deep"},
		{"trust policy: duplicate rules", "PUT", "/api/v1/trust/policy", e.admin, []byte(`{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]}}],"rules":[]}`), "", 400, "POLICY_INVALID", ""},
		{"trust policy: duplicate by case", "PUT", "/api/v1/trust/policy", e.admin, []byte(`{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]}}],"Rules":[]}`), "", 400, "POLICY_INVALID", ""},
		{"trust policy: trailing data", "PUT", "/api/v1/trust/policy", e.admin, []byte(`{"rules":[]} {"rules":[]}`), "", 400, "POLICY_INVALID", ""},
		{"signature: duplicate keyId", "POST", "/api/v1/artifacts/payments/api/versions/1.4.2/signatures", e.publisher, []byte(`{"keyId":"nobody","keyId":"ci","signature":"` + sig + `"}`), "", 400, "MALFORMED", ""},
		{"attestation: duplicate payloadType", "POST", "/api/v1/artifacts/payments/api/versions/1.4.2/attestations", e.publisher, dupDSSE, "", 400, "MALFORMED", ""},
		{"OCI manifest: duplicate layers", "PUT", "/v2/payments/web/manifests/1.0", e.publisher, dupManifest, ocispec.MediaTypeImageManifest, 400, "MANIFEST_INVALID", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, e.url+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tc.token)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			status, ev := doJSON(t, req)
			if status != tc.status || len(ev.Errors) != 1 || ev.Errors[0].Code != tc.code {
				t.Fatalf("%s %s: %d %+v, want %d %s", tc.method, tc.path, status, ev, tc.status, tc.code)
			}
			if tc.problem != "" && ev.Errors[0].Detail["problem"] != tc.problem {
				t.Errorf("detail %v, want problem %q", ev.Errors[0].Detail, tc.problem)
			}
		})
	}
	// Nothing was issued, admitted or stored.
	if got := state.capture(t); got != before {
		t.Errorf("after the refusals: %+v, before: %+v", got, before)
	}
	if n := e.evidenceCount(t); n != 0 {
		t.Errorf("%d evidence stored", n)
	}
}
