package api

import (
	"errors"
	"net/http"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/gin-gonic/gin"
)

// ErrorBody is the one error shape of the REST API.
type ErrorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// ErrorItem is one error.
type ErrorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// errorMapping maps a domain or store sentinel to an HTTP status and code.
// The first entry that matches (errors.Is) wins, so more specific errors
// come first.
var errorMapping = []struct {
	err    error
	status int
	code   string
}{
	{releases.ErrBlobCorrupt, http.StatusInternalServerError, "BLOB_CORRUPT"},
	{store.ErrDigestMismatch, http.StatusBadRequest, "DIGEST_INVALID"},
	{errDigestHeader, http.StatusBadRequest, "DIGEST_INVALID"},
	{store.ErrInvalidDigest, http.StatusBadRequest, "DIGEST_INVALID"},
	{store.ErrSizeMismatch, http.StatusBadRequest, "SIZE_INVALID"},
	{store.ErrTooLarge, http.StatusRequestEntityTooLarge, "TOO_LARGE"},
	{store.ErrInvalidRange, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID"},
	{releases.ErrNameInvalid, http.StatusBadRequest, "NAME_INVALID"},
	{releases.ErrVersionInvalid, http.StatusBadRequest, "VERSION_INVALID"},
	{releases.ErrVersionExists, http.StatusConflict, "VERSION_EXISTS"},
	{releases.ErrWrongEvidenceKind, http.StatusBadRequest, "MALFORMED"},
	{signing.ErrInvalidPolicy, http.StatusBadRequest, "POLICY_INVALID"},
	{releases.ErrInvalidState, http.StatusConflict, "INVALID_STATE"},
	{releases.ErrStaleApproval, http.StatusConflict, "STALE_APPROVAL"},
	{releases.ErrSeparationOfDuties, http.StatusForbidden, "SEPARATION_OF_DUTIES"},
	{releases.ErrNotAuthorizedForEnv, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT"},
	{releases.ErrBuildBlocked, http.StatusConflict, "BUILD_BLOCKED"},
	{releases.ErrDeploymentOutOfOrder, http.StatusConflict, "DEPLOYMENT_OUT_OF_ORDER"},
	{releases.ErrArtifactRetired, http.StatusConflict, "ARTIFACT_RETIRED"},
	{releases.ErrInvalidInput, http.StatusBadRequest, "INVALID_INPUT"},
	{releases.ErrUnauthorized, http.StatusUnauthorized, "UNAUTHORIZED"},
	{releases.ErrNotAdmitted, http.StatusForbidden, "NOT_ADMITTED"},
	{releases.ErrDenied, http.StatusForbidden, "DENIED"},
	{releases.ErrConflict, http.StatusConflict, "CONFLICT"},
	{releases.ErrNotFound, http.StatusNotFound, "NOT_FOUND"},
	{store.ErrNotFound, http.StatusNotFound, "BLOB_UNKNOWN"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "TOO_LARGE"},
	{errMalformed, http.StatusBadRequest, "MALFORMED"},
	{errNoRoute, http.StatusNotFound, "NOT_FOUND"},
	{errPreconditionFailed, http.StatusPreconditionFailed, "PRECONDITION_FAILED"},
}

var (
	errBodyTooLarge = errors.New("request body too large")
	errMalformed    = errors.New("malformed request")
	errNoRoute      = errors.New("no such route")
	errDigestHeader = errors.New("invalid checksum header")
)

// verificationCodes maps why evidence failed verification to a status and code.
var verificationCodes = map[signing.Reason]struct {
	status int
	code   string
}{
	signing.BadSignature:    {http.StatusBadRequest, "SIGNATURE_INVALID"},
	signing.UntrustedKey:    {http.StatusForbidden, "KEY_UNTRUSTED"},
	signing.SubjectMismatch: {http.StatusBadRequest, "SUBJECT_MISMATCH"},
	signing.Malformed:       {http.StatusBadRequest, "MALFORMED"},
	signing.Unsupported:     {http.StatusBadRequest, "UNSUPPORTED"},
}

// statusOf maps err to its status and code; unknown errors are 500.
func statusOf(err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "TOO_LARGE"
	}
	var ve *signing.VerificationError
	if errors.As(err, &ve) {
		if m, ok := verificationCodes[ve.Reason]; ok {
			return m.status, m.code
		}
		return http.StatusBadRequest, "MALFORMED"
	}
	for _, m := range errorMapping {
		if errors.Is(err, m.err) {
			return m.status, m.code
		}
	}
	return http.StatusInternalServerError, "INTERNAL"
}

// writeError writes err in the API's error shape. Internal errors are
// logged with their detail and answered with a generic message, so
// database or S3 internals never reach clients.
func (s *Server) writeError(c *gin.Context, err error, detail any) {
	status, code := statusOf(err)
	msg := err.Error()
	if code == "INTERNAL" {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		msg = "internal error"
	}
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="dml"`)
	}
	c.AbortWithStatusJSON(status, ErrorBody{Errors: []ErrorItem{{Code: code, Message: msg, Detail: detail}}})
}

// verificationDetail says why evidence was refused, for the error body.
func verificationDetail(err error) any {
	var ve *signing.VerificationError
	if !errors.As(err, &ve) {
		return nil
	}
	d := map[string]string{"reason": string(ve.Reason)}
	if ve.KeyID != "" {
		d["keyId"] = ve.KeyID
	}
	if ve.Format != "" {
		d["format"] = string(ve.Format)
	}
	return d
}
