package api

import (
	"net/http"

	"github.com/dmlproject/dml/api/wire"
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
	c.JSON(http.StatusOK, wire.Identity{Environments: envs, Issuer: p.Issuer, Name: p.Name, Roles: plain(p.Roles), Subject: p.Subject, TokenID: p.TokenID})
}

func (s *Server) createToken(c *gin.Context) {
	var req wire.TokenRequest
	if !s.bindJSON(c, &req) {
		return
	}
	t, err := s.dml.Access.IssueToken(c.Request.Context(), principal(c), access.TokenRequest{
		Name: req.Name, Roles: named[access.Role](req.Roles), Environments: req.Environments, ExpiresIn: req.ExpiresIn,
	})
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusCreated, wire.IssuedToken{
		CreatedAt: t.Token.CreatedAt, Environments: t.Token.Environments, ExpiresAt: t.Token.ExpiresAt,
		ID: t.Token.ID, Name: t.Token.Name, Roles: plain(t.Token.Roles), Token: t.Secret,
	})
}

// toToken is a token as listed: never its secret nor the secret's hash
// (access.Token holds neither).
func toToken(t access.Token) wire.Token {
	envs := t.Environments
	if envs == nil {
		envs = []string{}
	}
	return wire.Token{ID: t.ID, Name: t.Name, Roles: plain(t.Roles), Environments: envs, CreatedBy: t.CreatedBy,
		CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

// listTokens answers every token, revoked and expired ones included,
// oldest first.
func (s *Server) listTokens(c *gin.Context) {
	list, err := s.dml.Access.Tokens(c.Request.Context(), principal(c))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := make([]wire.Token, len(list))
	for i, t := range list {
		out[i] = toToken(t)
	}
	c.JSON(http.StatusOK, wire.TokenList{Tokens: out})
}

func (s *Server) revokeToken(c *gin.Context) {
	if err := s.dml.Access.RevokeToken(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}
