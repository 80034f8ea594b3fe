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
	// Operation names the route in the request metrics (metrics.go): a
	// fixed name, never a parameter of the request.
	Operation string
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
	{Method: "GET", Path: "/healthz", Operation: "health", Public: true},
	{Method: "GET", Path: "/readyz", Operation: "ready", Public: true},
	{Method: "GET", Path: "/metrics", Operation: "metrics", Public: true},
	// The API's description: tools read it before they hold a token.
	{Method: "GET", Path: v1Prefix + "/openapi.json", Operation: "openapi_get", Public: true},

	{Method: "GET", Path: v1Prefix + "/artifacts", Operation: "artifact_list", Grants: everyRole()},
	{Method: "PUT", Path: artifactVersion, Operation: "artifact_push", Grants: only(admin, publisher)},
	{Method: "GET", Path: artifactVersion, Operation: "artifact_get", Grants: everyRole()},
	{Method: "HEAD", Path: artifactVersion, Operation: "artifact_head", Grants: everyRole()},
	{Method: "GET", Path: artifactVersion + "/content", Operation: "content_get", Grants: contentReaders(), Download: true},
	{Method: "HEAD", Path: artifactVersion + "/content", Operation: "content_head", Grants: contentReaders()},
	{Method: "POST", Path: artifactVersion + "/retire", Operation: "artifact_retire", Grants: only(admin, releaseManager)},
	{Method: "GET", Path: artifactVersion + "/provenance", Operation: "provenance_get", Grants: only(admin, auditor)},

	{Method: "POST", Path: artifactVersion + "/signatures", Operation: "evidence_add_signature", Grants: only(admin, publisher)},
	{Method: "POST", Path: artifactVersion + "/attestations", Operation: "evidence_add_attestation", Grants: only(admin, publisher)},
	{Method: "GET", Path: artifactVersion + "/evidence", Operation: "evidence_list", Grants: everyRole()},
	{Method: "GET", Path: artifactVersion + "/evidence/{digest}", Operation: "evidence_get", Grants: everyRole(), Download: true},
	{Method: "HEAD", Path: artifactVersion + "/evidence/{digest}", Operation: "evidence_head", Grants: everyRole()},

	{Method: "GET", Path: v1Prefix + "/keys/server", Operation: "server_key_get", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/trust/keys", Operation: "trust_key_list", Grants: everyRole()},
	{Method: "POST", Path: v1Prefix + "/trust/keys", Operation: "trust_key_add", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/trust/keys/{id}/revoke", Operation: "trust_key_revoke", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/trust/policy", Operation: "trust_policy_get", Grants: everyRole()},
	{Method: "PUT", Path: v1Prefix + "/trust/policy", Operation: "trust_policy_set", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/trust/roots", Operation: "trust_root_list", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/trust/roots/{id}", Operation: "trust_root_get", Grants: everyRole()},
	{Method: "PUT", Path: v1Prefix + "/trust/roots/{id}", Operation: "trust_root_put", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/trust/roots/{id}/revoke", Operation: "trust_root_revoke", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/trust/identities", Operation: "trust_identity_list", Grants: everyRole()},
	{Method: "POST", Path: v1Prefix + "/trust/identities", Operation: "trust_identity_add", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/trust/identities/{id}/revoke", Operation: "trust_identity_revoke", Grants: only(admin)},

	{Method: "GET", Path: v1Prefix + "/releases", Operation: "release_list", Grants: everyRole()},
	{Method: "POST", Path: v1Prefix + "/releases", Operation: "release_create", Grants: only(releaseManager)},
	{Method: "GET", Path: v1Prefix + "/releases/{name}", Operation: "release_get", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/releases/{name}/manifest", Operation: "release_manifest_get", Grants: everyRole(), Download: true},
	{Method: "HEAD", Path: v1Prefix + "/releases/{name}/manifest", Operation: "release_manifest_head", Grants: everyRole()},
	{Method: "PUT", Path: v1Prefix + "/releases/{name}/plan", Operation: "release_plan", Grants: only(releaseManager)},
	{Method: "PUT", Path: v1Prefix + "/releases/{name}/artifacts", Operation: "release_artifacts", Grants: only(releaseManager)},
	{Method: "POST", Path: v1Prefix + "/releases/{name}/approvals", Operation: "release_approval", Grants: []grant{{approver, noteSeparation}}},
	{Method: "POST", Path: v1Prefix + "/releases/{name}/deployments", Operation: "release_deployment_record", Grants: []grant{{deployer, noteOwnEnv}}},
	{Method: "PATCH", Path: v1Prefix + "/releases/{name}/deployments/{id}", Operation: "release_deployment_update", Grants: []grant{{deployer, noteOwnEnv}}},
	{Method: "POST", Path: v1Prefix + "/releases/{name}/review", Operation: "release_review", Grants: only(releaseManager)},
	{Method: "POST", Path: v1Prefix + "/releases/{name}/cancel", Operation: "release_cancel", Grants: only(releaseManager)},

	{Method: "GET", Path: v1Prefix + "/settings/gates", Operation: "gate_defaults_get", Grants: everyRole()},
	{Method: "PUT", Path: v1Prefix + "/settings/gates", Operation: "gate_defaults_set", Grants: only(admin)},

	// The log's verifier key is public: auditors compare it out of band,
	// and hiding it from other tokens would protect nothing.
	{Method: "GET", Path: v1Prefix + "/audit/key", Operation: "audit_key", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/audit/checkpoint", Operation: "audit_checkpoint", Grants: only(admin, auditor)},
	{Method: "GET", Path: v1Prefix + "/audit/entries", Operation: "audit_entries", Grants: only(admin, auditor)},
	{Method: "GET", Path: v1Prefix + "/audit/proofs/inclusion", Operation: "audit_inclusion_proof", Grants: only(admin, auditor)},
	{Method: "GET", Path: v1Prefix + "/audit/proofs/consistency", Operation: "audit_consistency_proof", Grants: only(admin, auditor)},
	{Method: "GET", Path: v1Prefix + "/audit/access", Operation: "audit_access_log", Grants: only(admin, auditor)},

	// Maintenance runs on the server, with its storage credentials.
	{Method: "POST", Path: v1Prefix + "/admin/fsck", Operation: "admin_fsck", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/admin/gc", Operation: "admin_gc", Grants: only(admin)},

	{Method: "GET", Path: v1Prefix + "/whoami", Operation: "token_whoami", Grants: everyRole()},
	{Method: "GET", Path: v1Prefix + "/tokens", Operation: "token_list", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/tokens", Operation: "token_issue", Grants: only(admin)},
	{Method: "DELETE", Path: v1Prefix + "/tokens/{id}", Operation: "token_revoke", Grants: only(admin)},

	{Method: "GET", Path: "/v2/", Operation: "registry_ping", Grants: everyRole()},
	{Method: "HEAD", Path: "/v2/", Operation: "registry_ping", Grants: everyRole()},
	{Method: "POST", Path: "/v2/{name}/blobs/uploads/", Operation: "blob_upload_start", Grants: only(admin, publisher)},
	{Method: "GET", Path: "/v2/{name}/blobs/uploads/{uuid}", Operation: "blob_upload_status", Grants: uploaders()},
	{Method: "PATCH", Path: "/v2/{name}/blobs/uploads/{uuid}", Operation: "blob_upload_patch", Grants: uploaders()},
	{Method: "PUT", Path: "/v2/{name}/blobs/uploads/{uuid}", Operation: "blob_upload_put", Grants: uploaders()},
	{Method: "DELETE", Path: "/v2/{name}/blobs/uploads/{uuid}", Operation: "blob_upload_cancel", Grants: uploaders()},
	{Method: "GET", Path: "/v2/{name}/blobs/{digest}", Operation: "blob_get", Grants: contentReaders(), Download: true},
	{Method: "HEAD", Path: "/v2/{name}/blobs/{digest}", Operation: "blob_head", Grants: contentReaders()},
	{Method: "DELETE", Path: "/v2/{name}/blobs/{digest}", Operation: "blob_delete", Grants: registryDeleters()},
	{Method: "GET", Path: "/v2/{name}/manifests/{reference}", Operation: "manifest_get", Grants: contentReaders(), Download: true},
	{Method: "HEAD", Path: "/v2/{name}/manifests/{reference}", Operation: "manifest_head", Grants: contentReaders()},
	{Method: "PUT", Path: "/v2/{name}/manifests/{reference}", Operation: "manifest_put", Grants: only(admin, publisher)},
	{Method: "DELETE", Path: "/v2/{name}/manifests/{reference}", Operation: "manifest_delete", Grants: registryDeleters()},
	{Method: "GET", Path: "/v2/{name}/tags/list", Operation: "tag_list", Grants: everyRole()},
	{Method: "GET", Path: "/v2/{name}/referrers/{digest}", Operation: "referrers_list", Grants: everyRole()},

	// Change control: emergency changes and the admin's change policy.
	{Method: "POST", Path: v1Prefix + "/releases/{name}/emergency", Operation: "release_emergency", Grants: only(releaseManager)},
	{Method: "GET", Path: v1Prefix + "/settings/change", Operation: "change_policy_get", Grants: everyRole()},
	{Method: "PATCH", Path: v1Prefix + "/settings/change", Operation: "change_policy_set", Grants: only(admin)},
	// Retention and quotas decide what the DML forgets and refuses.
	{Method: "GET", Path: v1Prefix + "/retention/policies", Operation: "retention_policy_list", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/retention/policies/{id}", Operation: "retention_policy_get", Grants: only(admin)},
	{Method: "PUT", Path: v1Prefix + "/retention/policies/{id}", Operation: "retention_policy_set", Grants: only(admin)},
	{Method: "DELETE", Path: v1Prefix + "/retention/policies/{id}", Operation: "retention_policy_delete", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/retention/run", Operation: "retention_run", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/quotas", Operation: "quota_list", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/quotas/{prefix}", Operation: "quota_get", Grants: only(admin)},
	{Method: "PUT", Path: v1Prefix + "/quotas/{prefix}", Operation: "quota_set", Grants: only(admin)},
	{Method: "DELETE", Path: v1Prefix + "/quotas/{prefix}", Operation: "quota_delete", Grants: only(admin)},
	// Events: the stream is every role's (events name no secret, and
	// every role reads what they describe); webhooks are the admins'.
	{Method: "GET", Path: v1Prefix + "/events", Operation: "event_list", Grants: everyRole()},
	{Method: "POST", Path: v1Prefix + "/webhooks", Operation: "webhook_create", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/webhooks", Operation: "webhook_list", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/webhooks/{id}", Operation: "webhook_get", Grants: only(admin)},
	{Method: "DELETE", Path: v1Prefix + "/webhooks/{id}", Operation: "webhook_delete", Grants: only(admin)},
	{Method: "GET", Path: v1Prefix + "/webhooks/{id}/deliveries", Operation: "webhook_deliveries", Grants: only(admin)},
	{Method: "POST", Path: v1Prefix + "/webhooks/{id}/deliveries/{delivery}/redeliver", Operation: "webhook_redeliver", Grants: only(admin)},
	// Single sign-on (docs/sso.md): the providers and the sign-in are
	// public (a person has no token yet; the sign-in proves who they are
	// with an ID token the provider signed); signing out ends one's own
	// session.
	{Method: "GET", Path: v1Prefix + "/sso/providers", Operation: "sso_providers", Public: true},
	{Method: "POST", Path: v1Prefix + "/sso/sessions", Operation: "sso_sign_in", Public: true},
	{Method: "DELETE", Path: v1Prefix + "/sso/session", Operation: "sso_sign_out", Grants: everyRole()},
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

// allowsOperation reports whether the matrix lets p call the route of the
// operation named (every route of an operation has the same grants; an
// unknown operation allows nothing). The web console asks it before it
// offers or performs anything, so it grants nothing the API does not.
func (s *Server) allowsOperation(operation string, p access.Principal) bool {
	for _, r := range accessMatrix {
		if r.Operation == operation {
			return !r.Public && r.allows(p)
		}
	}
	return false
}

// roles are the roles the rule grants.
func (r accessRule) roles() []access.Role {
	roles := make([]access.Role, len(r.Grants))
	for i, g := range r.Grants {
		roles[i] = g.Role
	}
	return roles
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
		s.writeError(c, errNoAccessRule, nil)
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
		s.writeError(c, err, nil)
		return
	}
	c.Set(principalKey, p)
	if known && !rule.allows(p) {
		s.writeError(c, &access.RoleError{Action: key, Have: p.Roles, Need: rule.roles()}, nil)
		return
	}
	c.Next()
}

func isAPIPath(p string) bool { return strings.HasPrefix(p, "/api/") || isOCIPath(p) }
