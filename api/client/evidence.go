package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/dmlproject/dml/api/wire"
	"github.com/opencontainers/go-digest"
)

// MaxEvidenceSize is the largest signature, bundle or attestation the
// server accepts (1 MiB). Larger evidence is refused with TOO_LARGE.
const MaxEvidenceSize = 1 << 20

// Evidence is the client of the signatures and attestations attached to
// artifact versions.
type Evidence struct{ c *Client }

// AddSignature posts a signature over the artifact's bytes: a bare base64
// signature as `cosign sign-blob --key` writes it, a Sigstore bundle
// (`--bundle`), or {"keyId","signature"} naming the trusted key. The server
// verifies it, stores it and re-decides admission; the artifact returned
// carries the new decision. Refusals are *Error with code
// SIGNATURE_INVALID, KEY_UNTRUSTED, SUBJECT_MISMATCH, MALFORMED or
// UNSUPPORTED, and for keyless bundles CERTIFICATE_UNTRUSTED,
// IDENTITY_MISMATCH, CERTIFICATE_EXPIRED_AT_SIGNING, TLOG_ENTRY_MISSING,
// TLOG_PROOF_INVALID or TIMESTAMP_MISSING; Detail then holds a
// wire.VerificationDetail.
func (x Evidence) AddSignature(ctx context.Context, name, version string, body []byte) (wire.Evidence, wire.Artifact, error) {
	return x.add(ctx, name, version, "signatures", body)
}

// AddAttestation posts an attestation: a DSSE envelope of an in-toto
// Statement (what `cosign attest-blob --key` writes), or a Sigstore bundle
// holding one. Otherwise as AddSignature.
func (x Evidence) AddAttestation(ctx context.Context, name, version string, body []byte) (wire.Evidence, wire.Artifact, error) {
	return x.add(ctx, name, version, "attestations", body)
}

func (x Evidence) add(ctx context.Context, name, version, action string, body []byte) (wire.Evidence, wire.Artifact, error) {
	path, err := artifactPath(name, version, action)
	if err != nil {
		return wire.Evidence{}, wire.Artifact{}, err
	}
	ct := "text/plain"
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		ct = "application/json"
	}
	var ans wire.EvidenceAdded
	_, err = x.c.call(ctx, request{
		method: http.MethodPost, path: path,
		header: http.Header{"Content-Type": {ct}},
		body:   bytes.NewReader(body), size: int64(len(body)),
	}, &ans, http.StatusCreated)
	if err != nil {
		return wire.Evidence{}, wire.Artifact{}, err
	}
	return ans.Evidence, ans.Artifact, nil
}

// List returns the evidence attached to an artifact version, in the order
// it was added.
func (x Evidence) List(ctx context.Context, name, version string) ([]wire.Evidence, error) {
	path, err := artifactPath(name, version, "evidence")
	if err != nil {
		return nil, err
	}
	var list wire.EvidenceList
	if _, err := x.c.call(ctx, request{method: http.MethodGet, path: path}, &list, http.StatusOK); err != nil {
		return nil, err
	}
	return list.Evidence, nil
}

// Fetch returns the exact bytes of one piece of evidence, checked against
// d (evidence is addressed by the SHA-256 of its bytes), so that they can
// be verified offline.
func (x Evidence) Fetch(ctx context.Context, name, version string, d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("evidence digest: %w", err)
	}
	path, err := artifactPath(name, version, "evidence/"+url.PathEscape(d.String()))
	if err != nil {
		return nil, err
	}
	resp, err := x.c.do(ctx, request{method: http.MethodGet, path: path, header: http.Header{"Accept": {"*/*"}}})
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
