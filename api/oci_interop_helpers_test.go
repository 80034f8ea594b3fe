package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	orascontent "oras.land/oras-go/v2/content"
	orasremote "oras.land/oras-go/v2/registry/remote"
	orasauth "oras.land/oras-go/v2/registry/remote/auth"
)

// cosignOCIFixture reads testdata/cosign-oci: an image, and the signature
// and attestation referrers the real cosign v2.6.2 pushed for it.
func cosignOCIFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "cosign-oci", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cosignImageDigest is the digest of cosign-oci/image-manifest.json, the
// image the fixtures sign.
const cosignImageDigest = digest.Digest("sha256:83821f6877f98621c3eb3add77bfd52de7267ef4ba0b8454fa3d641e6da9e2bc")

// Media types of the referrers cosign pushes (pkg/oci/remote/write.go):
// WriteReferrer puts an empty config whose descriptor carries the
// artifactType, and the artifactType again at the top.
const (
	artifactTypeInToto = "application/vnd.in-toto+json"
	mediaTypeEmptyJSON = "application/vnd.oci.empty.v1+json"
)

// host is the registry host of a test server URL ("127.0.0.1:PORT").
func host(serverURL string) string { return strings.TrimPrefix(serverURL, "http://") }

// orasRepository is an oras-go client for one repository, logged in the
// way `oras login -u … -p TOKEN` does: Basic, any user, the token as
// password, sent after the server's challenge.
func orasRepository(t *testing.T, serverURL, repo, token string) *orasremote.Repository {
	t.Helper()
	r, err := orasremote.NewRepository(host(serverURL) + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	r.Client = &orasauth.Client{
		Client:     http.DefaultClient,
		Cache:      orasauth.NewCache(),
		Credential: orasauth.StaticCredential(host(serverURL), orasauth.Credential{Username: "ci", Password: token}),
	}
	return r
}

// orasPush pushes data (a blob or a manifest, by media type) with oras-go.
func orasPush(t *testing.T, r *orasremote.Repository, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	desc := orascontent.NewDescriptorFromBytes(mediaType, data)
	if err := r.Push(t.Context(), desc, bytes.NewReader(data)); err != nil {
		t.Fatalf("oras push %s %s: %v", mediaType, desc.Digest, err)
	}
	return desc
}

// orasReferrers lists the referrers of subject with oras-go's Referrers
// API, filtered by artifactType when it is set.
func orasReferrers(t *testing.T, r *orasremote.Repository, subject ocispec.Descriptor, artifactType string) []ocispec.Descriptor {
	t.Helper()
	var all []ocispec.Descriptor
	err := r.Referrers(t.Context(), subject, artifactType, func(page []ocispec.Descriptor) error {
		all = append(all, page...)
		return nil
	})
	if err != nil {
		t.Fatalf("oras referrers of %s: %v", subject.Digest, err)
	}
	return all
}

// pushCosignImage pushes the fixture image with oras-go under tag and
// returns its descriptor.
func pushCosignImage(t *testing.T, r *orasremote.Repository, tag string) ocispec.Descriptor {
	t.Helper()
	orasPush(t, r, ocispec.MediaTypeImageConfig, cosignOCIFixture(t, "image-config.json"))
	orasPush(t, r, ocispec.MediaTypeImageLayer, cosignOCIFixture(t, "image-layer.tar"))
	manifest := cosignOCIFixture(t, "image-manifest.json")
	desc := orascontent.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, manifest)
	if err := r.PushReference(t.Context(), desc, bytes.NewReader(manifest), tag); err != nil {
		t.Fatalf("oras push image: %v", err)
	}
	return desc
}

// pushRealCosignSignature pushes, with oras-go, the signature referrer the
// real `cosign sign --key cosign.key --registry-referrers-mode=oci-1-1`
// pushed for the fixture image, byte for byte.
func pushRealCosignSignature(t *testing.T, r *orasremote.Repository) ocispec.Descriptor {
	t.Helper()
	orasPush(t, r, signing.CosignSignatureArtifactType, cosignOCIFixture(t, "signature-config.json"))
	orasPush(t, r, signing.CosignSimpleSigningMediaType, cosignOCIFixture(t, "signature-payload.json"))
	return orasPush(t, r, ocispec.MediaTypeImageManifest, cosignOCIFixture(t, "signature-manifest.json"))
}

