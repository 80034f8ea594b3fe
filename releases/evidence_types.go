package releases

import (
	"encoding/json"
	"time"

	"github.com/opencontainers/go-digest"
)

// Event actions recorded by Metadata implementations.
const (
	ActionArtifactPushed   = "artifact.pushed"
	ActionEvidenceAdded    = "evidence.added"
	ActionAdmissionDecided = "admission.decided"
)

// EvidenceKind says what a piece of evidence is.
type EvidenceKind string

const (
	EvidenceSignature   EvidenceKind = "signature"
	EvidenceAttestation EvidenceKind = "attestation"
)

// Evidence is a verified signature or attestation attached to an artifact.
// Its bytes are in the blob store under Digest; the row keeps what
// verification established, so admission can be re-evaluated without
// re-verifying.
type Evidence struct {
	Digest          digest.Digest `json:"digest"`
	ArtifactName    string        `json:"artifactName"`
	ArtifactVersion string        `json:"artifactVersion"`
	ArtifactDigest  digest.Digest `json:"artifactDigest"`
	Kind            EvidenceKind  `json:"kind"`
	// Format is how it arrived: "signature" (raw base64), "sigstore-bundle",
	// "dsse" or "cosign-oci-signature" (a cosign image signature pushed as
	// an OCI referrer; registry_evidence.go).
	Format    string `json:"format"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// KeyID is the trusted key that verified it.
	KeyID string `json:"keyId"`
	// PredicateType and Predicate are set for attestations.
	PredicateType string          `json:"predicateType,omitempty"`
	Predicate     json.RawMessage `json:"predicate,omitempty"`
	CreatedBy     string          `json:"createdBy"`
	CreatedAt     time.Time       `json:"createdAt"`
	// Claims are what it asserts (signing.VerifiedEvidence.Claims).
	// AddEvidence records where each was first presented
	// (ClaimPresentation); ListEvidence need not return them.
	Claims []digest.Digest `json:"-"`
}

// ClaimPresentation is where a claim was first presented: the artifact
// whose evidence carried it, and the principal who presented it. It never
// changes afterwards, even if that artifact goes away.
type ClaimPresentation struct {
	Claim           digest.Digest `json:"claim"`
	ArtifactName    string        `json:"artifactName"`
	ArtifactVersion string        `json:"artifactVersion"`
	PresentedBy     string        `json:"presentedBy"`
	PresentedAt     time.Time     `json:"presentedAt"`
}

// Admission is the latest admission decision about an artifact.
type Admission struct {
	State ArtifactState `json:"state"`
	// Rule is the "match" of the policy rule that applied ("" if none).
	Rule string `json:"rule,omitempty"`
	// Unmet lists, in words, what the policy still needs.
	Unmet []string `json:"unmet"`
	// Reason explains a rejection.
	Reason string `json:"reason,omitempty"`
	// PolicyVersion is the trust policy version the decision used.
	PolicyVersion int64 `json:"policyVersion,omitempty"`
	// Evidence lists the evidence digests that satisfied the rule.
	Evidence []digest.Digest `json:"evidence,omitempty"`
	// Receipt is the server-signed DSSE envelope issued on admission.
	Receipt   json.RawMessage `json:"receipt,omitempty"`
	DecidedAt time.Time       `json:"decidedAt"`
}
