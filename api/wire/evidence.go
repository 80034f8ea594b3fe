package wire

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Evidence is a verified signature or attestation attached to an artifact
// version. The server stores its exact bytes under Digest.
type Evidence struct {
	Digest digest.Digest `json:"digest"`
	// Kind is "signature" or "attestation".
	Kind string `json:"kind"`
	// Format is how it arrived: "signature" (a bare base64 signature),
	// "sigstore-bundle", "dsse", "cosign-oci-signature" (a cosign image
	// signature pushed over /v2/: its payload and signature together) or
	// "cosign-oci-keyless-signature" (the same, signed keylessly: its
	// payload and a Sigstore bundle made of the layer's annotations).
	Format    string `json:"format"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// KeyID is the signer that verified it on the server: a trusted key,
	// or for keyless evidence the trusted identity.
	KeyID string `json:"keyId"`
	// Keyless is set for keyless evidence (a Sigstore bundle signed with a
	// Fulcio certificate): what was proven of its signer.
	Keyless *KeylessSigner `json:"keyless,omitempty"`
	// PredicateType is set for attestations.
	PredicateType string `json:"predicateType,omitempty"`
	// Result is the test result (PASSED, FAILED) of a test-result
	// attestation.
	Result    string    `json:"result,omitempty"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// KeylessSigner is what the certificate and the transparency log proved
// about the signer of keyless evidence.
type KeylessSigner struct {
	// Root is the trusted root the certificate chains to.
	Root string `json:"root"`
	// Issuer and Subject are the OIDC issuer and the workload identity
	// (the certificate's SAN) the certificate was issued for.
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	// Claims are the identity's pinned certificate extensions, all of
	// which matched.
	Claims map[string]string `json:"claims,omitempty"`
	// LogIndex and IntegratedTime are the Rekor entry's (IntegratedTime
	// absent when the time came from a timestamp authority).
	LogIndex       int64     `json:"logIndex"`
	IntegratedTime time.Time `json:"integratedTime,omitzero"`
}

// EvidenceList is the answer of GET .../evidence, in the order the
// evidence was added.
type EvidenceList struct {
	Evidence []Evidence `json:"evidence"`
}

// EvidenceAdded answers a posted signature or attestation: the evidence
// and the artifact with its new admission decision.
type EvidenceAdded struct {
	Artifact Artifact `json:"artifact"`
	Evidence Evidence `json:"evidence"`
}

// VerificationDetail is the detail of an error refusing evidence
// (SIGNATURE_INVALID, KEY_UNTRUSTED, SUBJECT_MISMATCH, ...): why, and
// which key and format, when known. (The server sends the keys sorted,
// as here.)
type VerificationDetail struct {
	Format string `json:"format,omitempty"`
	KeyID  string `json:"keyId,omitempty"`
	Reason string `json:"reason"`
}
