package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/gin-gonic/gin"
)

// Every error answer, of the REST API and of the registry (/v2/), is
// written by writeError, which finds the error's status and code in
// errorTable. The two APIs share the body (wire.ErrorBody:
// {"errors":[{code, message, detail}]}, which is the OCI distribution
// spec's), the statuses and the table; they differ only in their codes
// (OCI clients know the spec's and nothing else) and in the challenge of
// a 401.

// The API's own errors: what is wrong with a request before the domain
// sees it, and what the router and the server answer themselves.
var (
	errBodyTooLarge = errors.New("request body too large")
	errMalformed    = errors.New("malformed request")
	errNoRoute      = errors.New("no such route")
	// errMethodNotAllowed: the route exists, not with this method.
	errMethodNotAllowed = errors.New("method not allowed")
	// errDigestHeader: a REST request names a digest that is not one;
	// errDigestParam: a /v2/ request's ?digest= is missing or not one.
	errDigestHeader = errors.New("invalid checksum header")
	errDigestParam  = errors.New("missing or invalid digest parameter")
	// errPreconditionFailed: an If-Match or If-Unmodified-Since did not hold.
	errPreconditionFailed = errors.New("a precondition (If-Match, If-Unmodified-Since) failed")
	// errReleaseExists, errKeyExists and errIdentityExists say what a
	// conflict means where it can mean only one thing: creating a release,
	// adding a trusted key or an identity (whose ID a key or an identity
	// holds: signers share one namespace).
	errReleaseExists  = errors.New("release exists")
	errKeyExists      = errors.New("key exists")
	errIdentityExists = errors.New("identity exists")
	// errNotReady: a dependency of the server does not answer (/readyz).
	errNotReady = errors.New("not ready")
	// errPanic: a handler panicked.
	errPanic = errors.New("panic in handler")
)

// errorRow maps the errors it matches to a status and a code. Where only
// one API can meet an error (a release's state, an upload session), the
// other API's code is empty and the next row that matches decides there.
type errorRow struct {
	match  func(error) bool
	status int
	// code is the REST API's, ociCode the registry's (/v2/).
	code, ociCode string
}

