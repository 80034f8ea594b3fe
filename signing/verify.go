package signing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/dmlproject/dml/internal/strictjson"
)

// MaxEd25519Content bounds how much content is read into memory to verify
// an Ed25519 signature over an artifact. Pure Ed25519 signs the whole
// message, so it cannot be checked from a digest nor while streaming.
const MaxEd25519Content = 64 << 20

// Kind says what a piece of evidence vouches for.
type Kind string

const (
	// KindSignature: a signer vouches for the artifact's bytes.
	KindSignature Kind = "signature"
	// KindAttestation: a signer makes a typed claim (an in-toto predicate)
	// about the artifact.
	KindAttestation Kind = "attestation"
)

// VerifiedEvidence is what a verification proved. It is also the input of
// Evaluate, so callers that stored it can re-evaluate the policy later
// (for example after a key was revoked) without verifying again.
type VerifiedEvidence struct {
	Kind   Kind   `json:"kind"`
	Format Format `json:"format"`
	// KeyID is the trusted key whose signature verified.
	KeyID string `json:"keyId"`
	// Digest is the SHA-256 of the exact evidence bytes submitted, under
	// which the server stores them.
	Digest digest.Digest `json:"digest"`
	// PredicateType and Predicate are set for attestations.
	PredicateType string          `json:"predicateType,omitempty"`
	Predicate     json.RawMessage `json:"predicate,omitempty"`
	// Statement is the whole verified in-toto statement, for attestations.
	Statement *Statement `json:"-"`
	// Claims name what the evidence asserts, whatever its encoding: one
	// per trusted key whose signature verified, each naming that key's
	// material (not its ID, which an admin could register twice) and the
	// message it signed — the artifact's digest for a signature over the
	// artifact (bare, keyed or in a bundle), PAE(payloadType, payload) for
	// a DSSE envelope (bare or in a bundle), the simple-signing payload for
	// a cosign image signature. Re-encoding evidence, wrapping it in a
	// bundle, or making another signature with the same key over the same
	// message changes its bytes and Digest, never its Claims; dropping
	// signatures from an envelope leaves a subset. The server binds
	// evidence to where it was first presented by its claims.
	Claims []digest.Digest `json:"claims,omitempty"`
	// Keyless is set for evidence signed with a Fulcio certificate
	// (KeylessVerifier): the identity KeyID names, as the certificate and
	// the transparency log proved it.
	Keyless *KeylessSigner `json:"keyless,omitempty"`
}

// Claim messages: what a verified signature was made over.
const (
	claimArtifact      = "artifact-digest"
	claimDSSE          = "dsse-pae"
	claimSimpleSigning = "cosign-simple-signing"
)

// claimOf names the claim "the key with this material signed message of
// this kind". Fields are length-prefixed so that no two triples collide.
func claimOf(k *PublicKey, kind string, message []byte) digest.Digest {
	h := sha256.New()
	fmt.Fprintf(h, "dml-evidence-claim-v1\n%d:%s\n%d:%s\n%d:", len(k.hint), k.hint, len(kind), kind, len(message))
	h.Write(message)
	return digest.NewDigest(digest.SHA256, h)
}

