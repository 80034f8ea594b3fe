package api

import (
	"context"
	"errors"
	"fmt"
	"github.com/dmlproject/dml/api/sso"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
)

// TestErrorTable pins errorTable: each error, alone or wrapped as the
// domain and the handlers wrap it, and the status and code it is answered
// with by the REST API and by the registry (/v2/). Every row of the table
// must answer at least one case.
func TestErrorTable(t *testing.T) {
	wrap := func(errs ...error) error {
		format := strings.Repeat("%w: ", len(errs)) + "context"
		args := make([]any, len(errs))
		for i, e := range errs {
			args[i] = e
		}
		return fmt.Errorf(format, args...)
	}
	verification := func(r signing.Reason) error {
		return &signing.VerificationError{Reason: r, Err: errors.New("cause")}
	}
	type answer struct {
		status int
		code   string
	}
	for _, tc := range []struct {
		name      string
		err       error
		rest, oci answer
	}{
		// What is not the request's fault comes first, whatever wraps it.
		{"client gone", errClientGone, answer{499, "CLIENT_CLOSED_REQUEST"}, answer{499, "CLIENT_CLOSED_REQUEST"}},
		{"context cancelled", context.Canceled, answer{499, "CLIENT_CLOSED_REQUEST"}, answer{499, "CLIENT_CLOSED_REQUEST"}},
		{"body cut off, read as malformed", wrap(errMalformed, errClientGone), answer{499, "CLIENT_CLOSED_REQUEST"}, answer{499, "CLIENT_CLOSED_REQUEST"}},
		{"body too slow", errBodyTimeout, answer{408, "REQUEST_TIMEOUT"}, answer{408, "REQUEST_TIMEOUT"}},
		{"evidence body too slow", wrap(errBodyTooLarge, errBodyTimeout), answer{408, "REQUEST_TIMEOUT"}, answer{408, "REQUEST_TIMEOUT"}},
		{"storage unavailable", store.ErrUnavailable, answer{503, "STORAGE_UNAVAILABLE"}, answer{503, "STORAGE_UNAVAILABLE"}},
		{"storage unavailable under not found", wrap(errdef.ErrNotFound, store.ErrUnavailable), answer{503, "STORAGE_UNAVAILABLE"}, answer{503, "STORAGE_UNAVAILABLE"}},
		{"storage full", store.ErrNoSpace, answer{507, "INSUFFICIENT_STORAGE"}, answer{507, "INSUFFICIENT_STORAGE"}},

		{"release exists", meaning(errReleaseExists, wrap(errdef.ErrConflict)), answer{409, "RELEASE_EXISTS"}, answer{409, "DENIED"}},
		{"key exists", meaning(errKeyExists, wrap(errdef.ErrConflict)), answer{409, "KEY_EXISTS"}, answer{409, "DENIED"}},
		{"identity exists", meaning(errIdentityExists, wrap(errdef.ErrConflict)), answer{409, "IDENTITY_EXISTS"}, answer{409, "DENIED"}},
		{"body over MaxBytesReader", &http.MaxBytesError{Limit: 1}, answer{413, "TOO_LARGE"}, answer{413, "SIZE_INVALID"}},
		{"body too large", errBodyTooLarge, answer{413, "TOO_LARGE"}, answer{413, "SIZE_INVALID"}},
		{"evidence over MaxBytesReader", wrap(errBodyTooLarge, &http.MaxBytesError{Limit: 1}), answer{413, "TOO_LARGE"}, answer{413, "SIZE_INVALID"}},

		{"bad signature", verification(signing.BadSignature), answer{400, "SIGNATURE_INVALID"}, answer{500, "UNKNOWN"}},
		{"untrusted key", verification(signing.UntrustedKey), answer{403, "KEY_UNTRUSTED"}, answer{500, "UNKNOWN"}},
		{"subject mismatch", verification(signing.SubjectMismatch), answer{400, "SUBJECT_MISMATCH"}, answer{500, "UNKNOWN"}},
		{"unsupported evidence", verification(signing.Unsupported), answer{400, "UNSUPPORTED"}, answer{500, "UNKNOWN"}},
		{"certificate untrusted", verification(signing.CertificateUntrusted), answer{403, "CERTIFICATE_UNTRUSTED"}, answer{500, "UNKNOWN"}},
		{"identity mismatch", verification(signing.IdentityMismatch), answer{403, "IDENTITY_MISMATCH"}, answer{500, "UNKNOWN"}},
		{"certificate expired at signing", verification(signing.CertificateExpiredAtSigning), answer{400, "CERTIFICATE_EXPIRED_AT_SIGNING"}, answer{500, "UNKNOWN"}},
		{"no log entry", verification(signing.TlogEntryMissing), answer{400, "TLOG_ENTRY_MISSING"}, answer{500, "UNKNOWN"}},
		{"log proof invalid", verification(signing.TlogProofInvalid), answer{400, "TLOG_PROOF_INVALID"}, answer{500, "UNKNOWN"}},
		{"no time of signing", verification(signing.TimestampMissing), answer{400, "TIMESTAMP_MISSING"}, answer{500, "UNKNOWN"}},
		{"malformed evidence", verification(signing.Malformed), answer{400, "MALFORMED"}, answer{500, "UNKNOWN"}},
		{"verification failed otherwise", verification("other"), answer{400, "MALFORMED"}, answer{500, "UNKNOWN"}},

		{"blob corrupt", blobs.ErrBlobCorrupt, answer{500, "BLOB_CORRUPT"}, answer{500, "BLOB_CORRUPT"}},
		{"blob unknown", registry.ErrBlobUnknown, answer{404, "NOT_FOUND"}, answer{404, "BLOB_UNKNOWN"}},
		{"manifest unknown", registry.ErrManifestUnknown, answer{404, "NOT_FOUND"}, answer{404, "MANIFEST_UNKNOWN"}},
		{"name unknown", registry.ErrNameUnknown, answer{404, "NOT_FOUND"}, answer{404, "NAME_UNKNOWN"}},
		{"upload unknown", registry.ErrUploadUnknown, answer{404, "NOT_FOUND"}, answer{404, "BLOB_UPLOAD_UNKNOWN"}},
		{"manifest blob unknown", registry.ErrManifestBlobUnknown, answer{400, "INVALID_INPUT"}, answer{400, "MANIFEST_BLOB_UNKNOWN"}},
		{"manifest invalid", registry.ErrManifestInvalid, answer{400, "INVALID_INPUT"}, answer{400, "MANIFEST_INVALID"}},
		{"manifest media type invalid", wrap(registry.ErrManifestInvalid, names.ErrMediaTypeInvalid), answer{400, "MEDIA_TYPE_INVALID"}, answer{400, "MANIFEST_INVALID"}},
		{"upload invalid", registry.ErrUploadInvalid, answer{400, "INVALID_INPUT"}, answer{400, "BLOB_UPLOAD_INVALID"}},
		{"upload chunks do not hash right", wrap(registry.ErrUploadInvalid, store.ErrDigestMismatch), answer{400, "DIGEST_INVALID"}, answer{400, "BLOB_UPLOAD_INVALID"}},
		{"unsupported", registry.ErrUnsupported, answer{400, "INVALID_INPUT"}, answer{415, "UNSUPPORTED"}},
		{"immutable", registry.ErrImmutable, answer{409, "CONFLICT"}, answer{409, "DENIED"}},
		{"version exists", catalog.ErrVersionExists, answer{409, "VERSION_EXISTS"}, answer{409, "DENIED"}},
		{"digest mismatch", store.ErrDigestMismatch, answer{400, "DIGEST_INVALID"}, answer{400, "DIGEST_INVALID"}},
		{"invalid digest", store.ErrInvalidDigest, answer{400, "DIGEST_INVALID"}, answer{400, "DIGEST_INVALID"}},
		{"digest header", errDigestHeader, answer{400, "DIGEST_INVALID"}, answer{400, "DIGEST_INVALID"}},
		{"digest parameter", errDigestParam, answer{400, "DIGEST_INVALID"}, answer{400, "DIGEST_INVALID"}},
		{"size mismatch", store.ErrSizeMismatch, answer{400, "SIZE_INVALID"}, answer{400, "SIZE_INVALID"}},
		{"object too large", store.ErrTooLarge, answer{413, "TOO_LARGE"}, answer{413, "SIZE_INVALID"}},
		{"invalid range", store.ErrInvalidRange, answer{416, "RANGE_INVALID"}, answer{416, "RANGE_INVALID"}},
		{"chunk out of order", registry.ErrChunkOutOfOrder, answer{416, "RANGE_INVALID"}, answer{416, "RANGE_INVALID"}},
		{"name invalid", names.ErrNameInvalid, answer{400, "NAME_INVALID"}, answer{400, "NAME_INVALID"}},
		{"pagination number invalid", registry.ErrPaginationNumberInvalid, answer{400, "INVALID_INPUT"}, answer{400, "PAGINATION_NUMBER_INVALID"}},
		{"tag invalid", registry.ErrTagInvalid, answer{400, "INVALID_INPUT"}, answer{400, "TAG_INVALID"}},
		{"tag invalid as a version", wrap(registry.ErrTagInvalid, names.ErrVersionInvalid), answer{400, "VERSION_INVALID"}, answer{400, "TAG_INVALID"}},
		{"version invalid", names.ErrVersionInvalid, answer{400, "VERSION_INVALID"}, answer{400, "MANIFEST_INVALID"}},

		{"wrong evidence kind", catalog.ErrWrongEvidenceKind, answer{400, "MALFORMED"}, answer{500, "UNKNOWN"}},
		{"evidence replayed", catalog.ErrEvidenceReplayed, answer{409, "EVIDENCE_REPLAYED"}, answer{409, "DENIED"}},
		{"policy invalid", wrap(signing.ErrInvalidPolicy, errors.New("cause")), answer{400, "POLICY_INVALID"}, answer{500, "UNKNOWN"}},
		{"root invalid", wrap(trust.ErrRootInvalid, errors.New("cause")), answer{400, "ROOT_INVALID"}, answer{500, "UNKNOWN"}},
		{"root unknown", wrap(trust.ErrRootUnknown), answer{400, "ROOT_UNKNOWN"}, answer{400, "UNSUPPORTED"}},
		{"root revoked", wrap(trust.ErrRootRevoked), answer{409, "ROOT_REVOKED"}, answer{409, "DENIED"}},
		{"invalid state", &lifecycle.InvalidStateError{Release: "r", Action: "approve"}, answer{409, "INVALID_STATE"}, answer{500, "UNKNOWN"}},
		{"stale approval", lifecycle.ErrStaleApproval, answer{409, "STALE_APPROVAL"}, answer{500, "UNKNOWN"}},
		{"separation of duties", lifecycle.ErrSeparationOfDuties, answer{403, "SEPARATION_OF_DUTIES"}, answer{500, "UNKNOWN"}},
		{"build blocked", lifecycle.ErrBuildBlocked, answer{409, "BUILD_BLOCKED"}, answer{500, "UNKNOWN"}},
		{"deployment out of order", lifecycle.ErrDeploymentOutOfOrder, answer{409, "DEPLOYMENT_OUT_OF_ORDER"}, answer{500, "UNKNOWN"}},
		{"artifact retired", catalog.ErrArtifactRetired, answer{409, "ARTIFACT_RETIRED"}, answer{500, "UNKNOWN"}},
		{"artifact rejected", lifecycle.ErrArtifactRejected, answer{409, "ARTIFACT_REJECTED"}, answer{500, "UNKNOWN"}},
		{"cancel without a reason", lifecycle.ErrReasonRequired, answer{400, "REASON_REQUIRED"}, answer{400, "UNSUPPORTED"}},
		{"quorum too low", lifecycle.ErrQuorumTooLow, answer{400, "QUORUM_TOO_LOW"}, answer{500, "UNKNOWN"}},
		{"media type invalid", names.ErrMediaTypeInvalid, answer{400, "MEDIA_TYPE_INVALID"}, answer{400, "UNSUPPORTED"}},

		{"unauthorized", errdef.ErrUnauthorized, answer{401, "UNAUTHORIZED"}, answer{401, "UNAUTHORIZED"}},
		{"not admitted", catalog.ErrNotAdmitted, answer{403, "NOT_ADMITTED"}, answer{403, "DENIED"}},
		{"not authorized for environment", access.ErrNotAuthorizedForEnv, answer{403, "NOT_AUTHORIZED_FOR_ENVIRONMENT"}, answer{403, "DENIED"}},
		{"denied", errdef.ErrDenied, answer{403, "DENIED"}, answer{403, "DENIED"}},
		{"route without an access rule", errNoAccessRule, answer{403, "DENIED"}, answer{403, "DENIED"}},
		{"conflict", errdef.ErrConflict, answer{409, "CONFLICT"}, answer{409, "DENIED"}},
		{"blob being collected", blobs.ErrBlobCollecting, answer{409, "CONFLICT"}, answer{409, "DENIED"}},
		{"invalid input", errdef.ErrInvalidInput, answer{400, "INVALID_INPUT"}, answer{400, "UNSUPPORTED"}},
		{"not found", errdef.ErrNotFound, answer{404, "NOT_FOUND"}, answer{404, "NAME_UNKNOWN"}},
		{"stored blob not found", store.ErrNotFound, answer{404, "BLOB_UNKNOWN"}, answer{404, "BLOB_UNKNOWN"}},

		{"malformed", errMalformed, answer{400, "MALFORMED"}, answer{400, "UNSUPPORTED"}},
		{"no route", errNoRoute, answer{404, "NOT_FOUND"}, answer{404, "NAME_UNKNOWN"}},
		{"method not allowed", errMethodNotAllowed, answer{405, "METHOD_NOT_ALLOWED"}, answer{405, "UNSUPPORTED"}},
		{"method not allowed, with its message", meaning(errMethodNotAllowed, errors.New("PUT is not allowed on /x")), answer{405, "METHOD_NOT_ALLOWED"}, answer{405, "UNSUPPORTED"}},
		{"precondition failed", errPreconditionFailed, answer{412, "PRECONDITION_FAILED"}, answer{412, "PRECONDITION_FAILED"}},
		{"not ready", wrap(errNotReady), answer{503, "UNAVAILABLE"}, answer{503, "UNAVAILABLE"}},
		{"quota exceeded, wrapped by the push", wrap(&quota.ExceededError{Prefix: "p/", Limit: "bytes"}), answer{403, "QUOTA_EXCEEDED"}, answer{403, "DENIED"}},
		{"panic", wrap(errPanic), answer{500, "INTERNAL"}, answer{500, "INTERNAL"}},
		{"no role granted", wrap(access.ErrNoRoleGranted), answer{403, "NO_ROLE_GRANTED"}, answer{403, "DENIED"}},
		{"invalid ID token", wrap(sso.ErrInvalidToken), answer{401, "SSO_TOKEN_INVALID"}, answer{401, "UNAUTHORIZED"}},
		{"provider failed", wrap(sso.ErrProvider), answer{502, "SSO_PROVIDER_FAILED"}, answer{502, "UNAVAILABLE"}},
		{"unknown provider", wrap(sso.ErrUnknownProvider), answer{404, "NOT_FOUND"}, answer{404, "NAME_UNKNOWN"}},
		{"anything else", errors.New("disk on fire"), answer{500, "INTERNAL"}, answer{500, "UNKNOWN"}},
		{"outside the change window", &lifecycle.OutsideWindowError{Release: "r"}, answer{409, "OUTSIDE_CHANGE_WINDOW"}, answer{500, "UNKNOWN"}},
		{"change ref invalid", &lifecycle.ChangeRefError{ChangeRef: "x", Pattern: "^CHG[0-9]+$"}, answer{400, "CHANGE_REF_INVALID"}, answer{500, "UNKNOWN"}},
		{"risk invalid", &lifecycle.RiskError{Risk: "x"}, answer{400, "RISK_INVALID"}, answer{500, "UNKNOWN"}},
		{"change not approved", &lifecycle.ChangeNotApprovedError{Status: "pending"}, answer{409, "CHANGE_NOT_APPROVED"}, answer{500, "UNKNOWN"}},
	} {
		for _, shape := range []struct {
			name  string
			shape errorShape
			want  answer
		}{{"REST", restShape, tc.rest}, {"OCI", ociShape, tc.oci}} {
			status, code := shape.shape.answer(tc.err)
			if got := (answer{status, code}); got != shape.want {
				t.Errorf("%s in the %s shape: %d %s; want %d %s", tc.name, shape.name, got.status, got.code, shape.want.status, shape.want.code)
			}
		}
		// A message that keeps its meaning is the message of the error it
		// gives a meaning to.
		if m, ok := tc.err.(meant); ok && m.Error() != m.err.Error() {
			t.Errorf("%s: message %q; want %q", tc.name, m.Error(), m.err.Error())
		}
	}
}

