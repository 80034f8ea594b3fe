package lifecycle

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/defaults"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Service is the release lifecycle: plans, gates and their quorums,
// approvals bound to digests, separation of duties, sealing, deployments,
// the review, and the admin's gate defaults.
type Service struct {
	store   Store
	catalog *catalog.Service
	blobs   *blobs.Service
	signer  *signing.ServerSigner
	log     *slog.Logger
	now     func() time.Time
	changes ChangeSystem
}

// Config is what the lifecycle is built from.
type Config struct {
	Store Store
	// Catalog resolves the artifacts a release includes.
	Catalog *catalog.Service
	// Blobs stores and serves sealed release manifests.
	Blobs *blobs.Service
	// Signer signs sealed release manifests.
	Signer *signing.ServerSigner
	// Log nil: silent. Now nil: the wall clock.
	Log *slog.Logger
	Now func() time.Time
	// ChangeSystem asks the external change system the admin configured
	// (ChangePolicy.ChangeSystem). Nil: a configured change system cannot
	// be asked, so no plan gate passes while one is configured.
	ChangeSystem ChangeSystem
}

// New returns the release lifecycle.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Catalog == nil || cfg.Blobs == nil || cfg.Signer == nil {
		return nil, errors.New("lifecycle: a store, the catalogue, the blob service and the server's signer are required")
	}
	return &Service{store: cfg.Store, catalog: cfg.Catalog, blobs: cfg.Blobs, signer: cfg.Signer, log: defaults.Logger(cfg.Log), now: defaults.Clock(cfg.Now), changes: cfg.ChangeSystem}, nil
}

// Deployments answers catalog.Deployments from the releases of a Store:
// whether a release, not cancelled, authorised for deployment to one of
// the environments includes an artifact. It needs no more than the store,
// so the catalogue can be given it before the lifecycle is built.
type Deployments struct{ Store Store }

var _ catalog.Deployments = Deployments{}

// DeployableTo implements catalog.Deployments.
func (d Deployments) DeployableTo(ctx context.Context, name, version string, envs []string) (bool, error) {
	rels, err := d.Store.ReleasesContaining(ctx, name, version)
	if err != nil {
		return false, err
	}
	for _, r := range rels {
		if r.State == ReleaseCancelled {
			continue
		}
		for _, env := range envs {
			if r.DeployAuthorized(env) {
				return true, nil
			}
		}
	}
	return false, nil
}

// Gate names. Deploy gates are "deploy:" + environment.
const (
	GatePlan         = "plan"
	GateBuild        = "build"
	GateClose        = "close"
	gateDeployPrefix = "deploy:"
)

// DeployGate names the deploy gate of an environment.
func DeployGate(env string) string { return gateDeployPrefix + env }

// ReleaseManifestArtifactType marks a sealed release manifest.
const ReleaseManifestArtifactType = "application/vnd.dml.release.v1"

// Manifest annotation keys.
const (
	AnnotationArtifactName    = "dev.dml.artifact.name"
	AnnotationArtifactVersion = "dev.dml.artifact.version"
	AnnotationReleaseName     = "dev.dml.release.name"
	AnnotationChangeRef       = "dev.dml.release.change-ref"
	AnnotationPlanDigest      = "dev.dml.release.plan-digest"
	AnnotationTitle           = "org.opencontainers.image.title"
)

// Reviews outcomes.
var reviewOutcomes = []string{"successful", "successful_with_issues", "failed", "rolled_back"}

// maxApprovals bounds a gate's quorum.
const maxApprovals = 10

// ReleaseArtifactRef names an artifact version in requests.
type ReleaseArtifactRef struct {
	Name    string
	Version string
}

// GateSetting is a gate's quorum in requests.
type GateSetting struct {
	Approvals int `json:"approvals"`
}

// PlanDetails are the plan fields under "plan" in requests.
type PlanDetails struct {
	Description string
	Window      *Window
	BackoutPlan string
	Risk        string
}

// PlanRequest holds the plan fields of creation and of PUT .../plan.
type PlanRequest struct {
	ChangeRef    string
	Title        string
	Environments []string
	Plan         PlanDetails
}

// CreateReleaseRequest creates a release.
type CreateReleaseRequest struct {
	Name string
	PlanRequest
	Artifacts []ReleaseArtifactRef
	Gates     map[string]GateSetting
}

// ApprovalRequest is an approver's decision.
type ApprovalRequest struct {
	Gate     string
	Decision Decision
	Digest   digest.Digest
	Comment  string
}

// DeploymentRequest records a deployment.
type DeploymentRequest struct {
	Environment     string
	Target          string
	Status          DeploymentStatus
	Notes           string
	VerifiedDigests []digest.Digest
}

// DeploymentUpdate changes a deployment's status, notes or verified digests.
type DeploymentUpdate struct {
	Status          DeploymentStatus
	Notes           *string
	VerifiedDigests []digest.Digest
}

// ReviewRequest files the post-implementation review.
type ReviewRequest struct {
	Outcome       string
	Summary       string
	Incidents     []string
	ObjectivesMet bool
}

func (p PlanRequest) plan() Plan {
	return Plan{
		ChangeRef: strings.TrimSpace(p.ChangeRef), Title: strings.TrimSpace(p.Title),
		Description: p.Plan.Description, Environments: slices.Clone(p.Environments),
		Window: p.Plan.Window, BackoutPlan: p.Plan.BackoutPlan, Risk: p.Plan.Risk,
	}
}

func validatePlan(p Plan) error {
	switch {
	case p.ChangeRef == "":
		return fmt.Errorf("%w: changeRef is required (the change record that authorises this release)", errdef.ErrInvalidInput)
	case p.Title == "":
		return fmt.Errorf("%w: title is required", errdef.ErrInvalidInput)
	case len(p.Environments) == 0:
		return fmt.Errorf("%w: at least one environment is required, in deployment order", errdef.ErrInvalidInput)
	case len(p.ChangeRef) > 256 || len(p.Title) > 512 || len(p.Description)+len(p.BackoutPlan)+len(p.Risk) > 64<<10:
		return fmt.Errorf("%w: plan fields too long", errdef.ErrInvalidInput)
	}
	seen := map[string]bool{}
	for _, e := range p.Environments {
		if err := names.ValidateEnvironment(e); err != nil {
			return err
		}
		if seen[e] {
			return fmt.Errorf("%w: environment %q listed twice", errdef.ErrInvalidInput, e)
		}
		seen[e] = true
	}
	if w := p.Window; w != nil && (w.Start.IsZero() || w.End.IsZero() || !w.End.After(w.Start)) {
		return fmt.Errorf("%w: window needs a start before its end", errdef.ErrInvalidInput)
	}
	return nil
}

// canonicalDigest hashes the JSON encoding of v. encoding/json writes
// struct fields in declaration order and map keys sorted, so the encoding
// of these plain structs is canonical.
func canonicalDigest(v any) (digest.Digest, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", nil, err
	}
	return digest.FromBytes(b), b, nil
}

