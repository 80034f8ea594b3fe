package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dmlproject/dml/api/wire"
)

// Admin is the client of the maintenance runs: the server streams one
// wire.MaintenanceEvent per line, which the client decodes as the server
// encoded it.
type Admin struct{ c *Client }

// Fsck runs fsck on the server: every blob re-hashed (the corrupt ones
// marked), every reference checked. fn, if not nil, sees every event as it
// arrives. It returns the summary; a run that failed is an *Error.
func (x Admin) Fsck(ctx context.Context, fn func(wire.FsckEvent)) (wire.FsckSummary, error) {
	return runMaintenance(ctx, x.c, "/api/v1/admin/fsck", wire.FsckRequest{}, fn)
}

// GCOptions is what a gc may remove: blobs nothing refers to and abandoned
// uploads older than Grace (0: the server's default), or, with DryRun,
// only report them.
type GCOptions struct {
	Grace  time.Duration
	DryRun bool
}

// GC runs gc on the server; see Fsck for fn and the result.
func (x Admin) GC(ctx context.Context, opts GCOptions, fn func(wire.GCEvent)) (wire.GCSummary, error) {
	body := wire.GCRequest{DryRun: opts.DryRun}
	if opts.Grace > 0 {
		body.Grace = opts.Grace.String()
	} else if opts.Grace < 0 {
		return wire.GCSummary{}, errors.New("gc: the grace period must not be negative")
	}
	return runMaintenance(ctx, x.c, "/api/v1/admin/gc", body, fn)
}

// maxEventLine bounds one event line (a finding names at most a few
// holders).
const maxEventLine = 1 << 20

func runMaintenance[S any](ctx context.Context, c *Client, path string, body any, fn func(wire.MaintenanceEvent[S])) (S, error) {
	var zero S
	req, err := jsonRequest(http.MethodPost, path, body)
	if err != nil {
		return zero, err
	}
	req.header.Set("Accept", "application/x-ndjson")
	resp, err := c.do(ctx, req)
	if err != nil {
		return zero, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(&lineLimiter{r: resp.Body, max: maxEventLine})
	for {
		var ev wire.MaintenanceEvent[S]
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return zero, fmt.Errorf("POST %s: the stream ended before the summary", path)
			}
			return zero, fmt.Errorf("POST %s: reading the stream: %w", path, err)
		}
		if fn != nil {
			fn(ev)
		}
		switch ev.Type {
		case "summary":
			if ev.Summary == nil {
				return zero, fmt.Errorf("POST %s: a summary line without a summary", path)
			}
			return *ev.Summary, nil
		case "error":
			e := &Error{Status: resp.StatusCode}
			if ev.Error != nil {
				e.Code, e.Message = ev.Error.Code, ev.Error.Message
			}
			return zero, e
		}
	}
}

// lineLimiter fails a stream with a line longer than max bytes, so a
// broken server cannot make the decoder buffer without end.
type lineLimiter struct {
	r   io.Reader
	max int
	run int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.run = 0
			continue
		}
		l.run++
		if l.run > l.max {
			return 0, fmt.Errorf("a line of more than %d bytes", l.max)
		}
	}
	return n, err
}
