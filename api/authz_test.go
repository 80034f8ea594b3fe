package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/retention"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/store"
	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
)

// TestAccessMatrixCoversRoutes walks the router's own route list (gin's
// engine.Routes(), with the sub-routes of /api/v1/artifacts/*path and
// /v2/*path): a route without a row in the matrix fails, and so does a row
// for a route the router does not serve.
func TestAccessMatrixCoversRoutes(t *testing.T) {
	_, _, svc := testserver.New(t)
	s := newAPI(t, api.Config{DML: svc})
	unruled, stale, problems := s.MatrixGaps()
	for _, k := range unruled {
		t.Errorf("route %s has no row in the access matrix (api/authz.go)", k)
	}
	for _, k := range stale {
		t.Errorf("access matrix row %s names no route of the router", k)
	}
	for _, p := range problems {
		t.Error(p)
	}
	keys, _ := s.RouteKeys()
	t.Logf("access matrix: %d routes × %d roles (%d, and no token) = %d pairs", len(keys), len(access.Roles)+1, len(access.Roles), len(keys)*(len(access.Roles)+1))

	t.Run("a new route is noticed", func(t *testing.T) {
		s := newAPI(t, api.Config{DML: svc})
		s.Engine().POST("/api/v1/admin/reindex", func(*gin.Context) {})
		unruled, _, _ := s.MatrixGaps()
		if !slices.Equal(unruled, []string{"POST /api/v1/admin/reindex"}) {
			t.Fatalf("unruled routes %v, want the added one", unruled)
		}
	})
}

// TestAccessMatrixUnknownRouteRefused: a route that the matrix forgot is
// refused to everyone, admins included (the matrix fails closed).
func TestAccessMatrixUnknownRouteRefused(t *testing.T) {
	_, admin, svc := testserver.New(t)
	s := newAPI(t, api.Config{DML: svc})
	called := false
	s.Engine().GET("/api/v1/admin/unlisted", func(c *gin.Context) { called = true; c.Status(http.StatusOK) })
	srv := newHTTPServer(t, s)
	var ev errorView
	code := apiCall(t, http.MethodGet, srv+"/api/v1/admin/unlisted", admin, nil, &ev)
	if code != http.StatusForbidden || called || len(ev.Errors) == 0 || ev.Errors[0].Code != "DENIED" {
		t.Fatalf("unlisted route: %d %+v (handler called: %v), want 403 DENIED and no call", code, ev, called)
	}
}

// matrixWorld is a server where every kind of resource exists once, with
// one token per role.
type matrixWorld struct {
	url    string
	svc    *releases.DML
	tokens map[string]string // by role; "" is no token
	// existing and missing fill the path parameters of a route.
	existing, missing pathValues
}

type pathValues struct {
	artifact, version, evidence   string
	release, deployment           string
	token, key                    string
	root, identity                string
	repo, blob, reference, upload string
	policy, prefix                string
	webhook, delivery             string
}

