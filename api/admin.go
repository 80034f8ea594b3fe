package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/gin-gonic/gin"
)

// Maintenance runs on the server, where the storage credentials are, so
// the CLI (dml fsck, dml gc) needs only an admin token, and the run sees
// the same backend whatever it is. The answer is a stream of NDJSON lines,
// one wire.MaintenanceEvent each: progress, findings, then the summary; a
// run that fails after it began ends with an "error" line instead (its
// status, 200, is out by then).
func (s *Server) routeAdmin(g *gin.RouterGroup) {
	admin := g.Group("/admin")
	admin.POST("/fsck", s.runFsck)
	admin.POST("/gc", s.runGC)
}

func (s *Server) runFsck(c *gin.Context) {
	var req wire.FsckRequest
	if c.Request.ContentLength != 0 && !s.bindJSON(c, &req) {
		return
	}
	streamMaintenance(s, c, toFsckSummary, func(emit func(blobs.MaintenanceEvent[blobs.FsckSummary]) error) error {
		_, err := s.dml.Maintenance.Fsck(c.Request.Context(), principal(c), emit)
		return err
	})
}

func (s *Server) runGC(c *gin.Context) {
	var req wire.GCRequest
	if c.Request.ContentLength != 0 && !s.bindJSON(c, &req) {
		return
	}
	opts := blobs.GCOptions{Grace: blobs.DefaultGCGrace, DryRun: req.DryRun}
	if req.Grace != "" {
		grace, err := time.ParseDuration(req.Grace)
		if err != nil {
			s.writeError(c, fmt.Errorf("%w: grace %q is not a duration such as 24h or 90m", errdef.ErrInvalidInput, req.Grace), nil)
			return
		}
		opts.Grace = grace
	}
	streamMaintenance(s, c, toGCSummary, func(emit func(blobs.MaintenanceEvent[blobs.GCSummary]) error) error {
		_, err := s.dml.Maintenance.GC(c.Request.Context(), principal(c), opts, emit)
		return err
	})
}

// streamMaintenance runs a maintenance operation and streams its events,
// each in its wire form (toWire maps the summary). Nothing is sent before
// the first event, so a refusal (a denied caller, a run already under
// way) is an ordinary error answer.
func streamMaintenance[S, W any](s *Server, c *gin.Context, toWire func(S) W, run func(emit func(blobs.MaintenanceEvent[S]) error) error) {
	started := false
	enc := json.NewEncoder(c.Writer)
	emit := func(ev blobs.MaintenanceEvent[S]) error {
		if !started {
			started = true
			c.Header("Content-Type", "application/x-ndjson")
			c.Header("X-Content-Type-Options", "nosniff")
			c.Status(http.StatusOK)
		}
		if err := enc.Encode(toMaintenanceEvent(ev, toWire)); err != nil {
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
		_ = enc.Encode(wire.MaintenanceEvent[W]{Type: "error", Error: &wire.MaintenanceError{Code: code, Message: publicMessage(code, err)}})
		c.Writer.Flush()
	}
}

// toMaintenanceEvent is the wire form of a maintenance event. Progress
// and findings have the same fields in both (a conversion).
func toMaintenanceEvent[S, W any](ev blobs.MaintenanceEvent[S], toWire func(S) W) wire.MaintenanceEvent[W] {
	out := wire.MaintenanceEvent[W]{Type: ev.Type}
	out.Progress = (*wire.Progress)(ev.Progress)
	out.Finding = (*wire.Finding)(ev.Finding)
	if ev.Summary != nil {
		sum := toWire(*ev.Summary)
		out.Summary = &sum
	}
	return out
}

// The domain's summaries and the wire's have the same fields: a field
// added to one and not the other does not compile.
func toFsckSummary(s blobs.FsckSummary) wire.FsckSummary { return wire.FsckSummary(s) }
func toGCSummary(s blobs.GCSummary) wire.GCSummary       { return wire.GCSummary(s) }
