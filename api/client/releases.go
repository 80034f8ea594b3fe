package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Release states, in process order.
const (
	ReleasePlanning  = "planning"
	ReleaseBuilding  = "building"
	ReleaseReleased  = "released"
	ReleaseDeploying = "deploying"
	ReleaseDeployed  = "deployed"
	ReleaseReview    = "review"
	ReleaseClosed    = "closed"
	ReleaseCancelled = "cancelled"
)

// Gate names; a deploy gate is "deploy:" + environment (see DeployGate).
const (
	GatePlan  = "plan"
	GateBuild = "build"
	GateClose = "close"
)

// DeployGate names the deploy gate of an environment.
func DeployGate(env string) string { return "deploy:" + env }

// Decisions on a gate.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Deployment statuses.
const (
	DeploymentInProgress = "in_progress"
	DeploymentSucceeded  = "succeeded"
	DeploymentFailed     = "failed"
	DeploymentRolledBack = "rolled_back"
)

// Window is the planned deployment window.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// PlanDetails are the plan fields sent under "plan".
type PlanDetails struct {
	Description string  `json:"description"`
	Window      *Window `json:"window,omitempty"`
	BackoutPlan string  `json:"backoutPlan"`
	Risk        string  `json:"risk"`
}

// PlanRequest is a release's plan, as sent on creation and by SetPlan.
type PlanRequest struct {
	// ChangeRef is the change record that authorises the release.
	ChangeRef string `json:"changeRef"`
	Title     string `json:"title"`
	// Environments are deployed to in this order.
	Environments []string    `json:"environments"`
	Plan         PlanDetails `json:"plan"`
}

// ReleaseArtifactRef names an artifact version to include in a release.
type ReleaseArtifactRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// GateSetting is a gate's quorum: how many distinct approvers it needs.
type GateSetting struct {
	Approvals int `json:"approvals"`
}

// CreateReleaseRequest plans a new release (release managers).
type CreateReleaseRequest struct {
	Name string `json:"name"`
	PlanRequest
	Artifacts []ReleaseArtifactRef `json:"artifacts"`
	// Gates sets quorums by gate name ("plan", "build", "deploy:ENV",
	// "close"); unset gates need one approval.
	Gates map[string]GateSetting `json:"gates,omitempty"`
}

// Plan is a release's plan as the server stores it. Its canonical JSON
// is hashed into Release.PlanDigest.
type Plan struct {
	ChangeRef    string   `json:"changeRef"`
	Title        string   `json:"title"`
	Description  string   `json:"description"`
	Environments []string `json:"environments"`
	Window       *Window  `json:"window,omitempty"`
	BackoutPlan  string   `json:"backoutPlan"`
	Risk         string   `json:"risk"`
}

