package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// registry talks to /v2/ as one principal, the way OCI clients do: Basic
// authentication with any user name and the token as password.
type registry struct {
	t     *testing.T
	base  string
	token string
}

// ociResponse is a response with its body read.
type ociResponse struct {
	*http.Response
	body []byte
}

// errorCode is the first OCI error code of the body, or "".
func (r ociResponse) errorCode() string {
	var eb struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(r.body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

// do sends a request; path is relative to the server ("/v2/...") or a
// Location the server returned. A nil body sends none; headers are
// "Key", "value" pairs.
func (r registry) do(method, path string, body io.Reader, headers ...string) ociResponse {
	r.t.Helper()
	req, err := http.NewRequest(method, r.base+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	if r.token != "" {
		req.SetBasicAuth("anyone", r.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return ociResponse{resp, data}
}

// expect fails the test unless the response has the status (and, when
// code is set, the OCI error code).
func (r registry) expect(resp ociResponse, status int, code string) {
	r.t.Helper()
	if resp.StatusCode != status || (code != "" && resp.errorCode() != code) {
		r.t.Fatalf("%s %s: %d %s; want %d %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, resp.body, status, code)
	}
}

// pushBlob pushes data whole (POST ?digest=) and returns its descriptor.
func (r registry) pushBlob(repo string, data []byte, mediaType string) ocispec.Descriptor {
	r.t.Helper()
	d := digest.FromBytes(data)
	resp := r.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), bytes.NewReader(data))
	r.expect(resp, http.StatusCreated, "")
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// pushManifest PUTs a manifest and returns the response.
func (r registry) pushManifest(repo, ref string, mediaType string, body []byte) ociResponse {
	r.t.Helper()
	return r.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body), "Content-Type", mediaType)
}

// image is a small OCI image: a config, one layer and the manifest.
type image struct {
	config, layer ocispec.Descriptor
	manifest      []byte
	desc          ocispec.Descriptor
}

// pushImage pushes the blobs of a new image (content makes it unique) and
// builds its manifest, with subject and artifactType when given; the
// manifest itself is not pushed.
func (r registry) pushImage(repo, content string, subject *ocispec.Descriptor, artifactType string) image {
	r.t.Helper()
	var img image
	img.config = r.pushBlob(repo, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), ocispec.MediaTypeImageConfig)
	img.layer = r.pushBlob(repo, []byte("layer of "+content), ocispec.MediaTypeImageLayer)
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       img.config,
		Layers:       []ocispec.Descriptor{img.layer},
		Subject:      subject,
		Annotations:  map[string]string{"org.example.content": content},
	}
	img.manifest = mustJSON(r.t, m)
	img.desc = ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(img.manifest), Size: int64(len(img.manifest))}
	return img
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// header returns a response header, failing when it is missing.
func header(t *testing.T, resp ociResponse, key string) string {
	t.Helper()
	v := resp.Header.Get(key)
	if v == "" {
		t.Fatalf("%s %s: no %s header (headers %v)", resp.Request.Method, resp.Request.URL.Path, key, resp.Header)
	}
	return strings.TrimSpace(v)
}
