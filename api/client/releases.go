package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"

	"github.com/dmlproject/dml/api/wire"
	"github.com/opencontainers/go-digest"
)

// Releases is the client of releases: plans, gates and approvals,
// deployments, the review, and the sealed manifest.
type Releases struct{ c *Client }

// ReleaseFilter selects releases to list. Zero fields select everything.
type ReleaseFilter struct {
	State string
	// Limit is the page size; 0 lets the server choose.
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// ReleaseManifest is a sealed release's OCI image index.
type ReleaseManifest struct {
	// Body is the exact bytes the server stored and signed.
	Body []byte
	// Digest is Body's digest (Docker-Content-Digest), checked on receipt.
	Digest digest.Digest
	// Signature is the server's base64 ECDSA P-256 signature over Body
	// (X-Dml-Signature), verifiable with the server key.
	Signature string
	MediaType string
}

// releasePath is /api/v1/releases/NAME[/ACTION].
func releasePath(name, action string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return "", fmt.Errorf("%w: release name %q", ErrInvalidReference, name)
	}
	p := "/api/v1/releases/" + url.PathEscape(name)
	if action != "" {
		p += "/" + action
	}
	return p, nil
}

// send sends v as JSON with method to the release's action path and
// decodes the answer into out.
func (x Releases) send(ctx context.Context, method, name, action string, v, out any, want ...int) error {
	path, err := releasePath(name, action)
	if err != nil {
		return err
	}
	r, err := jsonRequest(method, path, v)
	if err != nil {
		return err
	}
	_, err = x.c.call(ctx, r, out, want...)
	return err
}

// Create plans a new release. A taken name is an *Error with code
// RELEASE_EXISTS.
func (x Releases) Create(ctx context.Context, req wire.CreateReleaseRequest) (wire.Release, error) {
	p, err := x.Plan(ctx, req)
	return p.Release, err
}

// Plan is Create, with the server's warnings about the release's
// artifacts that are not admitted yet.
func (x Releases) Plan(ctx context.Context, req wire.CreateReleaseRequest) (wire.PlannedRelease, error) {
	if req.Artifacts == nil {
		req.Artifacts = []wire.ReleaseArtifactRef{}
	}
	r, err := jsonRequest(http.MethodPost, "/api/v1/releases", req)
	if err != nil {
		return wire.PlannedRelease{}, err
	}
	var rel wire.PlannedRelease
	_, err = x.c.call(ctx, r, &rel, http.StatusCreated)
	return rel, err
}

// Get returns one release.
func (x Releases) Get(ctx context.Context, name string) (wire.Release, error) {
	path, err := releasePath(name, "")
	if err != nil {
		return wire.Release{}, err
	}
	var rel wire.Release
	_, err = x.c.call(ctx, request{method: http.MethodGet, path: path}, &rel, http.StatusOK)
	return rel, err
}

func (f ReleaseFilter) query() url.Values {
	q := url.Values{}
	setNonEmpty(q, "state", f.State)
	return q
}

var releaseList = list[wire.ReleasePage, wire.Release]{"/api/v1/releases",
	func(p wire.ReleasePage) ([]wire.Release, string) { return p.Releases, p.NextCursor }}

// List returns one page of releases, ordered by name.
func (x Releases) List(ctx context.Context, f ReleaseFilter) (wire.ReleasePage, error) {
	return releaseList.page(ctx, x.c, f.query(), f.Limit, f.Cursor)
}

// All lists every release the filter selects, following cursors from
// f.Cursor on; f.Limit is the page size. It stops at the first error,
// which it yields.
func (x Releases) All(ctx context.Context, f ReleaseFilter) iter.Seq2[wire.Release, error] {
	return releaseList.all(ctx, x.c, f.query(), f.Limit, f.Cursor)
}

// SetPlan replaces a planning release's plan. Plan approvals given for the
// old plan are discarded.
func (x Releases) SetPlan(ctx context.Context, name string, req wire.PlanRequest) (wire.Release, error) {
	p, err := x.Replan(ctx, name, req)
	return p.Release, err
}

// Replan is SetPlan, with the server's warnings about the release's
// artifacts that are not admitted yet.
func (x Releases) Replan(ctx context.Context, name string, req wire.PlanRequest) (wire.PlannedRelease, error) {
	var rel wire.PlannedRelease
	err := x.send(ctx, http.MethodPut, name, "plan", req, &rel, http.StatusOK)
	return rel, err
}

// SetArtifacts replaces the artifacts of a planning or building release.
func (x Releases) SetArtifacts(ctx context.Context, name string, refs []wire.ReleaseArtifactRef) (wire.Release, error) {
	p, err := x.PlanArtifacts(ctx, name, refs)
	return p.Release, err
}

// PlanArtifacts is SetArtifacts, with the server's warnings about the
// artifacts that are not admitted yet.
func (x Releases) PlanArtifacts(ctx context.Context, name string, refs []wire.ReleaseArtifactRef) (wire.PlannedRelease, error) {
	if refs == nil {
		refs = []wire.ReleaseArtifactRef{}
	}
	var rel wire.PlannedRelease
	err := x.send(ctx, http.MethodPut, name, "artifacts", refs, &rel, http.StatusOK)
	return rel, err
}

