package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
)

// storedObjects counts the blob store's blobs and staging objects.
func storedObjects(t *testing.T, svc *releases.DML) (blobs, staging int) {
	t.Helper()
	st := svc.Blobs.Store()
	ctx := context.Background()
	if err := st.ListBlobs(ctx, func(store.StoredBlob) error { blobs++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := st.ListStaging(ctx, func(store.StagingObject) error { staging++; return nil }); err != nil {
		t.Fatal(err)
	}
	return blobs, staging
}

// pushREST PUTs body as name:version; chunked sends it without a length.
func pushREST(t *testing.T, base, token, name, version string, body []byte, chunked bool) (int, wire.ErrorBody) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(bytes.NewReader(body)) // not a *bytes.Reader: no length
	}
	req, err := http.NewRequest(http.MethodPut, base+"/api/v1/artifacts/"+name+"/versions/"+version, r)
	if err != nil {
		t.Fatal(err)
	}
	if chunked {
		req.ContentLength = -1
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb wire.ErrorBody
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(data, &eb); err != nil {
			t.Fatalf("error body %q: %v", data, err)
		}
	}
	return resp.StatusCode, eb
}

func quotaDetailOf(t *testing.T, eb wire.ErrorBody) wire.QuotaExceeded {
	t.Helper()
	if len(eb.Errors) != 1 || eb.Errors[0].Code != "QUOTA_EXCEEDED" && eb.Errors[0].Code != "DENIED" {
		t.Fatalf("error body %+v, want one QUOTA_EXCEEDED (DENIED under /v2/)", eb)
	}
	var d wire.QuotaExceeded
	if err := json.Unmarshal(eb.Errors[0].Detail, &d); err != nil {
		t.Fatalf("detail %s: %v", eb.Errors[0].Detail, err)
	}
	return d
}

func setQuota(t *testing.T, base, admin, prefix string, maxBytes, maxArtifacts int64) {
	t.Helper()
	body := mustJSON(t, wire.Quota{MaxBytes: maxBytes, MaxArtifacts: maxArtifacts})
	var q wire.Quota
	if code := apiCall(t, http.MethodPut, base+"/api/v1/quotas/"+prefix, admin, body, &q); code != http.StatusOK {
		t.Fatalf("PUT quota %s: %d", prefix, code)
	}
}

// TestQuotaExceededREST: a push past a quota is refused with 403
// QUOTA_EXCEEDED, whether it declares its length (refused before a byte is
// read) or not (cut off at the budget), and leaves nothing in the store.
func TestQuotaExceededREST(t *testing.T) {
	srv, admin, svc := testserver.New(t)
	pub := testserver.Token(t, svc, "pipeline", access.RolePublisher)
	setQuota(t, srv.URL, admin, "team/", 100, 2)

	if code, eb := pushREST(t, srv.URL, pub, "team/app", "1", bytes.Repeat([]byte("a"), 60), false); code != http.StatusCreated {
		t.Fatalf("first push: %d %+v", code, eb)
	}
	blobs0, staging0 := storedObjects(t, svc)

	for _, tc := range []struct {
		name      string
		chunked   bool
		requested int64
	}{{"declared length", false, 60}, {"undeclared length", true, -1}} {
		t.Run(tc.name, func(t *testing.T) {
			code, eb := pushREST(t, srv.URL, pub, "team/app", "2", bytes.Repeat([]byte("b"), 60), tc.chunked)
			if code != http.StatusForbidden {
				t.Fatalf("push past maxBytes: %d %+v, want 403", code, eb)
			}
			want := wire.QuotaExceeded{Prefix: "team/", Limit: "bytes", Max: 100, Used: 60, Requested: tc.requested}
			if got := quotaDetailOf(t, eb); got != want || eb.Errors[0].Code != "QUOTA_EXCEEDED" {
				t.Errorf("detail %+v (%s), want %+v", got, eb.Errors[0].Code, want)
			}
			if b, s := storedObjects(t, svc); b != blobs0 || s != staging0 {
				t.Errorf("after the refusal the store holds %d blobs, %d staging objects; want %d, %d", b, s, blobs0, staging0)
			}
		})
	}
	// Within the bytes, the count decides.
	if code, eb := pushREST(t, srv.URL, pub, "team/app", "2", bytes.Repeat([]byte("c"), 40), true); code != http.StatusCreated {
		t.Fatalf("push of exactly the budget left, undeclared: %d %+v", code, eb)
	}
	code, eb := pushREST(t, srv.URL, pub, "team/lib", "1", nil, false)
	if want := (wire.QuotaExceeded{Prefix: "team/", Limit: "artifacts", Max: 2, Used: 2, Requested: 1}); code != http.StatusForbidden || quotaDetailOf(t, eb) != want {
		t.Fatalf("push past maxArtifacts: %d %+v, want 403 %+v", code, eb, want)
	}
	// Other prefixes are not limited; re-pushing a version is no new one.
	if code, eb := pushREST(t, srv.URL, pub, "other/app", "1", bytes.Repeat([]byte("d"), 500), false); code != http.StatusCreated {
		t.Fatalf("push elsewhere: %d %+v", code, eb)
	}
	if code, eb := pushREST(t, srv.URL, pub, "team/app", "1", bytes.Repeat([]byte("a"), 60), false); code != http.StatusOK {
		t.Fatalf("re-push of a stored version: %d %+v, want 200", code, eb)
	}
	var q wire.Quota
	if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/quotas/team/", admin, nil, &q); code != http.StatusOK || q.UsedBytes != 100 || q.UsedArtifacts != 2 {
		t.Errorf("GET quota: %d %+v, want 100 bytes and 2 artifacts used", code, q)
	}
}

