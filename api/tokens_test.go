package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testserver"
)

// testClock is a settable clock for the service.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type issuedView struct {
	ID        string     `json:"id"`
	Token     string     `json:"token"`
	ExpiresAt *time.Time `json:"expiresAt"`
}

// TestTokenExpiryOverHTTP: a token issued with expiresIn works until then,
// and is refused with 401 and a message saying it expired, on the REST
// API and on /v2/ alike.
func TestTokenExpiryOverHTTP(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	srv, admin, _ := testserver.New(t, testserver.WithClock(clock.now))
	var tok issuedView
	var ev errorView
	code := apiCall(t, http.MethodPost, srv.URL+"/api/v1/tokens", admin,
		[]byte(`{"name":"ci","roles":["publisher"],"expiresIn":"720h"}`), &tok)
	if code != http.StatusCreated || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(clock.now().Add(720*time.Hour)) {
		t.Fatalf("issue with expiresIn: %d %+v; want 201, expiresAt in 720h", code, tok)
	}
	if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/whoami", tok.Token, nil, nil); code != http.StatusOK {
		t.Fatalf("whoami before expiry: %d", code)
	}
	clock.add(720 * time.Hour)
	code = apiCall(t, http.MethodGet, srv.URL+"/api/v1/whoami", tok.Token, nil, &ev)
	if code != http.StatusUnauthorized || len(ev.Errors) == 0 || ev.Errors[0].Code != "UNAUTHORIZED" ||
		!strings.Contains(ev.Errors[0].Message, "expired at 2026-12-25T10:00:00Z") {
		t.Fatalf("REST after expiry: %d %+v; want 401 UNAUTHORIZED saying it expired", code, ev)
	}
	reg := registry{t: t, base: srv.URL, token: tok.Token}
	resp := reg.do(http.MethodGet, "/v2/", nil)
	reg.expect(resp, http.StatusUnauthorized, "UNAUTHORIZED")
	if !strings.Contains(string(resp.body), "expired") || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("/v2/ after expiry: %s %v; want the expiry and a Basic challenge", resp.body, resp.Header)
	}

	for _, in := range []string{`"0s"`, `"-5m"`, `"forever"`, `"87601h"`, `3600`} {
		code := apiCall(t, http.MethodPost, srv.URL+"/api/v1/tokens", admin,
			[]byte(`{"name":"x","roles":["auditor"],"expiresIn":`+in+`}`), &ev)
		if code != http.StatusBadRequest {
			t.Errorf("expiresIn %s: %d %+v; want 400", in, code, ev)
		}
	}
}

type tokenListView struct {
	Tokens []struct {
		ID           string     `json:"id"`
		Name         string     `json:"name"`
		Roles        []string   `json:"roles"`
		Environments []string   `json:"environments"`
		CreatedBy    string     `json:"createdBy"`
		CreatedAt    time.Time  `json:"createdAt"`
		LastUsedAt   *time.Time `json:"lastUsedAt"`
		ExpiresAt    *time.Time `json:"expiresAt"`
		RevokedAt    *time.Time `json:"revokedAt"`
	} `json:"tokens"`
}

// TestTokenList: admins list every token with its roles, environments,
// creation, last use, expiry and revocation, and never a secret or the
// hash of one.
func TestTokenList(t *testing.T) {
	srv, admin, _ := testserver.New(t)
	var used, idle, revoked issuedView
	apiCall(t, http.MethodPost, srv.URL+"/api/v1/tokens", admin, []byte(`{"name":"deploy-eu","roles":["deployer"],"environments":["prod-eu"],"expiresIn":"24h"}`), &used)
	apiCall(t, http.MethodPost, srv.URL+"/api/v1/tokens", admin, []byte(`{"name":"idle","roles":["auditor"]}`), &idle)
	apiCall(t, http.MethodPost, srv.URL+"/api/v1/tokens", admin, []byte(`{"name":"gone","roles":["publisher"]}`), &revoked)
	if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/whoami", used.Token, nil, nil); code != http.StatusOK {
		t.Fatalf("whoami: %d", code)
	}
	if code := apiCall(t, http.MethodDelete, srv.URL+"/api/v1/tokens/"+revoked.ID, admin, nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw strings.Builder
	var list tokenListView
	if err := decodeTee(resp, &raw, &list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %v", resp.StatusCode, err)
	}
	byName := map[string]int{}
	for i, tok := range list.Tokens {
		byName[tok.Name] = i
	}
	if len(list.Tokens) != 4 { // the bootstrap admin too
		t.Fatalf("listed %d tokens; want 4: %s", len(list.Tokens), raw.String())
	}
	u := list.Tokens[byName["deploy-eu"]]
	if u.ID != used.ID || u.LastUsedAt == nil || u.ExpiresAt == nil || u.RevokedAt != nil ||
		strings.Join(u.Roles, ",") != "deployer" || strings.Join(u.Environments, ",") != "prod-eu" || u.CreatedBy != "bootstrap-admin" {
		t.Errorf("used token listed as %+v", u)
	}
	if i := list.Tokens[byName["idle"]]; i.LastUsedAt != nil || i.ExpiresAt != nil || i.RevokedAt != nil {
		t.Errorf("idle token listed as %+v; want no last use, expiry or revocation", i)
	}
	if r := list.Tokens[byName["gone"]]; r.RevokedAt == nil {
		t.Errorf("revoked token listed as %+v", r)
	}
	for _, secret := range []string{used.Token, idle.Token, revoked.Token, admin} {
		sum := sha256.Sum256([]byte(secret))
		for _, enc := range []string{secret, hex.EncodeToString(sum[:]), strings.ToUpper(hex.EncodeToString(sum[:])), base64.StdEncoding.EncodeToString(sum[:])} {
			if strings.Contains(raw.String(), enc) {
				t.Fatalf("the token list contains a secret or its hash (%q)", enc)
			}
		}
	}
}

// decodeTee decodes a JSON answer into v, keeping its raw text in raw.
func decodeTee(resp *http.Response, raw *strings.Builder, v any) error {
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	raw.Write(data)
	return json.Unmarshal(data, v)
}
