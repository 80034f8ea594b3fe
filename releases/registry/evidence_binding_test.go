package registry_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// push pushes the cosign fixture tarball as name:version, as p.
func (e *evidenceEnv) pushTarball(p access.Principal, name, version string) {
	e.t.Helper()
	content := domaintest.Fixture(e.t, "cosign/payments-api-1.4.2.tar.gz")
	if _, _, err := e.svc.Catalog.Push(e.ctx, p, catalog.PushRequest{Name: name, Version: version, Size: int64(len(content)), Body: bytes.NewReader(content)}); err != nil {
		e.t.Fatalf("push %s:%s: %v", name, version, err)
	}
}

// present adds evidence to name:version as p.
func (e *evidenceEnv) present(p access.Principal, name, version string, kind catalog.EvidenceKind, body []byte) error {
	e.t.Helper()
	_, _, err := e.svc.Catalog.AddEvidence(e.ctx, p, catalog.EvidenceRequest{Name: name, Version: version, Kind: kind, Body: body})
	return err
}

// Evidence the pipeline presented for payments/api:1.4.2, in every form
// the same signer's statement about the same bytes can take.
func keyedFixtureSignature(t *testing.T) []byte {
	return []byte(`{"keyId":"ci","signature":"` + strings.TrimSpace(string(domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz.sig"))) + `"}`)
}

// TestEvidenceBindsToArtifact (issue 9, item 9): evidence counts for the
// artifact it was first presented for. Replaying it — in any encoding —
// onto the same bytes under another name or version, by another
// principal, is refused and records nothing; the principal that first
// presented it (a pipeline publishing the same bytes under two names)
// and admins may present it again elsewhere.
func TestEvidenceBindsToArtifact(t *testing.T) {
	for _, tc := range []struct {
		name string
		// by: "other" (another publisher), "same" (the pipeline that
		// presented it first) or "admin".
		by            string
		artifact      string // name:version the bytes are pushed as
		kind          catalog.EvidenceKind
		body          func(t *testing.T) []byte
		counts        bool
		admittedAfter bool // when every piece was presented
	}{
		{"another publisher, another name, the signature it was given", "other", "payments/web:1.0", catalog.EvidenceSignature, keyedFixtureSignature, false, false},
		{"another publisher, another name, the .sig file as cosign wrote it", "other", "payments/web:1.0", catalog.EvidenceSignature, func(t *testing.T) []byte {
			return domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz.sig")
		}, false, false},
		{"another publisher, another name, another signature by the same key over the same bytes (cosign's bundle)", "other", "payments/web:1.0", catalog.EvidenceSignature, func(t *testing.T) []byte {
			return domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz.sigstore.json")
		}, false, false},
		{"another publisher, the same name, another version", "other", "payments/api:9.9.9", catalog.EvidenceSignature, keyedFixtureSignature, false, false},
		{"another publisher, the attestation", "other", "payments/web:1.0", catalog.EvidenceAttestation, func(t *testing.T) []byte {
			return domaintest.Fixture(t, "cosign/test-result-passed.dsse.json")
		}, false, false},
		{"another publisher, the same statement wrapped in a bundle", "other", "payments/web:1.0", catalog.EvidenceAttestation, func(t *testing.T) []byte {
			return domaintest.Fixture(t, "cosign/test-result-passed.sigstore.json")
		}, false, false},
		{"the same pipeline under another name", "same", "payments/web:1.0", catalog.EvidenceSignature, keyedFixtureSignature, true, true},
		{"an admin", "admin", "payments/web:1.0", catalog.EvidenceSignature, keyedFixtureSignature, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEvidenceEnv(t)
			other := e.principal("other-pipeline", nil, access.RolePublisher)
			// The pipeline publishes payments/api:1.4.2 with its signature
			// and test result: admitted.
			e.pushTarball(e.pub, "payments/api", "1.4.2")
			if err := e.present(e.pub, "payments/api", "1.4.2", catalog.EvidenceSignature, keyedFixtureSignature(t)); err != nil {
				t.Fatal(err)
			}
			if err := e.present(e.pub, "payments/api", "1.4.2", catalog.EvidenceAttestation, domaintest.Fixture(t, "cosign/test-result-passed.dsse.json")); err != nil {
				t.Fatal(err)
			}
			if st := e.state("payments/api", "1.4.2"); st != catalog.StateAdmitted {
				t.Fatalf("payments/api:1.4.2 is %s; want admitted", st)
			}

			stored := map[digest.Digest]bool{}
			for _, ev := range e.evidence("payments/api", "1.4.2") {
				stored[ev.Digest] = true
			}

			by := map[string]access.Principal{"other": other, "same": e.pub, "admin": e.admin}[tc.by]
			name, version, _ := strings.Cut(tc.artifact, ":")
			e.pushTarball(by, name, version)
			before := e.eventCount()
			body := tc.body(t)
			err := e.present(by, name, version, tc.kind, body)
			list := e.evidence(name, version)
			if tc.counts {
				if err != nil || len(list) != 1 {
					t.Fatalf("presenting it: %v, %d pieces of evidence; want it to count", err, len(list))
				}
				// The rest of what the pipeline presented counts too.
				if err := e.present(by, name, version, catalog.EvidenceAttestation, domaintest.Fixture(t, "cosign/test-result-passed.dsse.json")); err != nil {
					t.Fatal(err)
				}
				if st := e.state(name, version); st != catalog.StateAdmitted {
					t.Errorf("%s is %s; want admitted", tc.artifact, st)
				}
				return
			}
			if !errors.Is(err, catalog.ErrEvidenceReplayed) {
				t.Fatalf("replayed evidence for %s: %v; want ErrEvidenceReplayed", tc.artifact, err)
			}
			if len(list) != 0 {
				t.Errorf("%d pieces of evidence stored for %s after the refusal", len(list), tc.artifact)
			}
			if after := e.eventCount(); after != before {
				t.Errorf("the refusal recorded %d events", after-before)
			}
			if d := signing.EvidenceDigest(body); !stored[d] {
				if ok, err := e.svc.Blobs.Store().Exists(e.ctx, d); ok || err != nil {
					t.Errorf("the refused evidence is in the blob store (%v)", err)
				}
			}
			if st := e.state(name, version); st != catalog.StateQuarantined {
				t.Errorf("%s is %s; want quarantined", tc.artifact, st)
			}
		})
	}
}

// TestReferrerEvidenceBindsToArtifact (issue 9, item 9): another
// publisher that tags an admitted image under a new version does not
// inherit its evidence; the pipeline that signed it does.
func TestReferrerEvidenceBindsToArtifact(t *testing.T) {
	e := newEvidenceEnv(t)
	other := e.principal("other-pipeline", nil, access.RolePublisher)
	e.realImage(imageRepo, "1.0.0")
	e.realReferrer(imageRepo, "signature")
	e.realReferrer(imageRepo, "bundle-attestation")
	if st := e.state(imageRepo, "1.0.0"); st != catalog.StateAdmitted {
		t.Fatalf("1.0.0 is %s; want admitted", st)
	}
	image := domaintest.Fixture(t, "cosign-oci/image-manifest.json")
	e.as(other).manifest(imageRepo, "9.9.9", image)
	if got := e.evidence(imageRepo, "9.9.9"); len(got) != 0 {
		t.Errorf("another publisher's tag got %d pieces of the image's evidence; want none", len(got))
	}
	if st := e.state(imageRepo, "9.9.9"); st != catalog.StateQuarantined {
		t.Errorf("another publisher's tag is %s; want quarantined", st)
	}
	if w := strings.Join(e.logs.warnings(), "\n"); !strings.Contains(w, "reason=replayed") {
		t.Errorf("warnings do not say the evidence was replayed:\n%s", w)
	}
	e.manifest(imageRepo, "1.0.1", image)
	if st := e.state(imageRepo, "1.0.1"); st != catalog.StateAdmitted {
		t.Errorf("the pipeline's own second tag is %s; want admitted", st)
	}
}
