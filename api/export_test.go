package api

import (
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// What the external tests (package api_test, which start real servers
// through internal/testserver) need to see of the access matrix.

// AccessRule is one row of the matrix.
type AccessRule = accessRule

// AccessMatrix is the matrix as the router enforces it.
var AccessMatrix = accessMatrix

// Engine exposes the router, so a test can add a route and see the
// coverage check notice it.
func (s *Server) Engine() *gin.Engine { return s.engine }

// RouteKeys lists every route the router serves, named as the matrix
// names them: gin's own route list, with the catch-alls expanded into the
// sub-routes their dispatchers serve. Problems are sub-routes that no gin
// route reaches, or /v2/ kinds without a name in ociTemplates.
func (s *Server) RouteKeys() (keys, problems []string) {
	ginMethods := map[string][]string{}
	for _, r := range s.engine.Routes() {
		switch r.Path {
		case artifactsCatchAll, ociCatchAll:
			ginMethods[r.Path] = append(ginMethods[r.Path], r.Method)
		default:
			keys = append(keys, r.Method+" "+braceParams(r.Path))
		}
	}
	for sub := range s.artifactRoutes() {
		method, suffix, _ := strings.Cut(sub, " ")
		if !slices.Contains(ginMethods[artifactsCatchAll], method) {
			problems = append(problems, "artifact sub-route "+sub+" has no gin route for "+method)
			continue
		}
		keys = append(keys, method+" "+artifactVersion+suffix)
	}
	for sub := range s.ociRoutes() {
		method, kind, _ := strings.Cut(sub, " ")
		tmpl, ok := ociTemplates[kind]
		switch {
		case !ok:
			problems = append(problems, "/v2/ kind "+kind+" has no template in ociTemplates")
		case !slices.Contains(ginMethods[ociCatchAll], method):
			problems = append(problems, "/v2/ sub-route "+sub+" has no gin route for "+method)
		default:
			keys = append(keys, method+" "+tmpl)
		}
	}
	slices.Sort(keys)
	return keys, problems
}

// MatrixGaps compares the router's routes with the matrix: routes served
// without a rule, and rules for routes that are not served.
func (s *Server) MatrixGaps() (unruled, stale, problems []string) {
	keys, problems := s.RouteKeys()
	rules, err := indexRules(accessMatrix)
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, k := range keys {
		if _, ok := rules[k]; !ok {
			unruled = append(unruled, k)
		}
	}
	for _, r := range accessMatrix {
		if !slices.Contains(keys, r.key()) {
			stale = append(stale, r.key())
		}
	}
	return unruled, stale, problems
}

// AccessRuleGrant is one grant of a row.
type AccessRuleGrant = grant

// Operations are every value of the operation label of the request
// metrics, sorted: the matrix's and those of metrics.go.
func Operations() []string {
	out := []string{opUnmatched, opBlobMount, opBlobUploadMonolithic}
	for _, r := range accessMatrix {
		out = append(out, r.Operation)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