// planDocument is what the plan gate approves: the plan, and how many
// approvers each of its gates needs, so that no quorum can change under
// an approval.
type planDocument struct {
	Plan
	Quorums map[string]int `json:"quorums"`
}

// PlanDigest is the digest of the plan document of p with the quorums of
// gates: the plan's fields, then "quorums" with the quorum of every gate of
// the plan (a gate missing from gates needs 1), as compact JSON.
func PlanDigest(p Plan, gates map[string]int) digest.Digest {
	if p.Window != nil {
		w := Window{Start: p.Window.Start.UTC(), End: p.Window.End.UTC()}
		p.Window = &w
	}
	doc := planDocument{Plan: p, Quorums: map[string]int{}}
	for _, g := range planGates(p) {
		doc.Quorums[g] = quorum(gates, g)
	}
	d, _, _ := canonicalDigest(doc)
	return d
}

// planGates lists the gates of a plan in process order.
func planGates(p Plan) []string {
	gates := []string{GatePlan, GateBuild}
	for _, e := range p.Environments {
		gates = append(gates, DeployGate(e))
	}
	return append(gates, GateClose)
}

// gateOrder lists a release's gates in process order, its emergency gate
// last once an emergency change was requested.
func gateOrder(r Release) []string {
	gates := planGates(r.Plan)
	if r.Emergency != nil {
		gates = append(gates, GateEmergency)
	}
	return gates
}

// quorum is how many approvers gate needs under gates; releases stored
// before every gate had an entry need 1.
func quorum(gates map[string]int, gate string) int {
	if n, ok := gates[gate]; ok && n > 0 {
		return n
	}
	return 1
}

func required(r Release, gate string) int { return quorum(r.Gates, gate) }

// approversOf lists the distinct principals whose approvals of gate for
// digest d still count.
func approversOf(r Release, gate string, d digest.Digest) []string {
	var who []string
	for _, a := range r.Approvals {
		if a.Gate == gate && a.Decision == DecisionApprove && !a.Discarded && a.Digest == d && !slices.Contains(who, a.By) {
			who = append(who, a.By)
		}
	}
	return who
}

// authorized reports whether gate is authorised for digest d.
func authorized(r Release, gate string, d digest.Digest) bool {
	return d != "" && len(approversOf(r, gate, d)) >= required(r, gate)
}

// DeployAuthorized reports whether deployment to env is authorised.
func (r Release) DeployAuthorized(env string) bool {
	return r.ManifestDigest != "" && authorized(r, DeployGate(env), r.ManifestDigest)
}

// succeededIn reports whether env has a succeeded deployment.
func succeededIn(r Release, env string) bool {
	for _, d := range r.Deployments {
		if d.Environment == env && d.Status == DeploymentSucceeded {
			return true
		}
	}
	return false
}

// openGates lists the gates that can be decided in the release's state.
func openGates(r Release) []string {
	switch r.State {
	case ReleasePlanning:
		return []string{GatePlan}
	case ReleaseBuilding:
		return []string{GateBuild}
	case ReleaseReleased, ReleaseDeploying:
		var out []string
		for _, e := range r.Plan.Environments {
			if !r.DeployAuthorized(e) {
				out = append(out, DeployGate(e))
			}
		}
		if r.Emergency != nil && r.Emergency.Status == EmergencyRequested {
			// Open until decided; Decide refuses it once Until has passed.
			out = append(out, GateEmergency)
		}
		return out
	case ReleaseReview:
		return []string{GateClose}
	}
	return nil
}

// AllowedActions lists what can be done to the release now.
func AllowedActions(r Release) []string {
	var out []string
	switch r.State {
	case ReleasePlanning:
		out = append(out, "set-plan", "set-artifacts")
	case ReleaseBuilding:
		out = append(out, "set-artifacts")
	case ReleaseReleased:
		out = append(out, "emergency")
	case ReleaseDeploying:
		out = append(out, "deploy", "update-deployment", "emergency")
	}
	if reviewable(r) {
		out = append(out, "review")
	}
	for _, g := range openGates(r) {
		out = append(out, "approve:"+g, "reject:"+g)
	}
	if cancellable(r) {
		out = append(out, "cancel")
	}
	return out
}

// reviewable reports whether the review can be filed: once every
// environment is deployed, again while the review is open, and — to
// finish a release that will not go out everywhere, which can no longer
// be cancelled — once a deployment was recorded and none is running.
func reviewable(r Release) bool {
	switch r.State {
	case ReleaseDeployed, ReleaseReview:
		return true
	case ReleaseDeploying:
		return len(r.Deployments) > 0 && !slices.ContainsFunc(r.Deployments, func(d Deployment) bool {
			return d.Status == DeploymentInProgress
		})
	}
	return false
}

// cancellable reports whether the release can be cancelled: until its
// first deployment is recorded. After that something touched an
// environment, and the release is finished through review instead.
func cancellable(r Release) bool {
	switch r.State {
	case ReleasePlanning, ReleaseBuilding, ReleaseReleased:
		return true
	case ReleaseDeploying:
		return len(r.Deployments) == 0
	}
	return false
}

func invalidState(r Release, action string) error {
	return &InvalidStateError{Release: r.Name, State: r.State, Action: action, Allowed: AllowedActions(r)}
}

// ExpectedDigest is the digest an approval of gate must name now, or ""
// when the gate cannot be decided.
func (s *Service) ExpectedDigest(ctx context.Context, r Release, gate string) (digest.Digest, error) {
	switch {
	case gate == GatePlan:
		return r.PlanDigest, nil
	case gate == GateBuild:
		d, _, err := s.releaseManifest(r)
		return d, err
	case strings.HasPrefix(gate, gateDeployPrefix):
		return r.ManifestDigest, nil
	case gate == GateClose:
		return r.ReviewDigest, nil
	case gate == GateEmergency && r.Emergency != nil:
		return r.Emergency.Digest, nil
	}
	return "", nil
}

// releaseManifest builds the release's OCI image index: one descriptor per
// artifact (sorted by name and version), annotated with names, and the
// release's identity. It is deterministic, so the build gate can approve
// its digest before it is stored.
func (s *Service) releaseManifest(r Release) (digest.Digest, []byte, error) {
	arts := slices.Clone(r.Artifacts)
	sort.Slice(arts, func(i, j int) bool {
		if arts[i].Name != arts[j].Name {
			return arts[i].Name < arts[j].Name
		}
		return arts[i].Version < arts[j].Version
	})
	idx := ocispec.Index{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageIndex,
		ArtifactType: ReleaseManifestArtifactType,
		Manifests:    make([]ocispec.Descriptor, 0, len(arts)),
		Annotations: map[string]string{
			AnnotationReleaseName: r.Name,
			AnnotationChangeRef:   r.Plan.ChangeRef,
			AnnotationPlanDigest:  r.PlanDigest.String(),
			AnnotationTitle:       r.Plan.Title,
		},
	}
	for _, a := range arts {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: a.MediaType,
			Digest:    a.Digest,
			Size:      a.Size,
			Annotations: map[string]string{
				AnnotationArtifactName:    a.Name,
				AnnotationArtifactVersion: a.Version,
				AnnotationTitle:           a.Name + ":" + a.Version,
			},
		})
	}
	d, b, err := canonicalDigest(idx)
	return d, b, err
}

