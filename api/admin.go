package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/gin-gonic/gin"
)

// Maintenance runs on the server, where the storage credentials are, so
// the CLI (dml fsck, dml gc) needs only an admin token, and the run sees
// the same backend whatever it is. The answer is a stream of NDJSON lines,
// one releases.MaintenanceEvent each: progress, findings, then the
// summary; a run that fails after it began ends with an "error" line
// instead (its status, 200, is out by then).
func (s *Server) routeAdmin(g *gin.RouterGroup) {
	admin := g.Group("/admin")
	admin.POST("/fsck", s.runFsck)
	admin.POST("/gc", s.runGC)
}

// fsckRequest is the (optional) body of POST /admin/fsck; it has no
// settings yet, and unknown fields are refused.
type fsckRequest struct{}

// gcRequest is the body of POST /admin/gc. Grace is a Go duration ("24h",
// "90m"); empty means releases.DefaultGCGrace.
type gcRequest struct {
	Grace  string `json:"grace"`
	DryRun bool   `json:"dryRun"`
}

func (s *Server) runFsck(c *gin.Context) {
	var req fsckRequest
	if c.Request.ContentLength != 0 && !s.bindJSON(c, &req) {
		return
	}
	streamMaintenance(s, c, func(emit func(releases.MaintenanceEvent[releases.FsckSummary]) error) error {
		_, err := s.dml.Maintenance.Fsck(c.Request.Context(), principal(c), emit)
		return err
	})
}

func (s *Server) runGC(c *gin.Context) {
	var req gcRequest
	if c.Request.ContentLength != 0 && !s.bindJSON(c, &req) {
		return
	}
	opts := blobs.GCOptions{Grace: releases.DefaultGCGrace, DryRun: req.DryRun}
	if req.Grace != "" {
		grace, err := time.ParseDuration(req.Grace)
		if err != nil {
			s.writeError(c, fmt.Errorf("%w: grace %q is not a duration such as 24h or 90m", errdef.ErrInvalidInput, req.Grace), nil)
			return
		}
		opts.Grace = grace
	}
	streamMaintenance(s, c, func(emit func(releases.MaintenanceEvent[releases.GCSummary]) error) error {
		_, err := s.dml.Maintenance.GC(c.Request.Context(), principal(c), opts, emit)
		return err
	})
}

// streamMaintenance runs a maintenance operation and streams its events.
// Nothing is sent before the first event, so a refusal (a denied caller,
// a run already under way) is an ordinary error answer.
func streamMaintenance[S any](s *Server, c *gin.Context, run func(emit func(releases.MaintenanceEvent[S]) error) error) {
	started := false
	enc := json.NewEncoder(c.Writer)
	emit := func(ev releases.MaintenanceEvent[S]) error {
		if !started {
			started = true
			c.Header("Content-Type", "application/x-ndjson")
			c.Header("X-Content-Type-Options", "nosniff")
			c.Status(http.StatusOK)
		}
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("sending progress: %w", err)
		}
		c.Writer.Flush()
		return nil
	}
	err := run(emit)
	switch {
	case err == nil:
	case !started:
		s.writeError(c, err, nil)
	default:
		// The answer's status is out: the error is the stream's last event.
		status, code := shapeOf(c).answer(err)
		s.logError(c, status, err)
		_ = enc.Encode(releases.MaintenanceEvent[S]{Type: "error", Error: &blobs.MaintenanceError{Code: code, Message: publicMessage(code, err)}})
		c.Writer.Flush()
	}
}
