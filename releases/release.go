package releases

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

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
	Name    string `json:"name"`
	Version string `json:"version"`
}

// GateSetting is a gate's quorum in requests.
type GateSetting struct {
	Approvals int `json:"approvals"`
}

// PlanDetails are the plan fields under "plan" in requests.
type PlanDetails struct {
	Description string  `json:"description"`
	Window      *Window `json:"window,omitempty"`
	BackoutPlan string  `json:"backoutPlan"`
	Risk        string  `json:"risk"`
}

// PlanRequest holds the plan fields of creation and of PUT .../plan.
type PlanRequest struct {
	ChangeRef    string      `json:"changeRef"`
	Title        string      `json:"title"`
	Environments []string    `json:"environments"`
	Plan         PlanDetails `json:"plan"`
}

// CreateReleaseRequest creates a release.
type CreateReleaseRequest struct {
	Name string `json:"name"`
	PlanRequest
	Artifacts []ReleaseArtifactRef   `json:"artifacts"`
	Gates     map[string]GateSetting `json:"gates"`
}

// ApprovalRequest is an approver's decision.
type ApprovalRequest struct {
	Gate     string        `json:"gate"`
	Decision Decision      `json:"decision"`
	Digest   digest.Digest `json:"digest"`
	Comment  string        `json:"comment"`
}

// DeploymentRequest records a deployment.
type DeploymentRequest struct {
	Environment     string           `json:"environment"`
	Target          string           `json:"target"`
	Status          DeploymentStatus `json:"status"`
	Notes           string           `json:"notes"`
	VerifiedDigests []digest.Digest  `json:"verifiedDigests"`
}

// DeploymentUpdate changes a deployment's status, notes or verified digests.
type DeploymentUpdate struct {
	Status          DeploymentStatus `json:"status"`
	Notes           *string          `json:"notes"`
	VerifiedDigests []digest.Digest  `json:"verifiedDigests"`
}