// Releases

func newDeploymentID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "dep_" + hex.EncodeToString(b)
}

// artifactReader reads the artifacts a release is to include: the
// catalogue before a change (which checks the names too), the change's
// transaction during it.
type artifactReader interface {
	GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error)
}

// catalogReads reads artifacts through the catalogue.
type catalogReads struct{ c *catalog.Service }

func (r catalogReads) GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error) {
	return r.c.Artifact(ctx, name, version)
}

// resolveArtifacts turns references into attached artifacts, read through
// reads. Retired and rejected artifacts cannot join a release: neither
// can ever pass the build gate, so the request is refused at once
// (*ArtifactRefusedError). Quarantined ones can, and ArtifactWarnings
// says what they still lack.
//
// A change resolves its artifacts twice: before its transaction, through
// the catalogue, so that a request is answered as it asked (a malformed
// name, an unknown or retired artifact) whatever release it names; and
// inside the transaction, which records what it reads there. A tag that
// moves an artifact, or a retirement, committed in between is then seen by
// the change, and a change committed first is seen by the tag move: the
// two decide on the same rows, one after the other.
func (s *Service) resolveArtifacts(ctx context.Context, reads artifactReader, refs []ReleaseArtifactRef) ([]ReleaseArtifact, error) {
	out := make([]ReleaseArtifact, 0, len(refs))
	seen := map[string]bool{}
	for _, ref := range refs {
		key := ref.Name + ":" + ref.Version
		if seen[key] {
			return nil, fmt.Errorf("%w: artifact %s listed twice", errdef.ErrInvalidInput, key)
		}
		seen[key] = true
		a, err := reads.GetArtifact(ctx, ref.Name, ref.Version)
		var nf *errdef.NotFoundError
		switch {
		case errors.As(err, &nf):
			return nil, err // it names the artifact, and what was meant
		case err != nil:
			return nil, fmt.Errorf("artifact %s: %w", key, err)
		}
		switch {
		case a.RetiredAt != nil:
			return nil, &ArtifactRefusedError{Name: a.Name, Version: a.Version, State: "retired", kind: catalog.ErrArtifactRetired}
		case a.State == catalog.StateRejected:
			re := &ArtifactRefusedError{Name: a.Name, Version: a.Version, State: string(a.State), kind: ErrArtifactRejected}
			if a.Admission != nil {
				re.Reason = a.Admission.Reason
			}
			return nil, re
		}
		out = append(out, ReleaseArtifact{Name: a.Name, Version: a.Version, Digest: a.Digest, Size: a.Size, MediaType: a.MediaType, CreatedBy: a.CreatedBy})
	}
	return out, nil
}

// CreateRelease plans a new release (release managers).
func (s *Service) CreateRelease(ctx context.Context, p access.Principal, req CreateReleaseRequest) (Release, error) {
	if err := access.Require(p, "creating releases", access.RoleReleaseManager); err != nil {
		return Release{}, err
	}
	if err := names.ValidateVersion(req.Name); err != nil {
		return Release{}, fmt.Errorf("%w: release name %q must match the OCI tag grammar", errdef.ErrInvalidInput, req.Name)
	}
	plan := req.PlanRequest.plan()
	if err := validatePlan(plan); err != nil {
		return Release{}, err
	}
	// Planned once before the transaction, so that the request is answered
	// as it asked whatever happens meanwhile; and again inside it, on the
	// defaults and artifacts it commits on.
	now := s.now()
	if _, err := s.plannedRelease(ctx, s.store, catalogReads{s.catalog}, p, req, plan, now); err != nil {
		return Release{}, err
	}
	return s.store.CreateRelease(ctx, p.Actor(), func(tx ReleaseTx) (Release, error) {
		return s.plannedRelease(ctx, tx, tx, p, req, plan, now)
	})
}

// plannedRelease is the new release req asks for: its gates' quorums
// (never below the admin's defaults, read through settings) and its
// artifacts (read through arts).
func (s *Service) plannedRelease(ctx context.Context, settings settingReader, arts artifactReader, p access.Principal, req CreateReleaseRequest, plan Plan, now time.Time) (Release, error) {
	policy, _, err := changePolicy(ctx, settings)
	if err != nil {
		return Release{}, err
	}
	if err := checkPlanPolicy(policy, plan); err != nil {
		return Release{}, err
	}
	defaults, _, err := gateDefaults(ctx, settings)
	if err != nil {
		return Release{}, err
	}
	gates, err := gateQuorums(plan, req.Gates, defaults)
	if err != nil {
		return Release{}, err
	}
	attached, err := s.resolveArtifacts(ctx, arts, req.Artifacts)
	if err != nil {
		return Release{}, err
	}
	r := Release{
		Name: req.Name, State: ReleasePlanning, Plan: plan, PlanDigest: PlanDigest(plan, gates),
		Artifacts: attached, Gates: gates, Approvals: []Approval{}, Deployments: []Deployment{},
		CreatedBy: p.Name, CreatedAt: now, UpdatedAt: now,
	}
	build, _, err := s.releaseManifest(r)
	if err != nil {
		return Release{}, err
	}
	r.Edits = []Edit{edit(PartPlan, r.PlanDigest, p, now), edit(PartArtifacts, build, p, now)}
	return r, nil
}

// Release returns one release.
func (s *Service) Release(ctx context.Context, name string) (Release, error) {
	r, err := s.store.GetRelease(ctx, name)
	return r, s.releaseNotFound(ctx, name, err)
}

// releaseNotFound turns err, when it says that release name does not
// exist, into an *errdef.NotFoundError suggesting the close names of
// releases that do (names.Suggest); any other error is returned as it is.
// A failure to find suggestions leaves them out.
func (s *Service) releaseNotFound(ctx context.Context, name string, err error) error {
	var nf *errdef.NotFoundError
	if !errors.Is(err, errdef.ErrNotFound) || errors.As(err, &nf) {
		return err
	}
	nf = &errdef.NotFoundError{What: "release", Name: name}
	if candidates, cerr := s.store.ReleaseNames(ctx, names.SuggestPrefix(name), names.SuggestCandidates); cerr == nil {
		nf.Suggestions = names.Suggest(name, candidates)
	}
	return nf
}

// Releases lists releases.
func (s *Service) Releases(ctx context.Context, f ReleaseFilter) ([]Release, string, error) {
	if f.State != "" && !slices.Contains(ReleaseStates, f.State) {
		return nil, "", fmt.Errorf("%w: unknown release state %q", errdef.ErrInvalidInput, f.State)
	}
	return s.store.ListReleases(ctx, f)
}

