package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

const fixtureDir = "../testdata/cosign"

// artifactDigest is the digest of payments-api-1.4.2.tar.gz (SHA256SUMS).
const artifactDigest = digest.Digest("sha256:67e1e0907aaba2e17fceee152f5a099462f85f064adca3e6f79e85606c0bf9c8")

const otherDigest = digest.Digest("sha256:0000000000000000000000000000000000000000000000000000000000000001")

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ciKey is cosign.pub, trusted as "ci".
func ciKey(t testing.TB) *PublicKey {
	t.Helper()
	return mustKey(t, "ci", fixture(t, "cosign.pub"))
}

// untrustedKey is untrusted/cosign.pub, named "other".
func untrustedKey(t testing.TB) *PublicKey {
	t.Helper()
	return mustKey(t, "other", fixture(t, "untrusted/cosign.pub"))
}

func ciSigner(t testing.TB) signature.SignerVerifier {
	t.Helper()
	sv, err := LoadCosignPrivateKey(fixture(t, "cosign.key"), []byte(""))
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

func mustKey(t testing.TB, id string, pemBytes []byte) *PublicKey {
	t.Helper()
	k, err := LoadPublicKey(id, pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// generatedKey is a fresh key pair of one type, as PEM public key and a
// cosign-like signer.
type generatedKey struct {
	name   string
	pubPEM []byte
	signer signature.SignerVerifier
	priv   crypto.PrivateKey
}

func generateKeys(t testing.TB) []generatedKey {
	t.Helper()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var out []generatedKey
	for _, k := range []struct {
		name string
		priv crypto.Signer
	}{{"ecdsa-p256", p256}, {"ecdsa-p384", p384}, {"ed25519", ed}, {"rsa-2048", rsaKey}} {
		pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(k.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		sv, err := signature.LoadSignerVerifier(k.priv, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, generatedKey{name: k.name, pubPEM: pubPEM, signer: sv, priv: k.priv})
	}
	return out
}

// signEnvelope signs any payload as DSSE with signer: for statements this
// package would refuse to make.
func signEnvelope(t testing.TB, signer signature.Signer, payloadType string, payload []byte) []byte {
	t.Helper()
	env, err := sigdsse.WrapSigner(signer, payloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// editJSON decodes b into a map, lets edit change it, and re-encodes it.
func editJSON(t testing.TB, b []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipBase64 decodes s, flips a bit in the middle, and re-encodes it.
func flipBase64(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func wantReason(t testing.TB, err error, want Reason) *VerificationError {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want reason %s", want)
	}
	var ve *VerificationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v (%T), want *VerificationError", err, err)
	}
	if ve.Reason != want {
		t.Fatalf("reason = %s, want %s (err: %v)", ve.Reason, want, err)
	}
	return ve
}