// keyByID returns the key of v with that ID.
func (v *verification) keyByID(id string) *PublicKey {
	for _, k := range v.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// EvidenceDigest is the content address of evidence: the SHA-256 of the
// exact bytes submitted.
func EvidenceDigest(evidence []byte) digest.Digest {
	return digest.SHA256.FromBytes(evidence)
}

// VerifyEvidence verifies a signature, Sigstore bundle, DSSE attestation or
// cosign OCI image signature (CosignOCISignatureEvidence) about the
// artifact with SHA-256 digest artifact, trying every trusted key.
// The format is recognised from the bytes. Keys are tried in order (a
// bundle's key hint only moves its key to the front); the first that
// verifies is reported, also for a DSSE envelope signed by several. If no
// trusted key verifies the evidence the reason is UntrustedKey.
// Transparency-log entries and timestamps in bundles are not checked:
// trust comes from the administrator's keys.
//
// The artifact is not re-read: ECDSA and RSA signatures are verified
// against the digest, and attestations and cosign OCI signatures sign a
// payload they carry. content, which may be nil, is read only when an
// Ed25519 key must check a signature over the artifact's bytes (see
// VerifyBlobSignature).
func VerifyEvidence(trusted []*PublicKey, artifact digest.Digest, evidence []byte, content io.Reader) (VerifiedEvidence, error) {
	return verifyEvidence(&verification{keys: trusted, artifact: artifact, content: content}, evidence)
}

// VerifyEvidenceWithKey is VerifyEvidence with the one key the caller
// names. A signature that does not verify with it is BadSignature.
func VerifyEvidenceWithKey(key *PublicKey, artifact digest.Digest, evidence []byte, content io.Reader) (VerifiedEvidence, error) {
	if key == nil {
		return VerifiedEvidence{}, errors.New("signing: nil key")
	}
	return verifyEvidence(&verification{keys: []*PublicKey{key}, named: true, artifact: artifact, content: content}, evidence)
}

// VerifyBlobSignature verifies sig, the base64 signature `cosign sign-blob
// --key` writes, over the artifact whose SHA-256 digest is artifact.
//
// ECDSA and RSA signatures are verified from the digest alone. Pure Ed25519
// signs the whole message, so it cannot be: with an Ed25519 key, content
// must supply the artifact's bytes (at most MaxEd25519Content; they are
// checked against artifact), and with nil content the error's reason is
// Unsupported. content is not read for other key types and may be nil.
func VerifyBlobSignature(key *PublicKey, artifact digest.Digest, sig []byte, content io.Reader) error {
	if key == nil {
		return errors.New("signing: nil key")
	}
	v := &verification{keys: []*PublicKey{key}, named: true, artifact: artifact, content: content}
	if err := v.checkArtifact(); err != nil {
		return err
	}
	raw, err := decodeBase64(string(sig))
	if err != nil {
		return verr(Malformed, FormatSignature, "", "signature is not base64: %w", err)
	}
	_, err = v.verifyArtifactSignature(FormatSignature, raw, "")
	return err
}

// verification is one verification in progress: the keys to try, the
// artifact, and its content read at most once.
type verification struct {
	keys        []*PublicKey
	named       bool // the caller named the key: failure is BadSignature
	artifact    digest.Digest
	artifactSum []byte

	content     io.Reader
	contentRead bool
	contentData []byte
	contentErr  error
}

func (v *verification) checkArtifact() error {
	if err := checkSHA256(v.artifact); err != nil {
		return err
	}
	sum, err := hex.DecodeString(v.artifact.Encoded())
	if err != nil {
		return verr(Malformed, "", "", "artifact digest %q: %w", v.artifact, err)
	}
	v.artifactSum = sum
	return nil
}

func verifyEvidence(v *verification, evidence []byte) (VerifiedEvidence, error) {
	if err := v.checkArtifact(); err != nil {
		return VerifiedEvidence{}, err
	}
	format, err := detectFormat(evidence)
	if err != nil {
		return VerifiedEvidence{}, &VerificationError{Reason: Malformed, Err: err}
	}
	var ev VerifiedEvidence
	switch format {
	case FormatSignature:
		ev, err = v.verifyRawSignature(evidence)
	case FormatBundle:
		ev, err = v.verifyBundle(evidence)
	case FormatDSSE:
		var env envelope
		if err := json.Unmarshal(evidence, &env); err != nil {
			return VerifiedEvidence{}, verr(Malformed, FormatDSSE, "", "%w", err)
		}
		ev, err = v.verifyEnvelope(FormatDSSE, &env, "")
	case FormatCosignOCI:
		ev, err = v.verifyCosignOCISignature(evidence)
	}
	if err != nil {
		return VerifiedEvidence{}, err
	}
	ev.Format = format
	ev.Digest = EvidenceDigest(evidence)
	return ev, nil
}

func (v *verification) verifyRawSignature(evidence []byte) (VerifiedEvidence, error) {
	sig, err := decodeBase64(string(evidence))
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, FormatSignature, "", "signature is not base64: %w", err)
	}
	keyID, err := v.verifyArtifactSignature(FormatSignature, sig, "")
	if err != nil {
		return VerifiedEvidence{}, err
	}
	return VerifiedEvidence{Kind: KindSignature, KeyID: keyID, Claims: v.artifactClaim(keyID)}, nil
}

// artifactClaim is the claim of a signature over the artifact.
func (v *verification) artifactClaim(keyID string) []digest.Digest {
	return []digest.Digest{claimOf(v.keyByID(keyID), claimArtifact, []byte(v.artifact.String()))}
}

