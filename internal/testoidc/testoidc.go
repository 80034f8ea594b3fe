// Package testoidc is what the single sign-on tests share: the OpenID
// provider scripts/test.sh runs on loopback (cmd/dml-test-idp), its
// people, and a scripted "browser" that signs in at it.
//
// Tests that need the provider call Require: without it they skip, or
// fail in CI (CI set), where a missing provider is a broken run, not a
// reason to skip.
package testoidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/dmlproject/dml/internal/atomicfile"
	"golang.org/x/oauth2"
)

// Environment variables scripts/test.sh exports.
const (
	// EnvIssuer is the provider's issuer URL (http://127.0.0.1:PORT/).
	EnvIssuer = "DML_TEST_OIDC_ISSUER"
	// EnvUsers is the directory of its users files.
	EnvUsers = "DML_TEST_OIDC_USERS"
	// EnvConsoleSecret is the console client's secret.
	EnvConsoleSecret = "DML_TEST_OIDC_CONSOLE_SECRET"
)

// Client ids of the provider (cmd/dml-test-idp).
const (
	ConsoleClient = "dml-console"
	CLIClient     = "dml-cli"
	OtherClient   = "other-app"
	OtherSecret   = "other-secret"
)

// Provider is the running provider.
type Provider struct {
	Issuer        string
	ConsoleSecret string
	users         string
}

// Require returns the provider scripts/test.sh started, or skips t (fails
// it in CI) when there is none.
func Require(t testing.TB) Provider {
	t.Helper()
	issuer, users := os.Getenv(EnvIssuer), os.Getenv(EnvUsers)
	if issuer == "" || users == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s and %s are not set: CI must run the single sign-on tests against the test OIDC provider (./scripts/test.sh starts one)", EnvIssuer, EnvUsers)
		}
		t.Skipf("%s is not set; ./scripts/test.sh starts the test OIDC provider and sets it", EnvIssuer)
	}
	secret := os.Getenv(EnvConsoleSecret)
	if secret == "" {
		secret = "dml-console-secret"
	}
	return Provider{Issuer: issuer, ConsoleSecret: secret, users: users}
}

// Person is one user of the provider.
type Person struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Password      string   `json:"password"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"emailVerified"`
	FirstName     string   `json:"firstName"`
	LastName      string   `json:"lastName"`
	Groups        []string `json:"groups"`
}

// NewPerson returns a person unique to t (ids and names carry a random
// suffix: tests share the provider), with the groups given.
func NewPerson(t testing.TB, name string, groups ...string) Person {
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	return Person{ID: name + "-" + suffix, Username: name + "-" + suffix, Password: "pw-" + suffix,
		Email: name + "-" + suffix + "@example.com", EmailVerified: true, FirstName: name, LastName: "Test", Groups: groups}
}

var fileRE = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// SetPeople writes t's users file: the provider reads it at every
// lookup, so a change (a group removed) counts from the next sign-in.
func (p Provider) SetPeople(t testing.TB, people ...Person) {
	t.Helper()
	b, err := json.Marshal(people)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(p.users, fileRE.ReplaceAllString(t.Name(), "_")+".json")
	if err := atomicfile.Replace(path, 0o644, atomicfile.Bytes(b)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
}

// Browser is a scripted browser: it keeps cookies and follows
// redirects, and fills in the provider's sign-in form.
type Browser struct {
	HTTP *http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{HTTP: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

var authRequestRE = regexp.MustCompile(`name="id" value="([^"]+)"`)

// SignIn opens start (a URL that ends at the provider's sign-in form,
// e.g. an authorization URL or dml's /ui/sso/NAME/start), signs in as
// who, and follows the redirects back to the application. It returns the
// last response, its body read.
func (b *Browser) SignIn(ctx context.Context, start string, who Person) (*http.Response, string, error) {
	resp, body, err := b.get(ctx, start)
	if err != nil {
		return nil, "", err
	}
	m := authRequestRE.FindStringSubmatch(body)
	if m == nil {
		return resp, body, fmt.Errorf("no sign-in form at %s (status %d): %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	form := url.Values{"id": {m[1]}, "username": {who.Username}, "password": {who.Password}}
	action := resp.Request.URL.ResolveReference(&url.URL{Path: "/login/username"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// Get fetches u, following redirects.
func (b *Browser) get(ctx context.Context, u string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	return b.do(req)
}

// Get fetches u, following redirects, and reads the body.
func (b *Browser) Get(ctx context.Context, u string) (*http.Response, string, error) {
	return b.get(ctx, u)
}

func (b *Browser) do(req *http.Request) (*http.Response, string, error) {
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", err
	}
	return resp, string(data), nil
}

// Tokens runs the authorization code flow with PKCE for clientID (secret
// "" for the public CLI client) as a native app does: a listener on
// 127.0.0.1 receives the code, which b brings back after signing in as
// who. It returns the ID token and the access token.
func (p Provider) Tokens(ctx context.Context, b *Browser, clientID, secret string, scopes []string, who Person, nonce string) (idToken, accessToken string, err error) {
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		return "", "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	codes := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	// Each client's redirect URIs are registered by path (cmd/dml-test-idp).
	path := "/callback"
	if clientID == ConsoleClient {
		path = "/ui/sso/test/callback"
	}
	conf := &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: op.Endpoint(), Scopes: scopes,
		RedirectURL: "http://" + ln.Addr().String() + path}
	verifier := oauth2.GenerateVerifier()
	if _, _, err := b.SignIn(ctx, conf.AuthCodeURL("state", oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), who); err != nil {
		return "", "", err
	}
	var code string
	select {
	case code = <-codes:
	default:
		return "", "", errors.New("the provider did not redirect back with a code")
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", "", err
	}
	raw, _ := tok.Extra("id_token").(string)
	return raw, tok.AccessToken, nil
}
