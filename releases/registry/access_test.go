package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// rawManifest pushes an image manifest of the given config and layers,
// with subject, by digest, and returns its digest.
func (e *evidenceEnv) rawManifest(repo, artifactType string, config ocispec.Descriptor, subject digest.Digest, layers ...ocispec.Descriptor) digest.Digest {
	e.t.Helper()
	body, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       config,
		Layers:       layers,
		Subject:      &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: 397},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.manifest(repo, digest.FromBytes(body).String(), body).Digest
}

// realSignatureLayer is the layer of the real cosign signature referrer:
// the simple-signing payload, with the signature in its annotation.
func realSignatureLayer(t *testing.T) ocispec.Descriptor {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(domaintest.Fixture(t, "cosign-oci/signature-manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	return m.Layers[0]
}

// authorizeStaging creates a release of imageRepo:1.0.0 for staging and
// has it authorised for deployment there.
func (e *evidenceEnv) authorizeStaging(rm, cab access.Principal) {
	e.t.Helper()
	const name = "r-staging"
	_, err := e.svc.Releases.CreateRelease(e.ctx, rm, lifecycle.CreateReleaseRequest{
		Name: name,
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-1", Title: "api 1.0.0", Environments: []string{"staging"},
			Plan: lifecycle.PlanDetails{Description: "ship", BackoutPlan: "roll back", Risk: "low"}},
		Artifacts: []lifecycle.ReleaseArtifactRef{{Name: imageRepo, Version: "1.0.0"}},
	})
	if err != nil {
		e.t.Fatalf("create release: %v", err)
	}
	for _, gate := range []string{lifecycle.GatePlan, lifecycle.GateBuild, "deploy:staging"} {
		r, err := e.svc.Releases.Release(e.ctx, name)
		if err != nil {
			e.t.Fatal(err)
		}
		d, err := e.svc.Releases.ExpectedDigest(e.ctx, r, gate)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.svc.Releases.Decide(e.ctx, cab, name, lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.DecisionApprove, Digest: d, Comment: "ok"}); err != nil {
			e.t.Fatalf("approve %s: %v", gate, err)
		}
	}
}

// referrerScene is an admitted image with its real cosign signature and
// bundle attestation, released to staging, and what another publisher
// attached to it afterwards.
type referrerScene struct {
	e                                     *evidenceEnv
	pub2, approver, rm, auditor           access.Principal
	stagingDeployer, prodDeployer         access.Principal
	signature, bundle                     digest.Digest // the verified referrers
	signatureConfig, emptyConfig          digest.Digest
	signaturePayload, bundleLayer         digest.Digest
	smuggler, smugglerConfig, malware     digest.Digest // pub2's referrer: an arbitrary config and layer
	replay, replayMalware                 digest.Digest // pub2's referrer: the real signature layer and an arbitrary one
	imageLayer                            digest.Digest
	realSignatureManifest, bundleManifest []byte
}

