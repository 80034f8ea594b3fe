package api

import (
	"net/http"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/gin-gonic/gin"
)

func (s *Server) routeTokens(g *gin.RouterGroup) {
	g.GET("/whoami", s.whoami)
	g.GET("/tokens", s.listTokens)
	g.POST("/tokens", s.createToken)
	g.DELETE("/tokens/:id", s.revokeToken)
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
	var req access.TokenRequest
	if !s.bindJSON(c, &req) {
		return
	}
	t, err := s.dml.Access.IssueToken(c.Request.Context(), principal(c), req)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusCreated, gin.H{
		"id": t.Token.ID, "token": t.Secret, "name": t.Token.Name,
		"roles": t.Token.Roles, "environments": t.Token.Environments, "createdAt": t.Token.CreatedAt,
		"expiresAt": t.Token.ExpiresAt,
	})
}

// tokenJSON is a token as listed: never its secret nor the secret's hash
// (access.Token holds neither). Times that are not set are null.
type tokenJSON struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	Roles        []access.Role `json:"roles"`
	Environments []string      `json:"environments"`
	CreatedBy    string        `json:"createdBy"`
	CreatedAt    time.Time     `json:"createdAt"`
	LastUsedAt   *time.Time    `json:"lastUsedAt"`
	ExpiresAt    *time.Time    `json:"expiresAt"`
	RevokedAt    *time.Time    `json:"revokedAt"`
}

// listTokens answers every token, revoked and expired ones included,
// oldest first.
func (s *Server) listTokens(c *gin.Context) {
	list, err := s.dml.Access.Tokens(c.Request.Context(), principal(c))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := make([]tokenJSON, len(list))
	for i, t := range list {
		envs := t.Environments
		if envs == nil {
			envs = []string{}
		}
		out[i] = tokenJSON{ID: t.ID, Name: t.Name, Roles: t.Roles, Environments: envs, CreatedBy: t.CreatedBy,
			CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
	}
	c.JSON(http.StatusOK, gin.H{"tokens": out})
}

func (s *Server) revokeToken(c *gin.Context) {
	if err := s.dml.Access.RevokeToken(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}