// errorTable maps domain, store, signing and API errors to their answers.
// The first row that matches (for the API answering) wins, so the more
// specific errors come first.
var errorTable = []errorRow{
	// What is not the request's fault, whatever else wraps it: a client
	// gone or too slow, a blob store unreachable or full. The spec has no
	// code for these; registry clients act on the status (a 503 with
	// Retry-After is retried). Request contexts are cancelled only when
	// the client goes away.
	{is(errClientGone, context.Canceled), StatusClientClosedRequest, "CLIENT_CLOSED_REQUEST", "CLIENT_CLOSED_REQUEST"},
	{is(errBodyTimeout), http.StatusRequestTimeout, "REQUEST_TIMEOUT", "REQUEST_TIMEOUT"},
	{is(store.ErrUnavailable), http.StatusServiceUnavailable, "STORAGE_UNAVAILABLE", "STORAGE_UNAVAILABLE"},
	{is(store.ErrNoSpace), http.StatusInsufficientStorage, "INSUFFICIENT_STORAGE", "INSUFFICIENT_STORAGE"},

	// A conflict where it can mean only one thing (meaning).
	{is(errReleaseExists), http.StatusConflict, "RELEASE_EXISTS", ""},
	{is(errKeyExists), http.StatusConflict, "KEY_EXISTS", ""},
	{is(errIdentityExists), http.StatusConflict, "IDENTITY_EXISTS", ""},
	// A body cut off by http.MaxBytesReader.
	{as[*http.MaxBytesError], http.StatusRequestEntityTooLarge, "TOO_LARGE", "SIZE_INVALID"},
	// Why evidence failed verification.
	{verificationFailed(signing.BadSignature), http.StatusBadRequest, "SIGNATURE_INVALID", ""},
	{verificationFailed(signing.UntrustedKey), http.StatusForbidden, "KEY_UNTRUSTED", ""},
	{verificationFailed(signing.SubjectMismatch), http.StatusBadRequest, "SUBJECT_MISMATCH", ""},
	{verificationFailed(signing.Unsupported), http.StatusBadRequest, "UNSUPPORTED", ""},
	{verificationFailed(signing.CertificateUntrusted), http.StatusForbidden, "CERTIFICATE_UNTRUSTED", ""},
	{verificationFailed(signing.IdentityMismatch), http.StatusForbidden, "IDENTITY_MISMATCH", ""},
	{verificationFailed(signing.CertificateExpiredAtSigning), http.StatusBadRequest, "CERTIFICATE_EXPIRED_AT_SIGNING", ""},
	{verificationFailed(signing.TlogEntryMissing), http.StatusBadRequest, "TLOG_ENTRY_MISSING", ""},
	{verificationFailed(signing.TlogProofInvalid), http.StatusBadRequest, "TLOG_PROOF_INVALID", ""},
	{verificationFailed(signing.TimestampMissing), http.StatusBadRequest, "TIMESTAMP_MISSING", ""},
	{verificationFailed(""), http.StatusBadRequest, "MALFORMED", ""},

	// BLOB_CORRUPT is not the spec's either; its status is what matters.
	{is(blobs.ErrBlobCorrupt), http.StatusInternalServerError, "BLOB_CORRUPT", "BLOB_CORRUPT"},
	// The registry's own errors come before the digests: an upload whose
	// chunks do not hash to its digest is BLOB_UPLOAD_INVALID.
	{is(registry.ErrBlobUnknown), http.StatusNotFound, "", "BLOB_UNKNOWN"},
	{is(registry.ErrManifestUnknown), http.StatusNotFound, "", "MANIFEST_UNKNOWN"},
	{is(registry.ErrNameUnknown), http.StatusNotFound, "", "NAME_UNKNOWN"},
	{is(registry.ErrUploadUnknown), http.StatusNotFound, "", "BLOB_UPLOAD_UNKNOWN"},
	{is(registry.ErrManifestBlobUnknown), http.StatusBadRequest, "", "MANIFEST_BLOB_UNKNOWN"},
	{is(registry.ErrManifestInvalid), http.StatusBadRequest, "", "MANIFEST_INVALID"},
	{is(registry.ErrUploadInvalid), http.StatusBadRequest, "", "BLOB_UPLOAD_INVALID"},
	{is(registry.ErrUnsupported), http.StatusUnsupportedMediaType, "", "UNSUPPORTED"},
	{is(registry.ErrImmutable), http.StatusConflict, "", "DENIED"},
	{is(catalog.ErrVersionExists), http.StatusConflict, "VERSION_EXISTS", "DENIED"},
	{is(store.ErrDigestMismatch, store.ErrInvalidDigest, errDigestHeader, errDigestParam), http.StatusBadRequest, "DIGEST_INVALID", "DIGEST_INVALID"},
	{is(store.ErrSizeMismatch), http.StatusBadRequest, "SIZE_INVALID", "SIZE_INVALID"},
	{is(store.ErrTooLarge, errBodyTooLarge), http.StatusRequestEntityTooLarge, "TOO_LARGE", "SIZE_INVALID"},
	{is(store.ErrInvalidRange), http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID", "RANGE_INVALID"},
	{is(names.ErrNameInvalid), http.StatusBadRequest, "NAME_INVALID", "NAME_INVALID"},
	// Not in the spec's table, but the reference registry's (distribution)
	// codes for these, which clients know: more telling than UNSUPPORTED.
	{is(registry.ErrPaginationNumberInvalid), http.StatusBadRequest, "", "PAGINATION_NUMBER_INVALID"},
	{is(registry.ErrTagInvalid), http.StatusBadRequest, "", "TAG_INVALID"},
	{is(names.ErrVersionInvalid), http.StatusBadRequest, "VERSION_INVALID", "MANIFEST_INVALID"},

	// Evidence, trust and the release lifecycle: the REST API's alone.
	{is(catalog.ErrWrongEvidenceKind), http.StatusBadRequest, "MALFORMED", ""},
	{is(catalog.ErrEvidenceReplayed), http.StatusConflict, "EVIDENCE_REPLAYED", ""},
	{is(signing.ErrInvalidPolicy), http.StatusBadRequest, "POLICY_INVALID", ""},
	{is(trust.ErrRootInvalid), http.StatusBadRequest, "ROOT_INVALID", ""},
	{is(trust.ErrRootUnknown), http.StatusBadRequest, "ROOT_UNKNOWN", ""},
	{is(trust.ErrRootRevoked), http.StatusConflict, "ROOT_REVOKED", ""},
	{is(lifecycle.ErrInvalidState), http.StatusConflict, "INVALID_STATE", ""},
	{is(lifecycle.ErrStaleApproval), http.StatusConflict, "STALE_APPROVAL", ""},
	{is(lifecycle.ErrSeparationOfDuties), http.StatusForbidden, "SEPARATION_OF_DUTIES", ""},
	{is(lifecycle.ErrBuildBlocked), http.StatusConflict, "BUILD_BLOCKED", ""},
	{is(lifecycle.ErrDeploymentOutOfOrder), http.StatusConflict, "DEPLOYMENT_OUT_OF_ORDER", ""},
	{is(catalog.ErrArtifactRetired), http.StatusConflict, "ARTIFACT_RETIRED", ""},
	{is(lifecycle.ErrArtifactRejected), http.StatusConflict, "ARTIFACT_REJECTED", ""},
	{is(lifecycle.ErrReasonRequired), http.StatusBadRequest, "REASON_REQUIRED", ""},
	{is(lifecycle.ErrQuorumTooLow), http.StatusBadRequest, "QUORUM_TOO_LOW", ""},
	{is(names.ErrMediaTypeInvalid), http.StatusBadRequest, "MEDIA_TYPE_INVALID", ""},

	// A push past a quota: refused by policy, as DENIED is (retrying will
	// not help until something is deleted or the quota raised).
	{is(quota.ErrQuotaExceeded), http.StatusForbidden, "QUOTA_EXCEEDED", "DENIED"},
	// Change control (change windows, emergency changes, change references).
	{is(lifecycle.ErrOutsideChangeWindow), http.StatusConflict, "OUTSIDE_CHANGE_WINDOW", ""},
	{is(lifecycle.ErrChangeRefInvalid), http.StatusBadRequest, "CHANGE_REF_INVALID", ""},
	{is(lifecycle.ErrRiskInvalid), http.StatusBadRequest, "RISK_INVALID", ""},
	{is(lifecycle.ErrChangeNotApproved), http.StatusConflict, "CHANGE_NOT_APPROVED", ""},
	// Single sign-on (docs/sso.md).
	{is(access.ErrNoRoleGranted), http.StatusForbidden, "NO_ROLE_GRANTED", "DENIED"},
	{is(sso.ErrInvalidToken), http.StatusUnauthorized, "SSO_TOKEN_INVALID", "UNAUTHORIZED"},
	{is(sso.ErrProvider), http.StatusBadGateway, "SSO_PROVIDER_FAILED", "UNAVAILABLE"},

	// The domain's categories: who may ask before what was asked.
	{is(errdef.ErrUnauthorized), http.StatusUnauthorized, "UNAUTHORIZED", "UNAUTHORIZED"},
	{is(catalog.ErrNotAdmitted), http.StatusForbidden, "NOT_ADMITTED", "DENIED"},
	{is(access.ErrNotAuthorizedForEnv), http.StatusForbidden, "NOT_AUTHORIZED_FOR_ENVIRONMENT", "DENIED"},
	{is(errdef.ErrDenied), http.StatusForbidden, "DENIED", "DENIED"},
	{is(errdef.ErrConflict), http.StatusConflict, "CONFLICT", "DENIED"},
	{is(errdef.ErrInvalidInput), http.StatusBadRequest, "INVALID_INPUT", "UNSUPPORTED"},
	{is(errdef.ErrNotFound), http.StatusNotFound, "NOT_FOUND", "NAME_UNKNOWN"},
	{is(store.ErrNotFound), http.StatusNotFound, "BLOB_UNKNOWN", "BLOB_UNKNOWN"},

	{is(errMalformed), http.StatusBadRequest, "MALFORMED", "UNSUPPORTED"},
	{is(errNoRoute), http.StatusNotFound, "NOT_FOUND", "NAME_UNKNOWN"},
	{is(errMethodNotAllowed), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "UNSUPPORTED"},
	{is(errPreconditionFailed), http.StatusPreconditionFailed, "PRECONDITION_FAILED", "PRECONDITION_FAILED"},
	{is(errNotReady), http.StatusServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE"},
	// A panic has always answered INTERNAL, under /v2/ too.
	{is(errPanic), http.StatusInternalServerError, "INTERNAL", "INTERNAL"},
	// Anything else is the server's fault.
	{func(error) bool { return true }, http.StatusInternalServerError, "INTERNAL", "UNKNOWN"},
}

// is matches the errors that wrap one of targets.
func is(targets ...error) func(error) bool {
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

// as matches the errors that wrap an error of type T.
func as[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// verificationFailed matches evidence refused for reason; "" matches any
// reason.
func verificationFailed(reason signing.Reason) func(error) bool {
	return func(err error) bool {
		var ve *signing.VerificationError
		return errors.As(err, &ve) && (reason == "" || ve.Reason == reason)
	}
}

// errorShape is how one family of routes answers an error: the REST API's
// codes, or the registry's under /v2/.
type errorShape int

const (
	restShape errorShape = iota
	ociShape
)

// shapeOf is the shape of the request's route family. A request the router
// sends to the registry (everything under /v2/ with a method it serves)
// answers in the registry's shape; every other request, including those
// no route takes, in the REST API's.
func shapeOf(c *gin.Context) errorShape {
	if c.FullPath() == ociCatchAll {
		return ociShape
	}
	return restShape
}

// answer finds err's status and code in errorTable.
func (shape errorShape) answer(err error) (status int, code string) {
	r := errorTable[shape.row(err)]
	return r.status, shape.code(r)
}

// row is the index of the first row of errorTable that answers err in the
// shape. The last row matches every error.
func (shape errorShape) row(err error) int {
	for i, r := range errorTable {
		if shape.code(r) != "" && r.match(err) {
			return i
		}
	}
	panic("api: errorTable has no row for every error")
}

// code is the row's code in the shape; "" when the row is not the shape's.
func (shape errorShape) code(r errorRow) string {
	if shape == ociShape {
		return r.ociCode
	}
	return r.code
}

// challenge asks for credentials after a 401. The registry's challenge
// makes docker-login-style clients send credentials: Basic (any user
// name, the token as password). When the request carried a bearer token,
// a Bearer challenge follows with error="invalid_token"; it is never the
// only or first one, because clients that see a Bearer challenge first
// (crane, docker) would try a token service dml does not run.
func (shape errorShape) challenge(c *gin.Context) {
	h := c.Writer.Header()
	if shape == restShape {
		h.Set("WWW-Authenticate", `Bearer realm="dml"`)
		return
	}
	h.Add("WWW-Authenticate", `Basic realm="dml"`)
	if scheme, _, _ := strings.Cut(c.GetHeader("Authorization"), " "); strings.EqualFold(scheme, "bearer") {
		h.Add("WWW-Authenticate", `Bearer realm="dml",error="invalid_token"`)
	}
}

const errorItemKey = "dml.error"

// writeError is the one way an error is answered, by every handler and
// middleware: it finds the error's status and code for the route's family
// (errorTable, shapeOf), logs it as its status deserves, and writes the
// body; detail, when not nil, is the body's detail. The item is kept for
// the access log.
func (s *Server) writeError(c *gin.Context, err error, detail any) {
	shape := shapeOf(c)
	status, code := shape.answer(err)
	s.logError(c, status, err)
	// An answer given before the request's body was read is the last of
	// its connection (body.go).
	refuseUnreadBody(c)
	switch status {
	case http.StatusUnauthorized:
		shape.challenge(c)
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", retryAfter)
	}
	if detail == nil {
		detail = quotaDetail(err)
	}
	if detail == nil {
		detail = refusalDetail(err)
	}
	item := wire.ErrorItem{Code: code, Message: publicMessage(code, err), Detail: encodeDetail(detail)}
	c.Set(errorItemKey, item)
	c.AbortWithStatusJSON(status, wire.ErrorBody{Errors: []wire.ErrorItem{item}})
}

// encodeDetail encodes an error's detail; nil is no detail. A detail is
// built by this package from strings and numbers, so encoding it cannot
// fail; if it did, the answer would go without it rather than not at all.
func encodeDetail(detail any) json.RawMessage {
	if detail == nil {
		return nil
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return nil
	}
	return b
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

// publicMessage is the message a client may see for err.
func publicMessage(code string, err error) string {
	if msg, ok := withheldMessages[code]; ok {
		return msg
	}
	return err.Error()
}

// logError logs an error answer at the level its status deserves.
func (s *Server) logError(c *gin.Context, status int, err error) {
	args := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "err", err}
	switch status {
	case http.StatusInternalServerError, http.StatusInsufficientStorage:
		s.log.Error("request failed", args...)
	case http.StatusServiceUnavailable:
		s.log.Warn("unavailable", args...)
	case StatusClientClosedRequest, http.StatusRequestTimeout:
		// The client's doing, not the server's: no one to page.
		s.log.Info("request ended by the client", args...)
	}
}

// meaning gives err the meaning of kind for errorTable and keeps err's
// message: a conflict that can only be "the release exists" is answered
// RELEASE_EXISTS.
func meaning(kind, err error) error { return meant{kind, err} }

type meant struct{ kind, err error }

func (m meant) Error() string   { return m.err.Error() }
func (m meant) Unwrap() []error { return []error{m.kind, m.err} }

// methodNotAllowed refuses the request's method on its path.
func methodNotAllowed(c *gin.Context) error {
	return meaning(errMethodNotAllowed, errors.New(c.Request.Method+" is not allowed on "+c.Request.URL.Path))
}

// refusalDetail is the detail of a refusal that says what to do next: the
// roles a DENIED needed and the caller's, the close names of a NOT_FOUND;
// nil for any other error.
func refusalDetail(err error) any {
	var (
		re *access.RoleError
		nf *errdef.NotFoundError
	)
	switch {
	case errors.As(err, &re):
		return wire.RoleDetail{Have: roleNames(re.Have), Need: roleNames(re.Need)}
	case errors.As(err, &nf):
		return wire.NotFoundDetail{Suggestions: append([]string{}, nf.Suggestions...)}
	}
	return nil
}

// roleNames lists roles as the wire has them; none is [], not null.
func roleNames(roles []access.Role) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		out = append(out, string(r))
	}
	return out
}

// verificationDetail says why evidence was refused, for the error body.
func verificationDetail(err error) any {
	var ve *signing.VerificationError
	if !errors.As(err, &ve) {
		return nil
	}
	return wire.VerificationDetail{Format: string(ve.Format), KeyID: ve.KeyID, Reason: string(ve.Reason)}
}
