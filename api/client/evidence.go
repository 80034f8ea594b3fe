package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/opencontainers/go-digest"
)

// MaxEvidenceSize is the largest signature, bundle or attestation the
// server accepts (1 MiB). Larger evidence is refused with TOO_LARGE.
const MaxEvidenceSize = 1 << 20

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

// Admission is the server's admission decision about an artifact version.
type Admission struct {
	// State is quarantined, admitted or rejected.
	State string `json:"state"`
	// Unmet lists, in words, what the trust policy still needs.
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
	// JSON), or nil before admission. Check it with signing.VerifyReceipt
	// and the server's public key.
	Receipt json.RawMessage `json:"receipt,omitempty"`
}

// UnmarshalJSON turns the server's "receipt": null into a nil Receipt.
func (a *Admission) UnmarshalJSON(data []byte) error {
	type plain Admission // no methods: no recursion
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(p.Receipt), []byte("null")) {
		p.Receipt = nil
	}
	*a = Admission(p)
	return nil
}

// evidenceAnswer is the answer to a posted signature or attestation.
type evidenceAnswer struct {
	Evidence Evidence `json:"evidence"`
	Artifact Artifact `json:"artifact"`
}

// AddSignature posts a signature over the artifact's bytes: a bare base64
// signature as `cosign sign-blob --key` writes it, a Sigstore bundle
// (`--bundle`), or {"keyId","signature"} naming the trusted key. The server
// verifies it, stores it and re-decides admission; the artifact returned
// carries the new decision. Refusals are *Error with code
// SIGNATURE_INVALID, KEY_UNTRUSTED, SUBJECT_MISMATCH, MALFORMED or
// UNSUPPORTED; Detail then holds {"reason","keyId","format"}.
func (c *Client) AddSignature(ctx context.Context, name, version string, body []byte) (Evidence, Artifact, error) {
	return c.addEvidence(ctx, name, version, "signatures", body)
}

// AddAttestation posts an attestation: a DSSE envelope of an in-toto
// Statement (what `cosign attest-blob --key` writes), or a Sigstore bundle
// holding one. Otherwise as AddSignature.
func (c *Client) AddAttestation(ctx context.Context, name, version string, body []byte) (Evidence, Artifact, error) {
	return c.addEvidence(ctx, name, version, "attestations", body)
}

func (c *Client) addEvidence(ctx context.Context, name, version, action string, body []byte) (Evidence, Artifact, error) {
	path, err := artifactPath(name, version, action)
	if err != nil {
		return Evidence{}, Artifact{}, err
	}
	ct := "text/plain"
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		ct = "application/json"
	}
	var ans evidenceAnswer
	_, err = c.call(ctx, request{
		method: http.MethodPost, path: path,
		header: http.Header{"Content-Type": {ct}},
		body:   bytes.NewReader(body), size: int64(len(body)),
	}, &ans, http.StatusCreated)
	if err != nil {
		return Evidence{}, Artifact{}, err
	}
	return ans.Evidence, ans.Artifact, nil
}

// ListEvidence returns the evidence attached to an artifact version, in
// the order it was added.
func (c *Client) ListEvidence(ctx context.Context, name, version string) ([]Evidence, error) {
	path, err := artifactPath(name, version, "evidence")
	if err != nil {
		return nil, err
	}
	var list struct {
		Evidence []Evidence `json:"evidence"`
	}
	if _, err := c.call(ctx, request{method: http.MethodGet, path: path}, &list, http.StatusOK); err != nil {
		return nil, err
	}
	return list.Evidence, nil
}

// FetchEvidence returns the exact bytes of one piece of evidence, checked
// against d (evidence is addressed by the SHA-256 of its bytes), so that
// they can be verified offline.
func (c *Client) FetchEvidence(ctx context.Context, name, version string, d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("evidence digest: %w", err)
	}
	path, err := artifactPath(name, version, "evidence/"+url.PathEscape(d.String()))
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, header: http.Header{"Accept": {"*/*"}}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxEvidenceSize+1))
	if err != nil {
		return nil, fmt.Errorf("evidence %s: %w", d, err)
	}
	if len(data) > MaxEvidenceSize {
		return nil, fmt.Errorf("evidence %s: longer than %d bytes", d, MaxEvidenceSize)
	}
	if got := d.Algorithm().FromBytes(data); got != d {
		return nil, fmt.Errorf("evidence %s: the server sent bytes that hash to %s", d, got)
	}
	return data, nil
}