// ReviewRequest files the post-implementation review.
type ReviewRequest struct {
	Outcome       string   `json:"outcome"`
	Summary       string   `json:"summary"`
	Incidents     []string `json:"incidents"`
	ObjectivesMet bool     `json:"objectivesMet"`
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
		return fmt.Errorf("%w: changeRef is required (the change record that authorises this release)", ErrInvalidInput)
	case p.Title == "":
		return fmt.Errorf("%w: title is required", ErrInvalidInput)
	case len(p.Environments) == 0:
		return fmt.Errorf("%w: at least one environment is required, in deployment order", ErrInvalidInput)
	case len(p.ChangeRef) > 256 || len(p.Title) > 512 || len(p.Description)+len(p.BackoutPlan)+len(p.Risk) > 64<<10:
		return fmt.Errorf("%w: plan fields too long", ErrInvalidInput)
	}
	seen := map[string]bool{}
	for _, e := range p.Environments {
		if err := ValidateEnvironment(e); err != nil {
			return err
		}
		if seen[e] {
			return fmt.Errorf("%w: environment %q listed twice", ErrInvalidInput, e)
		}
		seen[e] = true
	}
	if w := p.Window; w != nil && (w.Start.IsZero() || w.End.IsZero() || !w.End.After(w.Start)) {
		return fmt.Errorf("%w: window needs a start before its end", ErrInvalidInput)
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

// PlanDigest is the digest of a plan's canonical document.
func PlanDigest(p Plan) digest.Digest {
	if p.Window != nil {
		w := Window{Start: p.Window.Start.UTC(), End: p.Window.End.UTC()}
		p.Window = &w
	}
	d, _, _ := canonicalDigest(p)
	return d
}

// gateOrder lists a release's gates in process order.
func gateOrder(r Release) []string {
	gates := []string{GatePlan, GateBuild}
	for _, e := range r.Plan.Environments {
		gates = append(gates, DeployGate(e))
	}
	return append(gates, GateClose)
}

func required(r Release, gate string) int {
	if n, ok := r.Gates[gate]; ok && n > 0 {
		return n
	}
	return 1
}

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
	case ReleaseDeploying:
		out = append(out, "deploy", "update-deployment")
	case ReleaseDeployed, ReleaseReview:
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

// resolveArtifacts turns references into attached artifacts. Retired
// artifacts cannot join a release.
func (s *Service) resolveArtifacts(ctx context.Context, refs []ReleaseArtifactRef) ([]ReleaseArtifact, error) {
	out := make([]ReleaseArtifact, 0, len(refs))
	seen := map[string]bool{}
	for _, ref := range refs {
		key := ref.Name + ":" + ref.Version
		if seen[key] {
			return nil, fmt.Errorf("%w: artifact %s listed twice", ErrInvalidInput, key)
		}
		seen[key] = true
		a, err := s.Artifact(ctx, ref.Name, ref.Version)
		if err != nil {
			return nil, fmt.Errorf("artifact %s: %w", key, err)
		}
		if a.RetiredAt != nil {
			return nil, fmt.Errorf("%w: %s was retired and cannot join a new release", ErrArtifactRetired, key)
		}
		out = append(out, ReleaseArtifact{Name: a.Name, Version: a.Version, Digest: a.Digest, Size: a.Size, MediaType: a.MediaType, CreatedBy: a.CreatedBy})
	}
	return out, nil
}

func (s *Service) validateGates(p Plan, gates map[string]GateSetting) (map[string]int, error) {
	out := map[string]int{}
	valid := map[string]bool{GatePlan: true, GateBuild: true, GateClose: true}
	for _, e := range p.Environments {
		valid[DeployGate(e)] = true
	}
	for g, set := range gates {
		if !valid[g] {
			return nil, fmt.Errorf("%w: unknown gate %q (gates: plan, build, deploy:ENV for each environment, close)", ErrInvalidInput, g)
		}
		if set.Approvals < 1 || set.Approvals > maxApprovals {
			return nil, fmt.Errorf("%w: gate %s needs between 1 and %d approvals", ErrInvalidInput, g, maxApprovals)
		}
		out[g] = set.Approvals
	}
	return out, nil
}

// CreateRelease plans a new release (release managers).
func (s *Service) CreateRelease(ctx context.Context, p Principal, req CreateReleaseRequest) (Release, error) {
	if !p.Has(RoleReleaseManager) {
		return Release{}, fmt.Errorf("%w: creating releases needs the release-manager role", ErrDenied)
	}
	if err := ValidateVersion(req.Name); err != nil {
		return Release{}, fmt.Errorf("%w: release name %q must match the OCI tag grammar", ErrInvalidInput, req.Name)
	}
	plan := req.PlanRequest.plan()
	if err := validatePlan(plan); err != nil {
		return Release{}, err
	}
	gates, err := s.validateGates(plan, req.Gates)
	if err != nil {
		return Release{}, err
	}
	if err := s.applyGateDefaults(ctx, plan, gates); err != nil {
		return Release{}, err
	}
	arts, err := s.resolveArtifacts(ctx, req.Artifacts)
	if err != nil {
		return Release{}, err
	}
	now := s.now()
	r := Release{
		Name: req.Name, State: ReleasePlanning, Plan: plan, PlanDigest: PlanDigest(plan),
		Artifacts: arts, Gates: gates, Approvals: []Approval{}, Deployments: []Deployment{},
		CreatedBy: p.Name, CreatedAt: now, UpdatedAt: now,
	}
	return s.meta.CreateRelease(ctx, p.Actor(), r)
}

// Release returns one release.
func (s *Service) Release(ctx context.Context, name string) (Release, error) {
	return s.meta.GetRelease(ctx, name)
}

// Releases lists releases.
func (s *Service) Releases(ctx context.Context, f ReleaseFilter) ([]Release, string, error) {
	if f.State != "" && !slices.Contains(ReleaseStates, f.State) {
		return nil, "", fmt.Errorf("%w: unknown release state %q", ErrInvalidInput, f.State)
	}
	return s.meta.ListReleases(ctx, f)
}

// change applies fn to the current release and stores the result with one
// event, retrying when another change got in first.
func (s *Service) change(ctx context.Context, p Principal, name string, fn func(r *Release) (ReleaseChange, error)) (Release, error) {
	for attempt := 0; ; attempt++ {
		r, err := s.meta.GetRelease(ctx, name)
		if err != nil {
			return Release{}, err
		}
		ch, err := fn(&r)
		if err != nil {
			return Release{}, err
		}
		if ch.Action == "" { // nothing changed
			return r, nil
		}
		r.UpdatedAt = s.now()
		updated, err := s.meta.UpdateRelease(ctx, p.Actor(), r, ch)
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		return updated, err
	}
}

func details(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain maps of strings and numbers always marshal
	}
	return b
}

