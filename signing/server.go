package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dmlproject/dml/internal/atomicfile"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

// ServerSigner is the server's own key: it signs admission receipts, sealed
// release manifests and log checkpoints. It is ECDSA P-256 with SHA-256,
// the same as a cosign key, so anything it signs can be checked with its
// public key alone (VerifyReceipt, or LoadPublicKey + VerifyBlobSignature).
// It is safe for concurrent use.
type ServerSigner struct {
	sv     signature.SignerVerifier
	pub    crypto.PublicKey
	pubPEM []byte
	hint   string
	// secret is derived from the private key (DeriveKey).
	secret []byte
}

// LoadOrCreateServerKey loads the server's private key from path (a PEM
// "PRIVATE KEY", PKCS#8) or, when the file does not exist, creates a new
// ECDSA P-256 key there with mode 0600. Creation is atomic and exclusive:
// the key is written to a temporary file and hard-linked into place, so a
// crash leaves no partial key and of two processes starting at once on a
// shared directory both end up with the same key.
func LoadOrCreateServerKey(path string) (*ServerSigner, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return parseServerKey(path, data)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("signing: reading server key: %w", err)
	}

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signing: generating server key: %w", err)
	}
	pemBytes, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		return nil, fmt.Errorf("signing: encoding server key: %w", err)
	}
	if err := writeNewFile(path, pemBytes); errors.Is(err, fs.ErrExist) {
		// Another process created it first: use theirs.
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("signing: reading server key: %w", err)
		}
		return parseServerKey(path, data)
	} else if err != nil {
		return nil, fmt.Errorf("signing: writing server key: %w", err)
	}
	return NewServerSigner(priv)
}

// writeNewFile writes data to path with mode 0600 unless path exists
// (then the error wraps fs.ErrExist).
func writeNewFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Create(path, 0o600, atomicfile.Bytes(data))
}

func parseServerKey(path string, data []byte) (*ServerSigner, error) {
	key, err := cryptoutils.UnmarshalPEMToPrivateKey(data, nil)
	if err != nil {
		return nil, fmt.Errorf("signing: server key %s: %w", path, err)
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing: server key %s is %T, want ECDSA P-256", path, key)
	}
	return NewServerSigner(priv)
}