func (v *verification) verifyBundle(evidence []byte) (VerifiedEvidence, error) {
	var b bundle
	if err := json.Unmarshal(evidence, &b); err != nil {
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "%w", err)
	}
	if !bundleMediaTypes[b.MediaType] {
		if strings.HasPrefix(b.MediaType, "application/vnd.dev.sigstore.bundle") {
			return VerifiedEvidence{}, verr(Unsupported, FormatBundle, "", "bundle media type %q", b.MediaType)
		}
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "media type %q is not a Sigstore bundle", b.MediaType)
	}
	vm := b.VerificationMaterial
	switch {
	case vm == nil:
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "bundle has no verificationMaterial")
	case len(vm.Certificate) > 0 || len(vm.X509CertificateChain) > 0:
		// Keyless (Fulcio) bundles need certificate-chain, identity and
		// transparency-log checks this package does not do. Refuse them
		// rather than verify the signature with a key nobody trusted.
		return VerifiedEvidence{}, verr(Unsupported, FormatBundle, "", "the bundle is signed with a certificate (keyless): it is verified against trusted roots and identities (KeylessVerifier), not keys")
	case vm.PublicKey == nil:
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "bundle has no publicKey verification material")
	}
	hint := vm.PublicKey.Hint

	switch {
	case b.MessageSignature != nil && b.DSSEEnvelope != nil:
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "bundle holds both a messageSignature and a dsseEnvelope")
	case b.DSSEEnvelope != nil:
		return v.verifyEnvelope(FormatBundle, b.DSSEEnvelope, hint)
	case b.MessageSignature == nil:
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "bundle holds neither a messageSignature nor a dsseEnvelope")
	}

	ms := b.MessageSignature
	if ms.MessageDigest == nil {
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "messageSignature has no messageDigest")
	}
	if ms.MessageDigest.Algorithm != "SHA2_256" {
		return VerifiedEvidence{}, verr(Unsupported, FormatBundle, "", "message digest algorithm %q: only SHA2_256 is supported", ms.MessageDigest.Algorithm)
	}
	md, err := decodeBase64(ms.MessageDigest.Digest)
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "messageDigest.digest is not base64: %w", err)
	}
	if !bytes.Equal(md, v.artifactSum) {
		return VerifiedEvidence{}, verr(SubjectMismatch, FormatBundle, "", "bundle signs sha256:%x, not %s", md, v.artifact)
	}
	sig, err := decodeBase64(ms.Signature)
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "signature is not base64: %w", err)
	}
	keyID, err := v.verifyArtifactSignature(FormatBundle, sig, hint)
	if err != nil {
		return VerifiedEvidence{}, err
	}
	return VerifiedEvidence{Kind: KindSignature, KeyID: keyID, Claims: v.artifactClaim(keyID)}, nil
}

// verifyEnvelope verifies a DSSE envelope carrying an in-toto statement:
// first the signature over PAE(payloadType, payload), then that the
// statement names the artifact.
func (v *verification) verifyEnvelope(f Format, env *envelope, hint string) (VerifiedEvidence, error) {
	if env.PayloadType != InTotoPayloadType {
		return VerifiedEvidence{}, verr(Unsupported, f, "", "DSSE payloadType %q, want %q", env.PayloadType, InTotoPayloadType)
	}
	payload, err := decodeBase64(env.Payload)
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "DSSE payload is not base64: %w", err)
	}
	if len(env.Signatures) == 0 {
		return VerifiedEvidence{}, verr(Malformed, f, "", "DSSE envelope has no signatures")
	}
	sigs := make([][]byte, len(env.Signatures))
	for i, s := range env.Signatures {
		if sigs[i], err = decodeBase64(s.Sig); err != nil {
			return VerifiedEvidence{}, verr(Malformed, f, "", "DSSE signature %d is not base64: %w", i, err)
		}
	}
	pae := ssldsse.PAE(env.PayloadType, payload)

	// The first key that verifies is reported; every key that verifies
	// makes a claim, so that dropping signatures cannot make it new.
	var (
		keyID  string
		claims []digest.Digest
	)
	for _, k := range orderKeys(v.keys, hint) {
		for _, sig := range sigs {
			if k.verifyMessage(pae, sig) == nil {
				if keyID == "" {
					keyID = k.id
				}
				if c := claimOf(k, claimDSSE, pae); !slices.Contains(claims, c) {
					claims = append(claims, c)
				}
				break
			}
		}
	}
	if keyID == "" {
		return VerifiedEvidence{}, v.noKeyVerified(f, len(sigs) > 1)
	}

	var st Statement
	if err := strictjson.Unmarshal(payload, &st); err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, keyID, "in-toto statement: %w", err)
	}
	switch {
	case st.Type != StatementV01 && st.Type != StatementV1:
		return VerifiedEvidence{}, verr(Unsupported, f, keyID, "statement type %q, want %s or %s", st.Type, StatementV1, StatementV01)
	case st.PredicateType == "":
		return VerifiedEvidence{}, verr(Malformed, f, keyID, "statement has no predicateType")
	case len(st.Subject) == 0:
		return VerifiedEvidence{}, verr(Malformed, f, keyID, "statement has no subject")
	case !st.Names(v.artifact):
		return VerifiedEvidence{}, verr(SubjectMismatch, f, keyID, "statement subjects %s do not include %s", describeSubjects(st.Subject), v.artifact)
	}
	ev := statementEvidence(&st)
	ev.KeyID, ev.Claims = keyID, claims
	return ev, nil
}

