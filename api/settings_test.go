package api_test

import (
	"net/http"
	"testing"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
)

// TestGateDefaults: an admin's default quorums apply to releases created
// afterwards, unless the release sets its own; existing releases keep
// theirs.
func TestGateDefaults(t *testing.T) {
	srv, admin, svc := testserver.New(t)
	rm := testserver.Token(t, svc, "rm", access.RoleReleaseManager)
	var got struct {
		Gates map[string]struct {
			Approvals int `json:"approvals"`
		} `json:"gates"`
	}
	if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/settings/gates", rm, nil, &got); code != http.StatusOK || len(got.Gates) != 0 {
		t.Fatalf("defaults before any set: %d %+v", code, got)
	}
	var ev errorView
	defaults := []byte(`{"deploy:production":{"approvals":2},"deploy:*":{"approvals":1},"close":{"approvals":2}}`)
	if code := apiCall(t, http.MethodPut, srv.URL+"/api/v1/settings/gates", rm, defaults, &ev); code != http.StatusForbidden {
		t.Fatalf("release manager setting defaults: %d", code)
	}
	for _, bad := range []string{`{"deploy:Prod":{"approvals":2}}`, `{"merge":{"approvals":1}}`, `{"plan":{"approvals":0}}`, `{"plan":{"approvals":11}}`, `[]`} {
		if code := apiCall(t, http.MethodPut, srv.URL+"/api/v1/settings/gates", admin, []byte(bad), &ev); code != http.StatusBadRequest {
			t.Errorf("defaults %s: %d, want 400", bad, code)
		}
	}
	if code := apiCall(t, http.MethodPut, srv.URL+"/api/v1/settings/gates", admin, defaults, nil); code != http.StatusOK {
		t.Fatalf("admin setting defaults: %d", code)
	}

	required := func(name string) map[string]int {
		var r struct {
			Gates []struct {
				Gate     string `json:"gate"`
				Required int    `json:"required"`
			} `json:"gates"`
		}
		if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/releases/"+name, rm, nil, &r); code != http.StatusOK {
			t.Fatalf("get release %s: %d", name, code)
		}
		out := map[string]int{}
		for _, g := range r.Gates {
			out[g.Gate] = g.Required
		}
		return out
	}
	create := func(name, gates string) {
		body := `{"name":"` + name + `","changeRef":"CHG-1","title":"t","environments":["staging","production"],"artifacts":[]` + gates + `}`
		if code := apiCall(t, http.MethodPost, srv.URL+"/api/v1/releases", rm, []byte(body), &ev); code != http.StatusCreated {
			t.Fatalf("create %s: %d %+v", name, code, ev)
		}
	}
	create("r1", "")
	create("r2", `,"gates":{"deploy:production":{"approvals":3}}`)
	want := map[string]map[string]int{
		"r1": {"plan": 1, "build": 1, "deploy:staging": 1, "deploy:production": 2, "close": 2},
		"r2": {"plan": 1, "build": 1, "deploy:staging": 1, "deploy:production": 3, "close": 2},
	}
	for name, w := range want {
		got := required(name)
		for g, n := range w {
			if got[g] != n {
				t.Errorf("release %s gate %s needs %d approvals, want %d", name, g, got[g], n)
			}
		}
	}
	// New defaults do not change existing releases.
	if code := apiCall(t, http.MethodPut, srv.URL+"/api/v1/settings/gates", admin, []byte(`{}`), nil); code != http.StatusOK {
		t.Fatal("clearing defaults")
	}
	if got := required("r1"); got["deploy:production"] != 2 {
		t.Errorf("r1 deploy:production now needs %d, want 2 as created", got["deploy:production"])
	}
}