func newMatrixWorld(t *testing.T, opts ...testserver.Option) *matrixWorld {
	t.Helper()
	srv, admin, svc := testserver.New(t, opts...)
	lc := testserver.FullLifecycle(t, svc)
	ctx := context.Background()
	w := &matrixWorld{url: srv.URL, svc: svc, tokens: map[string]string{
		"":                                "",
		string(access.RoleAdmin):          admin,
		string(access.RolePublisher):      lc.Tokens["pipeline"],
		string(access.RoleReleaseManager): lc.Tokens["rm"],
		string(access.RoleApprover):       lc.Tokens["cab-1"],
		string(access.RoleDeployer):       lc.Tokens["deploy-prod"],
		string(access.RoleAuditor):        lc.Tokens["audit"],
	}}
	ev, err := svc.Catalog.ListEvidence(ctx, lc.Artifact, lc.Version)
	if err != nil || len(ev) == 0 {
		t.Fatalf("evidence: %v %v", ev, err)
	}
	rel, err := svc.Releases.Release(ctx, lc.Release)
	if err != nil || len(rel.Deployments) == 0 {
		t.Fatalf("release: %v", err)
	}
	adminP, err := svc.Access.Authenticate(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry{t: t, base: srv.URL, token: lc.Tokens["pipeline"]}
	img := reg.pushImage("team/app", "matrix", nil, "")
	reg.expect(reg.pushManifest("team/app", "v1", img.desc.MediaType, img.manifest), http.StatusCreated, "")
	up := reg.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil)
	reg.expect(up, http.StatusAccepted, "")
	rootDoc, _ := testkeys.TrustedRoot(t)
	if _, _, err := svc.Trust.PutTrustedRoot(ctx, adminP, "public-good", rootDoc); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Trust.AddIdentity(ctx, adminP, trust.Identity{ID: "gha", Root: "public-good", Issuer: "https://token.actions.githubusercontent.com", Subject: "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Retention.SetPolicy(ctx, adminP, retention.Policy{ID: "keep", Pattern: "team/**", KeepAdmitted: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Quotas.SetQuota(ctx, adminP, quota.Quota{Prefix: "team/", MaxArtifacts: 100}); err != nil {
		t.Fatal(err)
	}
	hook, err := svc.Events.CreateWebhook(ctx, adminP, events.WebhookRequest{URL: "https://hooks.example.com/dml", Secret: "matrix-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	w.existing = pathValues{
		artifact: lc.Artifact, version: lc.Version, evidence: ev[0].Digest.String(),
		release: lc.Release, deployment: rel.Deployments[0].ID,
		token: adminP.TokenID, key: "ci", root: "public-good", identity: "gha",
		repo: "team/app", blob: img.layer.Digest.String(), reference: "v1", upload: header(t, up, "Docker-Upload-UUID"),
		policy: "keep", prefix: "team/",
		webhook: hook.ID, delivery: "1",
	}
	zero := "sha256:" + strings.Repeat("0", 64)
	w.missing = pathValues{
		artifact: "nobody/missing", version: "9.9.9", evidence: zero,
		release: "no-such-release", deployment: "dep_0000000000000000",
		token: "tok_0000000000000000", key: "no-such-key", root: "no-such-root", identity: "no-such-identity",
		repo: "nobody/missing", blob: zero, reference: "v0", upload: "00000000-0000-0000-0000-000000000000",
		policy: "no-such-policy", prefix: "nobody/",
		webhook: "wh_0000000000000000", delivery: "999999",
	}
	return w
}

// fill puts v into the route's path parameters; a parameter this test
// does not know fails it, so a new route gets a fixture.
func fill(t *testing.T, path string, v pathValues) string {
	t.Helper()
	var r *strings.Replacer
	switch {
	case strings.HasPrefix(path, "/api/v1/artifacts/"):
		r = strings.NewReplacer("{name}", v.artifact, "{version}", v.version, "{digest}", v.evidence)
	case strings.HasPrefix(path, "/api/v1/releases/"):
		r = strings.NewReplacer("{name}", v.release, "{id}", v.deployment)
	case strings.HasPrefix(path, "/api/v1/webhooks/"):
		r = strings.NewReplacer("{id}", v.webhook, "{delivery}", v.delivery)
	case strings.HasPrefix(path, "/api/v1/tokens/"):
		r = strings.NewReplacer("{id}", v.token)
	case strings.HasPrefix(path, "/api/v1/trust/keys/"):
		r = strings.NewReplacer("{id}", v.key)
	case strings.HasPrefix(path, "/api/v1/trust/roots/"):
		r = strings.NewReplacer("{id}", v.root)
	case strings.HasPrefix(path, "/api/v1/trust/identities/"):
		r = strings.NewReplacer("{id}", v.identity)
	case strings.HasPrefix(path, "/api/v1/retention/policies/"):
		r = strings.NewReplacer("{id}", v.policy)
	case strings.HasPrefix(path, "/api/v1/quotas/"):
		r = strings.NewReplacer("{prefix}", v.prefix)
	case strings.HasPrefix(path, "/v2/"):
		r = strings.NewReplacer("{name}", v.repo, "{uuid}", v.upload, "{digest}", v.blob, "{reference}", v.reference)
	default:
		r = strings.NewReplacer()
	}
	out := r.Replace(path)
	if strings.Contains(out, "{") {
		t.Fatalf("route %s: the matrix test does not know how to fill %s", path, out)
	}
	return out
}

var intruderBytes = []byte("bytes an intruder tries to store")

// requestFor is what a denied caller sends: a request that would change
// something if it were let through.
func requestFor(t *testing.T, rule api.AccessRule) (query string, body []byte, contentType string) {
	t.Helper()
	d := digest.FromBytes(intruderBytes).String()
	jsonBody := func(v any) []byte { return mustJSON(t, v) }
	switch rule.Method + " " + rule.Path {
	case "PUT /api/v1/artifacts/{name}/versions/{version}":
		return "", intruderBytes, "application/octet-stream"
	case "POST /api/v1/artifacts/{name}/versions/{version}/signatures":
		return "", jsonBody(map[string]string{"keyId": "ci", "signature": "AAAA"}), "application/json"
	case "POST /api/v1/artifacts/{name}/versions/{version}/attestations":
		return "", fixture(t, "test-result-passed.dsse.json"), "application/json"
	case "POST /api/v1/tokens":
		return "", jsonBody(map[string]any{"name": "intruder", "roles": []string{"admin"}}), "application/json"
	case "PUT /api/v1/trust/policy":
		return "", []byte(`{"rules":[]}`), "application/json"
	case "POST /api/v1/trust/keys":
		return "", jsonBody(map[string]string{"id": "intruder", "publicKey": string(fixture(t, "cosign.pub"))}), "application/json"
	case "PUT /api/v1/trust/roots/{id}":
		doc, _ := testkeys.TrustedRoot(t)
		return "", doc, "application/json"
	case "POST /api/v1/trust/identities":
		return "", jsonBody(map[string]string{"id": "intruder", "root": "public-good", "issuer": "https://token.actions.githubusercontent.com", "subject": "x"}), "application/json"
	case "PUT /api/v1/retention/policies/{id}":
		return "", []byte(`{"pattern":"**","keepAdmitted":1}`), "application/json"
	case "PUT /api/v1/quotas/{prefix}":
		return "", []byte(`{"maxArtifacts":1}`), "application/json"
	case "PUT /api/v1/settings/gates":
		return "", []byte(`{"plan":{"approvals":1}}`), "application/json"
	case "POST /api/v1/releases":
		return "", createBody("intruder-release", nil), "application/json"
	case "POST /api/v1/releases/{name}/approvals":
		return "", jsonBody(map[string]string{"gate": "close", "decision": "approve", "digest": d}), "application/json"
	case "POST /api/v1/releases/{name}/deployments":
		return "", []byte(`{"environment":"production","target":"k8s/x","status":"succeeded"}`), "application/json"
	case "PATCH /api/v1/releases/{name}/deployments/{id}":
		return "", []byte(`{"status":"failed"}`), "application/json"
	case "POST /api/v1/releases/{name}/review":
		return "", []byte(`{"outcome":"successful","summary":"fine"}`), "application/json"
	case "POST /api/v1/releases/{name}/cancel":
		return "", []byte(`{"reason":"intruder"}`), "application/json"
	case "PUT /api/v1/releases/{name}/artifacts":
		return "", []byte(`[]`), "application/json"
	case "POST /v2/{name}/blobs/uploads/", "PUT /v2/{name}/blobs/uploads/{uuid}":
		return "?digest=" + d, intruderBytes, "application/octet-stream"
	case "PATCH /v2/{name}/blobs/uploads/{uuid}":
		return "", intruderBytes, "application/octet-stream"
	case "PUT /v2/{name}/manifests/{reference}":
		return "", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`), "application/vnd.oci.image.manifest.v1+json"
	}
	switch rule.Method {
	case http.MethodPut, http.MethodPost, http.MethodPatch:
		return "", []byte(`{}`), "application/json"
	}
	return "", nil, ""
}

type answer struct {
	status        int
	code, message string
}

func (w *matrixWorld) send(t *testing.T, method, url, token string, body []byte, contentType string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode}
	var ev errorView
	if json.Unmarshal(data, &ev) == nil && len(ev.Errors) > 0 {
		a.code, a.message = ev.Errors[0].Code, ev.Errors[0].Message
	}
	return a
}

// state is what a refused request must not change: the audit log and the
// blob store (blobs, staged and chunked uploads).
func (w *matrixWorld) state(t *testing.T) (auditSize int64, blobs int) {
	t.Helper()
	ctx := context.Background()
	adminP, err := w.svc.Access.Authenticate(ctx, w.tokens["admin"])
	if err != nil {
		t.Fatal(err)
	}
	_, cp, err := w.svc.Audit.Checkpoint(ctx, adminP)
	if err != nil {
		t.Fatal(err)
	}
	err = w.svc.Blobs.Store().Backend().List(ctx, "", func(store.Info) error { blobs++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size, blobs
}

// TestAccessMatrixDeniedPairs sends, for every route and every role the
// matrix refuses (and without a token), the request against an existing
// and a missing resource: both must be answered 401 (no token) or 403
// with the same code and message, so nothing about the resource leaks,
// and neither may change the audit log or the blob store.
func TestAccessMatrixDeniedPairs(t *testing.T) {
	w := newMatrixWorld(t)
	roles := append([]string{""}, func() []string {
		out := make([]string, len(access.Roles))
		for i, r := range access.Roles {
			out[i] = string(r)
		}
		return out
	}()...)
	denied := 0
	for _, rule := range api.AccessMatrix {
		for _, role := range roles {
			if rule.Public || slices.ContainsFunc(rule.Grants, func(g api.AccessRuleGrant) bool { return string(g.Role) == role }) {
				continue
			}
			denied++
			name := role
			if name == "" {
				name = "no token"
			}
			t.Run(rule.Method+" "+rule.Path+" as "+name, func(t *testing.T) {
				query, body, ct := requestFor(t, rule)
				auditBefore, blobsBefore := w.state(t)
				want, wantCode := http.StatusForbidden, "DENIED"
				if role == "" {
					want, wantCode = http.StatusUnauthorized, "UNAUTHORIZED"
				}
				var answers [2]answer
				for i, v := range []pathValues{w.existing, w.missing} {
					url := w.url + fill(t, rule.Path, v) + query
					answers[i] = w.send(t, rule.Method, url, w.tokens[role], body, ct)
					a := answers[i]
					if a.status != want || (rule.Method != http.MethodHead && a.code != wantCode) {
						t.Errorf("%s %s: %d %s %q, want %d %s", rule.Method, url, a.status, a.code, a.message, want, wantCode)
					}
				}
				if answers[0] != answers[1] {
					t.Errorf("the answer tells an existing resource from a missing one:\n existing: %+v\n missing:  %+v", answers[0], answers[1])
				}
				auditAfter, blobsAfter := w.state(t)
				if auditAfter != auditBefore || blobsAfter != blobsBefore {
					t.Errorf("a refused request changed state: audit log %d → %d records, blob store %d → %d objects", auditBefore, auditAfter, blobsBefore, blobsAfter)
				}
			})
		}
	}
	t.Logf("%d routes, %d denied (route, role) pairs checked", len(api.AccessMatrix), denied)
}

// newHTTPServer serves s on loopback until the test ends.
func newHTTPServer(t *testing.T, s *api.Server) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAuditKeyOpenToEveryRole: the audit log's verifier key is a public
// key, served to every token (and the same to all), as the README and
// docs/audit.md say; without a token it is 401 like the rest of /api/v1.
func TestAuditKeyOpenToEveryRole(t *testing.T) {
	_, _, svc := testserver.New(t)
	url := newHTTPServer(t, newAPI(t, api.Config{DML: svc}))
	want := svc.Audit.LogVerifierKey() + "\n"
	for _, role := range access.Roles {
		token := testserver.Token(t, svc, "key-reader-"+string(role), role)
		code, _, body := fetch(t, url+"/api/v1/audit/key", token)
		if code != http.StatusOK || string(body) != want {
			t.Errorf("%s: %d %q; want 200 and the key", role, code, body)
		}
	}
	if code, _, _ := fetch(t, url+"/api/v1/audit/key", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d; want 401", code)
	}
}