// statementEvidence is what a verified in-toto statement is evidence of.
// cosign v3's signature (`cosign sign|sign-blob --new-bundle-format`) is a
// statement of type PredicateCosignSign with an empty predicate: a
// signature over its subjects, which has no predicate. Any other
// statement is an attestation of its predicate.
func statementEvidence(st *Statement) VerifiedEvidence {
	if st.PredicateType == PredicateCosignSign {
		return VerifiedEvidence{Kind: KindSignature, Statement: st}
	}
	return VerifiedEvidence{Kind: KindAttestation, PredicateType: st.PredicateType, Predicate: st.Predicate, Statement: st}
}

// verifyArtifactSignature verifies sig over the artifact's bytes with each
// key in turn and returns the ID of the first that verifies.
func (v *verification) verifyArtifactSignature(f Format, sig []byte, hint string) (string, error) {
	var needContent []string
	for _, k := range orderKeys(v.keys, hint) {
		if !k.isEd25519() {
			if k.verifyDigest(v.artifactSum, sig) == nil {
				return k.id, nil
			}
			continue
		}
		// Ed25519 signatures are always 64 bytes; anything else cannot be
		// one, and there is no need to read the content to say so.
		if len(sig) != 64 {
			continue
		}
		msg, err := v.readContent(f)
		if errors.Is(err, errNoContent) {
			needContent = append(needContent, k.id)
			continue
		}
		if err != nil {
			return "", err
		}
		if k.verifyMessage(msg, sig) == nil {
			return k.id, nil
		}
	}
	if len(needContent) > 0 {
		return "", verr(Unsupported, f, "", "Ed25519 key %s signs the whole file, so its signature cannot be verified from the SHA-256 digest alone; provide the content", strings.Join(needContent, ", "))
	}
	return "", v.noKeyVerified(f, false)
}

func (v *verification) noKeyVerified(f Format, several bool) error {
	what := "the signature"
	if several {
		what = "any of the signatures"
	}
	if v.named {
		return verr(BadSignature, f, v.keys[0].id, "%s does not verify with this key", what)
	}
	if len(v.keys) == 0 {
		return verr(UntrustedKey, f, "", "no key is trusted")
	}
	ids := make([]string, len(v.keys))
	for i, k := range v.keys {
		ids[i] = k.id
	}
	return verr(UntrustedKey, f, "", "no trusted key verifies %s (tried %s)", what, strings.Join(ids, ", "))
}

var errNoContent = errors.New("no content")

// readContent reads the artifact's bytes once, bounded, and checks them
// against the digest so a signature is never verified over other bytes.
func (v *verification) readContent(f Format) ([]byte, error) {
	if v.contentRead {
		return v.contentData, v.contentErr
	}
	v.contentRead = true
	if v.content == nil {
		v.contentErr = errNoContent
		return nil, v.contentErr
	}
	data, err := io.ReadAll(io.LimitReader(v.content, MaxEd25519Content+1))
	switch {
	case err != nil:
		v.contentErr = fmt.Errorf("signing: reading content of %s: %w", v.artifact, err)
	case len(data) > MaxEd25519Content:
		v.contentErr = verr(Unsupported, f, "", "content of %s is larger than %d bytes, the most an Ed25519 signature is verified over", v.artifact, MaxEd25519Content)
	default:
		if sum := sha256.Sum256(data); !bytes.Equal(sum[:], v.artifactSum) {
			v.contentErr = verr(SubjectMismatch, f, "", "content hashes to sha256:%x, not %s", sum, v.artifact)
		} else {
			v.contentData = data
		}
	}
	return v.contentData, v.contentErr
}

// orderKeys puts the key whose hint matches first: the hint is a
// shortcut, never a reason to trust a key.
func orderKeys(keys []*PublicKey, hint string) []*PublicKey {
	if hint == "" {
		return keys
	}
	for i, k := range keys {
		if k.hint == hint && i > 0 {
			ordered := make([]*PublicKey, 0, len(keys))
			ordered = append(ordered, k)
			ordered = append(ordered, keys[:i]...)
			return append(ordered, keys[i+1:]...)
		}
	}
	return keys
}

func describeSubjects(subjects []Subject) string {
	parts := make([]string, 0, len(subjects))
	for _, s := range subjects {
		if d, ok := s.Digest["sha256"]; ok {
			parts = append(parts, "sha256:"+d)
		} else {
			parts = append(parts, s.Name+" (no sha256)")
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}
