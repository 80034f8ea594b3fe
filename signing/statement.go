package signing

import (
	"encoding/json"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Media and type URIs this package understands.
const (
	// InTotoPayloadType is the DSSE payloadType of an in-toto Statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// StatementV01 is written by cosign v2.
	StatementV01 = "https://in-toto.io/Statement/v0.1"
	// StatementV1 is written by cosign v3 and by this package.
	StatementV1 = "https://in-toto.io/Statement/v1"

	// PredicateTestResult is the in-toto test-result predicate; its
	// predicate.result must be "PASSED" for an artifact to be admitted.
	PredicateTestResult = "https://in-toto.io/attestation/test-result/v0.1"
	// PredicateSLSAProvenanceV1 is SLSA provenance v1; the builder is
	// predicate.runDetails.builder.id.
	PredicateSLSAProvenanceV1 = "https://slsa.dev/provenance/v1"
	// PredicateSLSAProvenanceV02 is SLSA provenance v0.2; the builder is
	// predicate.builder.id.
	PredicateSLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	// PredicateAdmission is the predicate of the receipts the server signs
	// when it admits an artifact.
	PredicateAdmission = "https://dml.dev/admission/v1"
)

// Admission is the predicate (PredicateAdmission) of an admission
// receipt: what the server signs when it admits an artifact, and what a
// client reads back after VerifyReceipt.
type Admission struct {
	Name          string          `json:"name"`
	Version       string          `json:"version"`
	Rule          string          `json:"rule"`
	PolicyVersion int64           `json:"policyVersion"`
	Evidence      []digest.Digest `json:"evidence"`
	// Keyless names, for each piece of Evidence signed keylessly, the
	// identity the certificate and the transparency log proved.
	Keyless    []KeylessEvidence `json:"keyless,omitempty"`
	AdmittedAt string            `json:"admittedAt"`
	Server     string            `json:"server"`
}

// KeylessEvidence is one piece of keyless evidence in a receipt: its
// digest, the identity (signer ID) it counted for, and what was proven of
// its signer.
type KeylessEvidence struct {
	Evidence digest.Digest `json:"evidence"`
	Identity string        `json:"identity"`
	KeylessSigner
}

// Statement is an in-toto Statement (v0.1 or v1; the two share this shape).
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate,omitempty"`
}

// Subject is one artifact a Statement is about.
type Subject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// SubjectFor makes the subject naming an artifact by its SHA-256 digest.
func SubjectFor(name string, d digest.Digest) Subject {
	return Subject{Name: name, Digest: map[string]string{string(d.Algorithm()): d.Encoded()}}
}

// Names reports whether one of the statement's subjects carries digest d.
// Hex comparison ignores case: in-toto says lowercase, some tools do not.
func (s *Statement) Names(d digest.Digest) bool {
	for _, sub := range s.Subject {
		if v, ok := sub.Digest[string(d.Algorithm())]; ok && strings.EqualFold(v, d.Encoded()) {
			return true
		}
	}
	return false
}
