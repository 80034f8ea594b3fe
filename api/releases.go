package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/names"
	"github.com/gin-gonic/gin"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func (s *Server) routeReleases(g *gin.RouterGroup) {
	g.POST("/releases", s.createRelease)
	g.GET("/releases", s.listReleases)
	g.GET("/releases/:name", s.getRelease)
	g.GET("/releases/:name/manifest", s.getReleaseManifest)
	g.HEAD("/releases/:name/manifest", s.getReleaseManifest)
	g.PUT("/releases/:name/plan", s.setReleasePlan)
	g.PUT("/releases/:name/artifacts", s.setReleaseArtifacts)
	g.POST("/releases/:name/approvals", s.decideGate)
	g.POST("/releases/:name/deployments", s.recordDeployment)
	g.PATCH("/releases/:name/deployments/:id", s.updateDeployment)
	g.POST("/releases/:name/review", s.fileReview)
	g.POST("/releases/:name/cancel", s.cancelRelease)
	g.POST("/releases/:name/emergency", s.requestEmergency)
}

// toRelease is the wire form of a release: the record, its gates (views,
// in process order) and the actions it allows now.
func toRelease(r lifecycle.Release, views []lifecycle.GateView) wire.Release {
	gates := make([]wire.Gate, len(views))
	for i, v := range views {
		gates[i] = wire.Gate{Gate: v.Gate, Required: v.Required, Received: len(v.Approvers), Approvers: v.Approvers,
			ExpectedDigest: v.ExpectedDigest, Authorized: v.Authorized, Open: v.Open}
	}
	out := wire.Release{
		Name:              r.Name,
		State:             string(r.State),
		Plan:              toPlan(r.Plan),
		PlanDigest:        r.PlanDigest,
		Artifacts:         convert(r.Artifacts, func(a lifecycle.ReleaseArtifact) wire.ReleaseArtifact { return wire.ReleaseArtifact(a) }),
		Approvals:         convert(r.Approvals, toApproval),
		ManifestDigest:    r.ManifestDigest,
		ManifestSignature: r.ManifestSignature,
		SealedAt:          r.SealedAt,
		Deployments:       convert(r.Deployments, toDeployment),
		Review:            (*wire.Review)(r.Review),
		ReviewDigest:      r.ReviewDigest,
		Edits:             convert(r.Edits, func(e lifecycle.Edit) wire.Edit { return wire.Edit(e) }),
		CreatedBy:         r.CreatedBy,
		CreatedAt:         r.CreatedAt,
		UpdatedAt:         r.UpdatedAt,
		Revision:          r.Revision,
		Gates:             gates,
		AllowedActions:    lifecycle.AllowedActions(r),
	}
	if r.LastRejection != nil {
		a := toApproval(*r.LastRejection)
		out.LastRejection = &a
	}
	if em := r.Emergency; em != nil {
		out.Emergency = &wire.Emergency{Reason: em.Reason, Until: em.Until, RequestedBy: em.RequestedBy, TokenID: em.TokenID,
			RequestedAt: em.RequestedAt, Digest: em.Digest, Status: em.Status, AuthorizedAt: em.AuthorizedAt}
	}
	return out
}

func toPlan(p lifecycle.Plan) wire.Plan {
	return wire.Plan{ChangeRef: p.ChangeRef, Title: p.Title, Description: p.Description, Environments: p.Environments,
		Window: (*wire.Window)(p.Window), BackoutPlan: p.BackoutPlan, Risk: p.Risk}
}

func toApproval(a lifecycle.Approval) wire.Approval {
	return wire.Approval{Gate: a.Gate, Decision: string(a.Decision), Digest: a.Digest, Comment: a.Comment,
		By: a.By, TokenID: a.TokenID, Issuer: a.Issuer, Subject: a.Subject, At: a.At, Discarded: a.Discarded}
}

