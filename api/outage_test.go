package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/store/s3"
	"github.com/dmlproject/dml/store/s3/s3test"
	"github.com/dmlproject/dml/store/storetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
)

// outageEnv is a server whose blobs live in a private S3 server that the
// test stops and starts again.
type outageEnv struct {
	t         *testing.T
	gw        *s3test.Gateway
	bucket    string
	url       string
	publisher string
	pub       registry
	svc       *releases.DML
	mc        *minio.Client
}

func newOutageEnv(t *testing.T) *outageEnv {
	t.Helper()
	gw := s3test.StartGateway(t)
	cfg := gw.Config()
	cfg.PartSize = s3.MinPartSize // multipart uploads from 5 MiB on
	b, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, _, svc := testserver.New(t, testserver.WithBackend(b))
	mc, err := minio.New(gw.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(gw.AccessKey, gw.SecretKey, ""), BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	token := testserver.Token(t, svc, "pipeline", access.RolePublisher)
	return &outageEnv{
		t: t, gw: gw, bucket: cfg.Bucket, url: srv.URL, publisher: token,
		pub: registry{t: t, base: srv.URL, token: token}, svc: svc, mc: mc,
	}
}

// client bounds every request of these tests: a server that waited on the
// dead S3 server without end would otherwise hang the test instead of
// failing it. It is a guard against hanging, not a measure of speed.
var client = &http.Client{Timeout: 2 * time.Minute}

// rawResponse is a response with its body read as far as it goes (a
// response cut short after its headers keeps what arrived).
type rawResponse struct {
	status  int
	header  http.Header
	body    []byte
	readErr error
}

func (e *outageEnv) do(method, path, token string, body []byte, headers ...string) rawResponse {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(resp.Body)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: data, readErr: rerr}
}

// expectUnavailable checks a 503 STORAGE_UNAVAILABLE in the error shape,
// with Retry-After, and that the answer names neither the S3 endpoint nor
// the bucket.
func (e *outageEnv) expectUnavailable(what string, r rawResponse) {
	e.t.Helper()
	var eb errorView
	if r.status != http.StatusServiceUnavailable || json.Unmarshal(r.body, &eb) != nil || len(eb.Errors) == 0 || eb.Errors[0].Code != "STORAGE_UNAVAILABLE" {
		e.t.Errorf("%s with S3 down: %d %q (read error %v); want 503 STORAGE_UNAVAILABLE", what, r.status, r.body, r.readErr)
		return
	}
	if r.header.Get("Retry-After") == "" {
		e.t.Errorf("%s with S3 down: 503 without Retry-After", what)
	}
	e.expectNoAddress(what, r.body)
}

func (e *outageEnv) expectNoAddress(what string, body []byte) {
	e.t.Helper()
	_, port, _ := net.SplitHostPort(e.gw.Endpoint)
	for _, secret := range []string{e.gw.Endpoint, ":" + port, e.bucket} {
		if bytes.Contains(body, []byte(secret)) {
			e.t.Errorf("%s: the answer names %q: %s", what, secret, body)
		}
	}
}

// blobObjects re-hashes every object under blobs/ in the bucket and
// returns their digests; an object that does not hash to its key fails
// the test.
func (e *outageEnv) blobObjects() map[digest.Digest]bool {
	e.t.Helper()
	ctx := context.Background()
	out := map[digest.Digest]bool{}
	for oi := range e.mc.ListObjects(ctx, e.bucket, minio.ListObjectsOptions{Prefix: "blobs/", Recursive: true}) {
		if oi.Err != nil {
			e.t.Fatal(oi.Err)
		}
		parts := strings.Split(oi.Key, "/") // blobs/ALG/xx/ENCODED
		want := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[len(parts)-1])
		obj, err := e.mc.GetObject(ctx, e.bucket, oi.Key, minio.GetObjectOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		got, _ := storetest.ReadDigest(e.t, want.Algorithm(), obj)
		obj.Close()
		if got != want {
			e.t.Errorf("object %s holds bytes that hash to %s", oi.Key, got)
		}
		out[want] = true
	}
	return out
}

