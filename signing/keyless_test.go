package signing

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testsigstore"
	"github.com/opencontainers/go-digest"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

const (
	testIssuer  = "https://token.actions.example.test"
	testSubject = "https://example.test/acme/payments/.github/workflows/release.yml@refs/heads/main"
)

// virtualSigstore is sigstore-go's generated Fulcio CA, Rekor log and TSA,
// with the trusted root an admin would install for it (without CT logs:
// the virtual CA issues certificates without SCTs; the public-good bundles
// below check SCTs).
type virtualSigstore struct {
	*testsigstore.Sigstore
	root *root.TrustedRoot
}

func newVirtualSigstore(t *testing.T) *virtualSigstore {
	t.Helper()
	s := testsigstore.New(t)
	return &virtualSigstore{Sigstore: s, root: s.Root}
}

// bundleJSON writes what the virtual Sigstore signed as the bundle JSON a
// client would submit (testsigstore.V01 or V03).
func (vs *virtualSigstore) bundleJSON(t *testing.T, e *ca.TestEntity, version string) []byte {
	t.Helper()
	return vs.Bundle(t, e, version)
}

// keylessArtifact is an artifact with both of its digests.
type keylessArtifact struct {
	content []byte
	digests ArtifactDigests
}

func newKeylessArtifact(content string) keylessArtifact {
	s256 := sha256.Sum256([]byte(content))
	s512 := sha512.Sum512([]byte(content))
	return keylessArtifact{
		content: []byte(content),
		digests: ArtifactDigests{
			SHA256: digest.NewDigestFromBytes(digest.SHA256, s256[:]),
			SHA512: digest.NewDigestFromBytes(digest.SHA512, s512[:]),
		},
	}
}

// sign makes a v0.1 bundle (chain, signed entry timestamp) holding a
// message signature over a, logged at the given time.
func (vs *virtualSigstore) sign(t *testing.T, subject, issuer string, a keylessArtifact, logged time.Time) []byte {
	t.Helper()
	return vs.SignBlob(t, subject, issuer, a.content, logged)
}

