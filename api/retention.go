package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/retention"
	"github.com/gin-gonic/gin"
)

// Retention policies and runs, and quotas: admins only (authz.go).
func (s *Server) routeRetention(g *gin.RouterGroup) {
	g.GET("/retention/policies", s.listRetentionPolicies)
	g.GET("/retention/policies/:id", s.getRetentionPolicy)
	g.PUT("/retention/policies/:id", s.putRetentionPolicy)
	g.DELETE("/retention/policies/:id", s.deleteRetentionPolicy)
	g.POST("/retention/run", s.runRetention)
	// A prefix may hold "/": the rest of the path is the prefix.
	g.GET("/quotas", s.listQuotas)
	g.GET("/quotas/*prefix", s.getQuota)
	g.PUT("/quotas/*prefix", s.putQuota)
	g.DELETE("/quotas/*prefix", s.deleteQuota)
}

func toRetentionPolicy(p retention.Policy) wire.RetentionPolicy {
	w := wire.RetentionPolicy{ID: p.ID, Pattern: p.Pattern, KeepAdmitted: p.KeepAdmitted,
		DeleteQuarantinedAfterDays: p.DeleteQuarantinedAfterDays, DeleteRejectedAfterDays: p.DeleteRejectedAfterDays, UpdatedBy: p.UpdatedBy}
	if !p.UpdatedAt.IsZero() {
		w.UpdatedAt = &p.UpdatedAt
	}
	return w
}

func (s *Server) listRetentionPolicies(c *gin.Context) {
	list, err := s.dml.Retention.Policies(c.Request.Context(), principal(c))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.RetentionPolicyList{Policies: make([]wire.RetentionPolicy, 0, len(list))}
	for _, p := range list {
		out.Policies = append(out.Policies, toRetentionPolicy(p))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getRetentionPolicy(c *gin.Context) {
	p, err := s.dml.Retention.Policy(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toRetentionPolicy(p))
}

func (s *Server) putRetentionPolicy(c *gin.Context) {
	var req wire.RetentionPolicy
	if !s.bindJSON(c, &req) {
		return
	}
	id := c.Param("id")
	if req.ID != "" && req.ID != id {
		s.writeError(c, fmt.Errorf("%w: the body's id %q is not the path's %q", errdef.ErrInvalidInput, req.ID, id), nil)
		return
	}
	p, err := s.dml.Retention.SetPolicy(c.Request.Context(), principal(c), retention.Policy{ID: id, Pattern: req.Pattern,
		KeepAdmitted: req.KeepAdmitted, DeleteQuarantinedAfterDays: req.DeleteQuarantinedAfterDays, DeleteRejectedAfterDays: req.DeleteRejectedAfterDays})
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toRetentionPolicy(p))
}

func (s *Server) deleteRetentionPolicy(c *gin.Context) {
	if err := s.dml.Retention.DeletePolicy(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}

// runRetention runs the policies now; ?dryRun=true only lists what would
// go. The run is bounded by the catalogue, and answered whole.
func (s *Server) runRetention(c *gin.Context) {
	dry := false
	if v := c.Query("dryRun"); v != "" {
		var err error
		if dry, err = strconv.ParseBool(v); err != nil {
			s.writeError(c, fmt.Errorf("%w: dryRun %q is not true or false", errdef.ErrInvalidInput, v), nil)
			return
		}
	}
	rep, err := s.dml.Retention.Run(c.Request.Context(), principal(c), dry)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.RetentionRun{Items: make([]wire.RetentionItem, 0, len(rep.Outcomes))}
	for _, o := range rep.Outcomes {
		out.Items = append(out.Items, wire.RetentionItem{Name: o.Name, Version: o.Version.Version, Digest: o.Digest.String(), State: string(o.State),
			Size: o.Size, Policy: o.Policy, Reason: o.Reason, Deleted: o.Deleted, Skipped: o.Skipped})
	}
	out.Summary = wire.RetentionSummary(rep.Summary)
	c.JSON(http.StatusOK, out)
}

func toQuota(l quota.Listed) wire.Quota {
	w := wire.Quota{Prefix: l.Prefix, MaxBytes: l.MaxBytes, MaxArtifacts: l.MaxArtifacts,
		UsedBytes: l.Usage.Bytes, UsedArtifacts: l.Usage.Artifacts, UpdatedBy: l.UpdatedBy}
	if !l.UpdatedAt.IsZero() {
		w.UpdatedAt = &l.UpdatedAt
	}
	return w
}

func quotaPrefix(c *gin.Context) string { return strings.TrimPrefix(c.Param("prefix"), "/") }

func (s *Server) listQuotas(c *gin.Context) {
	list, err := s.dml.Quotas.Quotas(c.Request.Context(), principal(c))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.QuotaList{Quotas: make([]wire.Quota, 0, len(list))}
	for _, l := range list {
		out.Quotas = append(out.Quotas, toQuota(l))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getQuota(c *gin.Context) {
	l, err := s.dml.Quotas.Quota(c.Request.Context(), principal(c), quotaPrefix(c))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toQuota(l))
}

func (s *Server) putQuota(c *gin.Context) {
	var req wire.Quota
	if !s.bindJSON(c, &req) {
		return
	}
	prefix := quotaPrefix(c)
	if req.Prefix != "" && req.Prefix != prefix {
		s.writeError(c, fmt.Errorf("%w: the body's prefix %q is not the path's %q", errdef.ErrInvalidInput, req.Prefix, prefix), nil)
		return
	}
	ctx, p := c.Request.Context(), principal(c)
	if _, err := s.dml.Quotas.SetQuota(ctx, p, quota.Quota{Prefix: prefix, MaxBytes: req.MaxBytes, MaxArtifacts: req.MaxArtifacts}); err != nil {
		s.writeError(c, err, nil)
		return
	}
	l, err := s.dml.Quotas.Quota(ctx, p, prefix)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toQuota(l))
}

func (s *Server) deleteQuota(c *gin.Context) {
	if err := s.dml.Quotas.DeleteQuota(c.Request.Context(), principal(c), quotaPrefix(c)); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}

// quotaDetail is the detail of a QUOTA_EXCEEDED answer, on both APIs.
func quotaDetail(err error) any {
	var qe *quota.ExceededError
	if !errors.As(err, &qe) {
		return nil
	}
	return wire.QuotaExceeded{Prefix: qe.Prefix, Limit: qe.Limit, Max: qe.Max, Used: qe.Used, Requested: qe.Requested}
}
