package provenance_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testsigstore"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/provenance"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
)

const (
	ghaIssuer  = "https://token.actions.example.test"
	ghaRelease = "https://example.test/acme/payments/.github/workflows/release.yml@refs/tags/v1.4.2"
)

// keylessScene is an artifact admitted on keyless evidence alone — a
// signature, and a test-result attestation naming it by sha512 only —
// and its provenance document.
type keylessScene struct {
	content  []byte
	sigstore *testsigstore.Sigstore
	doc      *provenance.Document
	opts     provenance.Options
}

func newKeylessScene(t *testing.T) *keylessScene {
	t.Helper()
	e := domaintest.NewEnv(t)
	ctx, d := e.Ctx, e.DML
	s := &keylessScene{content: domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz"), sigstore: testsigstore.New(t)}
	if _, _, err := d.Trust.PutTrustedRoot(ctx, e.Admin, "ci-sigstore", s.sigstore.RootJSON); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Trust.AddIdentity(ctx, e.Admin, trust.Identity{ID: "payments-release", Root: "ci-sigstore", Issuer: ghaIssuer,
		SubjectRegexp: `https://example\.test/acme/payments/\.github/workflows/release\.yml@refs/tags/v.*`}); err != nil {
		t.Fatal(err)
	}
	policy := `{"rules":[{"match":"payments/*","signatures":{"keys":["payments-release"]},
		"attestations":[{"predicateType":"` + domaintest.TestResult + `","keys":["payments-release"]}]}]}`
	if _, err := d.Trust.SetTrustPolicy(ctx, e.Admin, []byte(policy)); err != nil {
		t.Fatal(err)
	}
	pipeline := e.Principal("pipeline", nil, access.RolePublisher)
	if _, _, err := d.Catalog.Push(ctx, pipeline, catalog.PushRequest{Name: "payments/api", Version: "1.4.2", Size: int64(len(s.content)), Body: bytes.NewReader(s.content)}); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(s.content)
	st, err := json.Marshal(signing.Statement{Type: signing.StatementV1, PredicateType: domaintest.TestResult, Predicate: json.RawMessage(`{"result":"PASSED"}`),
		Subject: []signing.Subject{{Name: "payments-api-1.4.2.tgz", Digest: map[string]string{"sha512": hex.EncodeToString(sum[:])}}}})
	if err != nil {
		t.Fatal(err)
	}
	var a catalog.Artifact
	for _, ev := range []catalog.EvidenceRequest{
		{Kind: catalog.EvidenceSignature, Body: s.sigstore.SignBlob(t, ghaRelease, ghaIssuer, s.content, time.Now().Add(5*time.Minute))},
		{Kind: catalog.EvidenceAttestation, Body: s.sigstore.Attest(t, ghaRelease, ghaIssuer, st)},
	} {
		ev.Name, ev.Version = "payments/api", "1.4.2"
		if _, a, err = d.Catalog.AddEvidence(ctx, pipeline, ev); err != nil {
			t.Fatal(err)
		}
	}
	if a.State != catalog.StateAdmitted {
		t.Fatalf("state = %s; want admitted", a.State)
	}
	src, err := d.Provenance.Sources(ctx, e.Principal("audit", nil, access.RoleAuditor), "payments/api", "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	if s.doc, err = provenance.Build(src); err != nil {
		t.Fatal(err)
	}
	s.opts = provenance.Options{LogKey: d.Audit.LogVerifierKey(), ServerKeyPEM: d.ServerPublicKeyPEM()}
	return s
}

func (s *keylessScene) copyDoc(t *testing.T) *provenance.Document {
	t.Helper()
	return copyDocument(t, s.doc)
}

// TestProvenanceKeyless: the document of an artifact admitted on keyless
// evidence names the identity, its root and the Rekor entries, and
// verifies offline with the roots it carries (proven installed by the
// audit log) or with roots the verifier gives.
func TestProvenanceKeyless(t *testing.T) {
	s := newKeylessScene(t)
	doc := s.doc
	if len(doc.TrustKeys) != 0 || len(doc.TrustedRoots) != 1 || len(doc.Identities) != 1 || len(doc.Evidence) != 2 || doc.Artifact.SHA512 == "" {
		t.Fatalf("document: %d keys, roots %+v, identities %+v, %d evidence, sha512 %q", len(doc.TrustKeys), doc.TrustedRoots, doc.Identities, len(doc.Evidence), doc.Artifact.SHA512)
	}
	if r := doc.TrustedRoots[0]; r.ID != "ci-sigstore" || r.Version != 1 || !bytes.Equal(r.Document, s.sigstore.RootJSON) {
		t.Errorf("root = %s v%d (%d bytes); want ci-sigstore v1 as installed", r.ID, r.Version, len(r.Document))
	}
	for _, e := range doc.Evidence {
		if k := e.Keyless; e.KeyID != "payments-release" || k == nil || k.Root != "ci-sigstore" || k.Issuer != ghaIssuer || k.Subject != ghaRelease {
			t.Errorf("evidence %s: signer %s, keyless %+v", e.Kind, e.KeyID, e.Keyless)
		}
	}
	for name, opts := range map[string]provenance.Options{
		"the document's roots":          s.opts,
		"the document's roots, content": {LogKey: s.opts.LogKey, ServerKeyPEM: s.opts.ServerKeyPEM, Content: bytes.NewReader(s.content)},
		"a root the verifier gives":     {LogKey: s.opts.LogKey, ServerKeyPEM: s.opts.ServerKeyPEM, TrustedRoots: map[string][]byte{"ci-sigstore": s.sigstore.RootJSON}},
	} {
		rep, err := provenance.Verify(s.copyDoc(t), opts)
		if err != nil {
			t.Errorf("Verify with %s: %v", name, err)
			continue
		}
		if rep.Evidence != 2 || !strings.Contains(strings.Join(rep.Checked, "\n"), "verified keyless: identity payments-release, "+ghaRelease) {
			t.Errorf("Verify with %s: %d evidence, checked %q", name, rep.Evidence, rep.Checked)
		}
	}
}

// TestProvenanceKeylessRefusesTampering changes one keyless thing at a
// time and expects ErrInvalid.
func TestProvenanceKeylessRefusesTampering(t *testing.T) {
	s := newKeylessScene(t)
	other := testsigstore.New(t)
	for _, tc := range []struct {
		name   string
		tamper func(doc *provenance.Document, opts *provenance.Options)
	}{
		{"identity subject", func(d *provenance.Document, _ *provenance.Options) { d.Identities[0].SubjectRegexp = ".*" }},
		{"identity issuer", func(d *provenance.Document, _ *provenance.Options) {
			d.Identities[0].Issuer = "https://accounts.example.test"
		}},
		{"identity claims", func(d *provenance.Document, _ *provenance.Options) {
			d.Identities[0].Claims = map[string]string{"sourceRepositoryURI": "https://example.test/acme/payments"}
		}},
		{"root document", func(d *provenance.Document, _ *provenance.Options) { d.TrustedRoots[0].Document = other.RootJSON }},
		{"root installer", func(d *provenance.Document, _ *provenance.Options) { d.TrustedRoots[0].AddedBy = "mallory" }},
		{"signer subject", func(d *provenance.Document, _ *provenance.Options) {
			d.Evidence[0].Keyless.Subject = strings.Replace(ghaRelease, "v1.4.2", "v9", 1)
		}},
		{"signer log index", func(d *provenance.Document, _ *provenance.Options) { d.Evidence[1].Keyless.TlogIndex++ }},
		{"keyless claim dropped", func(d *provenance.Document, _ *provenance.Options) { d.Evidence[1].Keyless = nil }},
		{"artifact sha512", func(d *provenance.Document, _ *provenance.Options) {
			d.Artifact.SHA512 = "sha512:" + strings.Repeat("0", 128)
		}},
		{"another Sigstore's root given", func(_ *provenance.Document, o *provenance.Options) {
			o.TrustedRoots = map[string][]byte{"ci-sigstore": other.RootJSON}
		}},
		{"no root given for the identity", func(_ *provenance.Document, o *provenance.Options) {
			o.TrustedRoots = map[string][]byte{"elsewhere": other.RootJSON}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, opts := s.copyDoc(t), s.opts
			tc.tamper(doc, &opts)
			_, err := provenance.Verify(doc, opts)
			if !errors.Is(err, provenance.ErrInvalid) {
				t.Errorf("Verify with the %s changed: %v; want ErrInvalid", tc.name, err)
			}
		})
	}
}
