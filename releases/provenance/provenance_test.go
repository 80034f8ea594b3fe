package provenance_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/provenance"
	"github.com/dmlproject/dml/signing"
)

// scene is one artifact's whole life through the domain, without HTTP:
// pushed, signed and attested with the real cosign fixtures, admitted,
// released to staging with every gate approved, deployed, reviewed and
// closed; and the provenance document built from what was recorded.
type scene struct {
	env     *domaintest.Env
	content []byte
	doc     *provenance.Document
	opts    provenance.Options
}

func newScene(t *testing.T) *scene {
	t.Helper()
	e := domaintest.NewEnv(t)
	e.TrustCI()
	pipeline := e.Principal("pipeline", nil, access.RolePublisher)
	rm := e.Principal("rm", nil, access.RoleReleaseManager)
	cab := e.Principal("cab", nil, access.RoleApprover)
	deployer := e.Principal("deploy-staging", []string{"staging"}, access.RoleDeployer)
	auditor := e.Principal("audit", nil, access.RoleAuditor)
	ctx, d := e.Ctx, e.DML

	content := domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz")
	if _, _, err := d.Catalog.Push(ctx, pipeline, catalog.PushRequest{Name: "payments/api", Version: "1.4.2", Size: int64(len(content)), Body: bytes.NewReader(content)}); err != nil {
		t.Fatal(err)
	}
	sig := `{"keyId":"ci","signature":"` + strings.TrimSpace(string(domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz.sig"))) + `"}`
	for _, ev := range []catalog.EvidenceRequest{
		{Kind: catalog.EvidenceSignature, Body: []byte(sig)},
		{Kind: catalog.EvidenceAttestation, Body: domaintest.Fixture(t, "cosign/test-result-passed.dsse.json")},
	} {
		ev.Name, ev.Version = "payments/api", "1.4.2"
		if _, _, err := d.Catalog.AddEvidence(ctx, pipeline, ev); err != nil {
			t.Fatal(err)
		}
	}
	const name = "2030.1"
	if _, err := d.Releases.CreateRelease(ctx, rm, lifecycle.CreateReleaseRequest{
		Name: name,
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-1", Title: "Payments API 1.4.2", Environments: []string{"staging"},
			Plan: lifecycle.PlanDetails{Description: "roll out", BackoutPlan: "roll back", Risk: "low"}},
		Artifacts: []lifecycle.ReleaseArtifactRef{{Name: "payments/api", Version: "1.4.2"}},
	}); err != nil {
		t.Fatal(err)
	}
	approve := func(gate string) {
		t.Helper()
		r, err := d.Releases.Release(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := d.Releases.ExpectedDigest(ctx, r, gate)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Releases.Decide(ctx, cab, name, lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.DecisionApprove, Digest: want, Comment: "ok"}); err != nil {
			t.Fatalf("approving %s: %v", gate, err)
		}
	}
	approve(lifecycle.GatePlan)
	approve(lifecycle.GateBuild)
	approve(lifecycle.DeployGate("staging"))
	if _, _, err := d.Releases.RecordDeployment(ctx, deployer, name, lifecycle.DeploymentRequest{Environment: "staging", Target: "k8s/staging", Status: lifecycle.DeploymentSucceeded}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Releases.FileReview(ctx, rm, name, lifecycle.ReviewRequest{Outcome: "successful", Summary: "fine", Incidents: []string{}, ObjectivesMet: true}); err != nil {
		t.Fatal(err)
	}
	approve(lifecycle.GateClose)

	src, err := d.Provenance.Sources(ctx, auditor, "payments/api", "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := provenance.Build(src)
	if err != nil {
		t.Fatal(err)
	}
	return &scene{env: e, content: content, doc: doc,
		opts: provenance.Options{LogKey: d.Audit.LogVerifierKey(), ServerKeyPEM: d.ServerPublicKeyPEM()}}
}

// copyDoc is a deep copy of the scene's document, through its JSON.
func (s *scene) copyDoc(t *testing.T) *provenance.Document {
	t.Helper()
	return copyDocument(t, s.doc)
}

// copyDocument is a deep copy of doc, through its JSON.
func copyDocument(t *testing.T, doc *provenance.Document) *provenance.Document {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out provenance.Document
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// TestProvenanceBuildAndVerify: the document built from a release's whole
// life holds every item and verifies offline with only the log's key and
// the server's, and the artifact's bytes when they are given.
func TestProvenanceBuildAndVerify(t *testing.T) {
	s := newScene(t)
	doc := s.doc
	if doc.Artifact.Name != "payments/api" || doc.Artifact.State != string(catalog.StateAdmitted) ||
		len(doc.Evidence) != 2 || len(doc.TrustKeys) != 1 || doc.Admission == nil || len(doc.Admission.Receipt) == 0 {
		t.Fatalf("document: artifact %+v, %d evidence, %d keys, admission %+v", doc.Artifact, len(doc.Evidence), len(doc.TrustKeys), doc.Admission)
	}
	if len(doc.Releases) != 1 {
		t.Fatalf("%d releases; want 1", len(doc.Releases))
	}
	rel := doc.Releases[0]
	if rel.State != string(lifecycle.ReleaseClosed) || len(rel.Manifest) == 0 || rel.ManifestSignature == "" ||
		len(rel.Approvals) != 4 || len(rel.Deployments) != 1 || rel.Review == nil {
		t.Fatalf("release: state %s, manifest %d bytes, %d approvals, %d deployments, review %v",
			rel.State, len(rel.Manifest), len(rel.Approvals), len(rel.Deployments), rel.Review)
	}
	opts := s.opts
	opts.Content = bytes.NewReader(s.content)
	rep, err := provenance.Verify(s.copyDoc(t), opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Evidence != 2 || rep.Releases != 1 || rep.Records != len(doc.Log.Entries) {
		t.Errorf("report = %+v", rep)
	}
	// With the trusted keys given by the verifier instead of the document.
	pub, err := signing.LoadPublicKey("ci", domaintest.Fixture(t, "cosign/cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	opts = s.opts
	opts.TrustedKeys = []*signing.PublicKey{pub}
	if _, err := provenance.Verify(s.copyDoc(t), opts); err != nil {
		t.Errorf("Verify with the verifier's trusted keys: %v", err)
	}
}

// TestProvenanceRefusesTampering changes one thing at a time — in the
// document or in what the verifier trusts — and expects the verification
// to fail with ErrInvalid every time.
func TestProvenanceRefusesTampering(t *testing.T) {
	s := newScene(t)
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 1; return b }
	otherKey, otherLogKey := testkeys.Keys(t)
	for _, tc := range []struct {
		name   string
		tamper func(doc *provenance.Document, opts *provenance.Options)
	}{
		{"format", func(d *provenance.Document, _ *provenance.Options) { d.Format += "2" }},
		{"artifact name", func(d *provenance.Document, _ *provenance.Options) { d.Artifact.Name = "payments/web" }},
		{"artifact version", func(d *provenance.Document, _ *provenance.Options) { d.Artifact.Version = "1.4.3" }},
		{"artifact digest", func(d *provenance.Document, _ *provenance.Options) {
			d.Artifact.Digest = "sha256:" + strings.Repeat("0", 64)
		}},
		{"artifact size", func(d *provenance.Document, _ *provenance.Options) { d.Artifact.Size++ }},
		{"artifact push time", func(d *provenance.Document, _ *provenance.Options) {
			d.Artifact.PushedAt = d.Artifact.PushedAt.Add(time.Second)
		}},
		{"artifact pusher", func(d *provenance.Document, _ *provenance.Options) { d.Artifact.PushedBy = "mallory" }},
		{"trusted key", func(d *provenance.Document, _ *provenance.Options) {
			d.TrustKeys[0].PublicKey = string(domaintest.Fixture(t, "cosign/untrusted/cosign.pub"))
		}},
		{"evidence bytes", func(d *provenance.Document, _ *provenance.Options) {
			d.Evidence[0].Content = flip(d.Evidence[0].Content)
		}},
		{"evidence key", func(d *provenance.Document, _ *provenance.Options) { d.Evidence[1].KeyID = "other" }},
		{"evidence presenter", func(d *provenance.Document, _ *provenance.Options) { d.Evidence[0].AddedBy = "mallory" }},
		{"admission state", func(d *provenance.Document, _ *provenance.Options) { d.Admission.State = string(catalog.StateRejected) }},
		{"admission receipt", func(d *provenance.Document, _ *provenance.Options) { d.Admission.Receipt = flip(d.Admission.Receipt) }},
		{"release plan digest", func(d *provenance.Document, _ *provenance.Options) {
			d.Releases[0].PlanDigest = "sha256:" + strings.Repeat("1", 64)
		}},
		{"release manifest", func(d *provenance.Document, _ *provenance.Options) {
			d.Releases[0].Manifest = flip(d.Releases[0].Manifest)
		}},
		{"release manifest signature", func(d *provenance.Document, _ *provenance.Options) {
			sig, _ := base64.StdEncoding.DecodeString(d.Releases[0].ManifestSignature)
			d.Releases[0].ManifestSignature = base64.StdEncoding.EncodeToString(flip(sig))
		}},
		{"approver", func(d *provenance.Document, _ *provenance.Options) { d.Releases[0].Approvals[0].By = "rm" }},
		{"approval time", func(d *provenance.Document, _ *provenance.Options) {
			d.Releases[0].Approvals[1].At = d.Releases[0].Approvals[1].At.Add(-time.Hour)
		}},
		{"deployment status", func(d *provenance.Document, _ *provenance.Options) { d.Releases[0].Deployments[0].Status = "failed" }},
		{"review summary", func(d *provenance.Document, _ *provenance.Options) { d.Releases[0].Review.Summary = "perfect" }},
		{"checkpoint", func(d *provenance.Document, _ *provenance.Options) {
			d.Log.Checkpoint = strings.Replace(d.Log.Checkpoint, "\n", "\n\n", 1)
		}},
		{"log record", func(d *provenance.Document, _ *provenance.Options) {
			for i, e := range d.Log.Entries {
				if e.Index == d.Artifact.LogIndex {
					d.Log.Entries[i].Record = strings.Replace(e.Record, `"pipeline"`, `"mallory"`, 1)
				}
			}
		}},
		{"proof hash", func(d *provenance.Document, _ *provenance.Options) {
			e := &d.Log.Entries[len(d.Log.Entries)-1]
			h, _ := base64.StdEncoding.DecodeString(e.Proof[0])
			e.Proof[0] = base64.StdEncoding.EncodeToString(flip(h))
		}},
		{"a record left out", func(d *provenance.Document, _ *provenance.Options) { d.Log.Entries = d.Log.Entries[1:] }},
		{"another log key", func(_ *provenance.Document, o *provenance.Options) { o.LogKey = otherLogKey.VerifierKey }},
		{"another server key", func(_ *provenance.Document, o *provenance.Options) { o.ServerKeyPEM = otherKey.PublicKeyPEM() }},
		{"other content", func(_ *provenance.Document, o *provenance.Options) { o.Content = bytes.NewReader(flip(s.content)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, opts := s.copyDoc(t), s.opts
			opts.Content = bytes.NewReader(s.content)
			tc.tamper(doc, &opts)
			if _, err := provenance.Verify(doc, opts); !errors.Is(err, provenance.ErrInvalid) {
				t.Errorf("Verify of a document with its %s changed: %v; want ErrInvalid", tc.name, err)
			}
		})
	}
}