// TestQuotaExceededOCI: the registry refuses blobs (whole, chunked with
// and without lengths) and new tags past a quota, storing nothing.
func TestQuotaExceededOCI(t *testing.T) {
	srv, admin, svc := testserver.New(t)
	pub := testserver.Token(t, svc, "pipeline", access.RolePublisher)
	reg := registry{t: t, base: srv.URL, token: pub}
	img := reg.pushImage("team/app", "one", nil, "")
	reg.expect(reg.pushManifest("team/app", "v1", img.desc.MediaType, img.manifest), http.StatusCreated, "")
	var q wire.Quota
	setQuota(t, srv.URL, admin, "team/", 0, 0+1)
	apiCall(t, http.MethodGet, srv.URL+"/api/v1/quotas/team/", admin, nil, &q)
	used := q.UsedBytes
	setQuota(t, srv.URL, admin, "team/", used+100, 1)
	blobs0, staging0 := storedObjects(t, svc)
	checkNothingStored := func(t *testing.T) {
		t.Helper()
		if b, s := storedObjects(t, svc); b != blobs0 || s != staging0 {
			t.Errorf("after the refusal the store holds %d blobs, %d staging objects; want %d, %d", b, s, blobs0, staging0)
		}
	}
	big := bytes.Repeat([]byte("x"), 150)
	refused := func(t *testing.T, resp ociResponse, limit string, requested int64) {
		t.Helper()
		reg.expect(resp, http.StatusForbidden, "DENIED")
		var eb wire.ErrorBody
		if err := json.Unmarshal(resp.body, &eb); err != nil {
			t.Fatal(err)
		}
		d := quotaDetailOf(t, eb)
		if d.Prefix != "team/" || d.Limit != limit || d.Requested != requested {
			t.Errorf("detail %+v, want prefix team/, limit %s, requested %d", d, limit, requested)
		}
		if !strings.Contains(eb.Errors[0].Message, "quota") {
			t.Errorf("message %q does not say quota", eb.Errors[0].Message)
		}
		checkNothingStored(t)
	}

	t.Run("monolithic", func(t *testing.T) {
		resp := reg.do(http.MethodPost, "/v2/team/app/blobs/uploads/?digest="+digest.FromBytes(big).String(), bytes.NewReader(big))
		refused(t, resp, "bytes", 150)
	})
	t.Run("chunk with a length", func(t *testing.T) {
		up := reg.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil)
		reg.expect(up, http.StatusAccepted, "")
		resp := reg.do(http.MethodPatch, header(t, up, "Location"), bytes.NewReader(big), "Content-Type", "application/octet-stream")
		refused(t, resp, "bytes", 150)
	})
	t.Run("chunk without a length", func(t *testing.T) {
		up := reg.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil)
		reg.expect(up, http.StatusAccepted, "")
		resp := reg.do(http.MethodPatch, header(t, up, "Location"), io.MultiReader(bytes.NewReader(big)), "Content-Type", "application/octet-stream")
		refused(t, resp, "bytes", -1)
	})
	t.Run("last chunk", func(t *testing.T) {
		up := reg.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil)
		reg.expect(up, http.StatusAccepted, "")
		loc := header(t, up, "Location")
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		resp := reg.do(http.MethodPut, loc+sep+"digest="+digest.FromBytes(big).String(), bytes.NewReader(big), "Content-Type", "application/octet-stream")
		refused(t, resp, "bytes", 150)
	})
	t.Run("new tag", func(t *testing.T) {
		resp := reg.pushManifest("team/app", "v2", img.desc.MediaType, img.manifest)
		refused(t, resp, "artifacts", 1)
		// Moving an existing tag is no new version.
		reg.expect(reg.pushManifest("team/app", "v1", img.desc.MediaType, img.manifest), http.StatusCreated, "")
	})
}