// SetPlan replaces the plan (planning only). Plan approvals given for the
// old plan are discarded.
func (s *Service) SetPlan(ctx context.Context, p Principal, name string, req PlanRequest) (Release, error) {
	if !p.Has(RoleReleaseManager) {
		return Release{}, fmt.Errorf("%w: changing plans needs the release-manager role", ErrDenied)
	}
	plan := req.plan()
	if err := validatePlan(plan); err != nil {
		return Release{}, err
	}
	return s.change(ctx, p, name, func(r *Release) (ReleaseChange, error) {
		if r.State != ReleasePlanning {
			return ReleaseChange{}, invalidState(*r, "set-plan")
		}
		for g := range r.Gates {
			if strings.HasPrefix(g, gateDeployPrefix) && !slices.Contains(plan.Environments, strings.TrimPrefix(g, gateDeployPrefix)) {
				delete(r.Gates, g)
			}
		}
		d := PlanDigest(plan)
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
		r.Plan, r.PlanDigest = plan, d
		return ReleaseChange{Action: ActionReleasePlanSet, Details: details(map[string]any{
			"planDigest": d, "previousPlanDigest": old, "discardedApprovals": discarded,
		})}, nil
	})
}

// SetArtifacts replaces the release's artifacts (planning and building).
func (s *Service) SetArtifacts(ctx context.Context, p Principal, name string, refs []ReleaseArtifactRef) (Release, error) {
	if !p.Has(RoleReleaseManager) {
		return Release{}, fmt.Errorf("%w: changing release artifacts needs the release-manager role", ErrDenied)
	}
	arts, err := s.resolveArtifacts(ctx, refs)
	if err != nil {
		return Release{}, err
	}
	return s.change(ctx, p, name, func(r *Release) (ReleaseChange, error) {
		if r.State != ReleasePlanning && r.State != ReleaseBuilding {
			return ReleaseChange{}, invalidState(*r, "set-artifacts")
		}
		r.Artifacts = arts
		list := make([]string, len(arts))
		for i, a := range arts {
			list[i] = a.Name + ":" + a.Version + "@" + a.Digest.String()
		}
		return ReleaseChange{Action: ActionReleaseArtifactsSet, Details: details(map[string]any{"artifacts": list})}, nil
	})
}