// attest makes a v0.3 bundle (leaf, inclusion proof and signed entry
// timestamp) holding a DSSE in-toto statement with these subject digests.
func (vs *virtualSigstore) attest(t *testing.T, subject, issuer, predicateType string, subjectDigests map[string]string) []byte {
	t.Helper()
	st, err := json.Marshal(Statement{
		Type:          StatementV1,
		Subject:       []Subject{{Name: "payments-api.tar.gz", Digest: subjectDigests}},
		PredicateType: predicateType,
		Predicate:     json.RawMessage(`{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	return vs.Attest(t, subject, issuer, st)
}

func newKeylessVerifier(t *testing.T, roots map[string]root.TrustedMaterial, ids ...Identity) *KeylessVerifier {
	t.Helper()
	v, err := NewKeylessVerifier(roots, ids)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func releaseIdentity() Identity {
	return Identity{ID: "payments-release", Root: "virtual", Issuer: testIssuer, Subject: testSubject}
}

func TestKeylessAdmits(t *testing.T) {
	vs := newVirtualSigstore(t)
	a := newKeylessArtifact("payments-api 1.4.2")
	logged := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	roots := map[string]root.TrustedMaterial{"virtual": vs.root}

	tests := []struct {
		name      string
		evidence  []byte
		identity  Identity
		kind      Kind
		predicate string
		logIndex  int64
	}{
		{"message signature, v0.1 with chain", vs.sign(t, testSubject, testIssuer, a, logged), releaseIdentity(), KindSignature, "", 1000},
		{"DSSE attestation, v0.3 with leaf", vs.attest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, map[string]string{"sha256": a.digests.SHA256.Encoded()}), releaseIdentity(), KindAttestation, PredicateSLSAProvenanceV1, 0},
		{"subject named by sha512 only", vs.attest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, map[string]string{"sha512": a.digests.SHA512.Encoded()}), releaseIdentity(), KindAttestation, PredicateSLSAProvenanceV1, 0},
		// Without the signed entry timestamp the log proves inclusion but
		// no time; the RFC 3161 timestamp of the root's TSA does.
		{"time proven by the TSA, inclusion proof only", withoutSET(t, vs.attest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, map[string]string{"sha256": a.digests.SHA256.Encoded()})), releaseIdentity(), KindAttestation, PredicateSLSAProvenanceV1, 0},
		{"cosign v3 sign-blob statement counts as a signature", vs.attest(t, testSubject, testIssuer, PredicateCosignSign, map[string]string{"sha256": a.digests.SHA256.Encoded()}), releaseIdentity(), KindSignature, "", 0},
		{"subject regexp matching the whole subject", vs.sign(t, testSubject, testIssuer, a, logged),
			Identity{ID: "acme-workflows", Root: "virtual", Issuer: testIssuer, SubjectRegexp: `https://example\.test/acme/[a-z-]+/\.github/workflows/release\.yml@refs/heads/main`}, KindSignature, "", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newKeylessVerifier(t, roots, tt.identity)
			ev, err := v.Verify(a.digests, tt.evidence)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ev.KeyID != tt.identity.ID || ev.Kind != tt.kind || ev.PredicateType != tt.predicate || ev.Format != FormatBundle {
				t.Errorf("got signer %q kind %q predicate %q format %q, want %q %q %q %q", ev.KeyID, ev.Kind, ev.PredicateType, ev.Format, tt.identity.ID, tt.kind, tt.predicate, FormatBundle)
			}
			if ev.Digest != EvidenceDigest(tt.evidence) || len(ev.Claims) != 1 {
				t.Errorf("digest %s claims %v", ev.Digest, ev.Claims)
			}
			k := ev.Keyless
			if k == nil {
				t.Fatal("no keyless signer recorded")
			}
			if k.Root != "virtual" || k.Issuer != testIssuer || k.Subject != testSubject || k.LogIndex != tt.logIndex {
				t.Errorf("keyless signer %+v", *k)
			}
			// The integrated time is reported only when the log signed it.
			var b struct {
				VerificationMaterial struct {
					TlogEntries []struct{ InclusionPromise any }
				}
			}
			if err := json.Unmarshal(tt.evidence, &b); err != nil {
				t.Fatal(err)
			}
			if signedTime := b.VerificationMaterial.TlogEntries[0].InclusionPromise != nil; k.IntegratedTime.IsZero() == signedTime {
				t.Errorf("integrated time %v, log signed it: %v", k.IntegratedTime, signedTime)
			}
		})
	}
}

