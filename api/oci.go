package api

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/dmlproject/dml/releases/names"
	"github.com/gin-gonic/gin"
)

// The OCI distribution API (v1.1) under /v2/. Repository names contain
// slashes, which gin parameters cannot hold, so every route is one
// catch-all that parseOCIPath splits, reading the fixed part from the end:
//
//	/v2/                                  ping
//	/v2/NAME/blobs/uploads/               start an upload (or mount, or push whole)
//	/v2/NAME/blobs/uploads/ID             upload status, chunk, complete, cancel
//	/v2/NAME/blobs/DIGEST                 pull, check, delete a blob
//	/v2/NAME/manifests/REFERENCE          pull, check, push, delete a manifest or tag
//	/v2/NAME/tags/list                    list tags
//	/v2/NAME/referrers/DIGEST             list referrers
//
// Handlers are split by resource: oci_blobs.go, oci_uploads.go,
// oci_manifests.go, oci_tags.go (tags and referrers); their errors take
// the registry's codes from errorTable (errors.go).
func (s *Server) routeOCI(e *gin.Engine) {
	v2 := e.Group("/v2")
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		v2.Handle(method, "/*path", s.dispatchOCI)
	}
}

// ociRoute is a parsed /v2/ path.
type ociRoute struct {
	// Kind is "ping", "upload-start", "upload", "blob", "manifest", "tags"
	// or "referrers".
	Kind string
	Name string
	// Ref is the upload ID, the digest or the manifest reference.
	Ref string
}

// ociName takes any name: the route is recognised by its fixed part, and
// dispatchOCI refuses a name outside the OCI repository grammar
// (names.ValidateName) as NAME_INVALID rather than as an unknown route.
const ociName = `.+`

var ociPaths = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"upload-start", regexp.MustCompile(`^/(` + ociName + `)/blobs/uploads/?$`)},
	{"upload", regexp.MustCompile(`^/(` + ociName + `)/blobs/uploads/([^/]+)$`)},
	{"blob", regexp.MustCompile(`^/(` + ociName + `)/blobs/([^/]+)$`)},
	{"manifest", regexp.MustCompile(`^/(` + ociName + `)/manifests/([^/]+)$`)},
	{"tags", regexp.MustCompile(`^/(` + ociName + `)/tags/list$`)},
	{"referrers", regexp.MustCompile(`^/(` + ociName + `)/referrers/([^/]+)$`)},
}

func parseOCIPath(p string) (ociRoute, bool) {
	if p == "/" || p == "" {
		return ociRoute{Kind: "ping"}, true
	}
	for _, r := range ociPaths {
		if m := r.re.FindStringSubmatch(p); m != nil {
			route := ociRoute{Kind: r.kind, Name: m[1]}
			if len(m) > 2 {
				route.Ref = m[2]
			}
			return route, true
		}
	}
	return ociRoute{}, false
}

type ociHandler func(*gin.Context, ociRoute)

func (s *Server) ociRoutes() map[string]ociHandler {
	return map[string]ociHandler{
		"GET ping":          s.ociPing,
		"HEAD ping":         s.ociPing,
		"POST upload-start": s.ociStartUpload,
		"GET upload":        s.ociUploadStatus,
		"PATCH upload":      s.ociPatchUpload,
		"PUT upload":        s.ociCompleteUpload,
		"DELETE upload":     s.ociCancelUpload,
		"GET blob":          s.ociGetBlob,
		"HEAD blob":         s.ociGetBlob,
		"DELETE blob":       s.ociDeleteBlob,
		"GET manifest":      s.ociGetManifest,
		"HEAD manifest":     s.ociGetManifest,
		"PUT manifest":      s.ociPutManifest,
		"DELETE manifest":   s.ociDeleteManifest,
		"GET tags":          s.ociListTags,
		"GET referrers":     s.ociListReferrers,
	}
}

func (s *Server) dispatchOCI(c *gin.Context) {
	route, ok := parseOCIPath(c.Param("path"))
	if !ok {
		s.writeError(c, errNoRoute, map[string]string{"path": c.Request.URL.Path})
		return
	}
	h := s.ociRoutes()[c.Request.Method+" "+route.Kind]
	if h == nil {
		s.writeError(c, errMethodNotAllowed, map[string]string{"method": c.Request.Method, "path": c.Request.URL.Path})
		return
	}
	if route.Kind != "ping" {
		if err := names.ValidateName(route.Name); err != nil {
			s.writeError(c, err, nil)
			return
		}
	}
	h(c, route)
}

// ociHeaders marks every /v2/ response, refusals included, as the registry
// API version 2, which Docker clients check for. (authorize authenticates
// /v2/ requests, the ping too, so that `docker login` learns whether the
// credentials work; OCI errors carry the Basic challenge.)
func (s *Server) ociHeaders(c *gin.Context) {
	if isOCIPath(c.Request.URL.Path) {
		c.Header("Docker-Distribution-API-Version", "registry/2.0")
	}
	c.Next()
}

func isOCIPath(p string) bool { return p == "/v2" || strings.HasPrefix(p, "/v2/") }

func (s *Server) ociPing(c *gin.Context, _ ociRoute) {
	c.JSON(http.StatusOK, gin.H{})
}