// change applies fn to release name and stores the result with one event,
// all in one write transaction that no other change of the release can
// enter: every rule fn checks holds when the change commits, and no valid
// change is refused because another came at the same moment. fn returns a
// change without an Action when nothing changed.
//
// A release that does not exist is answered with the close names that do
// (releaseNotFound).
func (s *Service) change(ctx context.Context, p access.Principal, name string, fn func(tx ReleaseTx, r *Release) (ReleaseChange, error)) (Release, error) {
	called := false
	r, err := s.store.ModifyRelease(ctx, p.Actor(), name, func(tx ReleaseTx, r *Release) (ReleaseChange, error) {
		called = true
		return fn(tx, r)
	})
	if err != nil && !called {
		// The release was not found (or not read): fn, which reports
		// what else is not found, never ran.
		return r, s.releaseNotFound(ctx, name, err)
	}
	return r, err
}

// edit records that p changed part, after which its gate expects d.
func edit(part string, d digest.Digest, p access.Principal, at time.Time) Edit {
	return Edit{Part: part, Digest: d, By: p.Name, TokenID: p.TokenID, At: at}
}

// change is the event of a change: action, with details v encoded.
func change(action string, v any) (ReleaseChange, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ReleaseChange{}, fmt.Errorf("%s details: %w", action, err)
	}
	return ReleaseChange{Action: action, Details: b}, nil
}

// SetPlan replaces the plan (planning only). Plan approvals given for the
// old plan are discarded.
func (s *Service) SetPlan(ctx context.Context, p access.Principal, name string, req PlanRequest) (Release, error) {
	if err := access.Require(p, "changing plans", access.RoleReleaseManager); err != nil {
		return Release{}, err
	}
	plan := req.plan()
	if err := validatePlan(plan); err != nil {
		return Release{}, err
	}
	return s.change(ctx, p, name, func(tx ReleaseTx, r *Release) (ReleaseChange, error) {
		if r.State != ReleasePlanning {
			return ReleaseChange{}, invalidState(*r, "set-plan")
		}
		policy, _, err := changePolicy(ctx, tx)
		if err != nil {
			return ReleaseChange{}, err
		}
		if err := checkPlanPolicy(policy, plan); err != nil {
			return ReleaseChange{}, err
		}
		// The floors are the defaults as this change commits on them.
		defaults, _, err := gateDefaults(ctx, tx)
		if err != nil {
			return ReleaseChange{}, err
		}
		// An environment the plan adds gets at least the default quorum,
		// and at least what its gate had if it was in the plan before:
		// entries of removed environments stay in Gates for that.
		gates := maps.Clone(r.Gates)
		if gates == nil {
			gates = map[string]int{}
		}
		for _, e := range plan.Environments {
			if g := DeployGate(e); !slices.Contains(r.Plan.Environments, e) {
				gates[g] = max(gates[g], quorumFloor(defaults, g))
			}
		}
		d := PlanDigest(plan, gates)
		if d == r.PlanDigest {
			return ReleaseChange{}, nil
		}
		discarded := 0
		for i := range r.Approvals {
			if r.Approvals[i].Gate == GatePlan && !r.Approvals[i].Discarded {
				r.Approvals[i].Discarded = true
				discarded++
			}
		}
		old := r.PlanDigest
		r.Plan, r.PlanDigest, r.Gates = plan, d, gates
		r.Edits = append(r.Edits, edit(PartPlan, d, p, s.now()))
		return change(ActionReleasePlanSet, map[string]any{
			"planDigest": d, "previousPlanDigest": old, "discardedApprovals": discarded,
		})
	})
}

// SetArtifacts replaces the release's artifacts (planning and building).
func (s *Service) SetArtifacts(ctx context.Context, p access.Principal, name string, refs []ReleaseArtifactRef) (Release, error) {
	if err := access.Require(p, "changing release artifacts", access.RoleReleaseManager); err != nil {
		return Release{}, err
	}
	if _, err := s.resolveArtifacts(ctx, catalogReads{s.catalog}, refs); err != nil {
		return Release{}, err
	}
	return s.change(ctx, p, name, func(tx ReleaseTx, r *Release) (ReleaseChange, error) {
		if r.State != ReleasePlanning && r.State != ReleaseBuilding {
			return ReleaseChange{}, invalidState(*r, "set-artifacts")
		}
		arts, err := s.resolveArtifacts(ctx, tx, refs)
		if err != nil {
			return ReleaseChange{}, err
		}
		r.Artifacts = arts
		build, _, err := s.releaseManifest(*r)
		if err != nil {
			return ReleaseChange{}, err
		}
		r.Edits = append(r.Edits, edit(PartArtifacts, build, p, s.now()))
		list := make([]string, len(arts))
		for i, a := range arts {
			list[i] = a.Name + ":" + a.Version + "@" + a.Digest.String()
		}
		return change(ActionReleaseArtifactsSet, map[string]any{"artifacts": list})
	})
}

// Decide records an approver's decision on a gate. An approval counts only
// for the digest the gate expects now; enough distinct approvers authorise
// the gate and move the release on (the build gate seals it). A rejection
// sends the release back to the phase before the gate.
func (s *Service) Decide(ctx context.Context, p access.Principal, name string, req ApprovalRequest) (Release, error) {
	d, err := s.DecideGate(ctx, p, name, req)
	return d.Release, err
}

// Decided is what a decision on a gate did.
type Decided struct {
	Release Release
	// AlreadyCounted: the principal's approval of the gate, for the digest
	// it names, was counted before. One principal counts once, so nothing
	// changed and nothing was recorded; the answer is still a success, so
	// that a client retrying an approval it did not hear back about is
	// not told it failed.
	AlreadyCounted bool
	// Gate is the gate decided; Received and Required are its approvals
	// for the digest decided on, and its quorum, after the decision.
	Gate               string
	Received, Required int
}

// Message says, for people, what a repeated approval did: "your approval
// of gate plan of release rel-1 was already counted (1 of 2 approvals)".
// It is "" unless the approval was already counted.
func (d Decided) Message() string {
	if !d.AlreadyCounted {
		return ""
	}
	msg := fmt.Sprintf("your approval of gate %s of release %s was already counted (%d of %d approvals)", d.Gate, d.Release.Name, d.Received, d.Required)
	if d.Received < d.Required {
		msg += "; the other approvals must come from other approvers"
	}
	return msg
}

// DecideGate is Decide, and says whether the approval was counted before.
func (s *Service) DecideGate(ctx context.Context, p access.Principal, name string, req ApprovalRequest) (Decided, error) {
	r, counted, err := s.decide(ctx, p, name, req)
	if err != nil {
		return Decided{Release: r}, s.explainBuildBlocked(ctx, err)
	}
	return Decided{Release: r, AlreadyCounted: counted, Gate: req.Gate,
		Received: len(approversOf(r, req.Gate, req.Digest)), Required: required(r, req.Gate)}, nil
}