// TestKeylessClaimsAreStable: the same signature re-wrapped (v0.1 chain vs
// v0.3 leaf) has other bytes but the same claim, and another signature over
// the same artifact by a new certificate has another claim.
func TestKeylessClaimsAreStable(t *testing.T) {
	vs := newVirtualSigstore(t)
	a := newKeylessArtifact("payments-api 1.4.2")
	e, err := vs.SignAtTime(testSubject, testIssuer, a.content, time.Now().Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	v := newKeylessVerifier(t, map[string]root.TrustedMaterial{"virtual": vs.root}, releaseIdentity())
	first, err := v.Verify(a.digests, vs.bundleJSON(t, e, "v0.1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := v.Verify(a.digests, vs.bundleJSON(t, e, "v0.1"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := v.Verify(a.digests, vs.sign(t, testSubject, testIssuer, a, time.Now().Add(5*time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if first.Claims[0] != again.Claims[0] {
		t.Errorf("the same signature makes claims %s and %s", first.Claims[0], again.Claims[0])
	}
	if first.Claims[0] == other.Claims[0] {
		t.Errorf("two signatures by different certificates make the same claim %s", first.Claims[0])
	}
}

// withoutSET drops the signed entry timestamps of a v0.3 bundle, leaving
// inclusion proofs, as a Rekor v2 entry or `cosign --new-bundle-format`
// with a TSA has.
func withoutSET(t *testing.T, evidence []byte) []byte {
	t.Helper()
	return editJSON(t, evidence, func(b map[string]any) { delete(firstTlogEntry(b), "inclusionPromise") })
}

func firstTlogEntry(b map[string]any) map[string]any {
	return b["verificationMaterial"].(map[string]any)["tlogEntries"].([]any)[0].(map[string]any)
}

func TestKeylessRefusals(t *testing.T) {
	vs := newVirtualSigstore(t)
	other := newVirtualSigstore(t)
	a := newKeylessArtifact("payments-api 1.4.2")
	b := newKeylessArtifact("payments-api 1.4.3")
	soon := time.Now().Add(5 * time.Minute)
	roots := map[string]root.TrustedMaterial{"virtual": vs.root}
	signed := vs.sign(t, testSubject, testIssuer, a, soon)
	attested := vs.attest(t, testSubject, testIssuer, PredicateSLSAProvenanceV1, map[string]string{"sha256": a.digests.SHA256.Encoded()})

	tests := []keylessRefusal{
		{"wrong issuer", roots, releaseIdentity(), a.digests,
			vs.sign(t, testSubject, "https://accounts.example.test", a, soon), IdentityMismatch},
		{"subject mismatch", roots, releaseIdentity(), a.digests,
			vs.sign(t, "https://example.test/acme/payments/.github/workflows/test.yml@refs/heads/main", testIssuer, a, soon), IdentityMismatch},
		{"subject regexp matches only a prefix", roots,
			Identity{ID: "acme", Root: "virtual", Issuer: testIssuer, SubjectRegexp: `https://example\.test/acme/payments/\.github/workflows/release\.yml`}, a.digests,
			signed, IdentityMismatch},
		{"subject regexp matches only a suffix", roots,
			Identity{ID: "acme", Root: "virtual", Issuer: testIssuer, SubjectRegexp: `release\.yml@refs/heads/main`}, a.digests,
			signed, IdentityMismatch},
		// The virtual CA's certificates are valid for ten minutes from
		// their making; the log entry says it was signed after that.
		{"certificate expired at signing", roots, releaseIdentity(), a.digests,
			vs.sign(t, testSubject, testIssuer, a, time.Now().Add(30*time.Minute)), CertificateExpiredAtSigning},
		{"no time proven: inclusion proof only, no timestamp", roots, releaseIdentity(), a.digests,
			editJSON(t, withoutSET(t, attested), func(b map[string]any) {
				delete(b["verificationMaterial"].(map[string]any), "timestampVerificationData")
			}), TimestampMissing},
		{"no log entry", roots, releaseIdentity(), a.digests,
			editJSON(t, signed, func(b map[string]any) { delete(b["verificationMaterial"].(map[string]any), "tlogEntries") }), TlogEntryMissing},
		{"log entry of a log the root does not trust", roots, releaseIdentity(), a.digests,
			editJSON(t, signed, func(b map[string]any) {
				firstTlogEntry(b)["logId"].(map[string]any)["keyId"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
			}), TlogEntryMissing},
		{"tampered log entry: integrated time", roots, releaseIdentity(), a.digests,
			editJSON(t, signed, func(b map[string]any) {
				firstTlogEntry(b)["integratedTime"] = soon.Add(time.Second).Unix()
			}), TlogProofInvalid},
		{"tampered log entry: log index", roots, releaseIdentity(), a.digests,
			editJSON(t, attested, func(b map[string]any) { firstTlogEntry(b)["logIndex"] = "7" }), TlogProofInvalid},
		{"tampered log entry: inclusion proof root hash", roots, releaseIdentity(), a.digests,
			editJSON(t, attested, func(b map[string]any) {
				p := firstTlogEntry(b)["inclusionProof"].(map[string]any)
				p["rootHash"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
			}), TlogProofInvalid},
		{"root not given (revoked)", map[string]root.TrustedMaterial{"other": other.root},
			Identity{ID: "payments-release", Root: "other", Issuer: testIssuer, Subject: testSubject}, a.digests,
			signed, CertificateUntrusted},
		{"root has CT logs, certificate has no SCT", map[string]root.TrustedMaterial{"virtual": vs.VirtualSigstore}, releaseIdentity(), a.digests,
			signed, CertificateUntrusted},
		{"no root given at all", nil, Identity{}, a.digests, signed, CertificateUntrusted},
		{"identity not given (revoked)", roots, Identity{}, a.digests, signed, IdentityMismatch},
		{"message signature over another artifact", roots, releaseIdentity(), b.digests, signed, SubjectMismatch},
		{"statement about another artifact", roots, releaseIdentity(), b.digests, attested, SubjectMismatch},
		// The message digest is changed to the other artifact's: the log
		// entry still matches the signature and certificate, but the
		// signature is not over that digest.
		{"signature invalid", roots, releaseIdentity(), b.digests,
			editJSON(t, signed, func(m map[string]any) {
				m["messageSignature"].(map[string]any)["messageDigest"].(map[string]any)["digest"] = base64.StdEncoding.EncodeToString(mustHex(t, b.digests.SHA256.Encoded()))
			}), BadSignature},
		{"DSSE payload changed after signing", roots, releaseIdentity(), b.digests,
			editJSON(t, attested, func(m map[string]any) {
				env := m["dsseEnvelope"].(map[string]any)
				payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
				var st map[string]any
				_ = json.Unmarshal(payload, &st)
				st["subject"] = []any{map[string]any{"name": "x", "digest": map[string]any{"sha256": b.digests.SHA256.Encoded()}}}
				payload, _ = json.Marshal(st)
				env["payload"] = base64.StdEncoding.EncodeToString(payload)
			}), BadSignature},
		{"bundle signed with a key", roots, releaseIdentity(), ArtifactDigests{SHA256: artifactDigest},
			fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json"), Unsupported},
	}
	runKeylessRefusals(t, tests)
}

// keylessRefusal is evidence a verifier with these roots and this identity
// (none if its ID is empty) must refuse for reason want.
type keylessRefusal struct {
	name     string
	roots    map[string]root.TrustedMaterial
	identity Identity
	artifact ArtifactDigests
	evidence []byte
	want     Reason
}

func runKeylessRefusals(t *testing.T, tests []keylessRefusal) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []Identity
			if tt.identity.ID != "" {
				ids = []Identity{tt.identity}
			}
			v := newKeylessVerifier(t, tt.roots, ids...)
			ev, err := v.Verify(tt.artifact, tt.evidence)
			if err == nil {
				t.Fatalf("verified as %+v, want refusal %q", ev, tt.want)
			}
			var ve *VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *VerificationError", err)
			}
			t.Log(err)
			if ve.Reason != tt.want {
				t.Errorf("reason %q, want %q (%v)", ve.Reason, tt.want, err)
			}
		})
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewKeylessVerifierRejectsBadIdentities(t *testing.T) {
	vs := newVirtualSigstore(t)
	roots := map[string]root.TrustedMaterial{"virtual": vs.root}
	ok := releaseIdentity()
	tests := map[string]func(*Identity){
		"bad ID":                       func(id *Identity) { id.ID = "has space" },
		"no root":                      func(id *Identity) { id.Root = "" },
		"root not given":               func(id *Identity) { id.Root = "revoked" },
		"no issuer":                    func(id *Identity) { id.Issuer = "" },
		"neither subject nor regexp":   func(id *Identity) { id.Subject = "" },
		"both subject and regexp":      func(id *Identity) { id.SubjectRegexp = ".*" },
		"regexp does not compile":      func(id *Identity) { id.Subject, id.SubjectRegexp = "", "(" },
		"unknown claim":                func(id *Identity) { id.Claims = map[string]string{"repository": "acme/payments"} },
		"claim without value":          func(id *Identity) { id.Claims = map[string]string{"sourceRepositoryURI": ""} },
		"issuer is not a claim to pin": func(id *Identity) { id.Claims = map[string]string{"issuer": testIssuer} },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			id := ok
			edit(&id)
			if _, err := NewKeylessVerifier(roots, []Identity{id}); err == nil {
				t.Errorf("identity %+v accepted", id)
			}
		})
	}
	if _, err := NewKeylessVerifier(roots, []Identity{ok, ok}); err == nil {
		t.Error("the same identity ID given twice was accepted")
	}
	if _, err := NewKeylessVerifier(roots, []Identity{ok}); err != nil {
		t.Errorf("valid identity refused: %v", err)
	}
}

