package wire

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/opencontainers/go-digest"
)

// Artifact is an artifact version: the answer to a push, a read and a
// retirement, and the item of a listing.
type Artifact struct {
	Name      string        `json:"name"`
	Version   string        `json:"version"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
	// State is quarantined, admitted or rejected.
	State     string    `json:"state"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
	// RetiredAt is set once the version is retired: it stays, but no new
	// release may include it.
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
	RetiredBy string     `json:"retiredBy,omitempty"`
	// Admission is the admission decision: what the trust policy still
	// needs, or the signed receipt once admitted. The server always sends
	// it.
	Admission *Admission `json:"admission,omitempty"`
}

// Admission is the server's admission decision about an artifact version.
type Admission struct {
	// State is quarantined, admitted or rejected (the artifact's).
	State string `json:"state"`
	// Unmet lists, in words, what the trust policy still needs; [] when
	// nothing.
	Unmet []string `json:"unmet"`
	// Reason sums the decision up in one sentence.
	Reason string `json:"reason,omitempty"`
	// Rule is the match pattern of the policy rule that applied.
	Rule string `json:"rule,omitempty"`
	// PolicyVersion is the trust policy version of the decision.
	PolicyVersion int64 `json:"policyVersion,omitempty"`
	// Evidence lists the digests of the evidence the decision rests on.
	Evidence  []digest.Digest `json:"evidence,omitempty"`
	DecidedAt *time.Time      `json:"decidedAt,omitempty"`
	// Receipt is the server-signed admission receipt (a DSSE envelope, as
	// JSON), sent as null before admission and decoded as nil. Check it
	// with signing.VerifyReceipt and the server's public key.
	Receipt json.RawMessage `json:"receipt"`
}

// UnmarshalJSON turns "receipt": null into a nil Receipt, as it was
// before it was encoded.
func (a *Admission) UnmarshalJSON(data []byte) error {
	type plain Admission // no methods: no recursion
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	if bytes.Equal(p.Receipt, []byte("null")) {
		p.Receipt = nil
	}
	*a = Admission(p)
	return nil
}

// ArtifactPage is one page of GET /artifacts, ordered by name and version.
type ArtifactPage struct {
	Artifacts []Artifact `json:"artifacts"`
	// NextCursor fetches the next page; "" on the last one.
	NextCursor string `json:"nextCursor"`
}