func toDeployment(d lifecycle.Deployment) wire.Deployment {
	return wire.Deployment{ID: d.ID, Environment: d.Environment, Target: d.Target, Status: string(d.Status),
		StartedAt: d.StartedAt, FinishedAt: d.FinishedAt, Notes: d.Notes, VerifiedDigests: d.VerifiedDigests,
		By: d.By, Issuer: d.Issuer, Subject: d.Subject, UpdatedAt: d.UpdatedAt, Emergency: d.Emergency, EmergencyReason: d.EmergencyReason}
}

// The requests, in the domain's terms.

func fromPlanRequest(p wire.PlanRequest) lifecycle.PlanRequest {
	return lifecycle.PlanRequest{ChangeRef: p.ChangeRef, Title: p.Title, Environments: p.Environments,
		Plan: lifecycle.PlanDetails{Description: p.Plan.Description, Window: (*lifecycle.Window)(p.Plan.Window),
			BackoutPlan: p.Plan.BackoutPlan, Risk: p.Plan.Risk}}
}

func fromArtifactRefs(refs []wire.ReleaseArtifactRef) []lifecycle.ReleaseArtifactRef {
	return convert(refs, func(r wire.ReleaseArtifactRef) lifecycle.ReleaseArtifactRef { return lifecycle.ReleaseArtifactRef(r) })
}

func (s *Server) toRelease(c *gin.Context, r lifecycle.Release) (wire.Release, error) {
	views, err := s.dml.Releases.GateViews(c.Request.Context(), r)
	if err != nil {
		return wire.Release{}, err
	}
	return toRelease(r, views), nil
}

func (s *Server) writeRelease(c *gin.Context, status int, r lifecycle.Release) {
	out, err := s.toRelease(c, r)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(status, out)
}

// answerRelease answers a release change: the release, or the error.
func (s *Server) answerRelease(c *gin.Context, r lifecycle.Release, err error) {
	if err != nil {
		s.releaseError(c, err)
		return
	}
	s.writeRelease(c, http.StatusOK, r)
}

// answerPlanned answers a change of a release's plan or artifacts: the
// release with its warnings (writePlanned), or the error.
func (s *Server) answerPlanned(c *gin.Context, r lifecycle.Release, err error) {
	if err != nil {
		s.releaseError(c, err)
		return
	}
	s.writePlanned(c, http.StatusOK, r)
}

// releaseError writes err, with its detail: the state and allowed
// actions for an illegal transition, the artifacts that block the build
// gate or that a release may not include, what change control refused.
func (s *Server) releaseError(c *gin.Context, err error) {
	var (
		ise *lifecycle.InvalidStateError
		bbe *lifecycle.BuildBlockedError
		are *lifecycle.ArtifactRefusedError
	)
	switch {
	case errors.As(err, &ise):
		s.writeError(c, err, wire.InvalidStateDetail{Action: ise.Action, Allowed: ise.Allowed, State: string(ise.State)})
	case errors.As(err, &bbe):
		arts := make([]wire.ArtifactStatus, 0, len(bbe.Artifacts))
		for _, a := range bbe.Artifacts {
			arts = append(arts, toArtifactStatus(a))
		}
		s.writeError(c, err, wire.BuildBlockedDetail{Release: bbe.Release, Artifacts: arts})
	case errors.As(err, &are):
		s.writeError(c, err, wire.ArtifactRefusedDetail{Name: are.Name, Version: are.Version, State: are.State, Reason: are.Reason})
	default:
		s.writeError(c, err, changeControlDetail(err))
	}
}