// TestErrorTableRowsAnswer: every row of errorTable answers some error in
// a shape it has a code for, so that none is hidden by a row above it.
func TestErrorTableRowsAnswer(t *testing.T) {
	probes := []error{
		errClientGone, errBodyTimeout, store.ErrUnavailable, store.ErrNoSpace,
		errReleaseExists, errKeyExists, errIdentityExists, &http.MaxBytesError{},
		&signing.VerificationError{Reason: signing.BadSignature}, &signing.VerificationError{Reason: signing.UntrustedKey},
		&signing.VerificationError{Reason: signing.SubjectMismatch}, &signing.VerificationError{Reason: signing.Unsupported},
		&signing.VerificationError{Reason: signing.Malformed},
		&signing.VerificationError{Reason: signing.CertificateUntrusted}, &signing.VerificationError{Reason: signing.IdentityMismatch},
		&signing.VerificationError{Reason: signing.CertificateExpiredAtSigning}, &signing.VerificationError{Reason: signing.TlogEntryMissing},
		&signing.VerificationError{Reason: signing.TlogProofInvalid}, &signing.VerificationError{Reason: signing.TimestampMissing},
		blobs.ErrBlobCorrupt, registry.ErrBlobUnknown, registry.ErrManifestUnknown, registry.ErrNameUnknown,
		registry.ErrUploadUnknown, registry.ErrManifestBlobUnknown, registry.ErrManifestInvalid, registry.ErrUploadInvalid,
		registry.ErrUnsupported, registry.ErrImmutable, catalog.ErrVersionExists, store.ErrDigestMismatch,
		store.ErrSizeMismatch, store.ErrTooLarge, store.ErrInvalidRange, names.ErrNameInvalid,
		registry.ErrPaginationNumberInvalid, registry.ErrTagInvalid, names.ErrVersionInvalid,
		catalog.ErrWrongEvidenceKind, catalog.ErrEvidenceReplayed, signing.ErrInvalidPolicy, lifecycle.ErrInvalidState,
		trust.ErrRootInvalid, trust.ErrRootUnknown, trust.ErrRootRevoked,
		lifecycle.ErrStaleApproval, lifecycle.ErrSeparationOfDuties, lifecycle.ErrBuildBlocked, lifecycle.ErrDeploymentOutOfOrder,
		catalog.ErrArtifactRetired, lifecycle.ErrArtifactRejected, lifecycle.ErrReasonRequired, lifecycle.ErrQuorumTooLow, names.ErrMediaTypeInvalid,
		errdef.ErrUnauthorized, catalog.ErrNotAdmitted, access.ErrNotAuthorizedForEnv, errdef.ErrDenied,
		errdef.ErrConflict, errdef.ErrInvalidInput, errdef.ErrNotFound, store.ErrNotFound,
		errMalformed, errNoRoute, errMethodNotAllowed, errPreconditionFailed, errNotReady, errPanic, errors.New("other"),
		lifecycle.ErrOutsideChangeWindow, lifecycle.ErrChangeRefInvalid, lifecycle.ErrRiskInvalid, lifecycle.ErrChangeNotApproved,
		access.ErrNoRoleGranted, sso.ErrInvalidToken, sso.ErrProvider,
		&quota.ExceededError{Prefix: "p/", Limit: "bytes"},
	}
	answered := make([]bool, len(errorTable))
	for _, err := range probes {
		answered[restShape.row(err)] = true
		answered[ociShape.row(err)] = true
	}
	for i, r := range errorTable {
		if !answered[i] {
			t.Errorf("row %d (%d %q/%q) answers none of the probes: add its error, or remove the row", i, r.status, r.code, r.ociCode)
		}
		if r.code == "" && r.ociCode == "" {
			t.Errorf("row %d has no code in either shape", i)
		}
	}
}

