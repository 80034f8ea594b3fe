package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// Event actions of the catalogue.
const (
	ActionArtifactPushed   = "artifact.pushed"
	ActionArtifactRetired  = "artifact.retired"
	ActionEvidenceAdded    = "evidence.added"
	ActionAdmissionDecided = "admission.decided"
	// ActionArtifactDeleted: a retention run deleted the version
	// (releases/retention); an admission before it is settled.
	ActionArtifactDeleted = "artifact.deleted"
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
	Digest          digest.Digest
	ArtifactName    string
	ArtifactVersion string
	ArtifactDigest  digest.Digest
	Kind            EvidenceKind
	// Format is how it arrived: "signature" (raw base64), "sigstore-bundle",
	// "dsse" or "cosign-oci-signature" (a cosign image signature pushed as
	// an OCI referrer; registry_evidence.go).
	Format    string
	MediaType string
	Size      int64
	// KeyID is the signer that verified it: a trusted key, or an identity
	// for keyless evidence.
	KeyID string
	// Keyless is set for keyless evidence: what the certificate and the
	// transparency log proved about its signer.
	Keyless *signing.KeylessSigner
	// PredicateType and Predicate are set for attestations.
	PredicateType string
	Predicate     json.RawMessage
	CreatedBy     string
	CreatedAt     time.Time
	// Claims are what it asserts (signing.VerifiedEvidence.Claims).
	// AddEvidence records where each was first presented
	// (ClaimPresentation); ListEvidence need not return them.
	Claims []digest.Digest
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
	State ArtifactState
	// Rule is the "match" of the policy rule that applied ("" if none).
	Rule string
	// Unmet lists, in words, what the policy still needs.
	Unmet []string
	// Reason explains a rejection.
	Reason string
	// PolicyVersion is the trust policy version the decision used.
	PolicyVersion int64
	// Evidence lists the evidence digests that satisfied the rule.
	Evidence []digest.Digest
	// Receipt is the server-signed DSSE envelope issued on admission.
	Receipt   json.RawMessage
	DecidedAt time.Time
}

// ErrVersionExists refuses other bytes for a version that exists.
var ErrVersionExists = errors.New("version exists with different content")

// ArtifactState is where an artifact stands in admission.
type ArtifactState string

const (
	StateQuarantined ArtifactState = "quarantined"
	StateAdmitted    ArtifactState = "admitted"
	StateRejected    ArtifactState = "rejected"
)

// Valid reports whether s is a known state.
func (s ArtifactState) Valid() bool {
	switch s {
	case StateQuarantined, StateAdmitted, StateRejected:
		return true
	}
	return false
}

// Artifact is name + version → one blob.
type Artifact struct {
	Name      string
	Version   string
	Digest    digest.Digest
	Size      int64
	MediaType string
	State     ArtifactState
	CreatedBy string
	CreatedAt time.Time
	// Admission is the latest admission decision; nil until the first
	// evaluation.
	Admission *Admission
	// RetiredAt is set once the artifact is retired: it stays, but no new
	// release may include it.
	RetiredAt *time.Time
	RetiredBy string
}

// ArtifactFilter selects artifacts for listing. Results are ordered by
// (name, version); Cursor is opaque and comes from the previous page.
type ArtifactFilter struct {
	Name   string
	State  ArtifactState
	Limit  int
	Cursor string
}

// Errors of the catalogue.
var (
	// ErrNotAdmitted refuses content that has not passed admission.
	ErrNotAdmitted = errors.New("not admitted")
	// ErrArtifactRetired refuses a retired artifact where a new use of it
	// would begin (joining a release).
	ErrArtifactRetired = errors.New("artifact retired")
)

// Deployments answers, for a deployment agent's read, whether a release
// (not cancelled) that is authorised for deployment to one of envs
// includes name:version. The release lifecycle answers it; the
// composition root wires it in.
type Deployments interface {
	DeployableTo(ctx context.Context, name, version string, envs []string) (bool, error)
}