// changeControlDetail is the detail of an error of change control, nil
// for any other.
func changeControlDetail(err error) any {
	var (
		ow *lifecycle.OutsideWindowError
		ce *lifecycle.ChangeRefError
		re *lifecycle.RiskError
		ne *lifecycle.ChangeNotApprovedError
	)
	switch {
	case errors.As(err, &ow):
		return wire.OutsideWindowDetail{Window: (*wire.Window)(ow.Window), Now: ow.Now}
	case errors.As(err, &ce):
		return wire.ChangeRefDetail{ChangeRef: ce.ChangeRef, Pattern: ce.Pattern}
	case errors.As(err, &re):
		return wire.RiskDetail{Risk: re.Risk, Allowed: re.Allowed}
	case errors.As(err, &ne):
		return wire.ChangeNotApprovedDetail{ChangeRef: ne.ChangeRef, Status: ne.Status, Message: ne.Message}
	}
	return nil
}

func (s *Server) createRelease(c *gin.Context) {
	var req wire.CreateReleaseRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.CreateRelease(c.Request.Context(), principal(c), lifecycle.CreateReleaseRequest{
		Name: req.Name, PlanRequest: fromPlanRequest(req.PlanRequest),
		Artifacts: fromArtifactRefs(req.Artifacts), Gates: fromGateSettings(req.Gates),
	})
	if err != nil {
		if errors.Is(err, errdef.ErrConflict) {
			s.writeError(c, meaning(errReleaseExists, err), gin.H{"name": req.Name})
			return
		}
		s.releaseError(c, err)
		return
	}
	c.Header("Location", "/api/v1/releases/"+r.Name)
	s.writePlanned(c, http.StatusCreated, r)
}

// writePlanned answers a change of a release's plan or artifacts: the
// release, with a warning for each of its artifacts that is not admitted.
func (s *Server) writePlanned(c *gin.Context, status int, r lifecycle.Release) {
	out, err := s.toRelease(c, r)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	warnings, err := s.dml.Releases.ArtifactWarnings(c.Request.Context(), r)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(status, wire.PlannedRelease{Release: out, Warnings: convert(warnings, toArtifactStatus)})
}

func toArtifactStatus(a lifecycle.ArtifactStatus) wire.ArtifactStatus {
	unmet := a.Unmet
	if unmet == nil {
		unmet = []string{}
	}
	return wire.ArtifactStatus{Name: a.Name, Version: a.Version, State: string(a.State), Unmet: unmet, Reason: a.Reason, Message: a.Message()}
}

func (s *Server) listReleases(c *gin.Context) {
	f := lifecycle.ReleaseFilter{State: lifecycle.ReleaseState(c.Query("state")), Cursor: c.Query("cursor")}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > names.MaxPageSize {
			s.writeError(c, fmt.Errorf("%w: limit must be between 1 and %d", errdef.ErrInvalidInput, names.MaxPageSize), nil)
			return
		}
		f.Limit = n
	}
	list, next, err := s.dml.Releases.Releases(c.Request.Context(), f)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := make([]wire.Release, 0, len(list))
	for _, r := range list {
		j, err := s.toRelease(c, r)
		if err != nil {
			s.writeError(c, err, nil)
			return
		}
		out = append(out, j)
	}
	c.JSON(http.StatusOK, wire.ReleasePage{NextCursor: next, Releases: out})
}

