package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/names"
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
	{blobs.ErrBlobCorrupt, http.StatusInternalServerError, "BLOB_CORRUPT"},
	{store.ErrDigestMismatch, http.StatusBadRequest, "DIGEST_INVALID"},
	{errDigestHeader, http.StatusBadRequest, "DIGEST_INVALID"},
	{store.ErrInvalidDigest, http.StatusBadRequest, "DIGEST_INVALID"},
	{store.ErrSizeMismatch, http.StatusBadRequest, "SIZE_INVALID"},
	{store.ErrTooLarge, http.StatusRequestEntityTooLarge, "TOO_LARGE"},
	{store.ErrInvalidRange, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID"},
	{names.ErrNameInvalid, http.StatusBadRequest, "NAME_INVALID"},
	{names.ErrVersionInvalid, http.StatusBadRequest, "VERSION_INVALID"},
	{catalog.ErrVersionExists, http.StatusConflict, "VERSION_EXISTS"},
	{catalog.ErrWrongEvidenceKind, http.StatusBadRequest, "MALFORMED"},
	{catalog.ErrEvidenceReplayed, http.StatusConflict, "EVIDENCE_REPLAYED"},
	{signing.ErrInvalidPolicy, http.StatusBadRequest, "POLICY_INVALID"},
	{lifecycle.ErrInvalidState, http.StatusConflict, "INVALID_STATE"},
	{lifecycle.ErrStaleApproval, http.StatusConflict, "STALE_APPROVAL"},
	{lifecycle.ErrSeparationOfDuties, http.StatusForbidden, "SEPARATION_OF_DUTIES"},
	{access.ErrNotAuthorizedForEnv, http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT"},
	{lifecycle.ErrBuildBlocked, http.StatusConflict, "BUILD_BLOCKED"},
	{lifecycle.ErrDeploymentOutOfOrder, http.StatusConflict, "DEPLOYMENT_OUT_OF_ORDER"},
	{catalog.ErrArtifactRetired, http.StatusConflict, "ARTIFACT_RETIRED"},
	{lifecycle.ErrQuorumTooLow, http.StatusBadRequest, "QUORUM_TOO_LOW"},
	{names.ErrMediaTypeInvalid, http.StatusBadRequest, "MEDIA_TYPE_INVALID"},
	{errdef.ErrInvalidInput, http.StatusBadRequest, "INVALID_INPUT"},
	{errdef.ErrUnauthorized, http.StatusUnauthorized, "UNAUTHORIZED"},
	{catalog.ErrNotAdmitted, http.StatusForbidden, "NOT_ADMITTED"},
	{errdef.ErrDenied, http.StatusForbidden, "DENIED"},
	{errdef.ErrConflict, http.StatusConflict, "CONFLICT"},
	{errdef.ErrNotFound, http.StatusNotFound, "NOT_FOUND"},
	{store.ErrNotFound, http.StatusNotFound, "BLOB_UNKNOWN"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "TOO_LARGE"},
	{errMalformed, http.StatusBadRequest, "MALFORMED"},
	{errNoRoute, http.StatusNotFound, "NOT_FOUND"},
	{errPreconditionFailed, http.StatusPreconditionFailed, "PRECONDITION_FAILED"},
}

// conditionMapping maps what is not the request's fault: a client gone
// or too slow, a blob store unreachable or full. Both APIs (REST and
// /v2/) answer these the same way and check them first, whatever else
// wraps them.
var conditionMapping = []struct {
	err    error
	status int
	code   string
}{
	{errClientGone, StatusClientClosedRequest, "CLIENT_CLOSED_REQUEST"},
	// Request contexts are cancelled only when the client goes away.
	{context.Canceled, StatusClientClosedRequest, "CLIENT_CLOSED_REQUEST"},
	{errBodyTimeout, http.StatusRequestTimeout, "REQUEST_TIMEOUT"},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "STORAGE_UNAVAILABLE"},
	{store.ErrNoSpace, http.StatusInsufficientStorage, "INSUFFICIENT_STORAGE"},
}

// conditionOf maps err through conditionMapping.
func conditionOf(err error) (int, string, bool) {
	for _, m := range conditionMapping {
		if errors.Is(err, m.err) {
			return m.status, m.code, true
		}
	}
	return 0, "", false
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
	if status, code, ok := conditionOf(err); ok {
		return status, code
	}
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

// writeError writes err in the API's error shape.
func (s *Server) writeError(c *gin.Context, err error, detail any) {
	status, code := statusOf(err)
	msg := s.prepareError(c, status, code, err)
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="dml"`)
	}
	abortWithError(c, status, ErrorItem{Code: code, Message: msg, Detail: detail})
}

const errorItemKey = "dml.error"

// abortWithError answers item and keeps it for the access log.
func abortWithError(c *gin.Context, status int, item ErrorItem) {
	c.Set(errorItemKey, item)
	c.AbortWithStatusJSON(status, ErrorBody{Errors: []ErrorItem{item}})
}

// retryAfter is the Retry-After of a 503: long enough for a restarted
// storage server to come back, short enough not to stall a pipeline.
const retryAfter = "5"

// withheldMessages replace the error text of codes whose cause is on the
// server side: it names paths, endpoints and buckets, which the log keeps
// and clients must not see. (BLOB_CORRUPT is a 500 too, but its text
// names only the digest, which the client asked for.)
var withheldMessages = map[string]string{
	"INTERNAL":              "internal error",
	"UNKNOWN":               "internal error",
	"STORAGE_UNAVAILABLE":   "the blob store cannot be reached; retry later",
	"INSUFFICIENT_STORAGE":  "the blob store is out of space",
	"CLIENT_CLOSED_REQUEST": "the client closed the request",
	"REQUEST_TIMEOUT":       "the request body arrived too slowly",
}

// prepareError does what every error answer needs besides its body, for
// both error writers (REST and /v2/): it logs the error at the level its
// status deserves, asks for a retry after a 503, lets the connection go
// when the body was not read (refuseUnreadBody), and returns the message
// the client may see.
func (s *Server) prepareError(c *gin.Context, status int, code string, err error) string {
	refuseUnreadBody(c)
	args := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "err", err}
	switch status {
	case http.StatusInternalServerError, http.StatusInsufficientStorage:
		s.log.Error("request failed", args...)
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", retryAfter)
		s.log.Warn("storage unavailable", args...)
	case StatusClientClosedRequest, http.StatusRequestTimeout:
		// The client's doing, not the server's: no one to page.
		s.log.Info("request ended by the client", args...)
	}
	if msg, ok := withheldMessages[code]; ok {
		return msg
	}
	return err.Error()
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