// pushCosignSignature pushes a signature referrer laid out as cosign's
// WriteSignaturesExperimentalOCI lays it out — an image config whose
// media type is cosign's signature artifact type, one simple-signing
// layer with the signature annotation, the subject — over payload, signed
// by sv.
func pushCosignSignature(t *testing.T, r *orasremote.Repository, sv signature.Signer, subject ocispec.Descriptor, payload []byte) ocispec.Descriptor {
	t.Helper()
	sig, err := signing.SignBlobCosign(sv, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	layer := orasPush(t, r, signing.CosignSimpleSigningMediaType, payload)
	layer.Annotations = map[string]string{signing.CosignSignatureAnnotation: sig}
	config := orasPush(t, r, signing.CosignSignatureArtifactType, mustJSON(t, map[string]any{
		"architecture": "", "os": "", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{layer.Digest}},
	}))
	subject = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	return orasPush(t, r, ocispec.MediaTypeImageManifest, mustJSON(t, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
		Subject:   &subject,
	}))
}

// pushCosignAttestation pushes a test-result DSSE attestation about
// subject, signed by sv, laid out as cosign's WriteAttestationsReferrer
// (WriteReferrer) lays it out: artifactType application/vnd.in-toto+json,
// the empty config "{}", one DSSE layer, the subject and a creation time.
func pushCosignAttestation(t *testing.T, r *orasremote.Repository, sv signature.Signer, subject ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	env, err := signing.AttestBlob(sv, r.Reference.Registry+"/"+r.Reference.Repository, subject.Digest, predicateTestResult, fixture(t, "test-result-passed.json"))
	if err != nil {
		t.Fatal(err)
	}
	layer := orasPush(t, r, signing.CosignDSSEMediaType, env)
	config := orasPush(t, r, mediaTypeEmptyJSON, []byte("{}"))
	config.ArtifactType = artifactTypeInToto
	subject = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	return orasPush(t, r, ocispec.MediaTypeImageManifest, mustJSON(t, ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactTypeInToto,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &subject,
		Annotations:  map[string]string{ocispec.AnnotationCreated: "2026-11-25T19:06:24Z"},
	}))
}

// evidenceView is one piece of evidence as GET …/evidence lists it.
type evidenceView struct {
	Kind          string `json:"kind"`
	Format        string `json:"format"`
	KeyID         string `json:"keyId"`
	PredicateType string `json:"predicateType"`
}

// listEvidence lists an artifact version's evidence through the REST API.
func listEvidence(t *testing.T, url, token, name, version string) []evidenceView {
	t.Helper()
	var list struct {
		Evidence []evidenceView `json:"evidence"`
	}
	if code := apiCall(t, http.MethodGet, url+"/api/v1/artifacts/"+name+"/versions/"+version+"/evidence", token, nil, &list); code != http.StatusOK {
		t.Fatalf("list evidence of %s:%s: %d", name, version, code)
	}
	return list.Evidence
}

// serverKey fetches the server's public key, which signs receipts.
func serverKey(t *testing.T, url, token string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url+"/api/v1/keys/server", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("server key: %s", resp.Status)
	}
	return buf.Bytes()
}

// receiptEvidence is the number of evidence digests an admission receipt
// names.
func receiptEvidence(t *testing.T, pubPEM, receipt []byte, subject digest.Digest) int {
	t.Helper()
	st, err := signing.VerifyReceipt(pubPEM, receipt, subject)
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	var pred struct {
		Evidence []string `json:"evidence"`
	}
	if err := json.Unmarshal(st.Predicate, &pred); err != nil {
		t.Fatal(err)
	}
	return len(pred.Evidence)
}

// requestRecorder is an http.RoundTripper that remembers what a client
// asked and what it was answered.
type requestRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	method, path, query string
	status              int
}

func (r *requestRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, recordedRequest{req.Method, req.URL.Path, req.URL.RawQuery, resp.StatusCode})
	return resp, nil
}

func (r *requestRecorder) requests() []recordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}
