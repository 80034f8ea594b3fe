package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/opencontainers/go-digest"
)

// env is a test server and an admin client.
type env struct {
	url   string
	admin *client.Client
	svc   *releases.DML
}

func newEnv(t *testing.T) env {
	t.Helper()
	srv, admin, svc := testserver.New(t)
	return env{url: srv.URL, admin: newClient(t, srv.URL, admin), svc: svc}
}

func newClient(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// as returns a client for a new token with the given roles.
func (e env) as(t *testing.T, name string, roles ...access.Role) *client.Client {
	t.Helper()
	return newClient(t, e.url, testserver.Token(t, e.svc, name, roles...))
}

func pushReq(name, version string, data []byte) client.PushRequest {
	return client.PushRequest{
		Name: name, Version: version, MediaType: "application/gzip",
		Digest: digest.FromBytes(data), Size: int64(len(data)), Body: bytes.NewReader(data),
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// wantCode fails unless err is a *client.Error with that status and code.
func wantCode(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want a *client.Error %d %s", err, err, status, code)
	}
	if ce.Status != status || ce.Code != code {
		t.Fatalf("err = %d %s (%q), want %d %s", ce.Status, ce.Code, ce.Message, status, code)
	}
	if !client.IsCode(err, code) {
		t.Fatalf("IsCode(%v, %s) = false", err, code)
	}
	return ce
}

func TestPush(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	data := randomBytes(t, 300<<10)
	other := randomBytes(t, 300<<10)

	a, created, err := e.admin.Artifacts().Push(ctx, pushReq("payments/api", "1.4.2", data))
	if err != nil || !created {
		t.Fatalf("first push: created=%v err=%v", created, err)
	}
	want := wire.Artifact{Name: "payments/api", Version: "1.4.2", Digest: digest.FromBytes(data), Size: int64(len(data)), MediaType: "application/gzip", State: "quarantined", CreatedBy: "bootstrap-admin"}
	// Without a trust policy nothing is admissible, and the server says so.
	if a.Admission == nil || a.Admission.State != "quarantined" || len(a.Admission.Unmet) != 1 ||
		!strings.Contains(a.Admission.Unmet[0], "no trust policy") || a.Admission.Receipt != nil {
		t.Errorf("pushed artifact admission = %+v, want quarantined for want of a policy, no receipt", a.Admission)
	}
	a.CreatedAt, a.Admission = want.CreatedAt, nil
	if a != want {
		t.Fatalf("pushed artifact = %+v, want %+v", a, want)
	}

	tests := []struct {
		name        string
		req         client.PushRequest
		wantCreated bool
		wantStatus  int
		wantCode    string
	}{
		{name: "identical bytes are a no-op", req: pushReq("payments/api", "1.4.2", data)},
		{name: "identical bytes without a digest", req: client.PushRequest{Name: "payments/api", Version: "1.4.2", Size: -1, Body: bytes.NewReader(data)}},
		{name: "other bytes conflict", req: pushReq("payments/api", "1.4.2", other), wantStatus: http.StatusConflict, wantCode: "VERSION_EXISTS"},
		{name: "other bytes without a digest conflict", req: client.PushRequest{Name: "payments/api", Version: "1.4.2", Size: int64(len(other)), Body: bytes.NewReader(other)}, wantStatus: http.StatusConflict, wantCode: "VERSION_EXISTS"},
		{name: "deep name", req: pushReq("org/team/payments/api", "2.0.0-rc.1", data), wantCreated: true},
		{name: "name with a versions component", req: pushReq("tools/versions/x", "1", data), wantCreated: true},
		{name: "chunked body", req: client.PushRequest{Name: "payments/chunked", Version: "1", Digest: digest.FromBytes(other), Size: -1, Body: bytes.NewReader(other)}, wantCreated: true},
		{name: "empty body", req: pushReq("payments/empty", "1", nil), wantCreated: true},
		{name: "invalid name", req: pushReq("Payments/API", "1", data), wantStatus: http.StatusBadRequest, wantCode: "NAME_INVALID"},
		{name: "invalid version", req: pushReq("payments/api", "-1", data), wantStatus: http.StatusBadRequest, wantCode: "VERSION_INVALID"},
		{name: "name that needs escaping", req: pushReq("payments/a b", "1", data), wantStatus: http.StatusBadRequest, wantCode: "NAME_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, created, err := e.admin.Artifacts().Push(ctx, tt.req)
			if tt.wantCode != "" {
				wantCode(t, err, tt.wantStatus, tt.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			if a.Name != tt.req.Name || a.Version != tt.req.Version {
				t.Errorf("artifact = %s:%s, want %s:%s", a.Name, a.Version, tt.req.Name, tt.req.Version)
			}
			got, err := e.admin.Artifacts().Get(ctx, tt.req.Name, tt.req.Version)
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != a.Digest || got.Size != a.Size {
				t.Errorf("GET = %s %d, push answered %s %d", got.Digest, got.Size, a.Digest, a.Size)
			}
		})
	}
}

func TestPushConflictDetailNamesStoredDigest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	data := []byte("one")
	if _, _, err := e.admin.Artifacts().Push(ctx, pushReq("payments/api", "1", data)); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.admin.Artifacts().Push(ctx, pushReq("payments/api", "1", []byte("two")))
	ce := wantCode(t, err, http.StatusConflict, "VERSION_EXISTS")
	var detail struct {
		Digest digest.Digest `json:"digest"`
	}
	if err := json.Unmarshal(ce.Detail, &detail); err != nil {
		t.Fatalf("detail %s: %v", ce.Detail, err)
	}
	if detail.Digest != digest.FromBytes(data) {
		t.Errorf("detail digest = %s, want %s", detail.Digest, digest.FromBytes(data))
	}
}

func TestPushBadChecksumStoresNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	data := randomBytes(t, 64<<10)
	claimed := digest.FromString("not these bytes")
	req := pushReq("payments/api", "1.0.0", data)
	req.Digest = claimed

	_, _, err := e.admin.Artifacts().Push(ctx, req)
	wantCode(t, err, http.StatusBadRequest, "DIGEST_INVALID")

	_, err = e.admin.Artifacts().Get(ctx, "payments/api", "1.0.0")
	wantCode(t, err, http.StatusNotFound, "NOT_FOUND")
	for _, d := range []digest.Digest{claimed, digest.FromBytes(data)} {
		if ok, err := e.svc.Blobs.Store().Exists(ctx, d); err != nil || ok {
			t.Errorf("blob %s exists=%v err=%v after a failed push", d, ok, err)
		}
	}
}

func TestPushRejectsWhatCannotBeSent(t *testing.T) {
	// These fail before any request: the server is never contacted.
	c := newClient(t, "http://127.0.0.1:1", "tok")
	ctx := context.Background()
	tests := []struct {
		name string
		req  client.PushRequest
		is   error
	}{
		{"empty name", client.PushRequest{Name: "", Version: "1"}, client.ErrInvalidReference},
		{"leading slash", client.PushRequest{Name: "/payments", Version: "1"}, client.ErrInvalidReference},
		{"double slash", client.PushRequest{Name: "payments//api", Version: "1"}, client.ErrInvalidReference},
		{"dot-dot component", client.PushRequest{Name: "payments/../api", Version: "1"}, client.ErrInvalidReference},
		{"slash in version", client.PushRequest{Name: "payments", Version: "1/content"}, client.ErrInvalidReference},
		{"empty version", client.PushRequest{Name: "payments", Version: ""}, client.ErrInvalidReference},
		{"sha512 digest", client.PushRequest{Name: "payments", Version: "1", Digest: digest.SHA512.FromString("x")}, nil},
		{"malformed digest", client.PushRequest{Name: "payments", Version: "1", Digest: "sha256:abc"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.Artifacts().Push(ctx, tt.req)
			if err == nil {
				t.Fatal("push succeeded")
			}
			var ce *client.Error
			if errors.As(err, &ce) {
				t.Fatalf("err = %v: a request was sent", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
}

func TestPull(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	data := randomBytes(t, 1<<20+17)
	if _, _, err := e.admin.Artifacts().Push(ctx, pushReq("payments/api", "1.4.2", data)); err != nil {
		t.Fatal(err)
	}
	ct, err := e.admin.Artifacts().Pull(ctx, "payments/api", "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Body.Close()
	got, err := io.ReadAll(ct.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("pulled %d bytes that differ from the %d pushed", len(got), len(data))
	}
	if ct.Digest != digest.FromBytes(data) || ct.Size != int64(len(data)) || ct.TotalSize != ct.Size || ct.Offset != 0 {
		t.Errorf("content = %s size %d total %d offset %d", ct.Digest, ct.Size, ct.TotalSize, ct.Offset)
	}
	if ct.MediaType != "application/gzip" {
		t.Errorf("media type = %q", ct.MediaType)
	}

	_, err = e.admin.Artifacts().Pull(ctx, "payments/api", "9.9.9")
	wantCode(t, err, http.StatusNotFound, "NOT_FOUND")
}

// fakeContent serves body under a Docker-Content-Digest that is announced,
// as a broken or malicious server (or proxy) might.
func fakeContent(announced digest.Digest, length int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Docker-Content-Digest", announced.String())
		w.Header().Set("Content-Length", fmt.Sprint(length))
		_, _ = w.Write(body)
	}
}

func TestPullVerifiesContent(t *testing.T) {
	good := []byte("the real package")
	bad := []byte("a tampered package")
	tests := []struct {
		name    string
		handler http.HandlerFunc
		// exact reads only Size bytes, never asking for EOF.
		exact   bool
		wantErr string
	}{
		{"correct", fakeContent(digest.FromBytes(good), len(good), good), false, ""},
		{"correct, read exactly", fakeContent(digest.FromBytes(good), len(good), good), true, ""},
		{"tampered bytes", fakeContent(digest.FromBytes(good), len(bad), bad), false, "hashes to"},
		{"tampered bytes, read exactly", fakeContent(digest.FromBytes(good), len(bad), bad), true, "hashes to"},
		{"truncated", fakeContent(digest.FromBytes(good), len(good), good[:4]), false, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			ct, err := newClient(t, srv.URL, "tok").Artifacts().Pull(context.Background(), "payments/api", "1")
			if err != nil {
				t.Fatal(err)
			}
			defer ct.Body.Close()
			if tt.exact {
				err = readExactly(ct.Body, ct.Size)
			} else {
				_, err = io.Copy(io.Discard, ct.Body)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("copy: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("copy err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// readExactly reads size bytes and stops, as a caller that trusts
// Content-Length would; it returns the error of any Read.
func readExactly(r io.Reader, size int64) error {
	buf := make([]byte, 5)
	for n := int64(0); n < size; {
		m, err := r.Read(buf[:min(int64(len(buf)), size-n)])
		n += int64(m)
		if err == io.EOF && n == size {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func TestPullRange(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	data := randomBytes(t, 100_000)
	if _, _, err := e.admin.Artifacts().Push(ctx, pushReq("payments/api", "1", data)); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	tests := []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"head", 0, 10, data[:10]},
		{"middle", 4096, 5000, data[4096:9096]},
		{"to the end", 99_000, -1, data[99_000:]},
		{"last byte", size - 1, 1, data[size-1:]},
		{"length past the end is clipped", size - 5, 100, data[size-5:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, err := e.admin.Artifacts().PullRange(ctx, "payments/api", "1", tt.offset, tt.length)
			if err != nil {
				t.Fatal(err)
			}
			defer ct.Body.Close()
			got, err := io.ReadAll(ct.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %d bytes, want %d (the right slice)", len(got), len(tt.want))
			}
			if ct.Offset != tt.offset || ct.Size != int64(len(tt.want)) || ct.TotalSize != size || ct.Digest != digest.FromBytes(data) {
				t.Errorf("content = offset %d size %d total %d digest %s", ct.Offset, ct.Size, ct.TotalSize, ct.Digest)
			}
		})
	}

	t.Run("beyond the end", func(t *testing.T) {
		_, err := e.admin.Artifacts().PullRange(ctx, "payments/api", "1", size+10, 5)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("err = %v, want a 416 *client.Error", err)
		}
	})
}

func TestListArtifacts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var want []string
	for _, ref := range []struct{ name, version string }{
		{"payments/api", "1.0.0"}, {"payments/api", "1.1.0"}, {"payments/api", "2.0.0"},
		{"payments/worker", "1.0.0"}, {"shop/web", "3"},
	} {
		if _, _, err := e.admin.Artifacts().Push(ctx, pushReq(ref.name, ref.version, []byte(ref.name+ref.version))); err != nil {
			t.Fatal(err)
		}
		want = append(want, ref.name+":"+ref.version)
	}

	// Page by page, following cursors by hand.
	var got []string
	f := client.ArtifactFilter{Limit: 2}
	pages := 0
	for {
		page, err := e.admin.Artifacts().List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Artifacts) > 2 {
			t.Fatalf("page of %d artifacts, limit 2", len(page.Artifacts))
		}
		for _, a := range page.Artifacts {
			got = append(got, a.Name+":"+a.Version)
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
		if pages > 10 {
			t.Fatal("cursor never ends")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages listed %v, want %v", got, want)
	}
	if pages < 3 {
		t.Errorf("%d pages for 5 artifacts at 2 a page", pages)
	}

	tests := []struct {
		name   string
		filter client.ArtifactFilter
		want   []string
	}{
		{"all, one page at a time", client.ArtifactFilter{Limit: 1}, want},
		{"by name", client.ArtifactFilter{Name: "payments/api", Limit: 2}, want[:3]},
		{"by state", client.ArtifactFilter{State: "quarantined"}, want},
		{"nothing admitted yet", client.ArtifactFilter{State: "admitted"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for a, err := range e.admin.Artifacts().All(ctx, tt.filter) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, a.Name+":"+a.Version)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("listed %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("bad filter", func(t *testing.T) {
		_, err := e.admin.Artifacts().List(ctx, client.ArtifactFilter{State: "nonsense"})
		wantCode(t, err, http.StatusBadRequest, "INVALID_INPUT")
	})
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)

	me, err := e.admin.Whoami(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.Name != "bootstrap-admin" || !slices.Equal(me.Roles, []string{"admin"}) {
		t.Errorf("admin whoami = %+v", me)
	}

	issued, err := e.admin.Tokens().Create(ctx, wire.TokenRequest{Name: "ci-deployer", Roles: []string{"deployer", "publisher"}, Environments: []string{"staging", "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if issued.ID == "" || !strings.HasPrefix(issued.Token, "dml_") || issued.CreatedAt.IsZero() {
		t.Errorf("issued = %+v", issued)
	}
	deployer := newClient(t, e.url, issued.Token)
	who, err := deployer.Whoami(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Identity{TokenID: issued.ID, Name: "ci-deployer", Roles: []string{"deployer", "publisher"}, Environments: []string{"prod", "staging"}}
	if who.TokenID != want.TokenID || who.Name != want.Name || !slices.Equal(who.Roles, want.Roles) || !slices.Equal(who.Environments, want.Environments) {
		t.Errorf("whoami = %+v, want %+v", who, want)
	}

	// Only admins manage tokens.
	_, err = deployer.Tokens().Create(ctx, wire.TokenRequest{Name: "x", Roles: []string{"admin"}})
	wantCode(t, err, http.StatusForbidden, "DENIED")
	wantCode(t, deployer.Tokens().Revoke(ctx, issued.ID), http.StatusForbidden, "DENIED")

	_, err = e.admin.Tokens().Create(ctx, wire.TokenRequest{Name: "x", Roles: []string{"wizard"}})
	wantCode(t, err, http.StatusBadRequest, "INVALID_INPUT")

	if err := e.admin.Tokens().Revoke(ctx, issued.ID); err != nil {
		t.Fatal(err)
	}
	_, err = deployer.Whoami(ctx)
	wantCode(t, err, http.StatusUnauthorized, "UNAUTHORIZED")

	wantCode(t, e.admin.Tokens().Revoke(ctx, "tok_does_not_exist"), http.StatusNotFound, "NOT_FOUND")

	_, err = newClient(t, e.url, "").Whoami(ctx)
	wantCode(t, err, http.StatusUnauthorized, "UNAUTHORIZED")
	_, err = newClient(t, e.url, "dml_wrong").Whoami(ctx)
	wantCode(t, err, http.StatusUnauthorized, "UNAUTHORIZED")
}

func TestPushNeedsPublisher(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, role := range []access.Role{access.RoleAuditor, access.RoleDeployer, access.RoleReleaseManager, access.RoleApprover} {
		t.Run(string(role), func(t *testing.T) {
			c := e.as(t, "user-"+string(role), role)
			_, _, err := c.Artifacts().Push(ctx, pushReq("payments/api", "1", []byte("x")))
			wantCode(t, err, http.StatusForbidden, "DENIED")
		})
	}
	if _, err := e.admin.Artifacts().Get(ctx, "payments/api", "1"); !client.IsCode(err, "NOT_FOUND") {
		t.Fatalf("after denied pushes: %v, want NOT_FOUND", err)
	}
}

func TestQuarantinedContentIsPrivate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	publisher := e.as(t, "ci-payments", access.RolePublisher)
	data := []byte("quarantined package")
	if _, _, err := publisher.Artifacts().Push(ctx, pushReq("payments/api", "1", data)); err != nil {
		t.Fatal(err)
	}

	readers := []struct {
		name    string
		c       *client.Client
		allowed bool
	}{
		{"its publisher", publisher, true},
		{"an admin", e.admin, true},
		{"an auditor", e.as(t, "audit", access.RoleAuditor), true},
		{"another publisher", e.as(t, "ci-shop", access.RolePublisher), false},
		{"a deployer", e.as(t, "deploy", access.RoleDeployer), false},
		{"a release manager", e.as(t, "rm", access.RoleReleaseManager), false},
	}
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			// Metadata is readable by everyone authenticated.
			if _, err := r.c.Artifacts().Get(ctx, "payments/api", "1"); err != nil {
				t.Fatalf("metadata: %v", err)
			}
			ct, err := r.c.Artifacts().Pull(ctx, "payments/api", "1")
			if !r.allowed {
				wantCode(t, err, http.StatusForbidden, "NOT_ADMITTED")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ct.Body.Close()
			got, err := io.ReadAll(ct.Body)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("pulled %q, %v", got, err)
			}
		})
	}
}

func TestErrorsOutsideTheErrorShape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := newClient(t, srv.URL, "tok").Whoami(context.Background())
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *client.Error", err)
	}
	if ce.Status != http.StatusBadGateway || ce.Code != "" || !strings.Contains(ce.Message, "bad gateway") {
		t.Errorf("err = %+v", ce)
	}
}

func TestNewValidatesTheURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"https://dml.example.com/prefix/", true},
		{"127.0.0.1:8080", false},
		{"ftp://dml.example.com", false},
		{"http://dml.example.com/?x=1", false},
		{"http://", false},
	}
	for _, tt := range tests {
		_, err := client.New(tt.url, "tok")
		if (err == nil) != tt.ok {
			t.Errorf("New(%q) err = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestServerPathPrefix(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	mux.Handle("/dml/", http.StripPrefix("/dml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Forward to the real server, keeping the escaped path intact.
		proxied, _ := http.NewRequestWithContext(r.Context(), r.Method, e.url+r.URL.RequestURI(), r.Body)
		proxied.Header = r.Header
		resp, err := http.DefaultClient.Do(proxied)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})))
	proxy := httptest.NewServer(mux)
	defer proxy.Close()
	c := newClient(t, proxy.URL+"/dml/", testserver.AdminToken)
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatal(err)
	}
}
