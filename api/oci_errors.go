package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/store"
	"github.com/gin-gonic/gin"
)

// ociErrorMapping maps domain and store errors to the status and error
// code of the OCI distribution spec, for everything under /v2/. The body
// has the REST API's shape ({"errors":[{code, message, detail}]}), which is
// the spec's; only the codes differ, since OCI clients know the spec's
// codes and nothing else. The first entry that matches wins. The spec has
// no code for what is not the request's fault (an unreachable or full
// blob store, a client gone or too slow): conditionMapping (errors.go)
// answers those for both APIs, with the REST API's codes, and clients act
// on their status (a 503 with Retry-After is retried).
var ociErrorMapping = []struct {
	err    error
	status int
	code   string
}{
	{blobs.ErrBlobCorrupt, http.StatusInternalServerError, "BLOB_CORRUPT"},
	{registry.ErrBlobUnknown, http.StatusNotFound, "BLOB_UNKNOWN"},
	{registry.ErrManifestUnknown, http.StatusNotFound, "MANIFEST_UNKNOWN"},
	{registry.ErrNameUnknown, http.StatusNotFound, "NAME_UNKNOWN"},
	{registry.ErrUploadUnknown, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"},
	{registry.ErrManifestBlobUnknown, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN"},
	{registry.ErrManifestInvalid, http.StatusBadRequest, "MANIFEST_INVALID"},
	{registry.ErrUploadInvalid, http.StatusBadRequest, "BLOB_UPLOAD_INVALID"},
	{registry.ErrUnsupported, http.StatusUnsupportedMediaType, "UNSUPPORTED"},
	{registry.ErrImmutable, http.StatusConflict, "DENIED"},
	{catalog.ErrVersionExists, http.StatusConflict, "DENIED"},
	{store.ErrDigestMismatch, http.StatusBadRequest, "DIGEST_INVALID"},
	{store.ErrInvalidDigest, http.StatusBadRequest, "DIGEST_INVALID"},
	{errDigestParam, http.StatusBadRequest, "DIGEST_INVALID"},
	{store.ErrSizeMismatch, http.StatusBadRequest, "SIZE_INVALID"},
	{store.ErrTooLarge, http.StatusRequestEntityTooLarge, "SIZE_INVALID"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "SIZE_INVALID"},
	{store.ErrInvalidRange, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID"},
	{names.ErrNameInvalid, http.StatusBadRequest, "NAME_INVALID"},
	// Not in the spec's table, but the reference registry's (distribution)
	// codes for these, which clients know: more telling than UNSUPPORTED.
	{registry.ErrPaginationNumberInvalid, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID"},
	{registry.ErrTagInvalid, http.StatusBadRequest, "TAG_INVALID"},
	{names.ErrVersionInvalid, http.StatusBadRequest, "MANIFEST_INVALID"},
	{errdef.ErrUnauthorized, http.StatusUnauthorized, "UNAUTHORIZED"},
	{catalog.ErrNotAdmitted, http.StatusForbidden, "DENIED"},
	{access.ErrNotAuthorizedForEnv, http.StatusForbidden, "DENIED"},
	{errdef.ErrDenied, http.StatusForbidden, "DENIED"},
	{errdef.ErrConflict, http.StatusConflict, "DENIED"},
	{errdef.ErrInvalidInput, http.StatusBadRequest, "UNSUPPORTED"},
	{errdef.ErrNotFound, http.StatusNotFound, "NAME_UNKNOWN"},
	{store.ErrNotFound, http.StatusNotFound, "BLOB_UNKNOWN"},
	{errNoRoute, http.StatusNotFound, "NAME_UNKNOWN"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "UNSUPPORTED"},
	{errMalformed, http.StatusBadRequest, "UNSUPPORTED"},
	{errPreconditionFailed, http.StatusPreconditionFailed, "PRECONDITION_FAILED"},
}

var (
	errDigestParam      = errors.New("missing or invalid digest parameter")
	errMethodNotAllowed = errors.New("method not allowed")
)

// ociStatusOf maps err to its OCI status and code; unknown errors are 500.
func ociStatusOf(err error) (int, string) {
	if status, code, ok := conditionOf(err); ok {
		return status, code
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "SIZE_INVALID"
	}
	for _, m := range ociErrorMapping {
		if errors.Is(err, m.err) {
			return m.status, m.code
		}
	}
	return http.StatusInternalServerError, "UNKNOWN"
}

// writeOCIError writes err in the OCI error shape. A 401 carries the
// challenge that makes docker-login-style clients send credentials:
// Basic (any user name, the token as password). When the request carried
// a bearer token, a Bearer challenge follows with error="invalid_token";
// it is never the only or first one, because clients that see a Bearer
// challenge first (crane, docker) would try a token service dml does not
// run.
func (s *Server) writeOCIError(c *gin.Context, err error, detail any) {
	status, code := ociStatusOf(err)
	msg := s.prepareError(c, status, code, err)
	if status == http.StatusUnauthorized {
		c.Writer.Header().Add("WWW-Authenticate", `Basic realm="dml"`)
		if scheme, _, _ := strings.Cut(c.GetHeader("Authorization"), " "); strings.EqualFold(scheme, "bearer") {
			c.Writer.Header().Add("WWW-Authenticate", `Bearer realm="dml",error="invalid_token"`)
		}
	}
	abortWithError(c, status, ErrorItem{Code: code, Message: msg, Detail: detail})
}