// TestErrorsOnlyThroughWriteError: no code of the package answers an
// error except writeError. It reads the package's source (not its tests)
// and refuses what would write an error answer around it: gin's Abort*
// with a status, http.Error, an ErrorBody or ErrorItem built, a gin.H with
// "errors", or a status of 400 or more given to c.JSON, c.Status, c.Data,
// WriteHeader or any other writer.
func TestErrorsOnlyThroughWriteError(t *testing.T) {
	files, _ := filepath.Glob("*.go") // its only error is a bad pattern
	var found []string
	for _, name := range files {
		if !strings.HasSuffix(name, "_test.go") {
			found = append(found, errorWritesOutsideWriter(t, name, nil)...)
		}
	}
	for _, f := range found {
		t.Errorf("%s: answer the error through writeError", f)
	}

	// The check sees what it must refuse.
	bad := `package api
func h(c *gin.Context) {
	c.AbortWithStatusJSON(404, ErrorBody{})
	c.AbortWithStatus(http.StatusForbidden)
	http.Error(c.Writer, "no", 500)
	c.JSON(http.StatusConflict, gin.H{"errors": 1})
	c.Status(http.StatusBadRequest)
	c.Writer.WriteHeader(503)
	_ = ErrorItem{Code: "X"}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
	c.Status(http.StatusNoContent)
}`
	if got := errorWritesOutsideWriter(t, "bad.go", bad); len(got) != 9 {
		t.Errorf("the check found %d of the 9 error answers in\n%s:\n%s", len(got), bad, strings.Join(got, "\n"))
	}
}

