package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/opencontainers/go-digest"
)

// accessCapture keeps the records of the access log's slog stream.
type accessCapture struct {
	mu      sync.Mutex
	records []map[string]string
}

func (h *accessCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *accessCapture) WithGroup(string) slog.Handler            { return h }
func (h *accessCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &withAttrs{h, as}
}
func (h *accessCapture) Handle(_ context.Context, r slog.Record) error { return h.handle(r, nil) }

func (h *accessCapture) handle(r slog.Record, pre []slog.Attr) error {
	m := map[string]string{"msg": r.Message}
	for _, a := range pre {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, m)
	return nil
}

func (h *accessCapture) accessLines() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.records {
		if r["log"] == "access" {
			out = append(out, r)
		}
	}
	return out
}

type withAttrs struct {
	h  *accessCapture
	as []slog.Attr
}

func (w *withAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (w *withAttrs) WithGroup(string) slog.Handler            { return w }
func (w *withAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return &withAttrs{w.h, append(slices.Clone(w.as), as...)}
}
func (w *withAttrs) Handle(_ context.Context, r slog.Record) error { return w.h.handle(r, w.as) }

type accessView struct {
	Seq       int64  `json:"seq"`
	Principal string `json:"principal"`
	TokenID   string `json:"tokenId"`
	Method    string `json:"method"`
	Route     string `json:"route"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	Outcome   string `json:"outcome"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Subject   string `json:"subject"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Digest    string `json:"digest"`
}

type accessPage struct {
	Records    []accessView `json:"records"`
	NextCursor string       `json:"nextCursor"`
}

// accessWorld is a server after the full lifecycle, served by an API
// whose logs are captured, with a quarantined artifact and an OCI image.
type accessWorld struct {
	url, dir string
	svc      *releases.DML
	lc       testserver.Lifecycle
	logs     *accessCapture
	layer    digest.Digest
	manifest digest.Digest
}

func newAccessWorld(t *testing.T) *accessWorld {
	t.Helper()
	dir := t.TempDir()
	ts, err := testserver.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	w := &accessWorld{dir: dir, svc: ts.DML, logs: &accessCapture{}}
	w.lc = testserver.FullLifecycle(t, ts.DML)
	w.lc.Tokens["admin"] = ts.AdminToken
	srv := httptest.NewServer(newAPI(t, api.Config{DML: ts.DML, Logger: slog.New(w.logs)}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	// A quarantined artifact (the policy wants evidence it lacks).
	if code := apiCall(t, http.MethodPut, w.url+"/api/v1/artifacts/payments/web/versions/1.0", w.lc.Tokens["pipeline"], []byte("web"), nil); code != http.StatusCreated {
		t.Fatalf("push payments/web: %d", code)
	}
	reg := registry{t: t, base: w.url, token: w.lc.Tokens["pipeline"]}
	img := reg.pushImage("team/app", "access", nil, "")
	reg.expect(reg.pushManifest("team/app", "v1", img.desc.MediaType, img.manifest), http.StatusCreated, "")
	w.layer, w.manifest = img.layer.Digest, img.desc.Digest
	return w
}

func (w *accessWorld) query(t *testing.T, q url.Values) accessPage {
	t.Helper()
	var page accessPage
	var ev errorView
	code := apiCall(t, http.MethodGet, w.url+"/api/v1/audit/access?"+q.Encode(), w.lc.Tokens["audit"], nil, &page)
	if code != http.StatusOK {
		apiCall(t, http.MethodGet, w.url+"/api/v1/audit/access?"+q.Encode(), w.lc.Tokens["audit"], nil, &ev)
		t.Fatalf("access log query %v: %d %+v", q, code, ev)
	}
	return page
}

// all follows cursors with the given page size.
func (w *accessWorld) all(t *testing.T, q url.Values, pageSize int) []accessView {
	t.Helper()
	var out []accessView
	q.Set("limit", strconv.Itoa(pageSize))
	for range 1000 {
		page := w.query(t, q)
		out = append(out, page.Records...)
		if page.NextCursor == "" {
			return out
		}
		q.Set("cursor", page.NextCursor)
	}
	t.Fatal("the access log's cursors do not end")
	return nil
}

func (w *accessWorld) get(t *testing.T, method, path, token string, headers ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, w.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func (w *accessWorld) auditSize(t *testing.T) int64 {
	t.Helper()
	size, _ := logSize(t, w.url, w.lc.Tokens["audit"])
	return size
}

// TestAccessLogRecords: refusals (401, 403, 409) and downloads (REST
// content and ranges, evidence, /v2/ blobs and manifests, the release
// manifest) are recorded with principal, route, artifact and outcome, in
// the slog stream (log=access) and in the database; HEADs, listings and
// successful changes are not; none of it enters the audit log.
func TestAccessLogRecords(t *testing.T) {
	w := newAccessWorld(t)
	tok := w.lc.Tokens
	const content = "/api/v1/artifacts/payments/api/versions/1.4.2/content"
	auditBefore := w.auditSize(t)
	logsBefore := len(w.logs.accessLines())
	before := w.all(t, url.Values{}, 1000)

	ev, err := w.svc.Catalog.ListEvidence(t.Context(), "payments/api", "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := w.svc.Releases.Release(t.Context(), w.lc.Release)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		method, path, token string
		headers             []string
		status              int
		want                accessView // "" fields are not checked; zero want: not recorded
	}{
		{"GET", content, "", nil, 401, accessView{Outcome: "unauthorized", Code: "UNAUTHORIZED", Route: "/api/v1/artifacts/{name}/versions/{version}/content", Subject: "payments/api:1.4.2", Name: "payments/api", Version: "1.4.2"}},
		{"GET", "/api/v1/audit/entries", tok["pipeline"], nil, 403, accessView{Outcome: "denied", Code: "DENIED", Principal: "pipeline", Route: "/api/v1/audit/entries"}},
		{"GET", "/api/v1/artifacts/payments/web/versions/1.0/content", tok["rm"], nil, 403, accessView{Outcome: "denied", Code: "NOT_ADMITTED", Principal: "rm", Subject: "payments/web:1.0"}},
		{"POST", "/api/v1/releases/" + w.lc.Release + "/cancel", tok["rm"], nil, 409, accessView{Outcome: "conflict", Code: "INVALID_STATE", Principal: "rm", Subject: "release:" + w.lc.Release}},
		{"GET", content, tok["cab-1"], nil, 200, accessView{Outcome: "served", Principal: "cab-1", Subject: "payments/api:1.4.2", Digest: rel.Artifacts[0].Digest.String(), Status: 200}},
		{"GET", content, tok["cab-1"], []string{"Range", "bytes=0-9"}, 206, accessView{Outcome: "served", Principal: "cab-1", Status: 206}},
		{"HEAD", content, tok["cab-1"], nil, 200, accessView{}},
		{"GET", "/api/v1/artifacts/payments/api/versions/1.4.2", tok["cab-1"], nil, 200, accessView{}},
		{"GET", "/api/v1/artifacts/payments/api/versions/1.4.2/evidence/" + ev[0].Digest.String(), tok["deploy-prod"], nil, 200, accessView{Outcome: "served", Principal: "deploy-prod", Digest: ev[0].Digest.String(), Route: "/api/v1/artifacts/{name}/versions/{version}/evidence/{digest}"}},
		{"GET", "/api/v1/releases/" + w.lc.Release + "/manifest", tok["deploy-prod"], nil, 200, accessView{Outcome: "served", Subject: "release:" + w.lc.Release, Digest: rel.ManifestDigest.String()}},
		{"GET", "/v2/team/app/blobs/" + w.layer.String(), tok["pipeline"], nil, 200, accessView{Outcome: "served", Principal: "pipeline", Subject: "team/app@" + w.layer.String(), Name: "team/app", Digest: w.layer.String(), Route: "/v2/{name}/blobs/{digest}"}},
		{"GET", "/v2/team/app/manifests/v1", tok["pipeline"], nil, 200, accessView{Outcome: "served", Subject: "team/app:v1", Version: "v1", Digest: w.manifest.String()}},
		{"GET", "/v2/team/app/blobs/" + w.layer.String(), tok["rm"], nil, 403, accessView{Outcome: "denied", Code: "DENIED", Principal: "rm"}},
		{"GET", "/v2/team/app/tags/list", tok["pipeline"], nil, 200, accessView{}},
		// An OCI client's anonymous ping is the auth challenge, not a
		// refusal; with a wrong token it is one.
		{"GET", "/v2/", "", nil, 401, accessView{}},
		{"GET", "/v2/", "dml_wrong", nil, 401, accessView{Outcome: "unauthorized", Route: "/v2/", Message: "unauthorized: unknown token"}},
	}
	var wantRecorded []accessView
	for _, st := range steps {
		code, body := w.get(t, st.method, st.path, st.token, st.headers...)
		if code != st.status {
			t.Fatalf("%s %s: %d %s; want %d", st.method, st.path, code, body, st.status)
		}
		if st.want != (accessView{}) {
			want := st.want
			want.Method, want.Path = st.method, st.path
			wantRecorded = append(wantRecorded, want)
		}
	}

	got := w.all(t, url.Values{}, 1000)[len(before):]
	if len(got) != len(wantRecorded) {
		t.Fatalf("%d new access records; want %d:\n%+v", len(got), len(wantRecorded), got)
	}
	for i, want := range wantRecorded {
		if !matches(got[i], want) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	if lines := w.logs.accessLines()[logsBefore:]; len(lines) != len(wantRecorded) {
		t.Errorf("%d log=access lines; want %d", len(lines), len(wantRecorded))
	} else {
		for i, l := range lines {
			if l["outcome"] != got[i].Outcome || l["path"] != got[i].Path || l["principal"] != got[i].Principal {
				t.Errorf("log line %d = %v; want the record %+v", i, l, got[i])
			}
		}
	}
	if after := w.auditSize(t); after != auditBefore {
		t.Errorf("refusals and downloads changed the audit log: %d → %d records", auditBefore, after)
	}

	t.Run("filters", func(t *testing.T) {
		byPrincipal := w.all(t, url.Values{"principal": {"rm"}}, 2)
		for _, r := range byPrincipal {
			if r.Principal != "rm" {
				t.Errorf("principal=rm returned %+v", r)
			}
		}
		if len(byPrincipal) < 3 {
			t.Errorf("principal=rm: %d records; want at least the 3 above", len(byPrincipal))
		}
		bySubject := w.all(t, url.Values{"subject": {"payments/api"}}, 2)
		if len(bySubject) < 4 {
			t.Errorf("subject=payments/api: %d records; want at least 4", len(bySubject))
		}
		for _, r := range bySubject {
			if r.Name != "payments/api" && r.Subject != "payments/api" {
				t.Errorf("subject=payments/api returned %+v", r)
			}
		}
		exact := w.all(t, url.Values{"subject": {"team/app:v1"}}, 10)
		if len(exact) != 1 || exact[0].Version != "v1" {
			t.Errorf("subject=team/app:v1: %+v", exact)
		}
		future := w.all(t, url.Values{"since": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}, 10)
		if len(future) != 0 {
			t.Errorf("since an hour from now: %+v", future)
		}
		paged, whole := w.all(t, url.Values{}, 3), w.all(t, url.Values{}, 1000)
		if len(paged) != len(whole) || paged[len(paged)-1].Seq != whole[len(whole)-1].Seq {
			t.Errorf("pages of 3: %d records; one page: %d", len(paged), len(whole))
		}
		for _, q := range []string{"since=yesterday", "limit=0", "limit=1001", "cursor=%21%21"} {
			var ev errorView
			if code := apiCall(t, http.MethodGet, w.url+"/api/v1/audit/access?"+q, tok["audit"], nil, &ev); code != http.StatusBadRequest {
				t.Errorf("%s: %d %+v; want 400", q, code, ev)
			}
		}
	})
}

// matches compares the fields want sets.
func matches(got, want accessView) bool {
	eq := func(g, w string) bool { return w == "" || g == w }
	return eq(got.Outcome, want.Outcome) && eq(got.Code, want.Code) && eq(got.Message, want.Message) && eq(got.Principal, want.Principal) &&
		eq(got.Route, want.Route) && eq(got.Subject, want.Subject) && eq(got.Name, want.Name) &&
		eq(got.Version, want.Version) && eq(got.Digest, want.Digest) && eq(got.Method, want.Method) &&
		eq(got.Path, want.Path) && (want.Status == 0 || got.Status == want.Status)
}

// TestAccessLogAbortedDownload: a download cut off after its headers
// (here a blob whose last byte was flipped on disk) is recorded as
// aborted, not served; one refused before any content (a blob cut short,
// 500 BLOB_CORRUPT) is recorded as failed.
func TestAccessLogAbortedDownload(t *testing.T) {
	w := newAccessWorld(t)
	blobFile := func(d digest.Digest) string {
		var found string
		err := filepath.WalkDir(filepath.Join(w.dir, "blobs"), func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && e.Name() == d.Encoded() {
				found = p
			}
			return err
		})
		if err != nil || found == "" {
			t.Fatalf("blob file of %s not found: %v", d, err)
		}
		return found
	}
	download := func(path string) {
		req, _ := http.NewRequest(http.MethodGet, w.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+w.lc.Tokens["pipeline"])
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && rerr == nil {
				t.Fatalf("GET %s: the damaged blob was served whole (%d bytes)", path, len(got))
			}
		}
	}

	// A large blob with its last byte flipped: the headers and most of
	// the body are out when the mismatch shows, so the transfer is cut.
	big := bytes.Repeat([]byte("access-log "), 100_000)
	if code := apiCall(t, http.MethodPut, w.url+"/api/v1/artifacts/payments/big/versions/1.0", w.lc.Tokens["pipeline"], big, nil); code != http.StatusCreated {
		t.Fatalf("push payments/big: %d", code)
	}
	file := blobFile(digest.FromBytes(big))
	flipped := bytes.Clone(big)
	flipped[len(flipped)-1] ^= 0xff
	if err := os.WriteFile(file, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	download("/api/v1/artifacts/payments/big/versions/1.0/content")
	recs := w.all(t, url.Values{"subject": {"payments/big:1.0"}}, 10)
	if len(recs) != 1 || recs[0].Outcome != "aborted" {
		t.Fatalf("records of the cut download: %+v; want one, aborted", recs)
	}

	// A truncated blob is refused before anything is sent (500
	// BLOB_CORRUPT): a failed download, recorded as such.
	data, err := os.ReadFile(blobFile(w.layer))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blobFile(w.layer), data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	download("/v2/team/app/blobs/" + w.layer.String())
	recs = w.all(t, url.Values{"subject": {"team/app@" + w.layer.String()}}, 10)
	if len(recs) != 1 || recs[0].Outcome != "failed" || recs[0].Status != http.StatusInternalServerError {
		t.Fatalf("records of the refused download: %+v; want one, failed with 500", recs)
	}
}

// TestAccessLogEmptyDownload: an empty blob served whole is served, not
// aborted (found by the OCI conformance run: nothing written is not
// fewer bytes than a Content-Length of 0).
func TestAccessLogEmptyDownload(t *testing.T) {
	w := newAccessWorld(t)
	reg := registry{t: t, base: w.url, token: w.lc.Tokens["pipeline"]}
	empty := reg.pushBlob("team/app", nil, "application/octet-stream")
	resp := reg.do(http.MethodGet, "/v2/team/app/blobs/"+empty.Digest.String(), nil)
	reg.expect(resp, http.StatusOK, "")
	recs := w.all(t, url.Values{"subject": {"team/app@" + empty.Digest.String()}}, 10)
	if len(recs) != 1 || recs[0].Outcome != "served" {
		t.Fatalf("records of the empty download: %+v; want one, served", recs)
	}
}

// TestAccessLogRetention: PruneAccessLog drops records older than the
// maximum age, then the oldest beyond the maximum count.
func TestAccessLogRetention(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	srv, admin, svc := testserver.New(t, testserver.WithClock(clock.now))
	for range 3 {
		apiCall(t, http.MethodGet, srv.URL+"/api/v1/whoami", "", nil, nil) // 401, recorded
		clock.add(time.Hour)
	}
	for range 4 {
		apiCall(t, http.MethodGet, srv.URL+"/api/v1/whoami", "", nil, nil)
	}
	count := func() int {
		t.Helper()
		var page accessPage
		if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/audit/access?limit=1000", admin, nil, &page); code != http.StatusOK {
			t.Fatalf("access log: %d", code)
		}
		return len(page.Records)
	}
	if n := count(); n != 7 {
		t.Fatalf("%d records; want 7", n)
	}
	// Ten minutes past the third hour: the first two records are older
	// than 90 minutes.
	clock.add(10 * time.Minute)
	if n, err := svc.Audit.PruneAccessLog(t.Context(), 90*time.Minute, 0); err != nil || n != 2 {
		t.Fatalf("prune by age: %d, %v; want 2", n, err)
	}
	if n, err := svc.Audit.PruneAccessLog(t.Context(), 90*time.Minute, 3); err != nil || n != 2 {
		t.Fatalf("prune to 3 records: %d, %v; want 2", n, err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d records after pruning; want 3", n)
	}
	if _, err := svc.Audit.PruneAccessLog(t.Context(), 0, 0); err == nil {
		t.Error("a zero maximum age was accepted")
	}
}
