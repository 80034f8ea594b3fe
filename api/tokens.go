package api

import (
	"net/http"

	"github.com/dmlproject/dml/releases"
	"github.com/gin-gonic/gin"
)

func (s *Server) routeTokens(g *gin.RouterGroup) {
	g.GET("/whoami", s.whoami)
	admin := g.Group("", s.requireRole(releases.RoleAdmin))
	admin.POST("/tokens", s.createToken)
	admin.DELETE("/tokens/:id", s.revokeToken)
}

func (s *Server) whoami(c *gin.Context) {
	p := principal(c)
	envs := p.Environments
	if envs == nil {
		envs = []string{}
	}
	c.JSON(http.StatusOK, gin.H{"tokenId": p.TokenID, "name": p.Name, "roles": p.Roles, "environments": envs})
}

func (s *Server) createToken(c *gin.Context) {
	var req releases.TokenRequest
	if !s.bindJSON(c, &req) {
		return
	}
	t, err := s.svc.IssueToken(c.Request.Context(), principal(c), req)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusCreated, gin.H{
		"id": t.Token.ID, "token": t.Secret, "name": t.Token.Name,
		"roles": t.Token.Roles, "environments": t.Token.Environments, "createdAt": t.Token.CreatedAt,
	})
}

func (s *Server) revokeToken(c *gin.Context) {
	if err := s.svc.RevokeToken(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}
