package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/dmlproject/dml/releases"
	"github.com/gin-gonic/gin"
)

const principalKey = "dml.principal"

// authenticate resolves the request's token (Bearer, or Basic with the
// token as password, for OCI clients) and stores the principal.
func (s *Server) authenticate(c *gin.Context) {
	secret := tokenFrom(c.Request)
	p, err := s.svc.Authenticate(c.Request.Context(), secret)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

func tokenFrom(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "bearer":
		return strings.TrimSpace(rest)
	case "basic":
		if _, password, ok := r.BasicAuth(); ok {
			return password
		}
	}
	return ""
}

func principal(c *gin.Context) releases.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(releases.Principal)
	return pr
}

// requireRole refuses principals holding none of the roles.
func (s *Server) requireRole(roles ...releases.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !principal(c).Has(roles...) {
			s.writeError(c, fmt.Errorf("%w: needs one of the roles %v", releases.ErrDenied, roles), nil)
			return
		}
		c.Next()
	}
}
