package api

import (
	"net/http"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/gin-gonic/gin"
)

func (s *Server) routeSettings(g *gin.RouterGroup) {
	g.GET("/settings/gates", s.getGateDefaults)
	g.PUT("/settings/gates", s.setGateDefaults)
	g.GET("/settings/change", s.getChangePolicy)
	g.PATCH("/settings/change", s.setChangePolicy)
}

// toGateSettings and fromGateSettings convert quorums by gate; nil stays
// nil.
func toGateSettings(gates map[string]lifecycle.GateSetting) map[string]wire.GateSetting {
	return convertMap(gates, func(g lifecycle.GateSetting) wire.GateSetting { return wire.GateSetting(g) })
}

func fromGateSettings(gates map[string]wire.GateSetting) map[string]lifecycle.GateSetting {
	return convertMap(gates, func(g wire.GateSetting) lifecycle.GateSetting { return lifecycle.GateSetting(g) })
}

func (s *Server) getGateDefaults(c *gin.Context) {
	gates, st, err := s.dml.Releases.GateDefaults(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.GateDefaults{Gates: toGateSettings(gates), UpdatedBy: st.UpdatedBy}
	if !st.UpdatedAt.IsZero() {
		out.UpdatedAt = &st.UpdatedAt
	}
	c.JSON(http.StatusOK, out)
}

// setGateDefaults takes {"deploy:production":{"approvals":2},...}.
func (s *Server) setGateDefaults(c *gin.Context) {
	var gates map[string]wire.GateSetting
	if !s.bindJSON(c, &gates) {
		return
	}
	st, err := s.dml.Releases.SetGateDefaults(c.Request.Context(), principal(c), fromGateSettings(gates))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, wire.GateDefaults{Gates: gates, UpdatedBy: st.UpdatedBy, UpdatedAt: &st.UpdatedAt})
}

// toChangePolicy is the wire form of the change policy: the risk levels in
// force, and never the change system's secret.
func toChangePolicy(p lifecycle.ChangePolicy, st lifecycle.Setting) wire.ChangePolicy {
	out := wire.ChangePolicy{RequireChangeWindow: p.RequireChangeWindow, RiskLevels: p.Risks(),
		ChangeRefPattern: p.ChangeRefPattern, UpdatedBy: st.UpdatedBy}
	if cs := p.ChangeSystem; cs != nil {
		out.ChangeSystem = &wire.ChangeSystemInfo{URL: cs.URL, Signed: cs.Secret != ""}
	}
	if !st.UpdatedAt.IsZero() {
		out.UpdatedAt = &st.UpdatedAt
	}
	return out
}

func (s *Server) getChangePolicy(c *gin.Context) {
	p, st, err := s.dml.Releases.ChangePolicy(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toChangePolicy(p, st))
}

// setChangePolicy takes a wire.ChangePolicyUpdate: what it leaves out
// stays as it is.
func (s *Server) setChangePolicy(c *gin.Context) {
	var req wire.ChangePolicyUpdate
	if !s.bindJSON(c, &req) {
		return
	}
	upd := lifecycle.ChangePolicyUpdate{RequireChangeWindow: req.RequireChangeWindow, ChangeRefPattern: req.ChangeRefPattern}
	if req.RiskLevels != nil {
		upd.RiskLevels = &req.RiskLevels
	}
	if cs := req.ChangeSystem; cs != nil {
		upd.ChangeSystem = &lifecycle.ChangeSystemEndpoint{URL: cs.URL, Secret: cs.Secret}
	}
	p, st, err := s.dml.Releases.SetChangePolicy(c.Request.Context(), principal(c), upd)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toChangePolicy(p, st))
}
