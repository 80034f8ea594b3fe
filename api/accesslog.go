package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
)

// recordAccess keeps the access log: every refused request (401, 403 and
// the 409s of policy and state) and every content download (the GET
// routes the matrix marks Download), with the principal, the route and
// the artifact. Each record goes to the access logger (attribute
// log=access, so operators can route it) and to the database, where
// auditors query it (GET /api/v1/audit/access). A download cut off after
// its headers (a panic with http.ErrAbortHandler) is recorded as aborted.
func (s *Server) recordAccess(c *gin.Context) {
	finished := false
	defer func() {
		if finished {
			return
		}
		v := recover()
		if v == nil {
			return // runtime.Goexit
		}
		if v == http.ErrAbortHandler {
			if key, ok := s.routeOf(c); ok && s.rules[key].Download {
				s.logAccess(c, audit.AccessAborted)
			}
		}
		panic(v)
	}()
	c.Next()
	finished = true

	var outcome audit.AccessOutcome
	switch status := c.Writer.Status(); {
	case status == http.StatusUnauthorized && s.isChallengePing(c):
		return
	case status == http.StatusUnauthorized:
		outcome = audit.AccessUnauthorized
	case status == http.StatusForbidden:
		outcome = audit.AccessDenied
	case status == http.StatusConflict:
		outcome = audit.AccessConflict
	case status >= 500 && c.Request.Method == http.MethodGet:
		// A download the server could not serve (BLOB_CORRUPT,
		// STORAGE_UNAVAILABLE): who asked for what is worth keeping.
		if key, ok := s.routeOf(c); !ok || !s.rules[key].Download {
			return
		}
		outcome = audit.AccessFailed
	case status >= 200 && status < 300 && c.Request.Method == http.MethodGet:
		key, ok := s.routeOf(c)
		if !ok || !s.rules[key].Download {
			return
		}
		outcome = audit.AccessServed
		if incomplete(c) {
			outcome = audit.AccessAborted
		}
	default:
		return
	}
	s.logAccess(c, outcome)
}

// isChallengePing reports an OCI client's opening move: GET or HEAD /v2/
// without credentials, to learn how to authenticate (docker, oras and
// crane all start so). Its 401 is the protocol's challenge, not a refusal
// of anything, and recording it would put one line per pull in the log.
func (s *Server) isChallengePing(c *gin.Context) bool {
	key, _ := s.routeOf(c)
	return (key == "GET /v2/" || key == "HEAD /v2/") && c.GetHeader("Authorization") == ""
}

// incomplete reports whether fewer bytes were written than the Content-Length
// announced: the client went away, or the content could not be read to
// its end.
func incomplete(c *gin.Context) bool {
	n, err := strconv.ParseInt(c.Writer.Header().Get("Content-Length"), 10, 64)
	// Size is -1 when nothing was written, which a length of 0 expects.
	return err == nil && int64(max(c.Writer.Size(), 0)) < n
}

// accessRecordTimeout bounds the database write of one record; it runs
// after the answer, detached from the request, which may be gone.
const accessRecordTimeout = 5 * time.Second

func (s *Server) logAccess(c *gin.Context, outcome audit.AccessOutcome) {
	r := s.accessRecord(c, outcome)
	attrs := []any{
		"outcome", r.Outcome, "status", r.Status, "method", r.Method, "route", r.Route, "path", r.Path,
		"principal", r.Principal, "tokenId", r.TokenID, "subject", r.Subject, "name", r.Name,
		"version", r.Version, "digest", r.Digest, "remote", r.Remote,
	}
	if r.Code != "" {
		attrs = append(attrs, "code", r.Code, "message", r.Message)
	}
	s.access.Info("access", attrs...)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), accessRecordTimeout)
	defer cancel()
	if err := s.dml.Audit.RecordAccess(ctx, r); err != nil {
		s.log.Error("recording access in the database failed", "path", r.Path, "status", r.Status, "err", err)
	}
}

