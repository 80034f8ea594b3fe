package api_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/signing"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	orascontent "oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	orasregistry "oras.land/oras-go/v2/registry"
	orasremote "oras.land/oras-go/v2/registry/remote"
)

// TestOCIInteropOras: oras-go, as a library, pushes an artifact and an
// artifact with a subject, pulls them back, and lists referrers through
// the referrers API (with and without an artifactType filter).
func TestOCIInteropOras(t *testing.T) {
	srv, _, svc := testserver.New(t)
	token := testserver.Token(t, svc, "pipeline", access.RolePublisher)
	repo := orasRepository(t, srv.URL, "apps/oras", token)
	ctx := t.Context()

	// An artifact as `oras push --artifact-type … file:mediatype` makes it.
	pkg := orasPush(t, repo, "application/gzip", []byte("payments-api package"))
	pkgManifest, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.package", oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{pkg},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2026-11-25T00:00:00Z"},
	})
	if err != nil {
		t.Fatalf("oras pack: %v", err)
	}
	if err := repo.Tag(ctx, pkgManifest, "1.0.0"); err != nil {
		t.Fatalf("oras tag: %v", err)
	}

	// Two artifacts attached to it, as `oras attach` does.
	var attached []ocispec.Descriptor
	for _, at := range []string{"application/vnd.example.sbom", "application/vnd.example.scan"} {
		layer := orasPush(t, repo, "application/json", []byte(`{"about":"`+at+`"}`))
		d, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, at, oras.PackManifestOptions{
			Subject: &pkgManifest, Layers: []ocispec.Descriptor{layer},
			ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2026-11-25T00:00:00Z"},
		})
		if err != nil {
			t.Fatalf("oras attach %s: %v", at, err)
		}
		attached = append(attached, d)
	}

	// Pull the tag and everything it refers to into memory.
	mem := memory.New()
	pulled, err := oras.Copy(ctx, repo, "1.0.0", mem, "1.0.0", oras.DefaultCopyOptions)
	if err != nil {
		t.Fatalf("oras pull: %v", err)
	}
	if pulled.Digest != pkgManifest.Digest {
		t.Fatalf("pulled %s; pushed %s", pulled.Digest, pkgManifest.Digest)
	}
	got, err := orascontent.FetchAll(ctx, mem, pkg)
	if err != nil || string(got) != "payments-api package" {
		t.Fatalf("pulled layer %q, %v", got, err)
	}

	// The referrers API, through oras-go; the server said it supports it
	// (OCI-Subject), so oras made no referrers tag.
	all := orasReferrers(t, repo, pkgManifest, "")
	digests := func(l []ocispec.Descriptor) []digest.Digest {
		out := make([]digest.Digest, len(l))
		for i, d := range l {
			out[i] = d.Digest
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(digests(all), digests(attached)) {
		t.Errorf("referrers %v; want %v", digests(all), digests(attached))
	}
	scans := orasReferrers(t, repo, pkgManifest, "application/vnd.example.scan")
	if len(scans) != 1 || scans[0].Digest != attached[1].Digest || scans[0].ArtifactType != "application/vnd.example.scan" {
		t.Errorf("filtered referrers %+v; want the scan %s", scans, attached[1].Digest)
	}
	// The package-level helper pulls the referrer graph too.
	preds, err := orasregistry.Referrers(ctx, repo, pkgManifest, "application/vnd.example.sbom")
	if err != nil || len(preds) != 1 || preds[0].Digest != attached[0].Digest {
		t.Errorf("registry.Referrers: %+v, %v", preds, err)
	}
	var tags []string
	if err := repo.Tags(ctx, "", func(page []string) error { tags = append(tags, page...); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tags, []string{"1.0.0"}) {
		t.Errorf("tags %q; want only 1.0.0 (no referrers tag)", tags)
	}

	// A referrer pulls like any manifest, by digest.
	rc, err := repo.Fetch(ctx, attached[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil || digest.FromBytes(body) != attached[0].Digest || !bytes.Contains(body, []byte(`"subject"`)) {
		t.Errorf("fetched referrer %s: %v", body, err)
	}
}

// TestOCIInteropCraneCopy: go-containerregistry, as crane copy does it,
// pushes a random image index to one repository and copies it to another;
// the copy has the same digests, and its layers were mounted, not sent again.
func TestOCIInteropCraneCopy(t *testing.T) {
	srv, _, svc := testserver.New(t)
	token := testserver.Token(t, svc, "pipeline", access.RolePublisher)
	opts := []ggcrremote.Option{ggcrremote.WithAuth(&authn.Basic{Username: "ci", Password: token}), ggcrremote.WithContext(t.Context())}
	ref := func(s string) name.Reference {
		t.Helper()
		r, err := name.ParseReference(host(srv.URL)+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	idx, err := random.Index(1024, 2, 3) // 3 images of 2 layers of 1 KiB
	if err != nil {
		t.Fatal(err)
	}
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcrremote.WriteIndex(ref("platform/base:1.0"), idx, opts...); err != nil {
		t.Fatalf("push index: %v", err)
	}

	// crane copy: read the source, write it to the destination.
	rec := &requestRecorder{base: http.DefaultTransport}
	copyOpts := append(slices.Clone(opts), ggcrremote.WithTransport(rec))
	src, err := ggcrremote.Get(ref("platform/base:1.0"), copyOpts...)
	if err != nil {
		t.Fatalf("get source: %v", err)
	}
	srcIdx, err := src.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcrremote.WriteIndex(ref("mirror/base:1.0"), srcIdx, copyOpts...); err != nil {
		t.Fatalf("copy index: %v", err)
	}
	// Blobs of the same registry are mounted (201), never uploaded again.
	mounted := 0
	for _, r := range rec.requests() {
		if r.method == http.MethodPost && strings.Contains(r.query, "mount=") && r.status == http.StatusCreated {
			mounted++
		}
		if r.method == http.MethodPatch || (r.method == http.MethodPut && strings.Contains(r.path, "/blobs/uploads/")) {
			t.Errorf("the copy uploaded a blob: %s %s", r.method, r.path)
		}
	}
	if mounted != 3*2+3 { // 3 images of 2 layers, and their 3 configs
		t.Errorf("%d blobs mounted; want 9", mounted)
	}

	for _, r := range []string{"platform/base:1.0", "mirror/base:1.0"} {
		desc, err := ggcrremote.Head(ref(r), opts...)
		if err != nil {
			t.Fatalf("head %s: %v", r, err)
		}
		if desc.Digest != want {
			t.Errorf("%s is %s; want %s", r, desc.Digest, want)
		}
	}
	copied, err := ggcrremote.Index(ref("mirror/base:1.0"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	wantManifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	gotManifest, err := copied.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(gotManifest.Manifests) != len(wantManifest.Manifests) {
		t.Fatalf("copy has %d manifests; want %d", len(gotManifest.Manifests), len(wantManifest.Manifests))
	}
	for i, m := range wantManifest.Manifests {
		if gotManifest.Manifests[i].Digest != m.Digest {
			t.Errorf("manifest %d is %s; want %s", i, gotManifest.Manifests[i].Digest, m.Digest)
		}
		img, err := copied.Image(m.Digest)
		if err != nil {
			t.Fatalf("image %s: %v", m.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			ld, err := l.Digest()
			if err != nil {
				t.Fatal(err)
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("layer %s: %v", ld, err)
			}
			h, _, err := v1.SHA256(rc)
			rc.Close()
			if err != nil || h != ld {
				t.Errorf("layer %s reads back as %s (%v)", ld, h, err)
			}
		}
	}
	// The copy is an artifact of its own, quarantined and pushed by the pipeline.
	var a artifactView
	if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/artifacts/mirror/base/versions/1.0", token, nil, &a); code != http.StatusOK || a.State != "quarantined" || a.Digest != want.String() {
		t.Errorf("mirror/base:1.0: %d %+v; want quarantined, digest %s", code, a, want)
	}
}

// TestOCIReferrerEvidenceAdmits is the must-show: an image pushed with
// oras-go by a publisher, under a policy that wants a signature by "ci"
// and a passing test result by "ci", becomes admitted — with a receipt —
// once the cosign signature and the DSSE test-result attestation are
// attached as referrers exactly as cosign lays them out. A signature by a
// key nobody trusts is stored by the registry but leaves it quarantined.
func TestOCIReferrerEvidenceAdmits(t *testing.T) {
	ci, err := signing.LoadCosignPrivateKey(fixture(t, "cosign.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	untrusted := func(t *testing.T) signature.Signer { return testkeys.Signer(t) }
	for _, tc := range []struct {
		name string
		// sign attaches the signature referrer.
		sign     func(t *testing.T, r *orasremote.Repository, image ocispec.Descriptor) ocispec.Descriptor
		state    string
		evidence []evidenceView
		unmet    string
	}{
		{"the real cosign signature admits", func(t *testing.T, r *orasremote.Repository, _ ocispec.Descriptor) ocispec.Descriptor {
			return pushRealCosignSignature(t, r)
		}, "admitted", []evidenceView{
			{"attestation", "dsse", "ci", predicateTestResult},
			{"signature", "cosign-oci-signature", "ci", ""},
		}, ""},
		{"a cosign signature made with the ci key admits", func(t *testing.T, r *orasremote.Repository, image ocispec.Descriptor) ocispec.Descriptor {
			return pushCosignSignature(t, r, ci, image, cosignOCIFixture(t, "signature-payload.json"))
		}, "admitted", []evidenceView{
			{"attestation", "dsse", "ci", predicateTestResult},
			{"signature", "cosign-oci-signature", "ci", ""},
		}, ""},
		{"a signature by an untrusted key leaves it quarantined", func(t *testing.T, r *orasremote.Repository, image ocispec.Descriptor) ocispec.Descriptor {
			return pushCosignSignature(t, r, untrusted(t), image, cosignOCIFixture(t, "signature-payload.json"))
		}, "quarantined", []evidenceView{
			{"attestation", "dsse", "ci", predicateTestResult},
		}, "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, admin, svc := testserver.New(t)
			e := &env{url: srv.URL, admin: admin, svc: svc}
			e.addKey(t, "ci", fixture(t, "cosign.pub"))
			setPolicy(t, e, ciPolicy)
			token := testserver.Token(t, svc, "pipeline", access.RolePublisher)
			repo := orasRepository(t, srv.URL, "payments/api", token)
			artifact := func() artifactView {
				t.Helper()
				var a artifactView
				if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/artifacts/payments/api/versions/1.0.0", token, nil, &a); code != http.StatusOK {
					t.Fatalf("GET payments/api:1.0.0: %d", code)
				}
				return a
			}

			image := pushCosignImage(t, repo, "1.0.0")
			if a := artifact(); a.State != "quarantined" || a.Digest != cosignImageDigest.String() || len(a.Admission.Unmet) != 2 {
				t.Fatalf("after the push: %s %s, unmet %q; want quarantined %s, a signature and a test result unmet", a.State, a.Digest, a.Admission.Unmet, cosignImageDigest)
			}

			sig := tc.sign(t, repo, image)
			att := pushCosignAttestation(t, repo, ci, image)

			// The registry holds both referrers whatever they are worth.
			listed := orasReferrers(t, repo, image, "")
			if !slices.ContainsFunc(listed, func(d ocispec.Descriptor) bool { return d.Digest == sig.Digest }) ||
				!slices.ContainsFunc(listed, func(d ocispec.Descriptor) bool { return d.Digest == att.Digest }) {
				t.Fatalf("referrers %+v; want the signature %s and the attestation %s", listed, sig.Digest, att.Digest)
			}
			sigs := orasReferrers(t, repo, image, signing.CosignSignatureArtifactType)
			if len(sigs) != 1 || sigs[0].Digest != sig.Digest {
				t.Errorf("signature referrers %+v; want %s", sigs, sig.Digest)
			}

			a := artifact()
			if a.State != tc.state {
				t.Fatalf("state %s (unmet %q); want %s", a.State, a.Admission.Unmet, tc.state)
			}
			got := listEvidence(t, srv.URL, token, "payments/api", "1.0.0")
			slices.SortFunc(got, func(a, b evidenceView) int { return strings.Compare(a.Kind, b.Kind) })
			if !slices.Equal(got, tc.evidence) {
				t.Errorf("evidence %+v; want %+v", got, tc.evidence)
			}
			if tc.state == "admitted" {
				pub := serverKey(t, srv.URL, token)
				verifyReceiptWithSigstore(t, pub, a.Admission.Receipt, cosignImageDigest)
				if n := receiptEvidence(t, pub, a.Admission.Receipt, cosignImageDigest); n != 2 {
					t.Errorf("the receipt names %d pieces of evidence; want 2", n)
				}
				// Admitted: an approver may now pull the image with oras,
				// and list and fetch the evidence that admitted it.
				approver := orasRepository(t, srv.URL, "payments/api", testserver.Token(t, svc, "cab", access.RoleApprover))
				if _, err := oras.Copy(t.Context(), approver, "1.0.0", memory.New(), "", oras.DefaultCopyOptions); err != nil {
					t.Errorf("approver pulling the admitted image: %v", err)
				}
				seen := orasReferrers(t, approver, image, "")
				for _, ref := range []ocispec.Descriptor{sig, att} {
					if !slices.ContainsFunc(seen, func(d ocispec.Descriptor) bool { return d.Digest == ref.Digest }) {
						t.Errorf("the approver's referrers %+v lack the verified %s", seen, ref.Digest)
					}
					if _, _, err := oras.FetchBytes(t.Context(), approver, ref.Digest.String(), oras.DefaultFetchBytesOptions); err != nil {
						t.Errorf("the approver fetching the verified referrer %s: %v", ref.Digest, err)
					}
				}
			} else {
				if string(a.Admission.Receipt) != "" && string(a.Admission.Receipt) != "null" {
					t.Errorf("quarantined with a receipt: %s", a.Admission.Receipt)
				}
				if !strings.Contains(strings.Join(a.Admission.Unmet, "\n"), tc.unmet) {
					t.Errorf("unmet %q does not mention %q", a.Admission.Unmet, tc.unmet)
				}
			}
		})
	}
}
