package api

import (
	"net/http"

	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/gin-gonic/gin"
)

func (s *Server) routeSettings(g *gin.RouterGroup) {
	g.GET("/settings/gates", s.getGateDefaults)
	g.PUT("/settings/gates", s.setGateDefaults)
}

type gateDefaultsJSON struct {
	Gates     map[string]lifecycle.GateSetting `json:"gates"`
	UpdatedBy string                           `json:"updatedBy,omitempty"`
	UpdatedAt any                              `json:"updatedAt,omitempty"`
}

func (s *Server) getGateDefaults(c *gin.Context) {
	gates, st, err := s.dml.Releases.GateDefaults(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := gateDefaultsJSON{Gates: gates, UpdatedBy: st.UpdatedBy}
	if !st.UpdatedAt.IsZero() {
		out.UpdatedAt = st.UpdatedAt
	}
	c.JSON(http.StatusOK, out)
}

// setGateDefaults takes {"deploy:production":{"approvals":2},...}.
func (s *Server) setGateDefaults(c *gin.Context) {
	var gates map[string]lifecycle.GateSetting
	if !s.bindJSON(c, &gates) {
		return
	}
	st, err := s.dml.Releases.SetGateDefaults(c.Request.Context(), principal(c), gates)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, gateDefaultsJSON{Gates: gates, UpdatedBy: st.UpdatedBy, UpdatedAt: st.UpdatedAt})
}
