package provenance

import (
	"time"
)

// FormatVersion names this document format.
const FormatVersion = "https://dml.dev/provenance/v1"

// Document is a provenance document.
type Document struct {
	Format    string     `json:"format"`
	Artifact  Artifact   `json:"artifact"`
	TrustKeys []TrustKey `json:"trustKeys"`
	// TrustedRoots and Identities are the Sigstore roots and workload
	// identities keyless evidence verified with (absent when there is
	// none).
	TrustedRoots []TrustedRoot `json:"trustedRoots,omitempty"`
	Identities   []Identity    `json:"identities,omitempty"`
	Evidence     []Evidence    `json:"evidence"`
	Admission    *Admission    `json:"admission,omitempty"`
	Releases     []Release     `json:"releases"`
	Log          Log           `json:"log"`
}

// Artifact is the artifact version, as pushed.
type Artifact struct {
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	MediaType string    `json:"mediaType"`
	State     string    `json:"state"`
	PushedBy  string    `json:"pushedBy"`
	PushedAt  time.Time `json:"pushedAt"`
	LogIndex  int64     `json:"logIndex"`
	// SHA512 is the content's SHA-512 digest, given when keyless evidence
	// may name the artifact by it (npm provenance does). Verification
	// checks it against the content when the content is given.
	SHA512 string `json:"sha512,omitempty"`
}

// TrustKey is a key that verified some of the evidence.
type TrustKey struct {
	ID        string    `json:"id"`
	PublicKey string    `json:"publicKey"`
	AddedBy   string    `json:"addedBy"`
	AddedAt   time.Time `json:"addedAt"`
	LogIndex  int64     `json:"logIndex"`
}

// TrustedRoot is the version of a Sigstore trusted_root.json that keyless
// evidence was verified against, with the audit record that installed it.
type TrustedRoot struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	// Document is the exact bytes installed (base64 in JSON).
	Document []byte    `json:"document"`
	AddedBy  string    `json:"addedBy"`
	AddedAt  time.Time `json:"addedAt"`
	LogIndex int64     `json:"logIndex"`
}

// Identity is a workload identity trusted to sign keylessly, as added.
type Identity struct {
	ID            string            `json:"id"`
	Root          string            `json:"root"`
	Issuer        string            `json:"issuer"`
	Subject       string            `json:"subject,omitempty"`
	SubjectRegexp string            `json:"subjectRegexp,omitempty"`
	Claims        map[string]string `json:"claims,omitempty"`
	AddedBy       string            `json:"addedBy"`
	AddedAt       time.Time         `json:"addedAt"`
	LogIndex      int64             `json:"logIndex"`
}

// Keyless is what the certificate and the transparency log proved about
// the signer of keyless evidence: the identity's root, the certificate's
// issuer and subject, the pinned claims that matched, and the Rekor
// entry's index and integrated time.
type Keyless struct {
	Root           string            `json:"root"`
	Issuer         string            `json:"issuer"`
	Subject        string            `json:"subject"`
	Claims         map[string]string `json:"claims,omitempty"`
	TlogIndex      int64             `json:"tlogIndex"`
	IntegratedTime time.Time         `json:"integratedTime,omitzero"`
}

// Evidence is one signature or attestation with its exact bytes.
type Evidence struct {
	Digest        string    `json:"digest"`
	Kind          string    `json:"kind"`
	Format        string    `json:"format"`
	KeyID         string    `json:"keyId"`
	Keyless       *Keyless  `json:"keyless,omitempty"`
	PredicateType string    `json:"predicateType,omitempty"`
	Result        string    `json:"result,omitempty"`
	Content       []byte    `json:"content"`
	AddedBy       string    `json:"addedBy"`
	AddedAt       time.Time `json:"addedAt"`
	LogIndex      int64     `json:"logIndex"`
}

// Admission is the admission decision and the server-signed receipt.
type Admission struct {
	State         string `json:"state"`
	Rule          string `json:"rule"`
	PolicyVersion int64  `json:"policyVersion"`
	// Receipt is the exact bytes of the server-signed DSSE envelope
	// (base64 in JSON, so re-encoding the document cannot change them).
	Receipt   []byte    `json:"receipt,omitempty"`
	DecidedAt time.Time `json:"decidedAt"`
	LogIndex  int64     `json:"logIndex"`
}

// Release is a release that contains the artifact.
type Release struct {
	Name              string       `json:"name"`
	State             string       `json:"state"`
	ChangeRef         string       `json:"changeRef"`
	PlanDigest        string       `json:"planDigest"`
	CreatedBy         string       `json:"createdBy"`
	CreatedAt         time.Time    `json:"createdAt"`
	CreatedLogIndex   int64        `json:"createdLogIndex"`
	Manifest          []byte       `json:"manifest,omitempty"`
	ManifestDigest    string       `json:"manifestDigest,omitempty"`
	ManifestSignature string       `json:"manifestSignature,omitempty"`
	Approvals         []Approval   `json:"approvals"`
	Deployments       []Deployment `json:"deployments"`
	Review            *Review      `json:"review,omitempty"`
}

// Approval is one gate decision.
type Approval struct {
	Gate     string    `json:"gate"`
	Decision string    `json:"decision"`
	Digest   string    `json:"digest"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	// Sealed is the manifest digest when this approval sealed the release.
	Sealed   string `json:"sealed,omitempty"`
	LogIndex int64  `json:"logIndex"`
}

// Deployment is the latest record of one deployment.
type Deployment struct {
	ID          string    `json:"id"`
	Environment string    `json:"environment"`
	Target      string    `json:"target"`
	Status      string    `json:"status"`
	By          string    `json:"by"`
	At          time.Time `json:"at"`
	LogIndex    int64     `json:"logIndex"`
}

// Review is the post-implementation review.
type Review struct {
	Outcome       string    `json:"outcome"`
	Summary       string    `json:"summary"`
	Incidents     []string  `json:"incidents"`
	ObjectivesMet bool      `json:"objectivesMet"`
	By            string    `json:"by"`
	At            time.Time `json:"at"`
	Digest        string    `json:"digest"`
	LogIndex      int64     `json:"logIndex"`
}

// Log holds the signed checkpoint and every record the items refer to,
// each with its inclusion proof.
type Log struct {
	Checkpoint string  `json:"checkpoint"`
	Entries    []Entry `json:"entries"`
}

// Entry is one audit record and its inclusion proof (base64 hashes).
type Entry struct {
	Index  int64    `json:"index"`
	Record string   `json:"record"`
	Proof  []string `json:"proof"`
}
