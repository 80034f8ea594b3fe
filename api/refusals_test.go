package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testserver"
)

// TestRefusalsInOneShape: what the router, the catch-all dispatchers and
// serveStored refuse by themselves (no route, no such method, a failed
// precondition) is answered like every other error: the status, one error
// in the body with its code and a message, JSON, in the route family's
// codes. These were written by hand before there was one writer.
func TestRefusalsInOneShape(t *testing.T) {
	srv, admin, _ := testserver.New(t)
	// registry.do sends any request, with the token as Basic password.
	client := registry{t: t, base: srv.URL, token: admin}
	const version = "/api/v1/artifacts/apps/refused/versions/1.0"
	if resp := client.do(http.MethodPut, version, strings.NewReader("content"), "Content-Type", "application/octet-stream"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d %s", resp.StatusCode, resp.body)
	}
	for _, tc := range []struct {
		name, method, path string
		headers            []string
		status             int
		code, message      string
	}{
		{"no route", http.MethodGet, "/api/v1/nothing", nil, http.StatusNotFound, "NOT_FOUND", "no such route"},
		{"no route, /v2 without its slash", http.MethodGet, "/v2", nil, http.StatusNotFound, "NOT_FOUND", "no such route"},
		{"no such method", http.MethodDelete, "/api/v1/releases", nil, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "DELETE is not allowed on /api/v1/releases"},
		{"no such method under /v2/", http.MethodOptions, "/v2/apps/refused/tags/list", nil, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "OPTIONS is not allowed on /v2/apps/refused/tags/list"},
		{"no such artifact sub-route", http.MethodGet, "/api/v1/artifacts/apps/refused/nothing", nil, http.StatusNotFound, "NOT_FOUND", "no such route"},
		{"no such method on an artifact", http.MethodPost, version, nil, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "POST is not allowed on " + version},
		{"no such method on a registry route", http.MethodPost, "/v2/apps/refused/tags/list", nil, http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed"},
		{"no such registry route", http.MethodGet, "/v2/apps/refused/nothing", nil, http.StatusNotFound, "NAME_UNKNOWN", "no such route"},
		{"a precondition", http.MethodGet, version + "/content", []string{"If-Match", `"sha256:0000"`}, http.StatusPreconditionFailed, "PRECONDITION_FAILED", "precondition"},
	} {
		resp := client.do(tc.method, tc.path, nil, tc.headers...)
		var eb wire.ErrorBody
		if err := json.Unmarshal(resp.body, &eb); err != nil || resp.StatusCode != tc.status || len(eb.Errors) != 1 ||
			eb.Errors[0].Code != tc.code || !strings.Contains(eb.Errors[0].Message, tc.message) {
			t.Errorf("%s (%s %s): %d %s; want %d with one error %s saying %q", tc.name, tc.method, tc.path, resp.StatusCode, resp.body, tc.status, tc.code, tc.message)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q; want JSON", tc.name, ct)
		}
	}
	// HEAD of the evidence list is refused too (without a body, as HEAD is).
	if resp := client.do(http.MethodHead, version+"/evidence", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD of the evidence list: %d; want 405", resp.StatusCode)
	}
}