// TestQuotaConcurrentPushes: pushes racing for the last versions of a
// quota: exactly as many pass as fit, whatever the interleaving (the
// transaction that records a version checks the quota again).
func TestQuotaConcurrentPushes(t *testing.T) {
	srv, admin, svc := testserver.New(t)
	pub := testserver.Token(t, svc, "pipeline", access.RolePublisher)
	const rounds, pushers, limit = 3, 8, 3
	for round := range rounds {
		prefix := fmt.Sprintf("race%d/", round)
		setQuota(t, srv.URL, admin, prefix, 0, limit)
		codes := make([]int, pushers)
		var wg sync.WaitGroup
		for i := range pushers {
			wg.Go(func() {
				codes[i], _ = pushREST(t, srv.URL, pub, prefix+"app", fmt.Sprint(i), []byte(fmt.Sprintf("round %d push %d", round, i)), false)
			})
		}
		wg.Wait()
		created, refused := 0, 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusForbidden:
				refused++
			}
		}
		var q wire.Quota
		apiCall(t, http.MethodGet, srv.URL+"/api/v1/quotas/"+prefix, admin, nil, &q)
		if created != limit || refused != pushers-limit || q.UsedArtifacts != limit {
			t.Fatalf("round %d: %d created, %d refused (%v), %d recorded; want %d, %d, %d", round, created, refused, codes, q.UsedArtifacts, limit, pushers-limit, limit)
		}
	}
}

// TestQuotaConcurrentTags: OCI tags racing for the last versions of a
// quota: the transaction that creates a tag checks the quota again.
func TestQuotaConcurrentTags(t *testing.T) {
	srv, admin, svc := testserver.New(t)
	pub := testserver.Token(t, svc, "pipeline", access.RolePublisher)
	reg := registry{t: t, base: srv.URL, token: pub}
	const rounds, pushers, limit = 3, 8, 3
	for round := range rounds {
		repo := fmt.Sprintf("tags%d/app", round)
		img := reg.pushImage(repo, fmt.Sprint("round ", round), nil, "")
		setQuota(t, srv.URL, admin, repo, 0, limit)
		codes := make([]int, pushers)
		var wg sync.WaitGroup
		for i := range pushers {
			wg.Go(func() {
				req, err := http.NewRequest(http.MethodPut, srv.URL+"/v2/"+repo+"/manifests/v"+fmt.Sprint(i), bytes.NewReader(img.manifest))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Content-Type", img.desc.MediaType)
				req.SetBasicAuth("anyone", pub)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			})
		}
		wg.Wait()
		created := 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusForbidden:
			default:
				t.Fatalf("round %d: tag push answered %d (%v)", round, c, codes)
			}
		}
		var q wire.Quota
		apiCall(t, http.MethodGet, srv.URL+"/api/v1/quotas/"+repo, admin, nil, &q)
		if created != limit || q.UsedArtifacts != limit {
			t.Fatalf("round %d: %d tags created (%v), %d recorded; want %d", round, created, codes, q.UsedArtifacts, limit)
		}
	}
}