// accessRecord describes the request: who, which route, about what.
func (s *Server) accessRecord(c *gin.Context, outcome audit.AccessOutcome) audit.AccessRecord {
	p := principal(c)
	r := audit.AccessRecord{
		Principal: p.Name, TokenID: p.TokenID,
		Method: c.Request.Method, Path: c.Request.URL.Path,
		Status: c.Writer.Status(), Outcome: outcome,
		Remote: c.Request.RemoteAddr,
	}
	if key, ok := s.routeOf(c); ok {
		_, r.Route, _ = strings.Cut(key, " ")
	}
	if v, ok := c.Get(errorItemKey); ok {
		item, _ := v.(wire.ErrorItem)
		r.Code, r.Message = item.Code, item.Message
	}
	s.accessSubject(c, &r)
	if r.Digest == "" && r.Status < 300 {
		r.Digest = digest.Digest(c.Writer.Header().Get("Docker-Content-Digest"))
	}
	return r
}

// accessSubject fills what the request was about from the route's own
// parameters (nothing is looked up, so a refused request reveals nothing
// to the log either).
func (s *Server) accessSubject(c *gin.Context, r *audit.AccessRecord) {
	switch full := c.FullPath(); {
	case full == artifactsCatchAll:
		ref, ok := parseArtifactPath(c.Param("path"))
		if !ok {
			return
		}
		r.Name, r.Version, r.Subject = ref.Name, ref.Version, ref.Name+":"+ref.Version
		if d, err := digest.Parse(ref.Item); err == nil {
			r.Digest = d
		}
	case full == ociCatchAll:
		route, ok := parseOCIPath(c.Param("path"))
		if !ok || route.Name == "" {
			return
		}
		r.Name, r.Subject = route.Name, route.Name
		switch d, err := digest.Parse(route.Ref); {
		case route.Kind == "upload" || route.Kind == "upload-start":
		case err == nil:
			r.Digest, r.Subject = d, route.Name+"@"+d.String()
		case route.Kind == "manifest":
			r.Version, r.Subject = route.Ref, route.Name+":"+route.Ref
		}
	case strings.HasPrefix(full, v1Prefix+"/releases/:name"):
		r.Subject = "release:" + c.Param("name")
	case strings.HasPrefix(full, v1Prefix+"/tokens/:id"), strings.HasPrefix(full, v1Prefix+"/trust/keys/:id"):
		r.Subject = c.Param("id")
	}
}

// auditAccess serves GET /api/v1/audit/access?subject=&principal=&since=&limit=&cursor=:
// one page of the access log, oldest first.
func (s *Server) auditAccess(c *gin.Context) {
	f := audit.AccessFilter{Subject: c.Query("subject"), Principal: c.Query("principal"), Cursor: c.Query("cursor")}
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.writeError(c, fmt.Errorf("%w: since must be an RFC 3339 time such as 2026-11-25T10:00:00Z", errdef.ErrInvalidInput), nil)
			return
		}
		f.Since = t
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > names.MaxPageSize {
			s.writeError(c, fmt.Errorf("%w: limit must be between 1 and %d", errdef.ErrInvalidInput, names.MaxPageSize), nil)
			return
		}
		f.Limit = n
	}
	list, next, err := s.dml.Audit.AccessRecords(c.Request.Context(), principal(c), f)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, wire.AccessPage{NextCursor: next, Records: convert(list, toAccessRecord)})
}

// toAccessRecord is the wire form of an access log record.
func toAccessRecord(r audit.AccessRecord) wire.AccessRecord {
	return wire.AccessRecord{
		Seq: r.Seq, Time: r.Time, Principal: r.Principal, TokenID: r.TokenID, Method: r.Method, Route: r.Route,
		Path: r.Path, Status: r.Status, Outcome: string(r.Outcome), Code: r.Code, Message: r.Message,
		Subject: r.Subject, Name: r.Name, Version: r.Version, Digest: r.Digest, Remote: r.Remote,
	}
}

// accessLogger is the access log's structured stream: cfg.AccessLogger,
// or the server's logger with the attribute log=access.
func accessLogger(cfg Config, log *slog.Logger) *slog.Logger {
	if cfg.AccessLogger != nil {
		return cfg.AccessLogger
	}
	return log.With("log", "access")
}
