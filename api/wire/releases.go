package wire

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Release states, in process order (Release.State).
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

// Decisions on a gate (ApprovalRequest.Decision).
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Deployment statuses (Deployment.Status).
const (
	DeploymentInProgress = "in_progress"
	DeploymentSucceeded  = "succeeded"
	DeploymentFailed     = "failed"
	DeploymentRolledBack = "rolled_back"
)

// Requests.

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

// PlanRequest is a release's plan: the body of PUT /releases/{name}/plan,
// and part of CreateReleaseRequest.
type PlanRequest struct {
	// ChangeRef is the change record that authorises the release.
	ChangeRef string `json:"changeRef"`
	Title     string `json:"title"`
	// Environments are deployed to in this order.
	Environments []string    `json:"environments"`
	Plan         PlanDetails `json:"plan"`
}

// ReleaseArtifactRef names an artifact version to include in a release;
// the body of PUT /releases/{name}/artifacts is a list of them.
type ReleaseArtifactRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// GateSetting is a gate's quorum: how many distinct approvers it needs.
type GateSetting struct {
	Approvals int `json:"approvals"`
}

// CreateReleaseRequest is the body of POST /releases (release managers).
type CreateReleaseRequest struct {
	Name string `json:"name"`
	PlanRequest
	Artifacts []ReleaseArtifactRef `json:"artifacts"`
	// Gates sets quorums by gate name ("plan", "build", "deploy:ENV",
	// "close"); unset gates take the admin's defaults (GateDefaults), or
	// one approval.
	Gates map[string]GateSetting `json:"gates"`
}

// ApprovalRequest is the body of POST /releases/{name}/approvals: an
// approver's decision on a gate. Digest must be the gate's ExpectedDigest:
// an approval of anything else is refused with STALE_APPROVAL. A rejection
// needs a Comment.
type ApprovalRequest struct {
	Gate     string        `json:"gate"`
	Decision string        `json:"decision"`
	Digest   digest.Digest `json:"digest"`
	Comment  string        `json:"comment"`
}

// DeploymentRequest is the body of POST /releases/{name}/deployments
// (deployers of the environment).
type DeploymentRequest struct {
	Environment string `json:"environment"`
	Target      string `json:"target"`
	// Status "" is in_progress.
	Status string `json:"status"`
	Notes  string `json:"notes"`
	// VerifiedDigests are the digests the agent checked before deploying
	// (the manifest's or the artifacts').
	VerifiedDigests []digest.Digest `json:"verifiedDigests"`
}

// DeploymentUpdate is the body of PATCH
// /releases/{name}/deployments/{id}. What is not set is left alone: a
// Status of "", a null Notes, a null VerifiedDigests ([] clears them).
type DeploymentUpdate struct {
	Status          string          `json:"status"`
	Notes           *string         `json:"notes"`
	VerifiedDigests []digest.Digest `json:"verifiedDigests"`
}

// ReviewRequest is the body of POST /releases/{name}/review: the
// post-implementation review. Outcome is one of successful,
// successful_with_issues, failed, rolled_back.
type ReviewRequest struct {
	Outcome       string   `json:"outcome"`
	Summary       string   `json:"summary"`
	Incidents     []string `json:"incidents"`
	ObjectivesMet bool     `json:"objectivesMet"`
}

// CancelRequest is the (optional) body of POST /releases/{name}/cancel.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// Answers.

// Plan is a release's plan as the server stores it. Its canonical JSON,
// with the quorum of each of its gates, is hashed into Release.PlanDigest.
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
	TokenID  string        `json:"tokenId"`
	// Issuer and Subject: the approver's single sign-on identity, when
	// it signed in through a provider (omitted otherwise).
	Issuer  string    `json:"issuer,omitempty"`
	Subject string    `json:"subject,omitempty"`
	At      time.Time `json:"at"`
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
	// Issuer and Subject: the single sign-on identity of whoever
	// recorded it, when a person did (omitted otherwise).
	Issuer    string    `json:"issuer,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Emergency marks a deployment recorded outside the release's window
	// under its emergency change, whose reason it carries.
	Emergency       bool   `json:"emergency,omitempty"`
	EmergencyReason string `json:"emergencyReason,omitempty"`
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

// Edit records one change of a part of a release that a gate approves
// (Part is plan, artifacts or review): who changed it, and the digest the
// gate expected right after. Whoever edited a part cannot decide the gate
// that approves it.
type Edit struct {
	Part    string        `json:"part"`
	Digest  digest.Digest `json:"digest"`
	By      string        `json:"by"`
	TokenID string        `json:"tokenId"`
	At      time.Time     `json:"at"`
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

// Release is a release record with its gates and the actions it allows:
// the answer of every release route but the deployments'.
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
	// LastRejection is the latest rejection, shown until the next
	// approval round.
	LastRejection *Approval `json:"lastRejection,omitempty"`
	// Edits lists every change of the plan, the artifacts and the review,
	// oldest first, creation included.
	Edits []Edit `json:"edits"`
	// Emergency is the latest emergency change, if any.
	Emergency *Emergency `json:"emergency,omitempty"`
	CreatedBy string     `json:"createdBy"`
	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
	Revision  int64      `json:"revision"`
	// Gates lists every gate in process order: plan, build, deploy:ENV
	// per environment, close, and emergency once one was requested.
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

// ReleasePage is one page of GET /releases, ordered by name. (The server
// sends the keys sorted, as here.)
type ReleasePage struct {
	// NextCursor fetches the next page; "" on the last one.
	NextCursor string    `json:"nextCursor"`
	Releases   []Release `json:"releases"`
}

// DeploymentResult answers a recorded or updated deployment: the
// deployment and the release it changed.
type DeploymentResult struct {
	Deployment Deployment `json:"deployment"`
	Release    Release    `json:"release"`
}

// InvalidStateDetail is the detail of an INVALID_STATE error: the
// release's state, the action refused, and the actions allowed in that
// state (null when none). (The server sends the keys sorted, as here.)
type InvalidStateDetail struct {
	Action  string   `json:"action"`
	Allowed []string `json:"allowed"`
	State   string   `json:"state"`
}
