package signing

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/internal/strictjson"
)

// What cosign v2 pushes to a registry (see testdata/cosign-oci/README.md).
//
// `cosign sign --key` stores a container-image signature as an OCI image
// manifest with one layer of media type CosignSimpleSigningMediaType: the
// layer blob is the simple-signing payload, which names the signed manifest
// by digest, and its CosignSignatureAnnotation is the base64 signature over
// those exact bytes. With --registry-referrers-mode=oci-1-1 (and
// COSIGN_EXPERIMENTAL=1) the manifest's subject is the signed manifest and
// its config.mediaType — not a top-level artifactType — is
// CosignSignatureArtifactType; otherwise it is tagged sha256-HEX.sig.
//
// `cosign attest --key` pushes layers of media type CosignDSSEMediaType
// (tagged sha256-HEX.att; the layer annotation predicateType names the
// predicate), and `cosign attest|sign --new-bundle-format` pushes a
// Sigstore bundle layer in a referrer manifest. Those layer blobs are
// evidence VerifyEvidence reads as they are.
const (
	CosignSignatureArtifactType  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	CosignSimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	CosignSignatureAnnotation    = "dev.cosignproject.cosign/signature"
	CosignDSSEMediaType          = "application/vnd.dsse.envelope.v1+json"

	// CosignSignatureType is critical.type of a cosign simple-signing payload.
	CosignSignatureType = "cosign container image signature"
)

// MediaTypeCosignOCISignature is the media type of the evidence
// CosignOCISignatureEvidence makes:
//
//	{"mediaType":"application/vnd.dml.cosign.oci-signature.v1+json",
//	 "payload":"<base64 of the exact simple-signing payload bytes>",
//	 "signature":"<base64 signature over those bytes>"}
//
// It exists because a registry splits a cosign signature in two — the
// payload is a blob, the signature an annotation in the manifest that
// points at it — while evidence must be one blob that verifies offline,
// from its own bytes, long after the manifest is gone.
const MediaTypeCosignOCISignature = "application/vnd.dml.cosign.oci-signature.v1+json"

// cosignOCISignature is the JSON of MediaTypeCosignOCISignature evidence.
// The field order is the canonical encoding.
type cosignOCISignature struct {
	MediaType string `json:"mediaType"`
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

// simpleSigningPayload is the payload cosign signs for a container image:
// the "simple signing" format of containers/image, with cosign's type.
//
//	{"critical":{"identity":{"docker-reference":"registry/repo"},
//	             "image":{"docker-manifest-digest":"sha256:..."},
//	             "type":"cosign container image signature"},
//	 "optional":null}
type simpleSigningPayload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// CosignOCISignatureEvidence makes one self-contained piece of evidence
// (MediaTypeCosignOCISignature) out of a cosign container-image signature
// as a registry holds it: payload is the blob of the manifest's
// CosignSimpleSigningMediaType layer, byte for byte, and signatureB64 that
// layer's CosignSignatureAnnotation. VerifyEvidence recognises the result.
//
// The encoding is canonical — fixed field order, no white space, the
// signature re-encoded as padded standard base64 as cosign writes it — so a
// signature pushed twice has one EvidenceDigest and is stored once.
//
// The signature is not verified here, but evidence that could never verify
// is refused: a signature that is not base64 or a payload that is not a
// cosign simple-signing payload is a *VerificationError, Malformed.
func CosignOCISignatureEvidence(payload []byte, signatureB64 string) ([]byte, error) {
	sig, err := decodeBase64(signatureB64)
	if err != nil {
		return nil, verr(Malformed, FormatCosignOCI, "", "signature is not base64: %w", err)
	}
	if _, err := parseSimpleSigning(payload, ""); err != nil {
		return nil, err
	}
	return json.Marshal(cosignOCISignature{
		MediaType: MediaTypeCosignOCISignature,
		Payload:   base64.StdEncoding.EncodeToString(payload),
		Signature: base64.StdEncoding.EncodeToString(sig),
	})
}

// verifyCosignOCISignature verifies MediaTypeCosignOCISignature evidence as
// `cosign verify --key` does: the signature over the payload bytes, then
// that the payload names the manifest digest held. The claimed
// docker-reference is not checked (cosign does not either): what is
// signed is the digest, and the DML names artifacts itself.
func (v *verification) verifyCosignOCISignature(evidence []byte) (VerifiedEvidence, error) {
	var e cosignOCISignature
	// Unknown fields are refused: a field this version does not know (a
	// certificate, say) must not be ignored while the rest verifies.
	// (detectFormat has already refused trailing data.)
	dec := json.NewDecoder(bytes.NewReader(evidence))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return VerifiedEvidence{}, verr(Malformed, FormatCosignOCI, "", "%w", err)
	}
	payload, err := decodeBase64(e.Payload)
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, FormatCosignOCI, "", "payload is not base64: %w", err)
	}
	sig, err := decodeBase64(e.Signature)
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, FormatCosignOCI, "", "signature is not base64: %w", err)
	}

	// The payload is small and in hand, so every key type, Ed25519
	// included, verifies the message itself; the artifact is never read.
	var key *PublicKey
	for _, k := range v.keys {
		if k.verifyMessage(payload, sig) == nil {
			key = k
			break
		}
	}
	if key == nil {
		return VerifiedEvidence{}, v.noKeyVerified(FormatCosignOCI, false)
	}
	keyID := key.id

	p, err := parseSimpleSigning(payload, keyID)
	if err != nil {
		return VerifiedEvidence{}, err
	}
	// Hex comparison ignores case, as for in-toto subjects.
	if signed := p.Critical.Image.DockerManifestDigest; !strings.EqualFold(signed, string(v.artifact)) {
		return VerifiedEvidence{}, verr(SubjectMismatch, FormatCosignOCI, keyID, "payload signs %s, not %s", signed, v.artifact)
	}
	return VerifiedEvidence{Kind: KindSignature, KeyID: keyID, Claims: []digest.Digest{claimOf(key, claimSimpleSigning, payload)}}, nil
}

// parseSimpleSigning reads a cosign simple-signing payload. Errors are
// Malformed and name keyID, the key that signed the payload, if known.
func parseSimpleSigning(payload []byte, keyID string) (*simpleSigningPayload, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, verr(Malformed, FormatCosignOCI, keyID, "empty payload")
	}
	var p simpleSigningPayload
	if err := strictjson.Unmarshal(payload, &p); err != nil {
		return nil, verr(Malformed, FormatCosignOCI, keyID, "simple-signing payload: %w", err)
	}
	switch {
	case p.Critical.Type != CosignSignatureType:
		return nil, verr(Malformed, FormatCosignOCI, keyID, "critical.type %q, want %q", p.Critical.Type, CosignSignatureType)
	case p.Critical.Image.DockerManifestDigest == "":
		return nil, verr(Malformed, FormatCosignOCI, keyID, "payload has no critical.image.docker-manifest-digest")
	}
	return &p, nil
}
