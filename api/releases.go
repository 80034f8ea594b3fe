package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

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
}

// gateJSON shows one gate: its quorum, who approved, and the digest an
// approval must name now.
type gateJSON struct {
	Gate           string   `json:"gate"`
	Required       int      `json:"required"`
	Received       int      `json:"received"`
	Approvers      []string `json:"approvers"`
	ExpectedDigest string   `json:"expectedDigest"`
	Authorized     bool     `json:"authorized"`
	Open           bool     `json:"open"`
}

type releaseJSON struct {
	lifecycle.Release
	Gates          []gateJSON `json:"gates"`
	AllowedActions []string   `json:"allowedActions"`
}

func (s *Server) toReleaseJSON(c *gin.Context, r lifecycle.Release) (releaseJSON, error) {
	views, err := s.dml.Releases.GateViews(c.Request.Context(), r)
	if err != nil {
		return releaseJSON{}, err
	}
	out := releaseJSON{Release: r, Gates: make([]gateJSON, len(views)), AllowedActions: lifecycle.AllowedActions(r)}
	for i, v := range views {
		out.Gates[i] = gateJSON{Gate: v.Gate, Required: v.Required, Received: len(v.Approvers), Approvers: v.Approvers,
			ExpectedDigest: v.ExpectedDigest.String(), Authorized: v.Authorized, Open: v.Open}
	}
	return out, nil
}

func (s *Server) writeRelease(c *gin.Context, status int, r lifecycle.Release) {
	out, err := s.toReleaseJSON(c, r)
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

// releaseError writes err, with the state and allowed actions for an
// illegal transition.
func (s *Server) releaseError(c *gin.Context, err error) {
	var ise *lifecycle.InvalidStateError
	if errors.As(err, &ise) {
		s.writeError(c, err, gin.H{"state": ise.State, "action": ise.Action, "allowed": ise.Allowed})
		return
	}
	s.writeError(c, err, nil)
}

func (s *Server) createRelease(c *gin.Context) {
	var req lifecycle.CreateReleaseRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.CreateRelease(c.Request.Context(), principal(c), req)
	if err != nil {
		if errors.Is(err, errdef.ErrConflict) {
			s.writeError(c, meaning(errReleaseExists, err), gin.H{"name": req.Name})
			return
		}
		s.releaseError(c, err)
		return
	}
	c.Header("Location", "/api/v1/releases/"+r.Name)
	s.writeRelease(c, http.StatusCreated, r)
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
	out := make([]releaseJSON, 0, len(list))
	for _, r := range list {
		j, err := s.toReleaseJSON(c, r)
		if err != nil {
			s.writeError(c, err, nil)
			return
		}
		out = append(out, j)
	}
	c.JSON(http.StatusOK, gin.H{"releases": out, "nextCursor": next})
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
	var req lifecycle.PlanRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.SetPlan(c.Request.Context(), principal(c), c.Param("name"), req)
	s.answerRelease(c, r, err)
}

func (s *Server) setReleaseArtifacts(c *gin.Context) {
	var refs []lifecycle.ReleaseArtifactRef
	if !s.bindJSON(c, &refs) {
		return
	}
	r, err := s.dml.Releases.SetArtifacts(c.Request.Context(), principal(c), c.Param("name"), refs)
	s.answerRelease(c, r, err)
}

func (s *Server) decideGate(c *gin.Context) {
	var req lifecycle.ApprovalRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.Decide(c.Request.Context(), principal(c), c.Param("name"), req)
	s.answerRelease(c, r, err)
}

func (s *Server) recordDeployment(c *gin.Context) {
	var req lifecycle.DeploymentRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, dep, err := s.dml.Releases.RecordDeployment(c.Request.Context(), principal(c), c.Param("name"), req)
	s.writeDeployment(c, http.StatusCreated, r, dep, err)
}

// writeDeployment answers a deployment change with the deployment and the
// release it belongs to.
func (s *Server) writeDeployment(c *gin.Context, status int, r lifecycle.Release, dep lifecycle.Deployment, err error) {
	if err != nil {
		s.releaseError(c, err)
		return
	}
	out, err := s.toReleaseJSON(c, r)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(status, gin.H{"deployment": dep, "release": out})
}

func (s *Server) updateDeployment(c *gin.Context) {
	var upd lifecycle.DeploymentUpdate
	if !s.bindJSON(c, &upd) {
		return
	}
	r, dep, err := s.dml.Releases.UpdateDeployment(c.Request.Context(), principal(c), c.Param("name"), c.Param("id"), upd)
	s.writeDeployment(c, http.StatusOK, r, dep, err)
}

func (s *Server) fileReview(c *gin.Context) {
	var req lifecycle.ReviewRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.FileReview(c.Request.Context(), principal(c), c.Param("name"), req)
	s.answerRelease(c, r, err)
}

func (s *Server) cancelRelease(c *gin.Context) {
	var req struct {
		Reason string `json:"reason"`
	}
	if c.Request.ContentLength != 0 && !s.bindJSON(c, &req) {
		return
	}
	r, err := s.dml.Releases.CancelRelease(c.Request.Context(), principal(c), c.Param("name"), req.Reason)
	s.answerRelease(c, r, err)
}

func (s *Server) retireArtifact(c *gin.Context, ref artifactRef) {
	a, err := s.dml.Catalog.RetireArtifact(c.Request.Context(), principal(c), ref.Name, ref.Version)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toArtifactJSON(a))
}