func (s *Service) decide(ctx context.Context, p access.Principal, name string, req ApprovalRequest) (_ Release, alreadyCounted bool, _ error) {
	if err := access.Require(p, "deciding gates", access.RoleApprover); err != nil {
		return Release{}, false, err
	}
	if req.Decision != DecisionApprove && req.Decision != DecisionReject {
		return Release{}, false, fmt.Errorf("%w: decision must be approve or reject", errdef.ErrInvalidInput)
	}
	if req.Decision == DecisionReject && strings.TrimSpace(req.Comment) == "" {
		return Release{}, false, fmt.Errorf("%w: a rejection needs a comment giving the reason", errdef.ErrInvalidInput)
	}
	if req.Digest != "" {
		// Something that is not a digest is bad input, not a digest that
		// the gate has moved on from.
		if err := store.ValidateDigest(req.Digest); err != nil {
			return Release{}, false, fmt.Errorf("decision on gate %s: %w", req.Gate, err)
		}
	}
	// The manifest a build approval may seal is stored, and held against
	// gc, before the change's transaction begins, until the release that
	// names it is stored.
	stored, release, err := s.storeManifestAhead(ctx, p, name, req)
	if err != nil {
		return Release{}, false, err
	}
	defer release()
	// The change system is asked before the transaction, never inside it:
	// a slow answer must not hold the database's write lock.
	confirmed, err := s.confirmChangeAhead(ctx, p, name, req)
	if err != nil {
		return Release{}, false, err
	}
	r, err := s.change(ctx, p, name, func(tx ReleaseTx, r *Release) (ReleaseChange, error) {
		alreadyCounted = false
		action := string(req.Decision) + ":" + req.Gate
		if !slices.Contains(openGates(*r), req.Gate) {
			if !slices.Contains(gateOrder(*r), req.Gate) {
				return ReleaseChange{}, fmt.Errorf("%w: unknown gate %q for release %s (gates: %s)", errdef.ErrInvalidInput, req.Gate, r.Name, strings.Join(gateOrder(*r), ", "))
			}
			return ReleaseChange{}, invalidState(*r, action)
		}
		if err := SeparationOfDuties(*r, p, req.Gate); err != nil {
			return ReleaseChange{}, err
		}
		expected, err := s.ExpectedDigest(ctx, *r, req.Gate)
		if err != nil {
			return ReleaseChange{}, err
		}
		if req.Digest == "" {
			// Checked here rather than with the other input so that the
			// answer can name the digest to approve.
			return ReleaseChange{}, fmt.Errorf("%w: a decision names the digest it decides on; gate %s of %s expects %s", store.ErrInvalidDigest, req.Gate, r.Name, expected)
		}
		if req.Digest != expected {
			return ReleaseChange{}, fmt.Errorf("%w: gate %s of %s expects %s, the approval names %s", ErrStaleApproval, req.Gate, r.Name, expected, req.Digest)
		}
		now := s.now()
		ap := Approval{Gate: req.Gate, Decision: req.Decision, Digest: req.Digest, Comment: req.Comment, By: p.Name, TokenID: p.TokenID, Issuer: p.Issuer, Subject: p.Subject, At: now}
		if req.Gate == GateEmergency {
			if !now.Before(r.Emergency.Until) {
				return ReleaseChange{}, fmt.Errorf("%w: the emergency change of %s ended at %s; request a new one", ErrInvalidState, r.Name, r.Emergency.Until.UTC().Format(time.RFC3339))
			}
			return decideEmergency(r, ap, now)
		}
		det := map[string]any{"gate": req.Gate, "decision": req.Decision, "digest": req.Digest, "comment": req.Comment}

		if req.Decision == DecisionReject {
			for i := range r.Approvals {
				if r.Approvals[i].Gate == req.Gate && !r.Approvals[i].Discarded {
					r.Approvals[i].Discarded = true
				}
			}
			ap.Discarded = true
			r.Approvals = append(r.Approvals, ap)
			r.LastRejection = &ap
			det["from"] = r.State
			r.State = stateBeforeGate(*r, req.Gate)
			det["to"] = r.State
			return change(ActionReleaseApproval, det)
		}

		if slices.Contains(approversOf(*r, req.Gate, expected), p.Name) {
			// One principal counts once: a repeated approval changes
			// nothing, and says so.
			alreadyCounted = true
			return ReleaseChange{}, nil
		}
		if req.Gate == GateBuild {
			if err := checkBuildable(ctx, tx, *r); err != nil {
				return ReleaseChange{}, err
			}
		}
		r.Approvals = append(r.Approvals, ap)
		if !authorized(*r, req.Gate, expected) {
			det["authorized"] = false
			return change(ActionReleaseApproval, det)
		}
		if req.Gate == GatePlan {
			if err := confirmed.passes(ctx, tx, *r, expected); err != nil {
				return ReleaseChange{}, err
			}
			if confirmed.asked {
				det["changeSystem"] = confirmed.answer
			}
		}
		det["authorized"] = true
		det["from"] = r.State
		openBefore := openGates(*r)
		r.LastRejection = nil
		switch {
		case req.Gate == GatePlan:
			r.State = ReleaseBuilding
		case req.Gate == GateBuild:
			if err := s.seal(r, now, stored); err != nil {
				return ReleaseChange{}, err
			}
			r.State = ReleaseReleased
			det["sealed"] = r.ManifestDigest
		case strings.HasPrefix(req.Gate, gateDeployPrefix):
			if r.State == ReleaseReleased {
				r.State = ReleaseDeploying
			}
		case req.Gate == GateClose:
			r.State = ReleaseClosed
		}
		det["to"] = r.State
		// The gates this approval opened, for the gate.opened events
		// (releases/events): the build gate after the plan, every deploy
		// gate after the seal.
		opened := []string{}
		for _, g := range openGates(*r) {
			if !slices.Contains(openBefore, g) {
				opened = append(opened, g)
			}
		}
		det["opened"] = opened
		return change(ActionReleaseApproval, det)
	})
	return r, alreadyCounted && err == nil, err
}

// stateBeforeGate is where a rejection of gate sends the release.
func stateBeforeGate(r Release, gate string) ReleaseState {
	switch {
	case gate == GatePlan:
		return ReleasePlanning
	case gate == GateBuild:
		return ReleaseBuilding
	case gate == GateClose:
		return ReleaseReview
	}
	return r.State // deploy gates: stays released or deploying
}

// ApprovedPart is the part of a release whose changes gate approves; ""
// for the deploy gates, which approve the sealed build.
func ApprovedPart(gate string) string {
	switch gate {
	case GatePlan:
		return PartPlan
	case GateBuild:
		return PartArtifacts
	case GateClose:
		return PartReview
	case GateEmergency:
		return PartEmergency
	}
	return ""
}

// SeparationOfDuties says whether p may decide gate of r. The release's
// creator and the publishers of its artifacts decide none of its gates;
// whoever edited the plan, the artifacts or the review does not decide the
// gate that approves that part. A part can only be edited while its gate
// is still to be passed, and each gate is passed once, so every edit on
// record comes after the gate's last authorisation: a rejection does not
// clear it, since the editor still shaped what is being decided.
func SeparationOfDuties(r Release, p access.Principal, gate string) error {
	if p.Name == r.CreatedBy {
		return fmt.Errorf("%w: %s created release %s and cannot decide its gates", ErrSeparationOfDuties, p.Name, r.Name)
	}
	for _, a := range r.Artifacts {
		if a.CreatedBy == p.Name {
			return fmt.Errorf("%w: %s published %s:%s in release %s and cannot decide its gates", ErrSeparationOfDuties, p.Name, a.Name, a.Version, r.Name)
		}
	}
	if part := ApprovedPart(gate); part != "" {
		for _, e := range r.Edits {
			if e.Part == part && e.By == p.Name {
				return fmt.Errorf("%w: %s changed the %s of release %s and cannot decide its %s gate", ErrSeparationOfDuties, p.Name, part, r.Name, gate)
			}
		}
	}
	return nil
}