// NewServerSigner wraps an ECDSA P-256 private key.
func NewServerSigner(priv *ecdsa.PrivateKey) (*ServerSigner, error) {
	if priv == nil || priv.Curve != elliptic.P256() {
		return nil, errors.New("signing: server key must be ECDSA P-256")
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	pk, err := newPublicKey("server", priv.Public())
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	d, err := priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	secret, err := hkdf.Extract(sha256.New, d, []byte("dml server key secret v1"))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return &ServerSigner{sv: sv, pub: priv.Public(), pubPEM: pk.pem, hint: pk.hint, secret: secret}, nil
}

// DeriveKey returns a 32-byte secret key for purpose, derived from the
// server's private key (HKDF-SHA256): the same on every replica that
// shares the key, different for every purpose, and telling nothing of the
// private key. Replacing the server key changes every derived key.
func (s *ServerSigner) DeriveKey(purpose string) []byte {
	k, err := hkdf.Expand(sha256.New, s.secret, purpose, 32)
	if err != nil {
		panic("signing: HKDF expand of 32 bytes failed: " + err.Error()) // cannot happen for 32 bytes of SHA-256
	}
	return k
}

// PublicKeyPEM is the server's public key as a PEM "PUBLIC KEY" block: all
// an auditor needs to check what the server signed.
func (s *ServerSigner) PublicKeyPEM() []byte { return bytes.Clone(s.pubPEM) }

// Public returns the server's public key.
func (s *ServerSigner) Public() crypto.PublicKey { return s.pub }

// KeyHint is the base64 SHA-256 of the public key's DER encoding, as in
// Sigstore bundles; it identifies the key in logs and checkpoints.
func (s *ServerSigner) KeyHint() string { return s.hint }

// SignBlob signs data as `cosign sign-blob` would: ECDSA over its SHA-256,
// ASN.1 DER, base64. Verify it with LoadPublicKey(PublicKeyPEM()) and
// VerifyBlobSignature.
func (s *ServerSigner) SignBlob(data []byte) (string, error) {
	sig, err := s.sv.SignMessage(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// SignDSSE wraps payload in a signed DSSE envelope and returns its JSON.
func (s *ServerSigner) SignDSSE(payloadType string, payload []byte) ([]byte, error) {
	env, err := sigdsse.WrapSigner(s.sv, payloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return env, nil
}

// SignStatement signs an in-toto Statement v1 about subjects as a DSSE
// envelope. predicate is marshalled to JSON and must be an object.
func (s *ServerSigner) SignStatement(predicateType string, predicate any, subjects ...Subject) ([]byte, error) {
	payload, err := marshalStatement(predicateType, predicate, subjects)
	if err != nil {
		return nil, err
	}
	return s.SignDSSE(InTotoPayloadType, payload)
}

// SignReceipt signs the admission receipt of an artifact: a DSSE envelope
// of an in-toto Statement v1 whose subject is the artifact (name and
// SHA-256 digest) and whose predicateType is PredicateAdmission.
func (s *ServerSigner) SignReceipt(subjectName string, subjectDigest digest.Digest, predicate any) ([]byte, error) {
	if err := checkSHA256(subjectDigest); err != nil {
		return nil, err
	}
	return s.SignStatement(PredicateAdmission, predicate, SubjectFor(subjectName, subjectDigest))
}

// VerifyReceipt checks an admission receipt with nothing but the server's
// public key: the DSSE signature, the statement type, the admission
// predicate type and that the subject is expected. It returns the
// statement; errors are *VerificationError (BadSignature, Malformed,
// SubjectMismatch).
func VerifyReceipt(pubPEM, envelopeJSON []byte, expected digest.Digest) (*Statement, error) {
	if err := checkSHA256(expected); err != nil {
		return nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(bytes.TrimSpace(pubPEM))
	if err != nil {
		return nil, fmt.Errorf("%w: server key: %w", ErrInvalidKey, err)
	}
	verifier, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: server key: %w", ErrInvalidKey, err)
	}
	var env envelope
	if err := json.Unmarshal(envelopeJSON, &env); err != nil {
		return nil, verr(Malformed, FormatDSSE, "", "receipt: %w", err)
	}
	if env.PayloadType != InTotoPayloadType {
		return nil, verr(Malformed, FormatDSSE, "", "receipt payloadType %q, want %q", env.PayloadType, InTotoPayloadType)
	}
	var payload []byte
	dv := sigdsse.WrapVerifier(verifier, sigdsse.WithExpectedPayloadType(InTotoPayloadType), sigdsse.WithDecodedPayload(&payload))
	if err := dv.VerifySignature(bytes.NewReader(envelopeJSON), nil); err != nil {
		return nil, verr(BadSignature, FormatDSSE, "", "receipt: %w", err)
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, verr(Malformed, FormatDSSE, "", "receipt statement: %w", err)
	}
	switch {
	case st.Type != StatementV1:
		return nil, verr(Malformed, FormatDSSE, "", "receipt statement type %q, want %s", st.Type, StatementV1)
	case st.PredicateType != PredicateAdmission:
		return nil, verr(Malformed, FormatDSSE, "", "predicateType %q is not an admission receipt", st.PredicateType)
	case !st.Names(expected):
		return nil, verr(SubjectMismatch, FormatDSSE, "", "receipt subjects %s do not include %s", describeSubjects(st.Subject), expected)
	}
	return &st, nil
}

func marshalStatement(predicateType string, predicate any, subjects []Subject) ([]byte, error) {
	if predicateType == "" {
		return nil, errors.New("signing: empty predicateType")
	}
	if len(subjects) == 0 {
		return nil, errors.New("signing: statement needs a subject")
	}
	raw, err := json.Marshal(predicate)
	if err != nil {
		return nil, fmt.Errorf("signing: predicate: %w", err)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("signing: predicate must be a JSON object")
	}
	return json.Marshal(Statement{Type: StatementV1, Subject: subjects, PredicateType: predicateType, Predicate: raw})
}

func checkSHA256(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return verr(Malformed, "", "", "digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return verr(Unsupported, "", "", "digest %s: only sha256 is supported", d)
	}
	return nil
}
