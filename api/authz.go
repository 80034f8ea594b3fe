package api

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/gin-gonic/gin"
)

//go:generate go test -run ^TestAccessMatrixDoc$ -update-docs .

// The authorisation matrix: every route, which roles may call it. The
// router enforces it (authorize) before any handler runs, so a refused
// request learns nothing about the resource it names; docs/security.md is
// rendered from it (TestAccessMatrixDoc), and TestAccessMatrixCoversRoutes
// fails for a route of the router that has no rule here. A route without
// a rule is refused to everyone.
//
// The matrix decides by role alone. What depends on data stays in the
// domain: a grant with a note is narrowed there (a deployer's
// environments, a publisher's own quarantined content, separation of
// duties), and the note says how.

// accessRule is one row of the matrix.
type accessRule struct {
	Method string
	// Path is the route in {param} form. The catch-alls of the router
	// (/api/v1/artifacts/*path, /v2/*path) have one row per sub-route.
	Path string
	// Public routes need no token.
	Public bool
	// Grants are the roles that may call the route; every other role is
	// refused with 403, and a request without a valid token with 401.
	Grants []grant
	// Download marks routes that serve stored content: every GET of one is
	// recorded in the access log.
	Download bool
}

// grant lets a role call a route; a Note says how the domain narrows it.
type grant struct {
	Role access.Role
	Note string
}

// Notes on grants that the domain narrows by data.
const (
	noteAdmittedOrOwn = "admitted content, and content it pushed itself"
	noteAdmitted      = "admitted content only"
	noteDeployScope   = "only admitted content of a release whose deploy gate is authorised for one of its environments"
	noteOwnEnv        = "only for the environments its token names"
	noteSeparation    = "never for a release it created or content it published (separation of duties)"
	noteOwnUpload     = "only its own upload sessions"
	noteOwnUnadmitted = "only what it pushed, and never admitted content"
	noteNotAdmitted   = "never admitted content"
)

const (
	admin          = access.RoleAdmin
	publisher      = access.RolePublisher
	releaseManager = access.RoleReleaseManager
	approver       = access.RoleApprover
	deployer       = access.RoleDeployer
	auditor        = access.RoleAuditor
)

// only grants the roles, without notes.
func only(roles ...access.Role) []grant {
	out := make([]grant, len(roles))
	for i, r := range roles {
		out[i] = grant{Role: r}
	}
	return out
}

// everyRole grants every role; notes narrow some of them.
func everyRole(notes ...grant) []grant {
	out := only(access.Roles...)
	for _, n := range notes {
		for i := range out {
			if out[i].Role == n.Role {
				out[i] = n
			}
		}
	}
	return out
}

// contentReaders are the grants of a route that serves artifact bytes: what
// Service.OpenContent and the registry's pull rules allow.
func contentReaders() []grant {
	return everyRole(
		grant{publisher, noteAdmittedOrOwn},
		grant{releaseManager, noteAdmitted},
		grant{approver, noteAdmitted},
		grant{deployer, noteDeployScope},
	)
}

// uploaders are the grants of a /v2/ upload session's routes.
func uploaders() []grant {
	return []grant{{admin, noteOwnUpload}, {publisher, noteOwnUpload}}
}

// registryDeleters are the grants of deleting /v2/ blobs and manifests.
func registryDeleters() []grant {
	return []grant{{admin, noteNotAdmitted}, {publisher, noteOwnUnadmitted}}
}

const (
	v1Prefix = "/api/v1"
	// artifactVersion is the root of the /api/v1/artifacts/*path sub-routes.
	artifactVersion = v1Prefix + "/artifacts/{name}/versions/{version}"
	// The router's catch-alls, as gin names them.
	artifactsCatchAll = v1Prefix + "/artifacts/*path"
	ociCatchAll       = "/v2/*path"
)

// ociTemplates names each kind of /v2/ route (see parseOCIPath) in the
// matrix.
var ociTemplates = map[string]string{
	"ping":         "/v2/",
	"upload-start": "/v2/{name}/blobs/uploads/",
	"upload":       "/v2/{name}/blobs/uploads/{uuid}",
	"blob":         "/v2/{name}/blobs/{digest}",
	"manifest":     "/v2/{name}/manifests/{reference}",
	"tags":         "/v2/{name}/tags/list",
	"referrers":    "/v2/{name}/referrers/{digest}",
}

