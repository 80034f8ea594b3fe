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
	// "sigstore-bundle", "dsse", or "cosign-oci-signature" (a cosign image
	// signature pushed over /v2/: its payload and signature together).
	Format    string `json:"format"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// KeyID is the trusted key that verified it on the server.
	KeyID string `json:"keyId"`
	// PredicateType is set for attestations.
	PredicateType string `json:"predicateType,omitempty"`
	// Result is the test result (PASSED, FAILED) of a test-result
	// attestation.
	Result    string    `json:"result,omitempty"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
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