// Decide records an approver's decision on a gate. An approval counts only
// for the digest the gate expects now; enough distinct approvers authorise
// the gate and move the release on (the build gate seals it). A rejection
// sends the release back to the phase before the gate.
func (s *Service) Decide(ctx context.Context, p Principal, name string, req ApprovalRequest) (Release, error) {
	if !p.Has(RoleApprover) {
		return Release{}, fmt.Errorf("%w: deciding gates needs the approver role", ErrDenied)
	}
	if req.Decision != DecisionApprove && req.Decision != DecisionReject {
		return Release{}, fmt.Errorf("%w: decision must be approve or reject", ErrInvalidInput)
	}
	if req.Decision == DecisionReject && strings.TrimSpace(req.Comment) == "" {
		return Release{}, fmt.Errorf("%w: a rejection needs a comment giving the reason", ErrInvalidInput)
	}
	// A sealed manifest's blob is held against gc until the release that
	// names it is stored.
	var sealed []func()
	defer func() {
		for _, release := range sealed {
			release()
		}
	}()
	return s.change(ctx, p, name, func(r *Release) (ReleaseChange, error) {
		action := string(req.Decision) + ":" + req.Gate
		if !slices.Contains(openGates(*r), req.Gate) {
			if !slices.Contains(gateOrder(*r), req.Gate) {
				return ReleaseChange{}, fmt.Errorf("%w: unknown gate %q for release %s (gates: %s)", ErrInvalidInput, req.Gate, r.Name, strings.Join(gateOrder(*r), ", "))
			}
			return ReleaseChange{}, invalidState(*r, action)
		}
		if err := separationOfDuties(*r, p); err != nil {
			return ReleaseChange{}, err
		}
		expected, err := s.ExpectedDigest(ctx, *r, req.Gate)
		if err != nil {
			return ReleaseChange{}, err
		}
		if req.Digest != expected {
			return ReleaseChange{}, fmt.Errorf("%w: gate %s of %s expects %s, the approval names %s", ErrStaleApproval, req.Gate, r.Name, expected, req.Digest)
		}
		now := s.now()
		ap := Approval{Gate: req.Gate, Decision: req.Decision, Digest: req.Digest, Comment: req.Comment, By: p.Name, TokenID: p.TokenID, At: now}
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
			return ReleaseChange{Action: ActionReleaseApproval, Details: details(det)}, nil
		}

		if slices.Contains(approversOf(*r, req.Gate, expected), p.Name) {
			// One principal counts once: a repeated approval changes nothing.
			return ReleaseChange{}, nil
		}
		if req.Gate == GateBuild {
			if err := s.checkBuildable(ctx, *r); err != nil {
				return ReleaseChange{}, err
			}
		}
		r.Approvals = append(r.Approvals, ap)
		if !authorized(*r, req.Gate, expected) {
			det["authorized"] = false
			return ReleaseChange{Action: ActionReleaseApproval, Details: details(det)}, nil
		}
		det["authorized"] = true
		det["from"] = r.State
		r.LastRejection = nil
		switch {
		case req.Gate == GatePlan:
			r.State = ReleaseBuilding
		case req.Gate == GateBuild:
			release, err := s.seal(ctx, p, r, now)
			if err != nil {
				return ReleaseChange{}, err
			}
			sealed = append(sealed, release)
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
		return ReleaseChange{Action: ActionReleaseApproval, Details: details(det)}, nil
	})
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

// separationOfDuties refuses the release's creator and the publishers of
// its artifacts.
func separationOfDuties(r Release, p Principal) error {
	if p.Name == r.CreatedBy {
		return fmt.Errorf("%w: %s created release %s and cannot approve its gates", ErrSeparationOfDuties, p.Name, r.Name)
	}
	for _, a := range r.Artifacts {
		if a.CreatedBy == p.Name {
			return fmt.Errorf("%w: %s published %s:%s in release %s and cannot approve its gates", ErrSeparationOfDuties, p.Name, a.Name, a.Version, r.Name)
		}
	}
	return nil
}

// checkBuildable refuses the build gate unless every artifact is admitted,
// not retired, and still has the digest it was attached with.
func (s *Service) checkBuildable(ctx context.Context, r Release) error {
	if len(r.Artifacts) == 0 {
		return fmt.Errorf("%w: release %s has no artifacts", ErrBuildBlocked, r.Name)
	}
	var problems []string
	for _, ra := range r.Artifacts {
		a, err := s.meta.GetArtifact(ctx, ra.Name, ra.Version)
		if err != nil {
			return err
		}
		ref := a.Name + ":" + a.Version
		switch {
		case a.Digest != ra.Digest:
			problems = append(problems, ref+" changed digest")
		case a.RetiredAt != nil:
			problems = append(problems, ref+" is retired")
		case a.State != StateAdmitted:
			problems = append(problems, ref+" is "+string(a.State))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrBuildBlocked, strings.Join(problems, "; "))
	}
	return nil
}

// seal stores the release manifest in the blob store and signs it.
func (s *Service) seal(ctx context.Context, p Principal, r *Release, now time.Time) (release func(), err error) {
	d, b, err := s.releaseManifest(*r)
	if err != nil {
		return nil, err
	}
	_, release, err = s.ingest(ctx, p.Actor(), bytes.NewReader(b), store.IngestOptions{Digest: d, Size: int64(len(b))})
	if err != nil {
		return nil, fmt.Errorf("storing the release manifest: %w", err)
	}
	sig, err := s.signer.SignBlob(b)
	if err != nil {
		release()
		return nil, fmt.Errorf("signing the release manifest: %w", err)
	}
	r.ManifestDigest, r.ManifestSignature, r.SealedAt = d, sig, &now
	return release, nil
}

// ReleaseManifest returns the sealed manifest's bytes, verified, for the
// domain's own use (provenance documents).
func (s *Service) ReleaseManifest(ctx context.Context, name string) (Release, []byte, error) {
	r, err := s.sealedRelease(ctx, name)
	if err != nil {
		return r, nil, err
	}
	b, err := s.readVerified(ctx, serverActor, r.ManifestDigest, maxReleaseManifestSize)
	return r, b, err
}

// maxReleaseManifestSize bounds a sealed manifest read whole: some 200,000
// artifacts, far beyond any release.
const maxReleaseManifestSize = 64 << 20

// OpenReleaseManifest opens the sealed manifest of a release for p, to be
// served like any stored blob (verified while it streams).
func (s *Service) OpenReleaseManifest(ctx context.Context, p Principal, name string) (Release, *BlobReader, error) {
	r, err := s.sealedRelease(ctx, name)
	if err != nil {
		return r, nil, err
	}
	br, err := s.openBlob(ctx, p, r.ManifestDigest, s.sealedSize(ctx, r))
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
	if info, err := s.blobs.StatBlob(ctx, r.ManifestDigest); err == nil {
		return info.Size
	}
	return -1 // openBlob's Stat fails the same way
}

func (s *Service) sealedRelease(ctx context.Context, name string) (Release, error) {
	r, err := s.meta.GetRelease(ctx, name)
	if err != nil {
		return Release{}, err
	}
	if r.ManifestDigest == "" {
		return r, fmt.Errorf("%w: release %s is not sealed yet", ErrNotFound, name)
	}
	return r, nil
}

func deployerFor(p Principal, env string) error {
	if !p.Has(RoleDeployer) || !slices.Contains(p.Environments, env) {
		return fmt.Errorf("%w: %s may not deploy to %s", ErrNotAuthorizedForEnv, p.Name, env)
	}
	return nil
}

// RecordDeployment records a deployment by an agent whose token covers the
// environment, once deploy:ENV is authorised and every earlier environment
// has succeeded.
func (s *Service) RecordDeployment(ctx context.Context, p Principal, name string, req DeploymentRequest) (Release, Deployment, error) {
	if err := deployerFor(p, req.Environment); err != nil {
		return Release{}, Deployment{}, err
	}
	if req.Status == "" {
		req.Status = DeploymentInProgress
	}
	if !validDeploymentStatus(req.Status) {
		return Release{}, Deployment{}, fmt.Errorf("%w: status must be in_progress, succeeded, failed or rolled_back", ErrInvalidInput)
	}
	if strings.TrimSpace(req.Target) == "" {
		return Release{}, Deployment{}, fmt.Errorf("%w: target is required (what was deployed to)", ErrInvalidInput)
	}
	var dep Deployment
	r, err := s.change(ctx, p, name, func(r *Release) (ReleaseChange, error) {
		if r.State != ReleaseDeploying {
			return ReleaseChange{}, invalidState(*r, "deploy")
		}
		if !slices.Contains(r.Plan.Environments, req.Environment) {
			return ReleaseChange{}, fmt.Errorf("%w: %s is not an environment of release %s", ErrInvalidInput, req.Environment, r.Name)
		}
		if !r.DeployAuthorized(req.Environment) {
			return ReleaseChange{}, fmt.Errorf("%w: deploy:%s of release %s is not authorised", ErrNotAuthorizedForEnv, req.Environment, r.Name)
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
		dep = Deployment{
			ID: newDeploymentID(), Environment: req.Environment, Target: req.Target, Status: req.Status,
			StartedAt: now, Notes: req.Notes, VerifiedDigests: nonNilDigests(req.VerifiedDigests), By: p.Name, UpdatedAt: now,
		}
		if req.Status != DeploymentInProgress {
			dep.FinishedAt = &now
		}
		r.Deployments = append(r.Deployments, dep)
		s.afterDeployment(r)
		return ReleaseChange{Action: ActionReleaseDeployment, Details: details(map[string]any{
			"id": dep.ID, "environment": dep.Environment, "target": dep.Target, "status": dep.Status,
			"verifiedDigests": dep.VerifiedDigests, "state": r.State,
		})}, nil
	})
	return r, dep, err
}

// UpdateDeployment changes a deployment's status or notes.
func (s *Service) UpdateDeployment(ctx context.Context, p Principal, name, id string, upd DeploymentUpdate) (Release, Deployment, error) {
	if upd.Status != "" && !validDeploymentStatus(upd.Status) {
		return Release{}, Deployment{}, fmt.Errorf("%w: status must be in_progress, succeeded, failed or rolled_back", ErrInvalidInput)
	}
	var dep Deployment
	r, err := s.change(ctx, p, name, func(r *Release) (ReleaseChange, error) {
		// The state comes first: outside deploying no deployment can be
		// updated, whether or not the id names one.
		if r.State != ReleaseDeploying {
			return ReleaseChange{}, invalidState(*r, "update-deployment")
		}
		i := slices.IndexFunc(r.Deployments, func(d Deployment) bool { return d.ID == id })
		if i < 0 {
			return ReleaseChange{}, fmt.Errorf("%w: deployment %s of release %s", ErrNotFound, id, r.Name)
		}
		d := &r.Deployments[i]
		if err := deployerFor(p, d.Environment); err != nil {
			return ReleaseChange{}, err
		}
		if upd.Status != "" && upd.Status != d.Status {
			if !deploymentTransition(d.Status, upd.Status) {
				return ReleaseChange{}, fmt.Errorf("%w: deployment %s cannot go from %s to %s", ErrConflict, id, d.Status, upd.Status)
			}
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
		return ReleaseChange{Action: ActionReleaseDeployment, Details: details(map[string]any{
			"id": dep.ID, "environment": dep.Environment, "status": dep.Status, "verifiedDigests": dep.VerifiedDigests, "state": r.State,
		})}, nil
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
			return fmt.Errorf("%w: verified digest %s is not part of release %s", ErrInvalidInput, d, r.Name)
		}
	}
	return nil
}

// FileReview files (or re-files) the post-implementation review.
func (s *Service) FileReview(ctx context.Context, p Principal, name string, req ReviewRequest) (Release, error) {
	if !p.Has(RoleReleaseManager) {
		return Release{}, fmt.Errorf("%w: filing reviews needs the release-manager role", ErrDenied)
	}
	if !slices.Contains(reviewOutcomes, req.Outcome) {
		return Release{}, fmt.Errorf("%w: outcome must be one of %s", ErrInvalidInput, strings.Join(reviewOutcomes, ", "))
	}
	if strings.TrimSpace(req.Summary) == "" {
		return Release{}, fmt.Errorf("%w: summary is required", ErrInvalidInput)
	}
	return s.change(ctx, p, name, func(r *Release) (ReleaseChange, error) {
		if r.State != ReleaseDeployed && r.State != ReleaseReview {
			return ReleaseChange{}, invalidState(*r, "review")
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
		return ReleaseChange{Action: ActionReleaseReview, Details: details(map[string]any{"outcome": rv.Outcome, "reviewDigest": d})}, nil
	})
}

// ReviewDigest is the digest of the canonical review document.
func ReviewDigest(rv Review) digest.Digest {
	rv.At = rv.At.UTC()
	d, _, _ := canonicalDigest(rv)
	return d
}

// CancelRelease cancels a release before its first deployment.
func (s *Service) CancelRelease(ctx context.Context, p Principal, name, reason string) (Release, error) {
	if !p.Has(RoleReleaseManager) {
		return Release{}, fmt.Errorf("%w: cancelling releases needs the release-manager role", ErrDenied)
	}
	return s.change(ctx, p, name, func(r *Release) (ReleaseChange, error) {
		if !cancellable(*r) {
			return ReleaseChange{}, invalidState(*r, "cancel")
		}
		from := r.State
		r.State = ReleaseCancelled
		return ReleaseChange{Action: ActionReleaseCancelled, Details: details(map[string]any{"from": from, "reason": reason})}, nil
	})
}

// RetireArtifact retires an artifact version: nothing is deleted, but no
// new release may include it and open build gates refuse it.
func (s *Service) RetireArtifact(ctx context.Context, p Principal, name, version string) (Artifact, error) {
	if !p.Has(RoleAdmin, RoleReleaseManager) {
		return Artifact{}, fmt.Errorf("%w: retiring needs the admin or release-manager role", ErrDenied)
	}
	if _, err := s.Artifact(ctx, name, version); err != nil {
		return Artifact{}, err
	}
	return s.meta.RetireArtifact(ctx, p.Actor(), name, version)
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