// checkBuildable refuses the build gate unless every artifact is admitted,
// not retired, and still has the digest it was attached with; the
// refusal (*BuildBlockedError) names every artifact that is not.
func checkBuildable(ctx context.Context, tx ReleaseTx, r Release) error {
	if len(r.Artifacts) == 0 {
		return &BuildBlockedError{Release: r.Name}
	}
	var blocked []ArtifactStatus
	for _, ra := range r.Artifacts {
		a, err := tx.GetArtifact(ctx, ra.Name, ra.Version)
		if err != nil {
			return err
		}
		if st, ok := notAdmitted(ra, a); ok {
			blocked = append(blocked, st)
		}
	}
	if len(blocked) > 0 {
		return &BuildBlockedError{Release: r.Name, Artifacts: blocked}
	}
	return nil
}

// notAdmitted says where artifact a, attached to a release as ra, stands
// when the build gate would refuse it; ok is false when it would not.
func notAdmitted(ra ReleaseArtifact, a catalog.Artifact) (st ArtifactStatus, ok bool) {
	st = ArtifactStatus{Name: ra.Name, Version: ra.Version, State: a.State}
	switch {
	case a.Digest != ra.Digest:
		st.State, st.Reason = "changed", "the version now names "+a.Digest.String()+", not "+ra.Digest.String()
	case a.RetiredAt != nil:
		st.State = "retired"
	case a.State == catalog.StateAdmitted:
		return st, false
	case a.Admission != nil:
		st.Unmet, st.Reason = slices.Clone(a.Admission.Unmet), a.Admission.Reason
	}
	return st, true
}

// ArtifactWarnings lists the artifacts of a release being planned or
// built that are not admitted, each with what it still lacks as the trust
// policy stands now: planning accepts them (evidence may still come), and
// these are what the build gate will refuse until it does. A release past
// the build gate has none.
func (s *Service) ArtifactWarnings(ctx context.Context, r Release) ([]ArtifactStatus, error) {
	if r.State != ReleasePlanning && r.State != ReleaseBuilding {
		return []ArtifactStatus{}, nil
	}
	out := []ArtifactStatus{}
	for _, ra := range r.Artifacts {
		a, err := s.catalog.Artifact(ctx, ra.Name, ra.Version)
		if err != nil {
			return nil, fmt.Errorf("artifact %s:%s of release %s: %w", ra.Name, ra.Version, r.Name, err)
		}
		if st, ok := notAdmitted(ra, a); ok {
			out = append(out, st)
		}
	}
	return out, nil
}

// explainBuildBlocked fills in what each quarantined artifact of a build
// gate refusal still lacks as the trust policy stands now: the change's
// transaction reads the artifacts as stored, and only the catalogue
// evaluates the policy.
func (s *Service) explainBuildBlocked(ctx context.Context, err error) error {
	var be *BuildBlockedError
	if !errors.As(err, &be) {
		return err
	}
	for i, st := range be.Artifacts {
		if st.State != catalog.StateQuarantined {
			continue
		}
		if a, aerr := s.catalog.Artifact(ctx, st.Name, st.Version); aerr == nil && a.Admission != nil {
			be.Artifacts[i].Unmet = slices.Clone(a.Admission.Unmet)
		}
	}
	return err
}

// storeManifestAhead stores the manifest that approval req of the build
// gate would seal, before the change's transaction begins, and holds it
// against gc (see ingest); it returns the manifest's digest, or "" when
// req cannot seal (another gate, a rejection, a digest that is not the
// release's manifest), and the function that drops the hold. Writing the
// blob inside the transaction would hold the database's write lock for as
// long as the blob store takes, stalling every writer (on SQLite, every
// write of the server) behind a slow bucket, and the hold is itself a
// database write. Every approval of the current manifest stores it, not
// only the one that looks like the last: approvals racing each other
// cannot tell which will complete the quorum. The blob is
// content-addressed: storing it again only verifies it.
func (s *Service) storeManifestAhead(ctx context.Context, p access.Principal, name string, req ApprovalRequest) (digest.Digest, func(), error) {
	noop := func() {}
	if req.Gate != GateBuild || req.Decision != DecisionApprove {
		return "", noop, nil
	}
	r, err := s.store.GetRelease(ctx, name)
	if err != nil || r.State != ReleaseBuilding || SeparationOfDuties(r, p, req.Gate) != nil {
		return "", noop, nil // the change itself reports what is wrong
	}
	d, b, err := s.releaseManifest(r)
	if err != nil {
		return "", noop, err
	}
	if d != req.Digest {
		return "", noop, nil // stale: the change refuses it
	}
	_, release, err := s.blobs.Ingest(ctx, p.Actor(), bytes.NewReader(b), store.IngestOptions{Digest: d, Size: int64(len(b))})
	if err != nil {
		return "", noop, fmt.Errorf("storing the release manifest: %w", err)
	}
	return d, release, nil
}

// seal signs the release manifest and records it in r. The manifest was
// stored ahead (storeManifestAhead) under the digest stored: an approval
// that seals names the current manifest, so the two agree unless the
// release changed in a way that left the approved digest unchanged, which
// would be a bug.
func (s *Service) seal(r *Release, now time.Time, stored digest.Digest) error {
	d, b, err := s.releaseManifest(*r)
	if err != nil {
		return err
	}
	if d != stored {
		return fmt.Errorf("sealing %s: manifest %s was not stored ahead (stored %q)", r.Name, d, stored)
	}
	sig, err := s.signer.SignBlob(b)
	if err != nil {
		return fmt.Errorf("signing the release manifest: %w", err)
	}
	r.ManifestDigest, r.ManifestSignature, r.SealedAt = d, sig, &now
	return nil
}

// ReleaseManifest returns the sealed manifest's bytes, verified, for the
// domain's own use (provenance documents).
func (s *Service) ReleaseManifest(ctx context.Context, name string) (Release, []byte, error) {
	r, err := s.sealedRelease(ctx, name)
	if err != nil {
		return r, nil, err
	}
	b, err := s.blobs.ReadVerified(ctx, access.ServerActor, r.ManifestDigest, maxReleaseManifestSize)
	return r, b, err
}

// maxReleaseManifestSize bounds a sealed manifest read whole: some 200,000
// artifacts, far beyond any release.
const maxReleaseManifestSize = 64 << 20

// OpenReleaseManifest opens the sealed manifest of a release for p, to be
// served like any stored blob (verified while it streams).
func (s *Service) OpenReleaseManifest(ctx context.Context, p access.Principal, name string) (Release, *blobs.BlobReader, error) {
	r, err := s.sealedRelease(ctx, name)
	if err != nil {
		return r, nil, err
	}
	br, err := s.blobs.Open(ctx, p.Actor(), r.ManifestDigest, s.sealedSize(ctx, r))
	return r, br, err
}

