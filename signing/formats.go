package signing

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/dmlproject/dml/internal/strictjson"
)

// Format is the shape of a piece of evidence.
type Format string

const (
	// FormatSignature is a bare base64 signature over the artifact's bytes,
	// as `cosign sign-blob --key` writes it.
	FormatSignature Format = "signature"
	// FormatBundle is a Sigstore bundle (v0.1 to v0.3 JSON) holding either a
	// message signature or a DSSE envelope.
	FormatBundle Format = "sigstore-bundle"
	// FormatDSSE is a DSSE envelope, as `cosign attest-blob` writes it.
	FormatDSSE Format = "dsse"
	// FormatCosignOCI is a cosign container-image signature taken out of a
	// registry and made self-contained (MediaTypeCosignOCISignature; see
	// CosignOCISignatureEvidence).
	FormatCosignOCI Format = "cosign-oci-signature"
)

// Sigstore bundle media types. v0.1 and v0.2 differ from v0.3 only in
// transparency-log and certificate details this package does not use.
var bundleMediaTypes = map[string]bool{
	"application/vnd.dev.sigstore.bundle.v0.3+json":        true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3": true,
	"application/vnd.dev.sigstore.bundle+json;version=0.2": true,
	"application/vnd.dev.sigstore.bundle+json;version=0.1": true,
}

// envelope is a DSSE envelope as JSON.
type envelope struct {
	PayloadType string              `json:"payloadType"`
	Payload     string              `json:"payload"`
	Signatures  []envelopeSignature `json:"signatures"`
}

type envelopeSignature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// bundle holds the parts of a Sigstore bundle's protobuf-JSON that matter
// here. Transparency-log entries and timestamps are ignored: trust comes
// from the administrator's keys, not from a log.
type bundle struct {
	MediaType            string `json:"mediaType"`
	VerificationMaterial *struct {
		PublicKey *struct {
			Hint string `json:"hint"`
		} `json:"publicKey"`
		Certificate          json.RawMessage `json:"certificate"`
		X509CertificateChain json.RawMessage `json:"x509CertificateChain"`
	} `json:"verificationMaterial"`
	MessageSignature *struct {
		MessageDigest *struct {
			Algorithm string `json:"algorithm"`
			Digest    string `json:"digest"`
		} `json:"messageDigest"`
		Signature string `json:"signature"`
	} `json:"messageSignature"`
	DSSEEnvelope *envelope `json:"dsseEnvelope"`
}

// detectFormat tells a bare signature from the JSON formats. A JSON object
// whose mediaType is MediaTypeCosignOCISignature is a cosign OCI signature,
// one with another mediaType a bundle, one with a payloadType a DSSE
// envelope.
func detectFormat(evidence []byte) (Format, error) {
	trimmed := bytes.TrimSpace(evidence)
	if len(trimmed) == 0 {
		return "", errors.New("empty evidence")
	}
	if trimmed[0] != '{' {
		return FormatSignature, nil
	}
	var probe struct {
		MediaType   *string `json:"mediaType"`
		PayloadType *string `json:"payloadType"`
	}
	// Every JSON format is refused when another parser could read it
	// differently (a key twice, a second value): the envelope verified
	// here must be the one every other verifier sees.
	if err := strictjson.Unmarshal(trimmed, &probe); err != nil {
		return "", err
	}
	switch {
	case probe.MediaType != nil && *probe.MediaType == MediaTypeCosignOCISignature:
		return FormatCosignOCI, nil
	case probe.MediaType != nil:
		return FormatBundle, nil
	case probe.PayloadType != nil:
		return FormatDSSE, nil
	}
	return "", errors.New("JSON is neither a Sigstore bundle or cosign OCI signature (no mediaType) nor a DSSE envelope (no payloadType)")
}

// decodeBase64 accepts standard and URL-safe base64, padded or not: the
// DSSE spec allows either alphabet, and tools differ on padding.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty base64 value")
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	return enc.Strict().DecodeString(strings.TrimRight(s, "="))
}