// accessMatrix is the table. Keep it in the order of docs/security.md:
// public, artifacts, evidence, trust, releases, settings, audit, tokens,
// OCI.
var accessMatrix = []accessRule{
	{Method: "GET", Path: "/healthz", Public: true},
	{Method: "GET", Path: "/readyz", Public: true},
	{Method: "GET", Path: "/metrics", Public: true},

	{Method: "GET", Path: v1Prefix + "/artifacts", Grants: everyRole()},
	{Method: "PUT", Path: artifactVersion, Grants: only(admin, publisher)},
	{Method: "GET", Path: artifactVersion, Grants: everyRole()},
	{Method: "HEAD", Path: artifactVersion, Grants: everyRole()},
	{Method: "GET", Path: artifactVersion + "/content", Grants: contentReaders(), Download: true},
	{Method: "HEAD", Path: artifactVersion + "/content", Grants: contentReaders()},
	{Method: "POST", Path: artifactVersion + "/retire", Grants: only(admin, releaseManager)},
	{Method: "GET", Path: artifactVersion + "/provenance", Grants: only(admin, auditor)},

	{Method: "POST", Path: artifactVersion + "/signatures", Grants: only(admin, publisher)},
	{Method: "POST", Path: artifactVersion + "/attestations", Grants: only(admin, publisher)},
	{Method: "GET", Path: artifactVersion + "/evidence", Grants: everyRole()},
	{Method: "GET", Path: artifactVersion + "/evidence/{digest}", Grants: everyRole(), Download: true},
	{Method: "HEAD", Path: artifactVersion + "/evidence/{digest}", Grants: everyRole()},

	{Method: "GET", Path: v1Prefix + "/keys/server", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/trust/keys", Grants: everyRole()},
	{Method: "POST", Path: v1Prefix + "/trust/keys", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/trust/keys/{id}/revoke", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/trust/policy", Grants: everyRole()},
	{Method: "PUT", Path: v1Prefix + "/trust/policy", Grants: only(admin)},

	{Method: "GET", Path: v1Prefix + "/releases", Grants: everyRole()},
	{Method: "POST", Path: v1Prefix + "/releases", Grants: only(releaseManager)},
	{Method: "GET", Path: v1Prefix + "/releases/{name}", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/releases/{name}/manifest", Grants: everyRole(), Download: true},
	{Method: "HEAD", Path: v1Prefix + "/releases/{name}/manifest", Grants: everyRole()},
	{Method: "PUT", Path: v1Prefix + "/releases/{name}/plan", Grants: only(releaseManager)},
	{Method: "PUT", Path: v1Prefix + "/releases/{name}/artifacts", Grants: only(releaseManager)},
	{Method: "POST", Path: v1Prefix + "/releases/{name}/approvals", Grants: []grant{{approver, noteSeparation}}},
	{Method: "POST", Path: v1Prefix + "/releases/{name}/deployments", Grants: []grant{{deployer, noteOwnEnv}}},
	{Method: "PATCH", Path: v1Prefix + "/releases/{name}/deployments/{id}", Grants: []grant{{deployer, noteOwnEnv}}},
	{Method: "POST", Path: v1Prefix + "/releases/{name}/review", Grants: only(releaseManager)},
	{Method: "POST", Path: v1Prefix + "/releases/{name}/cancel", Grants: only(releaseManager)},

	{Method: "GET", Path: v1Prefix + "/settings/gates", Grants: everyRole()},
	{Method: "PUT", Path: v1Prefix + "/settings/gates", Grants: only(admin)},

	// The log's verifier key is public: auditors compare it out of band,
	// and hiding it from other tokens would protect nothing.
	{Method: "GET", Path: v1Prefix + "/audit/key", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/audit/checkpoint", Grants: only(admin, auditor)},
	{Method: "GET", Path: v1Prefix + "/audit/entries", Grants: only(admin, auditor)},
	{Method: "GET", Path: v1Prefix + "/audit/proofs/inclusion", Grants: only(admin, auditor)},
	{Method: "GET", Path: v1Prefix + "/audit/proofs/consistency", Grants: only(admin, auditor)},
	{Method: "GET", Path: v1Prefix + "/audit/access", Grants: only(admin, auditor)},

	// Maintenance runs on the server, with its storage credentials.
	{Method: "POST", Path: v1Prefix + "/admin/fsck", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/admin/gc", Grants: only(admin)},

	{Method: "GET", Path: v1Prefix + "/whoami", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/tokens", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/tokens", Grants: only(admin)},
	{Method: "DELETE", Path: v1Prefix + "/tokens/{id}", Grants: only(admin)},

	{Method: "GET", Path: "/v2/", Grants: everyRole()},
	{Method: "HEAD", Path: "/v2/", Grants: everyRole()},
	{Method: "POST", Path: "/v2/{name}/blobs/uploads/", Grants: only(admin, publisher)},
	{Method: "GET", Path: "/v2/{name}/blobs/uploads/{uuid}", Grants: uploaders()},
	{Method: "PATCH", Path: "/v2/{name}/blobs/uploads/{uuid}", Grants: uploaders()},
	{Method: "PUT", Path: "/v2/{name}/blobs/uploads/{uuid}", Grants: uploaders()},
	{Method: "DELETE", Path: "/v2/{name}/blobs/uploads/{uuid}", Grants: uploaders()},
	{Method: "GET", Path: "/v2/{name}/blobs/{digest}", Grants: contentReaders(), Download: true},
	{Method: "HEAD", Path: "/v2/{name}/blobs/{digest}", Grants: contentReaders()},
	{Method: "DELETE", Path: "/v2/{name}/blobs/{digest}", Grants: registryDeleters()},
	{Method: "GET", Path: "/v2/{name}/manifests/{reference}", Grants: contentReaders(), Download: true},
	{Method: "HEAD", Path: "/v2/{name}/manifests/{reference}", Grants: contentReaders()},
	{Method: "PUT", Path: "/v2/{name}/manifests/{reference}", Grants: only(admin, publisher)},
	{Method: "DELETE", Path: "/v2/{name}/manifests/{reference}", Grants: registryDeleters()},
	{Method: "GET", Path: "/v2/{name}/tags/list", Grants: everyRole()},
	{Method: "GET", Path: "/v2/{name}/referrers/{digest}", Grants: everyRole()},
}

// key is how a request's route is looked up: "METHOD PATH".
func (r accessRule) key() string { return r.Method + " " + r.Path }

// allows reports whether p may call the route.
func (r accessRule) allows(p access.Principal) bool {
	for _, g := range r.Grants {
		if p.Has(g.Role) {
			return true
		}
	}
	return false
}

func (r accessRule) roleNames() string {
	names := make([]string, len(r.Grants))
	for i, g := range r.Grants {
		names[i] = string(g.Role)
	}
	return strings.Join(names, ", ")
}

// indexRules maps each rule's key to it; a duplicate key is a programming
// error that fails every server's construction (and so every test that
// starts one).
func indexRules(rules []accessRule) (map[string]accessRule, error) {
	m := make(map[string]accessRule, len(rules))
	for _, r := range rules {
		if _, dup := m[r.key()]; dup {
			return nil, errors.New("api: two access rules for " + r.key())
		}
		m[r.key()] = r
	}
	return m, nil
}

const routeKey = "dml.route"

// routeOf names the request's route as the matrix does ("GET
// /api/v1/releases/{name}"), resolving the sub-routes of the catch-alls.
// ok is false when no route would handle the request: those requests are
// answered 404 or 405 and never reach a handler.
func (s *Server) routeOf(c *gin.Context) (string, bool) {
	if v, ok := c.Get(routeKey); ok {
		k, _ := v.(string)
		return k, k != ""
	}
	k := s.resolveRoute(c)
	c.Set(routeKey, k)
	return k, k != ""
}

func (s *Server) resolveRoute(c *gin.Context) string {
	full, method := c.FullPath(), c.Request.Method
	switch full {
	case "":
		return ""
	case artifactsCatchAll:
		ref, ok := parseArtifactPath(c.Param("path"))
		if !ok {
			return ""
		}
		if _, ok := s.artifactRoutes()[method+" "+ref.suffix()]; !ok {
			return ""
		}
		return method + " " + artifactVersion + ref.suffix()
	case ociCatchAll:
		r, ok := parseOCIPath(c.Param("path"))
		if !ok || s.ociRoutes()[method+" "+r.Kind] == nil {
			return ""
		}
		return method + " " + ociTemplates[r.Kind]
	}
	return method + " " + braceParams(full)
}

// braceParams turns gin's ":name" parameters into "{name}".
func braceParams(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// errNoAccessRule refuses a route that the matrix forgot.
var errNoAccessRule = fmt.Errorf("%w: this route has no access rule", errdef.ErrDenied)

// authorize enforces the matrix on every request, before any handler
// runs: it authenticates (401), then checks the route's grants (403), so a
// refusal depends on the route and the token alone — the same answer
// whether or not the resource exists, and nothing read or written. A
// route without a rule is refused to everyone; a request that matches no
// route is authenticated when it is under /api/ or /v2/ (unknown paths
// tell nothing to anonymous callers) and then answered 404 or 405.
func (s *Server) authorize(c *gin.Context) {
	key, known := s.routeOf(c)
	rule, ruled := s.rules[key]
	switch {
	case known && !ruled:
		s.log.Error("route without an access rule refused", "route", key)
		s.writeRouteError(c, errNoAccessRule)
		return
	case known && rule.Public:
		c.Next()
		return
	case !known && !isAPIPath(c.Request.URL.Path):
		c.Next()
		return
	}
	p, err := s.dml.Access.Authenticate(c.Request.Context(), tokenFrom(c.Request))
	if err != nil {
		s.writeRouteError(c, err)
		return
	}
	c.Set(principalKey, p)
	if known && !rule.allows(p) {
		s.writeRouteError(c, fmt.Errorf("%w: %s needs one of the roles %s", errdef.ErrDenied, key, rule.roleNames()))
		return
	}
	c.Next()
}

func isAPIPath(p string) bool { return strings.HasPrefix(p, "/api/") || isOCIPath(p) }

// writeRouteError writes err in the error dialect of the route: OCI codes
// under /v2/, the REST API's elsewhere.
func (s *Server) writeRouteError(c *gin.Context, err error) {
	if isOCIPath(c.Request.URL.Path) {
		s.writeOCIError(c, err, nil)
		return
	}
	s.writeError(c, err, nil)
}