func newReferrerScene(t *testing.T) *referrerScene {
	e := newEvidenceEnv(t)
	s := &referrerScene{
		e:               e,
		pub2:            e.principal("other-pipeline", nil, access.RolePublisher),
		approver:        e.principal("cab", nil, access.RoleApprover),
		rm:              e.principal("rm", nil, access.RoleReleaseManager),
		auditor:         e.principal("audit", nil, access.RoleAuditor),
		stagingDeployer: e.principal("deploy-staging", []string{"staging"}, access.RoleDeployer),
		prodDeployer:    e.principal("deploy-prod", []string{"production"}, access.RoleDeployer),
	}
	e.realImage(imageRepo, "1.0.0")
	e.realReferrer(imageRepo, "signature")
	e.realReferrer(imageRepo, "bundle-attestation")
	if st := e.state(imageRepo, "1.0.0"); st != catalog.StateAdmitted {
		t.Fatalf("the image is %s; want admitted", st)
	}
	e.authorizeStaging(s.rm, s.approver)
	s.realSignatureManifest = domaintest.Fixture(t, "cosign-oci/signature-manifest.json")
	s.bundleManifest = domaintest.Fixture(t, "cosign-oci/bundle-attestation-manifest.json")
	s.signature, s.bundle = digest.FromBytes(s.realSignatureManifest), digest.FromBytes(s.bundleManifest)
	s.signatureConfig = digest.FromBytes(domaintest.Fixture(t, "cosign-oci/signature-config.json"))
	s.emptyConfig = digest.FromBytes(domaintest.Fixture(t, "cosign-oci/empty-config.json"))
	s.signaturePayload = digest.FromBytes(domaintest.Fixture(t, "cosign-oci/signature-payload.json"))
	s.bundleLayer = digest.FromBytes(domaintest.Fixture(t, "cosign-oci/bundle-attestation.sigstore.json"))
	s.imageLayer = digest.FromBytes(domaintest.Fixture(t, "cosign-oci/image-layer.tar"))

	// Another publisher hangs its own content on the admitted image.
	other := e.as(s.pub2)
	cfg := other.blob(imageRepo, []byte(`{"smuggled":"config"}`), "application/vnd.example.config+json")
	mal := other.blob(imageRepo, []byte("#!/bin/sh\necho not admitted\n"), "application/vnd.example.tool")
	s.smuggler = other.rawManifest(imageRepo, "application/vnd.example.sbom", cfg, imageDigest, mal)
	s.smugglerConfig, s.malware = cfg.Digest, mal.Digest
	// ... and copies the real signature into a referrer of its own, next
	// to another arbitrary layer.
	other.blob(imageRepo, domaintest.Fixture(t, "cosign-oci/signature-payload.json"), signing.CosignSimpleSigningMediaType)
	empty := other.blob(imageRepo, domaintest.Fixture(t, "cosign-oci/empty-config.json"), ocispec.MediaTypeEmptyJSON)
	mal2 := other.blob(imageRepo, []byte("#!/bin/sh\necho not admitted either\n"), "application/vnd.example.tool")
	s.replay = other.rawManifest(imageRepo, signing.CosignSignatureArtifactType, empty, imageDigest, realSignatureLayer(t), mal2)
	s.replayMalware = mal2.Digest
	return s
}

// pull tries to pull d (a blob, or a manifest when manifest is set) as p.
func (s *referrerScene) pull(p access.Principal, d digest.Digest, manifest bool) error {
	ctx := s.e.ctx
	if manifest {
		c, err := s.e.svc.Registry.OpenManifest(ctx, p, imageRepo, d.String())
		if err == nil {
			c.Reader.Close()
		}
		return err
	}
	c, err := s.e.svc.Registry.OpenBlob(ctx, p, imageRepo, d)
	if err == nil {
		c.Reader.Close()
	}
	return err
}

// TestRegistryReferrerAccess (issue 9, finding 4): only admitted content
// and evidence that verified against a trusted key are served to roles
// other than the pusher, admins and auditors. Another publisher's
// referrer of an admitted image — arbitrary layers, or a copy of a real
// signature next to them — is not served to anyone else, nor is the
// config of a referrer, which no evidence covers.
func TestRegistryReferrerAccess(t *testing.T) {
	s := newReferrerScene(t)
	e := s.e
	type who struct {
		name string
		p    access.Principal
	}
	everyone := []who{
		{"admin", e.admin}, {"auditor", s.auditor}, {"image publisher", e.pub}, {"other publisher", s.pub2},
		{"approver", s.approver}, {"release manager", s.rm}, {"staging deployer", s.stagingDeployer}, {"production deployer", s.prodDeployer},
	}
	image := map[string]bool{"admin": true, "auditor": true, "image publisher": true, "other publisher": true,
		"approver": true, "release manager": true, "staging deployer": true}
	onlyPrivileged := func(pusher string) map[string]bool {
		return map[string]bool{"admin": true, "auditor": true, pusher: true}
	}
	anyone := map[string]bool{}
	for _, w := range everyone {
		anyone[w.name] = true
	}
	for _, tc := range []struct {
		what     string
		d        digest.Digest
		manifest bool
		allowed  map[string]bool
	}{
		{"the admitted image", imageDigest, true, image},
		{"its layer", s.imageLayer, false, image},
		{"its verified cosign signature", s.signature, true, image},
		{"the signature's payload", s.signaturePayload, false, image},
		{"its verified bundle attestation", s.bundle, true, image},
		{"the bundle", s.bundleLayer, false, image},
		{"the cosign signature's config, which no evidence covers", s.signatureConfig, false, onlyPrivileged("image publisher")},
		{"the empty config, two known bytes", s.emptyConfig, false, anyone},
		{"another publisher's referrer", s.smuggler, true, onlyPrivileged("other publisher")},
		{"its arbitrary layer", s.malware, false, onlyPrivileged("other publisher")},
		{"its arbitrary config", s.smugglerConfig, false, onlyPrivileged("other publisher")},
		{"a referrer copying the real signature", s.replay, true, onlyPrivileged("other publisher")},
		{"the arbitrary layer beside the copied signature", s.replayMalware, false, onlyPrivileged("other publisher")},
	} {
		for _, w := range everyone {
			t.Run(fmt.Sprintf("%s/%s", tc.what, w.name), func(t *testing.T) {
				err := s.pull(w.p, tc.d, tc.manifest)
				switch {
				case tc.allowed[w.name] && err != nil:
					t.Errorf("refused: %v", err)
				case !tc.allowed[w.name] && err == nil:
					t.Errorf("served; want it refused")
				case !tc.allowed[w.name] && !errors.Is(err, catalog.ErrNotAdmitted) && !errors.Is(err, access.ErrNotAuthorizedForEnv) && !errors.Is(err, errdef.ErrDenied):
					t.Errorf("refused with %v; want a denial", err)
				}
			})
		}
	}
}