// ReleaseArtifact is an artifact version in a release, with the digest it
// had when it was attached.
type ReleaseArtifact struct {
	Name      string        `json:"name"`
	Version   string        `json:"version"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
	CreatedBy string        `json:"createdBy"`
}

// Approval is one decision on a gate, bound to the digest decided on.
type Approval struct {
	Gate     string        `json:"gate"`
	Decision string        `json:"decision"`
	Digest   digest.Digest `json:"digest"`
	Comment  string        `json:"comment"`
	By       string        `json:"by"`
	TokenID  string        `json:"tokenId,omitempty"`
	At       time.Time     `json:"at"`
	// Discarded approvals stay on record but no longer count (the plan
	// changed, or the gate was rejected).
	Discarded bool `json:"discarded,omitempty"`
}

// Deployment is a deployment agent's record of one rollout.
type Deployment struct {
	ID              string          `json:"id"`
	Environment     string          `json:"environment"`
	Target          string          `json:"target"`
	Status          string          `json:"status"`
	StartedAt       time.Time       `json:"startedAt"`
	FinishedAt      *time.Time      `json:"finishedAt,omitempty"`
	Notes           string          `json:"notes"`
	VerifiedDigests []digest.Digest `json:"verifiedDigests"`
	By              string          `json:"by"`
	UpdatedAt       time.Time       `json:"updatedAt"`
}

// Review is the post-implementation review.
type Review struct {
	Outcome       string    `json:"outcome"`
	Summary       string    `json:"summary"`
	Incidents     []string  `json:"incidents"`
	ObjectivesMet bool      `json:"objectivesMet"`
	By            string    `json:"by"`
	At            time.Time `json:"at"`
}

// Gate is one gate of a release as the server shows it.
type Gate struct {
	Gate     string `json:"gate"`
	Required int    `json:"required"`
	Received int    `json:"received"`
	// Approvers are the principals whose approvals count now.
	Approvers []string `json:"approvers"`
	// ExpectedDigest is the digest an approval must name now (for a gate
	// already passed: the digest it was authorised for); "" when it is
	// not settled yet.
	ExpectedDigest digest.Digest `json:"expectedDigest"`
	Authorized     bool          `json:"authorized"`
	// Open gates can be decided in the release's current state.
	Open bool `json:"open"`
}

// Release is a release record with its gates and the actions it allows.
type Release struct {
	Name              string            `json:"name"`
	State             string            `json:"state"`
	Plan              Plan              `json:"plan"`
	PlanDigest        digest.Digest     `json:"planDigest"`
	Artifacts         []ReleaseArtifact `json:"artifacts"`
	Approvals         []Approval        `json:"approvals"`
	ManifestDigest    digest.Digest     `json:"manifestDigest,omitempty"`
	ManifestSignature string            `json:"manifestSignature,omitempty"`
	SealedAt          *time.Time        `json:"sealedAt,omitempty"`
	Deployments       []Deployment      `json:"deployments"`
	Review            *Review           `json:"review,omitempty"`
	ReviewDigest      digest.Digest     `json:"reviewDigest,omitempty"`
	LastRejection     *Approval         `json:"lastRejection,omitempty"`
	CreatedBy         string            `json:"createdBy"`
	CreatedAt         time.Time         `json:"createdAt"`
	UpdatedAt         time.Time         `json:"updatedAt"`
	Revision          int64             `json:"revision"`
	// Gates lists every gate in process order: plan, build, deploy:ENV
	// per environment, close.
	Gates []Gate `json:"gates"`
	// AllowedActions are what can be done now ("set-plan",
	// "approve:plan", "deploy", "cancel", ...).
	AllowedActions []string `json:"allowedActions"`
}

// Gate returns the named gate, or false.
func (r Release) Gate(name string) (Gate, bool) {
	for _, g := range r.Gates {
		if g.Gate == name {
			return g, true
		}
	}
	return Gate{}, false
}

// ReleaseFilter selects releases to list. Zero fields select everything.
type ReleaseFilter struct {
	State string
	// Limit is the page size; 0 lets the server choose.
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// ReleasePage is one page of a release listing, ordered by name.
type ReleasePage struct {
	Releases []Release `json:"releases"`
	// NextCursor fetches the next page; "" on the last one.
	NextCursor string `json:"nextCursor"`
}

// ApprovalRequest is an approver's decision on a gate. Digest must be the
// gate's ExpectedDigest: an approval of anything else is refused with
// STALE_APPROVAL. A rejection needs a Comment.
type ApprovalRequest struct {
	Gate     string        `json:"gate"`
	Decision string        `json:"decision"`
	Digest   digest.Digest `json:"digest"`
	Comment  string        `json:"comment"`
}

// DeploymentRequest records a deployment (deployers of the environment).
type DeploymentRequest struct {
	Environment string `json:"environment"`
	Target      string `json:"target"`
	// Status defaults to in_progress.
	Status string `json:"status,omitempty"`
	Notes  string `json:"notes"`
	// VerifiedDigests are the digests the agent checked before deploying
	// (the manifest's or the artifacts').
	VerifiedDigests []digest.Digest `json:"verifiedDigests"`
}

// DeploymentUpdate changes a deployment. Zero fields are left alone.
type DeploymentUpdate struct {
	Status          string          `json:"status,omitempty"`
	Notes           *string         `json:"notes,omitempty"`
	VerifiedDigests []digest.Digest `json:"verifiedDigests,omitempty"`
}

// DeploymentResult is a recorded or updated deployment and the release
// it changed.
type DeploymentResult struct {
	Deployment Deployment `json:"deployment"`
	Release    Release    `json:"release"`
}

// ReviewRequest files the post-implementation review. Outcome is one of
// successful, successful_with_issues, failed, rolled_back.
type ReviewRequest struct {
	Outcome       string   `json:"outcome"`
	Summary       string   `json:"summary"`
	Incidents     []string `json:"incidents"`
	ObjectivesMet bool     `json:"objectivesMet"`
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

// RetiredArtifact is an artifact version with its retirement.
type RetiredArtifact struct {
	Artifact
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
	RetiredBy string     `json:"retiredBy,omitempty"`
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

// releaseCall sends v as JSON with method to the release's action path and
// decodes the answer into out.
func (c *Client) releaseCall(ctx context.Context, method, name, action string, v, out any, want ...int) error {
	path, err := releasePath(name, action)
	if err != nil {
		return err
	}
	r, err := jsonRequest(method, path, v)
	if err != nil {
		return err
	}
	_, err = c.call(ctx, r, out, want...)
	return err
}

// CreateRelease plans a new release. A taken name is an *Error with code
// RELEASE_EXISTS.
func (c *Client) CreateRelease(ctx context.Context, req CreateReleaseRequest) (Release, error) {
	if req.Artifacts == nil {
		req.Artifacts = []ReleaseArtifactRef{}
	}
	r, err := jsonRequest(http.MethodPost, "/api/v1/releases", req)
	if err != nil {
		return Release{}, err
	}
	var rel Release
	_, err = c.call(ctx, r, &rel, http.StatusCreated)
	return rel, err
}

// Release returns one release.
func (c *Client) Release(ctx context.Context, name string) (Release, error) {
	path, err := releasePath(name, "")
	if err != nil {
		return Release{}, err
	}
	var rel Release
	_, err = c.call(ctx, request{method: http.MethodGet, path: path}, &rel, http.StatusOK)
	return rel, err
}

// ListReleases returns one page of releases, ordered by name.
func (c *Client) ListReleases(ctx context.Context, f ReleaseFilter) (ReleasePage, error) {
	q := url.Values{}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	var page ReleasePage
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/releases", query: q}, &page, http.StatusOK)
	return page, err
}

// AllReleases lists every release the filter selects, following cursors
// from f.Cursor on; f.Limit is the page size. It stops at the first error,
// which it yields.
func (c *Client) AllReleases(ctx context.Context, f ReleaseFilter) iter.Seq2[Release, error] {
	return allPages(f.Cursor, func(cursor string) ([]Release, string, error) {
		f.Cursor = cursor
		page, err := c.ListReleases(ctx, f)
		return page.Releases, page.NextCursor, err
	})
}

// SetPlan replaces a planning release's plan. Plan approvals given for the
// old plan are discarded.
func (c *Client) SetPlan(ctx context.Context, name string, req PlanRequest) (Release, error) {
	var rel Release
	err := c.releaseCall(ctx, http.MethodPut, name, "plan", req, &rel, http.StatusOK)
	return rel, err
}

// SetArtifacts replaces the artifacts of a planning or building release.
func (c *Client) SetArtifacts(ctx context.Context, name string, refs []ReleaseArtifactRef) (Release, error) {
	if refs == nil {
		refs = []ReleaseArtifactRef{}
	}
	var rel Release
	err := c.releaseCall(ctx, http.MethodPut, name, "artifacts", refs, &rel, http.StatusOK)
	return rel, err
}

// Decide records an approval or rejection of a gate (approvers).
func (c *Client) Decide(ctx context.Context, name string, req ApprovalRequest) (Release, error) {
	var rel Release
	err := c.releaseCall(ctx, http.MethodPost, name, "approvals", req, &rel, http.StatusOK)
	return rel, err
}

// RecordDeployment records a deployment to one of the release's
// environments (deployers whose token covers it).
func (c *Client) RecordDeployment(ctx context.Context, name string, req DeploymentRequest) (DeploymentResult, error) {
	if req.VerifiedDigests == nil {
		req.VerifiedDigests = []digest.Digest{}
	}
	var res DeploymentResult
	err := c.releaseCall(ctx, http.MethodPost, name, "deployments", req, &res, http.StatusCreated)
	return res, err
}

// UpdateDeployment changes a deployment's status, notes or verified
// digests.
func (c *Client) UpdateDeployment(ctx context.Context, name, id string, upd DeploymentUpdate) (DeploymentResult, error) {
	if id == "" || strings.Contains(id, "/") {
		return DeploymentResult{}, fmt.Errorf("%w: deployment id %q", ErrInvalidReference, id)
	}
	var res DeploymentResult
	err := c.releaseCall(ctx, http.MethodPatch, name, "deployments/"+url.PathEscape(id), upd, &res, http.StatusOK)
	return res, err
}

// FileReview files (or re-files) the post-implementation review of a
// deployed release.
func (c *Client) FileReview(ctx context.Context, name string, req ReviewRequest) (Release, error) {
	if req.Incidents == nil {
		req.Incidents = []string{}
	}
	var rel Release
	err := c.releaseCall(ctx, http.MethodPost, name, "review", req, &rel, http.StatusOK)
	return rel, err
}

// CancelRelease cancels a release before its first deployment.
func (c *Client) CancelRelease(ctx context.Context, name, reason string) (Release, error) {
	var rel Release
	err := c.releaseCall(ctx, http.MethodPost, name, "cancel", map[string]string{"reason": reason}, &rel, http.StatusOK)
	return rel, err
}

// ReleaseManifest fetches a sealed release's manifest. The bytes are
// checked against the announced digest; the signature is returned as the
// server sent it, for the caller to verify.
func (c *Client) ReleaseManifest(ctx context.Context, name string) (ReleaseManifest, error) {
	path, err := releasePath(name, "manifest")
	if err != nil {
		return ReleaseManifest{}, err
	}
	h := http.Header{"Accept": {"application/vnd.oci.image.index.v1+json, */*"}}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, header: h})
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

// RetireArtifact retires an artifact version (admins and release
// managers): nothing is deleted, but no new release may include it and
// open build gates refuse it.
func (c *Client) RetireArtifact(ctx context.Context, name, version string) (RetiredArtifact, error) {
	path, err := artifactPath(name, version, "retire")
	if err != nil {
		return RetiredArtifact{}, err
	}
	var a RetiredArtifact
	_, err = c.call(ctx, request{method: http.MethodPost, path: path}, &a, http.StatusOK)
	return a, err
}