// answerMethods are the gin.Context and http.ResponseWriter methods whose
// first argument is the status of the answer.
var answerMethods = map[string]bool{
	"JSON": true, "Status": true, "Data": true, "String": true, "WriteHeader": true, "PureJSON": true,
	"IndentedJSON": true, "SecureJSON": true, "AsciiJSON": true, "JSONP": true, "XML": true, "YAML": true,
	"TOML": true, "ProtoBuf": true, "Render": true, "DataFromReader": true, "HTML": true,
}

// errorWritesOutsideWriter lists where the file (src, or the file name
// when src is nil) writes an error answer outside writeError.
func errorWritesOutsideWriter(t *testing.T, name string, src any) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	nethttp, err := importer.Default().Import("net/http")
	if err != nil {
		t.Fatal(err)
	}
	// isErrorStatus reports a status argument of 400 or more: a literal or
	// a constant of net/http.
	isErrorStatus := func(e ast.Expr) bool {
		switch e := e.(type) {
		case *ast.BasicLit:
			n, err := strconv.Atoi(e.Value)
			return err == nil && n >= 400
		case *ast.SelectorExpr:
			if pkg, ok := e.X.(*ast.Ident); ok && pkg.Name == "http" {
				if c, ok := nethttp.Scope().Lookup(e.Sel.Name).(*types.Const); ok {
					n, ok := constant.Int64Val(c.Val())
					return ok && n >= 400
				}
			}
		}
		return false
	}
	var found []string
	report := func(n ast.Node, what string) {
		found = append(found, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), what))
	}
	for _, decl := range f.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok && fn.Name.Name == "writeError" {
			continue
		}
		ast.Inspect(decl, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, _ := sel.X.(*ast.Ident)
				switch {
				case strings.HasPrefix(sel.Sel.Name, "AbortWith"):
					report(n, sel.Sel.Name)
				case pkg != nil && pkg.Name == "http" && sel.Sel.Name == "Error":
					report(n, "http.Error")
				case answerMethods[sel.Sel.Name] && len(n.Args) > 0 && isErrorStatus(n.Args[0]):
					report(n, sel.Sel.Name+" with an error status")
				}
			case *ast.CompositeLit:
				switch typ := n.Type.(type) {
				case *ast.Ident:
					if typ.Name == "ErrorBody" || typ.Name == "ErrorItem" {
						report(n, typ.Name)
					}
				case *ast.SelectorExpr:
					if typ.Sel.Name == "ErrorBody" || typ.Sel.Name == "ErrorItem" {
						report(n, typ.Sel.Name)
					}
					if typ.Sel.Name == "H" {
						for _, elt := range n.Elts {
							if kv, ok := elt.(*ast.KeyValueExpr); ok {
								if lit, ok := kv.Key.(*ast.BasicLit); ok && lit.Value == `"errors"` {
									report(n, `gin.H with "errors"`)
								}
							}
						}
					}
				}
			}
			return true
		})
	}
	return found
}
