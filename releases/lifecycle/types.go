package lifecycle

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/opencontainers/go-digest"
)

// ReleaseState is a release's ITIL phase.
type ReleaseState string

const (
	ReleasePlanning  ReleaseState = "planning"
	ReleaseBuilding  ReleaseState = "building"
	ReleaseReleased  ReleaseState = "released"
	ReleaseDeploying ReleaseState = "deploying"
	ReleaseDeployed  ReleaseState = "deployed"
	ReleaseReview    ReleaseState = "review"
	ReleaseClosed    ReleaseState = "closed"
	ReleaseCancelled ReleaseState = "cancelled"
)

// ReleaseStates lists every state in process order.
var ReleaseStates = []ReleaseState{ReleasePlanning, ReleaseBuilding, ReleaseReleased, ReleaseDeploying, ReleaseDeployed, ReleaseReview, ReleaseClosed, ReleaseCancelled}

// Event actions of releases.
const (
	ActionReleaseCreated      = "release.created"
	ActionReleasePlanSet      = "release.plan.set"
	ActionReleaseArtifactsSet = "release.artifacts.set"
	ActionReleaseApproval     = "release.approval"
	ActionReleaseSealed       = "release.sealed"
	ActionReleaseDeployment   = "release.deployment"
	ActionReleaseReview       = "release.review"
	ActionReleaseClosed       = "release.closed"
	ActionReleaseCancelled    = "release.cancelled"
	ActionSettingSet          = "settings.set"
)

// Setting is one run-time setting: a JSON document under a key.
type Setting struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	UpdatedBy string          `json:"updatedBy"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// Window is the planned deployment window.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Plan is what the plan gate authorises. Its canonical JSON encoding is
// hashed into PlanDigest.
type Plan struct {
	ChangeRef    string   `json:"changeRef"`
	Title        string   `json:"title"`
	Description  string   `json:"description"`
	Environments []string `json:"environments"`
	Window       *Window  `json:"window,omitempty"`
	BackoutPlan  string   `json:"backoutPlan"`
	Risk         string   `json:"risk"`
}

// ReleaseArtifact is an artifact version attached to a release, with the
// digest it had when attached.
type ReleaseArtifact struct {
	Name      string        `json:"name"`
	Version   string        `json:"version"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
	CreatedBy string        `json:"createdBy"`
}

// Decision of an approver.
type Decision string

const (
	DecisionApprove Decision = "approve"
	DecisionReject  Decision = "reject"
)

// Approval is one approver's decision on a gate, bound to the digest of
// what was approved.
type Approval struct {
	Gate     string        `json:"gate"`
	Decision Decision      `json:"decision"`
	Digest   digest.Digest `json:"digest"`
	Comment  string        `json:"comment"`
	By       string        `json:"by"`
	TokenID  string        `json:"tokenId"`
	// Issuer and Subject: the approver's single sign-on identity, when
	// it signed in through a provider.
	Issuer  string    `json:"issuer,omitempty"`
	Subject string    `json:"subject,omitempty"`
	At      time.Time `json:"at"`
	// Discarded is set when the approved thing changed afterwards (a new
	// plan): the approval stays on record but no longer counts.
	Discarded bool `json:"discarded,omitempty"`
}

// DeploymentStatus is where a deployment stands.
type DeploymentStatus string

const (
	DeploymentInProgress DeploymentStatus = "in_progress"
	DeploymentSucceeded  DeploymentStatus = "succeeded"
	DeploymentFailed     DeploymentStatus = "failed"
	DeploymentRolledBack DeploymentStatus = "rolled_back"
)

