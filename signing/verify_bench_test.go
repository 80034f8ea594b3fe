package signing_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// benchEvidence is a CI key (ECDSA P-256), trusted, and what it signed
// about a 4 KiB artifact: a signature over its bytes (as cosign sign-blob
// writes it) and a DSSE test-result attestation.
func benchEvidence(b *testing.B) (trusted []*signing.PublicKey, artifact digest.Digest, sig, att []byte) {
	b.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ci, err := signing.NewServerSigner(priv)
	if err != nil {
		b.Fatal(err)
	}
	key, err := signing.LoadPublicKey("ci", ci.PublicKeyPEM())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4096)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	artifact = digest.FromBytes(data)
	s, err := ci.SignBlob(data)
	if err != nil {
		b.Fatal(err)
	}
	att, err = ci.SignStatement(signing.PredicateTestResult, map[string]any{"result": "PASSED"}, signing.SubjectFor("payments/api", artifact))
	if err != nil {
		b.Fatal(err)
	}
	return []*signing.PublicKey{key}, artifact, []byte(s), att
}

// BenchmarkVerifyEvidence is what admission pays per piece of evidence:
// a signature over an artifact and a DSSE attestation, each verified with
// an ECDSA P-256 key (issue 16's target: ≥ 5,000 signature verifications
// per second per core, i.e. ≤ 200 µs/op).
func BenchmarkVerifyEvidence(b *testing.B) {
	trusted, artifact, sig, att := benchEvidence(b)
	for _, bc := range []struct {
		name     string
		evidence []byte
		kind     signing.Kind
	}{
		{"signature", sig, signing.KindSignature},
		{"dsse", att, signing.KindAttestation},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				v, err := signing.VerifyEvidence(trusted, artifact, bc.evidence, nil)
				if err != nil {
					b.Fatal(err)
				}
				if v.Kind != bc.kind {
					b.Fatalf("verified a %s, want a %s", v.Kind, bc.kind)
				}
			}
		})
	}
}