// Public-good bundles produced by GitHub Actions (npm provenance of
// sigstore-js, see testdata/sigstore-public-good/README.md), verified
// offline against the public-good trusted root of the same time.
const publicGoodDir = "../testdata/sigstore-public-good"

func publicGood(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(publicGoodDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publicGoodRoot(t *testing.T) *root.TrustedRoot {
	t.Helper()
	tr, err := ParseTrustedRoot(publicGood(t, "trusted_root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const (
	githubIssuer   = "https://token.actions.githubusercontent.com"
	sigstoreJSFlow = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
)

// The npm tarballs are not in testdata: npm provenance names them by
// sha512 only. dml holds both digests of every artifact; the sha256 given
// here stands for the tarball's and is named by nothing in the bundles.
var (
	sigstoreJS130 = ArtifactDigests{
		SHA256: "sha256:1d4bc0d9f5a1e8d0b3a9ea2d1e8f4a1e9c3c0e8b3a7b4a8d9f9e1d2c3b4a5f60",
		SHA512: "sha512:76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751",
	}
	sigstoreJS200 = ArtifactDigests{
		SHA256: "sha256:1d4bc0d9f5a1e8d0b3a9ea2d1e8f4a1e9c3c0e8b3a7b4a8d9f9e1d2c3b4a5f60",
		SHA512: "sha512:46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c",
	}
)

func sigstoreJSRelease() Identity {
	return Identity{
		ID:      "sigstore-js-release",
		Root:    "public-good",
		Issuer:  githubIssuer,
		Subject: sigstoreJSFlow,
		Claims: map[string]string{
			"sourceRepositoryURI": "https://github.com/sigstore/sigstore-js",
			"sourceRepositoryRef": "refs/heads/main",
			"buildSignerURI":      sigstoreJSFlow,
			"runnerEnvironment":   "github-hosted",
		},
	}
}

func TestKeylessPublicGoodGitHubActionsBundles(t *testing.T) {
	roots := map[string]root.TrustedMaterial{"public-good": publicGoodRoot(t)}
	v := newKeylessVerifier(t, roots, sigstoreJSRelease())
	tests := []struct {
		file      string
		artifact  ArtifactDigests
		predicate string
		logIndex  int64
		logged    time.Time
	}{
		{"sigstore-1.3.0.provenance.sigstore.json", sigstoreJS130, PredicateSLSAProvenanceV02, 18300934, time.Unix(1681839912, 0)},
		{"sigstore-2.0.0.provenance.sigstore.json", sigstoreJS200, PredicateSLSAProvenanceV1, 31821305, time.Unix(1692374735, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			evidence := publicGood(t, tt.file)
			ev, err := v.Verify(tt.artifact, evidence)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ev.KeyID != "sigstore-js-release" || ev.Kind != KindAttestation || ev.PredicateType != tt.predicate {
				t.Errorf("signer %q kind %q predicate %q", ev.KeyID, ev.Kind, ev.PredicateType)
			}
			k := ev.Keyless
			if k == nil || k.Root != "public-good" || k.Issuer != githubIssuer || k.Subject != sigstoreJSFlow || k.LogIndex != tt.logIndex || !k.IntegratedTime.Equal(tt.logged) || len(k.Claims) != 4 {
				t.Errorf("keyless signer %+v", k)
			}
		})
	}
}

func TestKeylessPublicGoodRefusals(t *testing.T) {
	pg := publicGoodRoot(t)
	vs := newVirtualSigstore(t)
	evidence := publicGood(t, "sigstore-1.3.0.provenance.sigstore.json")
	withClaim := func(k, val string) Identity {
		id := sigstoreJSRelease()
		id.Claims = map[string]string{k: val}
		return id
	}
	tests := []keylessRefusal{
		{"a claim that differs: another repository", map[string]root.TrustedMaterial{"public-good": pg},
			withClaim("sourceRepositoryURI", "https://github.com/sigstore/sigstore-go"), sigstoreJS130, evidence, IdentityMismatch},
		{"a claim that differs: self-hosted runner", map[string]root.TrustedMaterial{"public-good": pg},
			withClaim("runnerEnvironment", "self-hosted"), sigstoreJS130, evidence, IdentityMismatch},
		{"a claim that differs: a tag, not main", map[string]root.TrustedMaterial{"public-good": pg},
			withClaim("sourceRepositoryRef", "refs/tags/v1.3.0"), sigstoreJS130, evidence, IdentityMismatch},
		{"subject regexp matches only a prefix", map[string]root.TrustedMaterial{"public-good": pg},
			Identity{ID: "sigstore-js", Root: "public-good", Issuer: githubIssuer, SubjectRegexp: `https://github\.com/sigstore/sigstore-js/\.github/workflows/release\.yml`},
			sigstoreJS130, evidence, IdentityMismatch},
		{"wrong issuer", map[string]root.TrustedMaterial{"public-good": pg},
			Identity{ID: "sigstore-js", Root: "public-good", Issuer: "https://gitlab.com", Subject: sigstoreJSFlow}, sigstoreJS130, evidence, IdentityMismatch},
		{"public-good root not given (revoked)", map[string]root.TrustedMaterial{"virtual": vs.root},
			releaseIdentity(), sigstoreJS130, evidence, CertificateUntrusted},
		{"another artifact", map[string]root.TrustedMaterial{"public-good": pg},
			sigstoreJSRelease(), sigstoreJS200, evidence, SubjectMismatch},
		{"tampered log entry", map[string]root.TrustedMaterial{"public-good": pg},
			sigstoreJSRelease(), sigstoreJS130, editJSON(t, evidence, func(b map[string]any) { firstTlogEntry(b)["logIndex"] = "18300935" }), TlogProofInvalid},
	}
	runKeylessRefusals(t, tests)
}

// TestKeylessMessageSignatureBySHA512: a message signature whose digest is
// SHA2_512 is checked against the artifact's sha512.
func TestKeylessMessageSignatureBySHA512(t *testing.T) {
	vca, err := ca.NewVirtualSigstoreWithSigningAlg(protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vca.FulcioCertificateAuthorities(), nil, vca.TimestampingAuthorities(), vca.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	vs := &virtualSigstore{Sigstore: &testsigstore.Sigstore{VirtualSigstore: vca, Root: tr}, root: tr}
	a := newKeylessArtifact("payments-api 1.4.2")
	evidence := vs.sign(t, testSubject, testIssuer, a, time.Now().Add(5*time.Minute))
	v := newKeylessVerifier(t, map[string]root.TrustedMaterial{"virtual": tr}, releaseIdentity())
	if _, err := v.Verify(a.digests, evidence); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	other := newKeylessArtifact("payments-api 1.4.3")
	if _, err := v.Verify(ArtifactDigests{SHA256: a.digests.SHA256, SHA512: other.digests.SHA512}, evidence); ReasonOf(err) != SubjectMismatch {
		t.Errorf("with another sha512: %v, want %s", err, SubjectMismatch)
	}
	if _, err := v.Verify(ArtifactDigests{SHA256: a.digests.SHA256}, evidence); ReasonOf(err) != SubjectMismatch {
		t.Errorf("without the sha512: %v, want %s", err, SubjectMismatch)
	}
}

// TestKeylessRootsSharingACA: the same instance installed twice, its
// identity under the second: the evidence verifies under that one.
func TestKeylessRootsSharingACA(t *testing.T) {
	vs := newVirtualSigstore(t)
	a := newKeylessArtifact("payments-api 1.4.2")
	id := releaseIdentity()
	id.Root = "virtual-b"
	v := newKeylessVerifier(t, map[string]root.TrustedMaterial{"virtual-a": vs.root, "virtual-b": vs.root}, id)
	ev, err := v.Verify(a.digests, vs.sign(t, testSubject, testIssuer, a, time.Now().Add(5*time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if ev.KeyID != id.ID || ev.Keyless.Root != "virtual-b" {
		t.Errorf("signer %q under root %q", ev.KeyID, ev.Keyless.Root)
	}
}

// TestKeylessVerifierConcurrentUse: one verifier serves concurrent
// admissions (run with -race).
func TestKeylessVerifierConcurrentUse(t *testing.T) {
	v := newKeylessVerifier(t, map[string]root.TrustedMaterial{"public-good": publicGoodRoot(t)}, sigstoreJSRelease())
	evidence := publicGood(t, "sigstore-1.3.0.provenance.sigstore.json")
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			_, err := v.Verify(sigstoreJS130, evidence)
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestIsKeyless(t *testing.T) {
	if !IsKeyless(publicGood(t, "sigstore-1.3.0.provenance.sigstore.json")) {
		t.Error("a certificate-chain bundle is not keyless")
	}
	for _, name := range []string{"payments-api-1.4.2.tar.gz.sigstore.json", "payments-api-1.4.2.tar.gz.sig", "slsa-provenance.dsse.json"} {
		if IsKeyless(fixture(t, name)) {
			t.Errorf("%s, signed with a key, is keyless", name)
		}
	}
}