// Decide records an approval or rejection of a gate (approvers).
func (x Releases) Decide(ctx context.Context, name string, req wire.ApprovalRequest) (wire.Release, error) {
	d, err := x.DecideGate(ctx, name, req)
	return d.Release, err
}

// DecideGate is Decide, and says whether the approval had been counted
// before (the same approver, gate and digest: nothing changed).
func (x Releases) DecideGate(ctx context.Context, name string, req wire.ApprovalRequest) (wire.DecidedRelease, error) {
	var rel wire.DecidedRelease
	err := x.send(ctx, http.MethodPost, name, "approvals", req, &rel, http.StatusOK)
	return rel, err
}

// RecordDeployment records a deployment to one of the release's
// environments (deployers whose token covers it).
func (x Releases) RecordDeployment(ctx context.Context, name string, req wire.DeploymentRequest) (wire.DeploymentResult, error) {
	if req.VerifiedDigests == nil {
		req.VerifiedDigests = []digest.Digest{}
	}
	var res wire.DeploymentResult
	err := x.send(ctx, http.MethodPost, name, "deployments", req, &res, http.StatusCreated)
	return res, err
}

// UpdateDeployment changes a deployment's status, notes or verified
// digests; what upd leaves unset stays as it is.
func (x Releases) UpdateDeployment(ctx context.Context, name, id string, upd wire.DeploymentUpdate) (wire.DeploymentResult, error) {
	if id == "" || strings.Contains(id, "/") {
		return wire.DeploymentResult{}, fmt.Errorf("%w: deployment id %q", ErrInvalidReference, id)
	}
	var res wire.DeploymentResult
	err := x.send(ctx, http.MethodPatch, name, "deployments/"+url.PathEscape(id), upd, &res, http.StatusOK)
	return res, err
}

// FileReview files (or re-files) the post-implementation review of a
// deployed release.
func (x Releases) FileReview(ctx context.Context, name string, req wire.ReviewRequest) (wire.Release, error) {
	if req.Incidents == nil {
		req.Incidents = []string{}
	}
	var rel wire.Release
	err := x.send(ctx, http.MethodPost, name, "review", req, &rel, http.StatusOK)
	return rel, err
}

// Cancel cancels a release before its first deployment. The reason is
// required (REASON_REQUIRED) and kept in the audit log.
func (x Releases) Cancel(ctx context.Context, name, reason string) (wire.Release, error) {
	var rel wire.Release
	err := x.send(ctx, http.MethodPost, name, "cancel", wire.CancelRequest{Reason: reason}, &rel, http.StatusOK)
	return rel, err
}

// Manifest fetches a sealed release's manifest. The bytes are checked
// against the announced digest; the signature is returned as the server
// sent it, for the caller to verify.
func (x Releases) Manifest(ctx context.Context, name string) (ReleaseManifest, error) {
	path, err := releasePath(name, "manifest")
	if err != nil {
		return ReleaseManifest{}, err
	}
	h := http.Header{"Accept": {"application/vnd.oci.image.index.v1+json, */*"}}
	resp, err := x.c.do(ctx, request{method: http.MethodGet, path: path, header: h})
	if err != nil {
		return ReleaseManifest{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ReleaseManifest{}, fmt.Errorf("manifest of %s: unexpected status %s", name, resp.Status)
	}
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return ReleaseManifest{}, fmt.Errorf("manifest of %s: Docker-Content-Digest %q: %w", name, resp.Header.Get("Docker-Content-Digest"), err)
	}
	if !d.Algorithm().Available() {
		return ReleaseManifest{}, fmt.Errorf("manifest of %s: Docker-Content-Digest %s: unsupported algorithm", name, d)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse+1))
	if err != nil {
		return ReleaseManifest{}, fmt.Errorf("manifest of %s: %w", name, err)
	}
	if len(body) > maxJSONResponse {
		return ReleaseManifest{}, fmt.Errorf("manifest of %s: larger than %d bytes", name, maxJSONResponse)
	}
	if got := d.Algorithm().FromBytes(body); got != d {
		return ReleaseManifest{}, fmt.Errorf("manifest of %s: the bytes hash to %s, the server announced %s", name, got, d)
	}
	return ReleaseManifest{Body: body, Digest: d, Signature: resp.Header.Get("X-Dml-Signature"), MediaType: resp.Header.Get("Content-Type")}, nil
}

// RequestEmergency records an emergency change on a release (release
// managers): once its "emergency" gate is authorised, the release deploys
// outside its change window until req.Until.
func (x Releases) RequestEmergency(ctx context.Context, name string, req wire.EmergencyRequest) (wire.Release, error) {
	var rel wire.Release
	err := x.send(ctx, http.MethodPost, name, "emergency", req, &rel, http.StatusOK)
	return rel, err
}
