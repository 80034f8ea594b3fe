package api

import (
	"net/http"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/gin-gonic/gin"
)

const principalKey = "dml.principal"

// tokenFrom is the request's token: Bearer, or Basic with the token as
// password (for OCI clients, with any user name).
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

func principal(c *gin.Context) access.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(access.Principal)
	return pr
}