// TestRegistryReferrerDeletion (issue 9, finding 4): what did not verify
// never becomes immutable — an unverified referrer of an admitted image,
// and its blobs, can be deleted by their pusher and by admins (and by
// nobody else) — while the verified evidence and the image stay.
func TestRegistryReferrerDeletion(t *testing.T) {
	s := newReferrerScene(t)
	e := s.e
	ctx := e.ctx
	wantErr := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v; want %v", what, err, want)
		}
	}
	wantOK := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	// Nobody else may delete another publisher's content.
	wantErr("the image's publisher deletes another's referrer", e.svc.Registry.DeleteManifest(ctx, e.pub, imageRepo, s.smuggler.String()), errdef.ErrDenied)
	wantErr("the image's publisher deletes another's layer", e.svc.Registry.DeleteBlob(ctx, e.pub, imageRepo, s.malware), errdef.ErrDenied)
	// Its pusher and admins may.
	wantOK("the pusher deletes its referrer", e.svc.Registry.DeleteManifest(ctx, s.pub2, imageRepo, s.smuggler.String()))
	wantOK("the pusher deletes its layer", e.svc.Registry.DeleteBlob(ctx, s.pub2, imageRepo, s.malware))
	wantOK("the pusher deletes its config", e.svc.Registry.DeleteBlob(ctx, s.pub2, imageRepo, s.smugglerConfig))
	wantOK("an admin deletes the referrer copying the signature", e.svc.Registry.DeleteManifest(ctx, e.admin, imageRepo, s.replay.String()))
	wantOK("an admin deletes the layer beside it", e.svc.Registry.DeleteBlob(ctx, e.admin, imageRepo, s.replayMalware))
	for _, d := range []digest.Digest{s.smuggler, s.replay} {
		if _, err := e.svc.Registry.OpenManifest(ctx, e.admin, imageRepo, d.String()); !errors.Is(err, registry.ErrManifestUnknown) {
			t.Errorf("deleted referrer %s: %v; want it unknown", d, err)
		}
	}
	// What is admitted, and the evidence that admitted it, stays.
	for _, p := range []access.Principal{e.pub, e.admin} {
		wantErr("deleting the verified signature", e.svc.Registry.DeleteManifest(ctx, p, imageRepo, s.signature.String()), registry.ErrImmutable)
		wantErr("deleting the verified bundle", e.svc.Registry.DeleteManifest(ctx, p, imageRepo, s.bundle.String()), registry.ErrImmutable)
		wantErr("deleting the signature payload", e.svc.Registry.DeleteBlob(ctx, p, imageRepo, s.signaturePayload), registry.ErrImmutable)
		wantErr("deleting the image layer", e.svc.Registry.DeleteBlob(ctx, p, imageRepo, s.imageLayer), registry.ErrImmutable)
		wantErr("deleting the image", e.svc.Registry.DeleteManifest(ctx, p, imageRepo, imageDigest.String()), registry.ErrImmutable)
	}
	if st := e.state(imageRepo, "1.0.0"); st != catalog.StateAdmitted {
		t.Errorf("the image is %s after the deletions; want admitted", st)
	}
}