// sealedSize is the size of a release's sealed manifest. The release
// records only its digest, but the manifest is a function of the release:
// when rebuilding it gives the sealed digest, its size is known; otherwise
// (a release sealed by another version of dml) the stored size stands in,
// and a wrong size shows as a wrong digest when the manifest is read.
func (s *Service) sealedSize(ctx context.Context, r Release) int64 {
	if d, b, err := s.releaseManifest(r); err == nil && d == r.ManifestDigest {
		return int64(len(b))
	}
	if info, err := s.blobs.Store().StatBlob(ctx, r.ManifestDigest); err == nil {
		return info.Size
	}
	return -1 // openBlob's Stat fails the same way
}

func (s *Service) sealedRelease(ctx context.Context, name string) (Release, error) {
	r, err := s.Release(ctx, name)
	if err != nil {
		return Release{}, err
	}
	if r.ManifestDigest == "" {
		return r, fmt.Errorf("%w: release %s is not sealed yet", errdef.ErrNotFound, name)
	}
	return r, nil
}

func deployerFor(p access.Principal, env string) error {
	if !p.Has(access.RoleDeployer) || !slices.Contains(p.Environments, env) {
		return fmt.Errorf("%w: %s may not deploy to %s", access.ErrNotAuthorizedForEnv, p.Name, env)
	}
	return nil
}

// RecordDeployment records a deployment by an agent whose token covers the
// environment, once deploy:ENV is authorised and every earlier environment
// has succeeded.
func (s *Service) RecordDeployment(ctx context.Context, p access.Principal, name string, req DeploymentRequest) (Release, Deployment, error) {
	if err := deployerFor(p, req.Environment); err != nil {
		return Release{}, Deployment{}, err
	}
	if req.Status == "" {
		req.Status = DeploymentInProgress
	}
	if !validDeploymentStatus(req.Status) {
		return Release{}, Deployment{}, fmt.Errorf("%w: status must be in_progress, succeeded, failed or rolled_back", errdef.ErrInvalidInput)
	}
	if strings.TrimSpace(req.Target) == "" {
		return Release{}, Deployment{}, fmt.Errorf("%w: target is required (what was deployed to)", errdef.ErrInvalidInput)
	}
	var dep Deployment
	r, err := s.change(ctx, p, name, func(tx ReleaseTx, r *Release) (ReleaseChange, error) {
		if r.State != ReleaseDeploying {
			return ReleaseChange{}, invalidState(*r, "deploy")
		}
		if !slices.Contains(r.Plan.Environments, req.Environment) {
			return ReleaseChange{}, fmt.Errorf("%w: %s is not an environment of release %s", errdef.ErrInvalidInput, req.Environment, r.Name)
		}
		if !r.DeployAuthorized(req.Environment) {
			return ReleaseChange{}, fmt.Errorf("%w: deploy:%s of release %s is not authorised", access.ErrNotAuthorizedForEnv, req.Environment, r.Name)
		}
		for _, earlier := range r.Plan.Environments {
			if earlier == req.Environment {
				break
			}
			if !succeededIn(*r, earlier) {
				return ReleaseChange{}, fmt.Errorf("%w: %s comes after %s, which has no successful deployment yet", ErrDeploymentOutOfOrder, req.Environment, earlier)
			}
		}
		if err := checkVerified(*r, req.VerifiedDigests); err != nil {
			return ReleaseChange{}, err
		}
		now := s.now()
		// The window is checked last, on the policy this change commits
		// on: what else is wrong with the request is said first.
		policy, _, err := changePolicy(ctx, tx)
		if err != nil {
			return ReleaseChange{}, err
		}
		emergency, err := checkWindow(policy, *r, now)
		if err != nil {
			return ReleaseChange{}, err
		}
		dep = Deployment{
			ID: newDeploymentID(), Environment: req.Environment, Target: req.Target, Status: req.Status,
			StartedAt: now, Notes: req.Notes, VerifiedDigests: nonNilDigests(req.VerifiedDigests), By: p.Name, Issuer: p.Issuer, Subject: p.Subject, UpdatedAt: now,
		}
		if emergency {
			dep.Emergency, dep.EmergencyReason = true, r.Emergency.Reason
		}
		if req.Status != DeploymentInProgress {
			dep.FinishedAt = &now
		}
		r.Deployments = append(r.Deployments, dep)
		s.afterDeployment(r)
		det := map[string]any{
			"id": dep.ID, "environment": dep.Environment, "target": dep.Target, "status": dep.Status,
			"verifiedDigests": dep.VerifiedDigests, "state": r.State,
		}
		if emergency {
			det["emergency"], det["emergencyReason"], det["emergencyUntil"] = true, r.Emergency.Reason, r.Emergency.Until
		}
		return change(ActionReleaseDeployment, det)
	})
	return r, dep, err
}

// UpdateDeployment changes a deployment's status or notes.
func (s *Service) UpdateDeployment(ctx context.Context, p access.Principal, name, id string, upd DeploymentUpdate) (Release, Deployment, error) {
	// The role comes first: without it nothing about the release, not even
	// whether it or the deployment exists, is any of p's business.
	if !p.Has(access.RoleDeployer) {
		return Release{}, Deployment{}, fmt.Errorf("%w: %s is not a deployer", access.ErrNotAuthorizedForEnv, p.Name)
	}
	if upd.Status != "" && !validDeploymentStatus(upd.Status) {
		return Release{}, Deployment{}, fmt.Errorf("%w: status must be in_progress, succeeded, failed or rolled_back", errdef.ErrInvalidInput)
	}
	var dep Deployment
	r, err := s.change(ctx, p, name, func(_ ReleaseTx, r *Release) (ReleaseChange, error) {
		// Then the state: outside deploying no deployment can be updated,
		// whether or not the id names one.
		if r.State != ReleaseDeploying {
			return ReleaseChange{}, invalidState(*r, "update-deployment")
		}
		i := slices.IndexFunc(r.Deployments, func(d Deployment) bool { return d.ID == id })
		if i < 0 {
			return ReleaseChange{}, fmt.Errorf("%w: deployment %s of release %s", errdef.ErrNotFound, id, r.Name)
		}
		d := &r.Deployments[i]
		if err := deployerFor(p, d.Environment); err != nil {
			return ReleaseChange{}, err
		}
		var from DeploymentStatus
		if upd.Status != "" && upd.Status != d.Status {
			if !deploymentTransition(d.Status, upd.Status) {
				return ReleaseChange{}, fmt.Errorf("%w: deployment %s cannot go from %s to %s", errdef.ErrConflict, id, d.Status, upd.Status)
			}
			from = d.Status
			d.Status = upd.Status
			if upd.Status != DeploymentInProgress {
				now := s.now()
				d.FinishedAt = &now
			}
		}
		if upd.Notes != nil {
			d.Notes = *upd.Notes
		}
		if upd.VerifiedDigests != nil {
			if err := checkVerified(*r, upd.VerifiedDigests); err != nil {
				return ReleaseChange{}, err
			}
			d.VerifiedDigests = upd.VerifiedDigests
		}
		d.UpdatedAt = s.now()
		dep = *d
		s.afterDeployment(r)
		det := map[string]any{
			"id": dep.ID, "environment": dep.Environment, "status": dep.Status, "verifiedDigests": dep.VerifiedDigests, "state": r.State,
		}
		if from != "" {
			// The status changed (and from what): monitoring counts
			// deployments reaching each status from these records.
			det["from"] = from
		}
		return change(ActionReleaseDeployment, det)
	})
	return r, dep, err
}