func (s *Server) getRelease(c *gin.Context) {
	r, err := s.dml.Releases.Release(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	s.writeRelease(c, http.StatusOK, r)
}

// getReleaseManifest serves the sealed OCI image index with the server's
// signature over its exact bytes (X-Dml-Signature, base64 ECDSA P-256
// SHA-256, verifiable with GET /api/v1/keys/server).
func (s *Server) getReleaseManifest(c *gin.Context) {
	r, b, err := s.dml.Releases.OpenReleaseManifest(c.Request.Context(), principal(c), c.Param("name"))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Header("Content-Type", ocispec.MediaTypeImageIndex)
	c.Header("X-Dml-Signature", r.ManifestSignature)
	s.serveStored(c, b)
}

func (s *Server) setReleasePlan(c *gin.Context) {
	var req wire.PlanRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.SetPlan(c.Request.Context(), principal(c), c.Param("name"), fromPlanRequest(req))
	s.answerPlanned(c, r, err)
}

func (s *Server) setReleaseArtifacts(c *gin.Context) {
	var refs []wire.ReleaseArtifactRef
	if !s.bindJSON(c, &refs) {
		return
	}
	r, err := s.dml.Releases.SetArtifacts(c.Request.Context(), principal(c), c.Param("name"), fromArtifactRefs(refs))
	s.answerPlanned(c, r, err)
}

func (s *Server) decideGate(c *gin.Context) {
	var req wire.ApprovalRequest
	if !s.bindJSON(c, &req) {
		return
	}
	d, err := s.dml.Releases.DecideGate(c.Request.Context(), principal(c), c.Param("name"), lifecycle.ApprovalRequest{
		Gate: req.Gate, Decision: lifecycle.Decision(req.Decision), Digest: req.Digest, Comment: req.Comment,
	})
	if err != nil {
		s.releaseError(c, err)
		return
	}
	out, err := s.toRelease(c, d.Release)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, wire.DecidedRelease{Release: out, AlreadyCounted: d.AlreadyCounted, Message: d.Message()})
}

func (s *Server) recordDeployment(c *gin.Context) {
	var req wire.DeploymentRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, dep, err := s.dml.Releases.RecordDeployment(c.Request.Context(), principal(c), c.Param("name"), lifecycle.DeploymentRequest{
		Environment: req.Environment, Target: req.Target, Status: lifecycle.DeploymentStatus(req.Status),
		Notes: req.Notes, VerifiedDigests: req.VerifiedDigests,
	})
	s.writeDeployment(c, http.StatusCreated, r, dep, err)
}

// writeDeployment answers a deployment change with the deployment and the
// release it belongs to.
func (s *Server) writeDeployment(c *gin.Context, status int, r lifecycle.Release, dep lifecycle.Deployment, err error) {
	if err != nil {
		s.releaseError(c, err)
		return
	}
	out, err := s.toRelease(c, r)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(status, wire.DeploymentResult{Deployment: toDeployment(dep), Release: out})
}

func (s *Server) updateDeployment(c *gin.Context) {
	var upd wire.DeploymentUpdate
	if !s.bindJSON(c, &upd) {
		return
	}
	r, dep, err := s.dml.Releases.UpdateDeployment(c.Request.Context(), principal(c), c.Param("name"), c.Param("id"), lifecycle.DeploymentUpdate{
		Status: lifecycle.DeploymentStatus(upd.Status), Notes: upd.Notes, VerifiedDigests: upd.VerifiedDigests,
	})
	s.writeDeployment(c, http.StatusOK, r, dep, err)
}

func (s *Server) fileReview(c *gin.Context) {
	var req wire.ReviewRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.FileReview(c.Request.Context(), principal(c), c.Param("name"), lifecycle.ReviewRequest{
		Outcome: req.Outcome, Summary: req.Summary, Incidents: req.Incidents, ObjectivesMet: req.ObjectivesMet,
	})
	s.answerRelease(c, r, err)
}

func (s *Server) cancelRelease(c *gin.Context) {
	var req wire.CancelRequest
	if c.Request.ContentLength != 0 && !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.CancelRelease(c.Request.Context(), principal(c), c.Param("name"), req.Reason)
	s.answerRelease(c, r, err)
}

func (s *Server) requestEmergency(c *gin.Context) {
	var req wire.EmergencyRequest
	if !s.bindJSON(c, &req) {
		return
	}
	er := lifecycle.EmergencyRequest{Reason: req.Reason}
	if req.Until != nil {
		er.Until = *req.Until
	}
	r, err := s.dml.Releases.RequestEmergency(c.Request.Context(), principal(c), c.Param("name"), er)
	s.answerRelease(c, r, err)
}

func (s *Server) retireArtifact(c *gin.Context, ref artifactRef) {
	a, err := s.dml.Catalog.RetireArtifact(c.Request.Context(), principal(c), ref.Name, ref.Version)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toArtifact(a))
}