// Deployment is a deployment agent's record of one rollout.
type Deployment struct {
	ID              string           `json:"id"`
	Environment     string           `json:"environment"`
	Target          string           `json:"target"`
	Status          DeploymentStatus `json:"status"`
	StartedAt       time.Time        `json:"startedAt"`
	FinishedAt      *time.Time       `json:"finishedAt,omitempty"`
	Notes           string           `json:"notes"`
	VerifiedDigests []digest.Digest  `json:"verifiedDigests"`
	By              string           `json:"by"`
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

// Parts of a release that a change can touch and a gate approves (Edit).
const (
	PartPlan      = "plan"      // approved by the plan gate
	PartArtifacts = "artifacts" // approved by the build gate
	PartReview    = "review"    // approved by the close gate
)

// Edit records one change of a part of a release that a gate approves:
// who changed it, and the digest that gate expected right after. Whoever
// edited a part cannot decide the gate that approves it (separation of
// duties).
type Edit struct {
	Part    string        `json:"part"`
	Digest  digest.Digest `json:"digest"`
	By      string        `json:"by"`
	TokenID string        `json:"tokenId"`
	At      time.Time     `json:"at"`
}

// Release is the whole release record. It is persisted as one document
// (plus an index of its artifacts) and changed by one writer at a time
// (Metadata.ModifyRelease); Revision counts the changes.
type Release struct {
	Name  string       `json:"name"`
	State ReleaseState `json:"state"`
	Plan  Plan         `json:"plan"`
	// PlanDigest is the digest of the plan document: the plan and the
	// quorum of each of its gates (PlanDigest).
	PlanDigest digest.Digest     `json:"planDigest"`
	Artifacts  []ReleaseArtifact `json:"artifacts"`
	// Gates maps a gate ("plan", "build", "deploy:ENV", "close") to the
	// number of distinct approvers it needs. A deploy gate whose
	// environment left the plan keeps its entry, so that adding the
	// environment back cannot lower its quorum; quorums only ever rise.
	Gates     map[string]int `json:"gates"`
	Approvals []Approval     `json:"approvals"`
	// Manifest is set when the release is sealed: the digest of the OCI
	// image index in the blob store and the server's signature over it.
	ManifestDigest    digest.Digest `json:"manifestDigest,omitempty"`
	ManifestSignature string        `json:"manifestSignature,omitempty"`
	SealedAt          *time.Time    `json:"sealedAt,omitempty"`
	Deployments       []Deployment  `json:"deployments"`
	Review            *Review       `json:"review,omitempty"`
	ReviewDigest      digest.Digest `json:"reviewDigest,omitempty"`
	// LastRejection records the latest rejection, shown until the next
	// approval round.
	LastRejection *Approval `json:"lastRejection,omitempty"`
	// Edits lists every change of the plan, the artifacts and the review,
	// oldest first, creation included.
	Edits []Edit `json:"edits"`
	// Emergency is the release's latest emergency change, if any.
	Emergency *Emergency `json:"emergency,omitempty"`
	CreatedBy string     `json:"createdBy"`
	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
	Revision  int64      `json:"revision"`
}

// ReleaseFilter selects releases for listing, ordered by name.
type ReleaseFilter struct {
	State  ReleaseState
	Limit  int
	Cursor string
}

// ReleaseChange describes one update of a release, for its event record.
type ReleaseChange = audit.Change

// ReleaseTx is what a change of a release (Metadata.ModifyRelease) may
// read besides the release: reads inside the transaction that stores the
// change, so what a rule checked is what the change commits on.
type ReleaseTx interface {
	// GetArtifact returns errdef.ErrNotFound when name+version is unknown.
	GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error)
	// Setting returns errdef.ErrNotFound if key was never set.
	Setting(ctx context.Context, key string) (Setting, error)
}

// Store is the persistence of releases, one document each, and of the
// settings (the gate defaults). Every mutating method records exactly one
// event in the same transaction as its change, and none when it changes
// nothing or fails.
type Store interface {
	// CreateRelease calls build inside a write transaction and stores
	// the release it returns with Revision 1, recording
	// ActionReleaseCreated; errdef.ErrConflict if the name is taken. build
	// reads what the new release includes through tx; its error is
	// returned as it is and stores nothing.
	CreateRelease(ctx context.Context, actor access.Actor, build func(tx ReleaseTx) (Release, error)) (Release, error)
	// GetRelease returns ErrNotFound for an unknown name.
	GetRelease(ctx context.Context, name string) (Release, error)
	// ListReleases returns one page ordered by name and the next cursor.
	ListReleases(ctx context.Context, f ReleaseFilter) ([]Release, string, error)
	// ReleaseNames lists, in order, at most limit names of releases that
	// begin with prefix: the candidates of a not-found answer's
	// suggestions.
	ReleaseNames(ctx context.Context, prefix string, limit int) ([]string, error)
	// ModifyRelease changes release name inside one write transaction:
	// it loads the release, calls fn once with it, and stores what fn left
	// in it with Revision+1, UpdatedAt now and one event with
	// change.Action and change.Details — all in that transaction. Changes
	// of one release are serialised (a row lock, or the single writer of
	// SQLite), so fn decides on the release as it is committed: no other
	// change can come between, and none is ever refused for contention.
	// fn reads anything else it needs through tx, inside the same
	// transaction. An error from fn is returned as it is and stores
	// nothing; a change without an Action stores nothing and returns the
	// release as loaded. Name, CreatedBy and CreatedAt stay as stored (a
	// changed Name is ErrInvalidInput). ErrNotFound for an unknown name.
	ModifyRelease(ctx context.Context, actor access.Actor, name string, fn func(tx ReleaseTx, r *Release) (ReleaseChange, error)) (Release, error)
	// ReleasesContaining lists the releases that include name:version.
	ReleasesContaining(ctx context.Context, name, version string) ([]Release, error)
	// SetSetting stores a JSON value under key (replacing it) and records
	// "settings.set"; Setting returns it, ErrNotFound if never set.
	SetSetting(ctx context.Context, actor access.Actor, key string, value json.RawMessage) (Setting, error)
	Setting(ctx context.Context, key string) (Setting, error)
	// ModifySetting decides key's next value inside one write
	// transaction: fn gets the stored setting (found false when it was
	// never set) and returns the value to store, recording
	// "settings.set", or nil to change nothing. Decisions about one key
	// are serialised, whichever process makes them, so fn decides on the
	// value as it is committed. An error from fn is returned as it is and
	// stores nothing. It returns the setting as stored afterwards.
	ModifySetting(ctx context.Context, actor access.Actor, key string, fn func(cur Setting, found bool) (json.RawMessage, error)) (Setting, error)
}