func validDeploymentStatus(s DeploymentStatus) bool {
	switch s {
	case DeploymentInProgress, DeploymentSucceeded, DeploymentFailed, DeploymentRolledBack:
		return true
	}
	return false
}

func deploymentTransition(from, to DeploymentStatus) bool {
	switch from {
	case DeploymentInProgress:
		return to == DeploymentSucceeded || to == DeploymentFailed || to == DeploymentRolledBack
	case DeploymentSucceeded:
		return to == DeploymentRolledBack
	}
	return false
}

// afterDeployment moves a release to deployed once every environment has
// succeeded.
func (s *Service) afterDeployment(r *Release) {
	for _, e := range r.Plan.Environments {
		if !succeededIn(*r, e) {
			return
		}
	}
	r.State = ReleaseDeployed
}

func checkVerified(r Release, ds []digest.Digest) error {
	for _, d := range ds {
		ok := d == r.ManifestDigest
		for _, a := range r.Artifacts {
			ok = ok || a.Digest == d
		}
		if !ok {
			return fmt.Errorf("%w: verified digest %s is not part of release %s", errdef.ErrInvalidInput, d, r.Name)
		}
	}
	return nil
}

// FileReview files (or re-files) the post-implementation review.
func (s *Service) FileReview(ctx context.Context, p access.Principal, name string, req ReviewRequest) (Release, error) {
	if err := access.Require(p, "filing reviews", access.RoleReleaseManager); err != nil {
		return Release{}, err
	}
	if !slices.Contains(reviewOutcomes, req.Outcome) {
		return Release{}, fmt.Errorf("%w: outcome must be one of %s", errdef.ErrInvalidInput, strings.Join(reviewOutcomes, ", "))
	}
	if strings.TrimSpace(req.Summary) == "" {
		return Release{}, fmt.Errorf("%w: summary is required", errdef.ErrInvalidInput)
	}
	return s.change(ctx, p, name, func(_ ReleaseTx, r *Release) (ReleaseChange, error) {
		if !reviewable(*r) {
			return ReleaseChange{}, invalidState(*r, "review")
		}
		if r.State == ReleaseDeploying && (req.Outcome == "successful" || req.Outcome == "successful_with_issues") {
			return ReleaseChange{}, fmt.Errorf("%w: release %s is not deployed to every environment; its review outcome is failed or rolled_back", errdef.ErrInvalidInput, r.Name)
		}
		incidents := req.Incidents
		if incidents == nil {
			incidents = []string{}
		}
		rv := Review{Outcome: req.Outcome, Summary: req.Summary, Incidents: incidents, ObjectivesMet: req.ObjectivesMet, By: p.Name, At: s.now()}
		d := ReviewDigest(rv)
		for i := range r.Approvals {
			if r.Approvals[i].Gate == GateClose && !r.Approvals[i].Discarded {
				r.Approvals[i].Discarded = true
			}
		}
		r.Review, r.ReviewDigest, r.State = &rv, d, ReleaseReview
		r.Edits = append(r.Edits, edit(PartReview, d, p, rv.At))
		return change(ActionReleaseReview, map[string]any{"outcome": rv.Outcome, "reviewDigest": d})
	})
}

// ReviewDigest is the digest of the canonical review document.
func ReviewDigest(rv Review) digest.Digest {
	rv.At = rv.At.UTC()
	d, _, _ := canonicalDigest(rv)
	return d
}

// CancelRelease cancels a release before its first deployment. The reason
// is required (ErrReasonRequired) and goes into the audit record.
func (s *Service) CancelRelease(ctx context.Context, p access.Principal, name, reason string) (Release, error) {
	if err := access.Require(p, "cancelling releases", access.RoleReleaseManager); err != nil {
		return Release{}, err
	}
	return s.change(ctx, p, name, func(_ ReleaseTx, r *Release) (ReleaseChange, error) {
		if !cancellable(*r) {
			return ReleaseChange{}, invalidState(*r, "cancel")
		}
		// Checked after the state: a release that cannot be cancelled is
		// told so, whatever the reason.
		if strings.TrimSpace(reason) == "" {
			return ReleaseChange{}, fmt.Errorf("%w: say why release %s is cancelled; the audit log keeps the reason", ErrReasonRequired, r.Name)
		}
		from := r.State
		r.State = ReleaseCancelled
		return change(ActionReleaseCancelled, map[string]any{"from": from, "reason": reason})
	})
}

// GateView is one gate as shown to users.
type GateView struct {
	Gate           string
	Required       int
	Approvers      []string
	ExpectedDigest digest.Digest
	Authorized     bool
	Open           bool
}

// GateViews describes every gate of the release in process order. A gate
// already passed shows the digest it was authorised for.
func (s *Service) GateViews(ctx context.Context, r Release) ([]GateView, error) {
	open := openGates(r)
	var out []GateView
	for _, g := range gateOrder(r) {
		v := GateView{Gate: g, Required: required(r, g), Open: slices.Contains(open, g)}
		var err error
		switch {
		case g == GateBuild && r.ManifestDigest != "":
			v.ExpectedDigest = r.ManifestDigest
		case g == GateBuild && r.State != ReleaseBuilding:
			// Before the build phase the manifest is not settled yet.
		default:
			v.ExpectedDigest, err = s.ExpectedDigest(ctx, r, g)
		}
		if err != nil {
			return nil, err
		}
		v.Approvers = approversOf(r, g, v.ExpectedDigest)
		if v.Approvers == nil {
			v.Approvers = []string{}
		}
		v.Authorized = authorized(r, g, v.ExpectedDigest)
		out = append(out, v)
	}
	return out, nil
}

func nonNilDigests(s []digest.Digest) []digest.Digest {
	if s == nil {
		return []digest.Digest{}
	}
	return s
}

// CanReach reports whether release r can still reach state to: whether a
// pipeline waiting for it (dml release wait) should go on waiting. States
// only move forward (a rejection keeps a release in the phase before the
// gate); closed and cancelled are final; a release can be cancelled only
// until its first deployment; and once in review, deployed is behind it.
func CanReach(r Release, to ReleaseState) bool {
	if r.State == to {
		return true
	}
	switch {
	case r.State == ReleaseClosed || r.State == ReleaseCancelled:
		return false
	case to == ReleaseCancelled:
		return cancellable(r)
	}
	from, target := slices.Index(ReleaseStates, r.State), slices.Index(ReleaseStates, to)
	return from >= 0 && target > from
}
