package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// ErrInvalidKey is wrapped by every error of LoadPublicKey.
var ErrInvalidKey = errors.New("invalid public key")

// minRSABits is the smallest RSA modulus accepted; smaller keys are
// breakable and cosign refuses to make them.
const minRSABits = 2048

// keyIDPattern keeps key IDs readable in policies, unmet lists and logs:
// no spaces or commas that would make "keys: ci, release" ambiguous, and no
// slash, so an ID is one URL path segment (/trust/keys/{id}/revoke) and a
// file name (--trusted-keys DIR/ID.pub).
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$`)

// ValidateKeyID reports whether id can name a trusted key: 1 to 128
// characters, letters, digits and . _ : @ + -, starting with a letter or
// digit.
func ValidateKeyID(id string) error {
	if !keyIDPattern.MatchString(id) {
		return fmt.Errorf("key ID %q: want 1-128 characters of letters, digits and . _ : @ + -, starting with a letter or digit", id)
	}
	return nil
}

// PublicKey is a trusted public key: ECDSA (P-256, P-384, P-521), Ed25519
// or RSA (2048 bits or more), named by an ID chosen by the administrator.
// It is immutable and safe for concurrent use.
type PublicKey struct {
	id       string
	pub      crypto.PublicKey
	pem      []byte
	hint     string
	alg      string
	verifier signature.Verifier // SHA-256 for ECDSA/RSA, pure Ed25519
	phVerif  signature.Verifier // Ed25519ph, nil for other key types
}

// LoadPublicKey parses a PEM "PUBLIC KEY" (PKIX), as `cosign generate-key-pair`
// writes cosign.pub, and names it id.
func LoadPublicKey(id string, pemBytes []byte) (*PublicKey, error) {
	if err := ValidateKeyID(id); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(bytes.TrimSpace(pemBytes))
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidKey, id, err)
	}
	return newPublicKey(id, pub)
}

func newPublicKey(id string, pub crypto.PublicKey) (*PublicKey, error) {
	k := &PublicKey{id: id, pub: pub}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			k.alg = "ecdsa-p256"
		case elliptic.P384():
			k.alg = "ecdsa-p384"
		case elliptic.P521():
			k.alg = "ecdsa-p521"
		default:
			return nil, fmt.Errorf("%w %q: unsupported ECDSA curve %s", ErrInvalidKey, id, p.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%w %q: RSA key of %d bits, want at least %d", ErrInvalidKey, id, p.N.BitLen(), minRSABits)
		}
		k.alg = fmt.Sprintf("rsa-%d", p.N.BitLen())
	case ed25519.PublicKey:
		k.alg = "ed25519"
		ph, err := signature.LoadED25519phVerifier(p)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrInvalidKey, id, err)
		}
		k.phVerif = ph
	default:
		return nil, fmt.Errorf("%w %q: unsupported key type %T", ErrInvalidKey, id, pub)
	}
	// SHA-256 is what cosign uses with ECDSA and RSA keys, and the only
	// digest the server holds. RSA verification is PKCS#1 v1.5, as cosign
	// signs.
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidKey, id, err)
	}
	k.verifier = v
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidKey, id, err)
	}
	k.pem = cryptoutils.PEMEncode(cryptoutils.PublicKeyPEMType, der)
	sum := sha256.Sum256(der)
	k.hint = base64.StdEncoding.EncodeToString(sum[:])
	return k, nil
}

// ID is the administrator's name for the key.
func (k *PublicKey) ID() string { return k.id }

// Algorithm names the key type: "ecdsa-p256", "ecdsa-p384", "ecdsa-p521",
// "ed25519" or "rsa-BITS".
func (k *PublicKey) Algorithm() string { return k.alg }

// Hint is the base64 SHA-256 of the key's DER encoding: what cosign writes
// as verificationMaterial.publicKey.hint in a Sigstore bundle.
func (k *PublicKey) Hint() string { return k.hint }

// PEM returns the key re-encoded as a PEM "PUBLIC KEY" block.
func (k *PublicKey) PEM() []byte { return bytes.Clone(k.pem) }

// Public returns the parsed key.
func (k *PublicKey) Public() crypto.PublicKey { return k.pub }

// isEd25519 is true for keys that sign the whole message, which therefore
// cannot be verified from a digest.
func (k *PublicKey) isEd25519() bool { return k.phVerif != nil }

// verifyDigest verifies sig over a message known only by its SHA-256.
// Callers must not use it for Ed25519 keys.
func (k *PublicKey) verifyDigest(sha256Sum, sig []byte) error {
	return k.verifier.VerifySignature(bytes.NewReader(sig), nil, options.WithDigest(sha256Sum))
}

// verifyMessage verifies sig over msg, held in memory. For Ed25519 both the
// pure scheme (what cosign uses) and Ed25519ph (what Rekor-bound signers
// use) are accepted; they are domain separated, so neither can pass for the
// other.
func (k *PublicKey) verifyMessage(msg, sig []byte) error {
	err := k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg))
	if err == nil || k.phVerif == nil {
		return err
	}
	if k.phVerif.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil {
		return nil
	}
	return err
}