// TestS3Outage (finding 7): with the S3 server stopped, pulls and pushes
// over REST and /v2/ answer 503 STORAGE_UNAVAILABLE with Retry-After
// before any header of a success, /readyz says the blob store is down
// without naming it, and once the server is back the same requests
// succeed.
func TestS3Outage(t *testing.T) {
	e := newOutageEnv(t)
	const repo = "apps/outage"
	stored := bytes.Repeat([]byte("stored before the outage\n"), 4000)
	if r := e.do(http.MethodPut, "/api/v1/artifacts/outage/app/versions/1.0", e.publisher, stored); r.status != http.StatusCreated {
		t.Fatalf("push before the outage: %d %s", r.status, r.body)
	}
	layer := e.pub.pushBlob(repo, stored, "application/octet-stream")
	newBytes := bytes.Repeat([]byte("pushed during the outage\n"), 4000)
	newDigest := digest.FromBytes(newBytes)

	e.gw.Stop()

	e.expectUnavailable("REST pull", e.do(http.MethodGet, "/api/v1/artifacts/outage/app/versions/1.0/content", e.publisher, nil))
	e.expectUnavailable("REST range pull", e.do(http.MethodGet, "/api/v1/artifacts/outage/app/versions/1.0/content", e.publisher, nil, "Range", "bytes=10-20"))
	e.expectUnavailable("/v2/ blob pull", e.do(http.MethodGet, "/v2/"+repo+"/blobs/"+layer.Digest.String(), e.publisher, nil))
	if r := e.do(http.MethodHead, "/v2/"+repo+"/blobs/"+layer.Digest.String(), e.publisher, nil); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("/v2/ blob HEAD with S3 down: %d, Retry-After %q; want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}

	h := sha256.Sum256(newBytes)
	sum := hex.EncodeToString(h[:])
	e.expectUnavailable("REST push", e.do(http.MethodPut, "/api/v1/artifacts/outage/app/versions/2.0", e.publisher, newBytes))
	e.expectUnavailable("REST push with checksum", e.do(http.MethodPut, "/api/v1/artifacts/outage/app/versions/2.0", e.publisher, newBytes, "X-Checksum-Sha256", sum))
	e.expectUnavailable("/v2/ monolithic push", e.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+newDigest.String(), e.publisher, newBytes))
	start := e.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", e.publisher, nil)
	if start.status != http.StatusAccepted {
		t.Fatalf("starting an upload (no blob store needed): %d %s", start.status, start.body)
	}
	loc := strings.TrimPrefix(start.header.Get("Location"), e.url)
	e.expectUnavailable("/v2/ chunk", e.do(http.MethodPatch, loc, e.publisher, newBytes, "Content-Range", fmt.Sprintf("0-%d", len(newBytes)-1)))

	ready := e.do(http.MethodGet, "/readyz", "", nil)
	var rb errorView
	if ready.status != http.StatusServiceUnavailable || json.Unmarshal(ready.body, &rb) != nil || len(rb.Errors) == 0 {
		t.Errorf("/readyz with S3 down: %d %s; want 503 in the error shape", ready.status, ready.body)
	} else if d := rb.Errors[0].Detail; d["blobStore"] != "unavailable" || d["database"] != "ok" {
		t.Errorf("/readyz with S3 down names %v; want blobStore unavailable, database ok", d)
	}
	e.expectNoAddress("/readyz", ready.body)

	e.gw.Start()

	// Nothing from the failed requests is visible.
	if r := e.do(http.MethodGet, "/api/v1/artifacts/outage/app/versions/2.0", e.publisher, nil); r.status != http.StatusNotFound {
		t.Errorf("the version pushed during the outage: %d %s; want 404", r.status, r.body)
	}
	if objs := e.blobObjects(); objs[newDigest] {
		t.Errorf("the blob pushed during the outage is in the bucket")
	}

	// The same requests succeed now.
	if r := e.do(http.MethodGet, "/readyz", "", nil); r.status != http.StatusOK {
		t.Errorf("/readyz after the restart: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodGet, "/api/v1/artifacts/outage/app/versions/1.0/content", e.publisher, nil); r.status != http.StatusOK || !bytes.Equal(r.body, stored) {
		t.Errorf("REST pull after the restart: %d, %d bytes (read error %v)", r.status, len(r.body), r.readErr)
	}
	if r := e.do(http.MethodGet, "/v2/"+repo+"/blobs/"+layer.Digest.String(), e.publisher, nil); r.status != http.StatusOK || !bytes.Equal(r.body, stored) {
		t.Errorf("/v2/ pull after the restart: %d, %d bytes (read error %v)", r.status, len(r.body), r.readErr)
	}
	if r := e.do(http.MethodPatch, loc, e.publisher, newBytes, "Content-Range", fmt.Sprintf("0-%d", len(newBytes)-1)); r.status != http.StatusAccepted {
		t.Errorf("/v2/ chunk retried: %d %s", r.status, r.body)
	} else if r := e.do(http.MethodPut, loc+"?digest="+newDigest.String(), e.publisher, nil); r.status != http.StatusCreated {
		t.Errorf("/v2/ upload completed: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPut, "/api/v1/artifacts/outage/app/versions/2.0", e.publisher, newBytes, "X-Checksum-Sha256", sum); r.status != http.StatusCreated {
		t.Errorf("REST push retried: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodGet, "/api/v1/artifacts/outage/app/versions/2.0/content", e.publisher, nil); r.status != http.StatusOK || !bytes.Equal(r.body, newBytes) {
		t.Errorf("REST pull of the retried push: %d, %d bytes", r.status, len(r.body))
	}
	e.blobObjects()
}

// TestS3StoppedMidUpload (item 13): the S3 server dies while a multipart
// upload is under way. The push fails cleanly with 503, nothing of it is
// visible once the server is back, and a retry succeeds.
func TestS3StoppedMidUpload(t *testing.T) {
	for _, withChecksum := range []bool{true, false} {
		t.Run(fmt.Sprintf("checksum=%v", withChecksum), func(t *testing.T) {
			e := newOutageEnv(t)
			const size, before = 24 << 20, 12 << 20 // parts of 5 MiB: two are up when S3 dies
			path := "/api/v1/artifacts/outage/big/versions/1.0"
			want := storetest.BodyDigest(digest.SHA256, 9, size)
			headers := "Authorization: Bearer " + e.publisher + "\r\n"
			if withChecksum {
				headers += "X-Checksum-Sha256: " + want.Encoded() + "\r\n"
			}

			conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(2 * time.Minute)) // a hang guard, not a measure
			body := storetest.Body(9, size)
			if _, err := fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: dml\r\n%sContent-Length: %d\r\n\r\n", path, headers, size); err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(conn, body, before); err != nil {
				t.Fatalf("sending the first %d bytes: %v", before, err)
			}
			e.waitForMultipart()
			e.gw.Stop()
			go func() { _, _ = io.Copy(conn, body) }() // fails once the server gives up; that is expected
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to the push cut by the outage: %v", err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			e.expectUnavailable("push cut by the outage", rawResponse{status: resp.StatusCode, header: resp.Header, body: data})

			e.gw.Start()
			if r := e.do(http.MethodGet, path, e.publisher, nil); r.status != http.StatusNotFound {
				t.Errorf("the version whose push was cut: %d %s; want 404", r.status, r.body)
			}
			if e.blobObjects()[want] {
				t.Errorf("the blob whose push was cut is in the bucket")
			}
			req, err := http.NewRequest(http.MethodPut, e.url+path, storetest.Body(9, size))
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = size
			req.Header.Set("Authorization", "Bearer "+e.publisher)
			retry, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			retry.Body.Close()
			if retry.StatusCode != http.StatusCreated {
				t.Fatalf("retried push: %s", retry.Status)
			}
			if !e.blobObjects()[want] {
				t.Errorf("the retried push is not in the bucket")
			}
			req, _ = http.NewRequest(http.MethodGet, e.url+path+"/content", nil)
			req.Header.Set("Authorization", "Bearer "+e.publisher)
			pull, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer pull.Body.Close()
			if got, n := storetest.ReadDigest(t, digest.SHA256, pull.Body); got != want || n != size {
				t.Errorf("pulled %d bytes hashing to %s; want %d of %s", n, got, size, want)
			}
		})
	}
}

// waitForMultipart waits (bounded) until a multipart upload is under way
// in the bucket.
func (e *outageEnv) waitForMultipart() {
	e.t.Helper()
	for range 600 {
		for u := range e.mc.ListIncompleteUploads(context.Background(), e.bucket, "", true) {
			if u.Err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("no multipart upload started; gateway logs:\n%s", e.gw.Logs())
}
