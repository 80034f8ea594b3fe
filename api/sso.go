package api

import (
	"net/http"

	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/access"
	"github.com/gin-gonic/gin"
)

// Single sign-on for the CLI (the console's flow is console/sso.go):
// the providers, unauthenticated, so that `dml login` knows where to
// send the browser; the exchange of a verified ID token for a session;
// and signing out.
func (s *Server) routeSSO(g *gin.RouterGroup) {
	g.GET("/sso/providers", s.ssoProviders)
	g.POST("/sso/sessions", s.ssoSignIn)
	g.DELETE("/sso/session", s.ssoSignOut)
}

func (s *Server) ssoProviders(c *gin.Context) {
	out := wire.SSOProviderList{Providers: []wire.SSOProvider{}}
	for _, p := range s.sso.List() {
		out.Providers = append(out.Providers, wire.SSOProvider{Name: p.Name, DisplayName: p.DisplayName, Issuer: p.Issuer,
			CLIClientID: p.CLIClientID, Scopes: p.Scopes})
	}
	c.JSON(http.StatusOK, out)
}

// ssoSignIn verifies the ID token `dml login` obtained (audience: the
// provider's CLI client; nonce: the one the login chose) and starts a
// session for the person.
func (s *Server) ssoSignIn(c *gin.Context) {
	var req wire.SSOSessionRequest
	if !s.bindJSON(c, &req) {
		return
	}
	p, err := s.sso.Get(req.Provider)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	id, err := p.VerifyCLI(c.Request.Context(), req.IDToken, req.AccessToken, req.Nonce)
	if err != nil {
		s.writeError(c, err, map[string]string{"provider": p.Name})
		return
	}
	session, err := s.dml.Access.SignIn(c.Request.Context(), access.SignInRequest{Identity: id, Mapping: p.Mapping, TTL: p.TTL})
	if err != nil {
		s.writeError(c, err, map[string]string{"provider": p.Name, "subject": id.Subject})
		return
	}
	c.JSON(http.StatusCreated, toSSOSession(p, session))
}

func toSSOSession(p *sso.Provider, s access.IssuedToken) wire.SSOSession {
	return wire.SSOSession{Environments: s.Token.Environments, ExpiresAt: *s.Token.ExpiresAt, Issuer: s.Token.Issuer,
		Name: s.Token.Name, Provider: p.Name, Roles: plain(s.Token.Roles), Subject: s.Token.Subject, Token: s.Secret, TokenID: s.Token.ID}
}

// ssoSignOut ends the request's own session.
func (s *Server) ssoSignOut(c *gin.Context) {
	if err := s.dml.Access.EndSession(c.Request.Context(), principal(c)); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}
