package api

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// Request bodies are read at a minimum rate, not under a total deadline.
//
// A client that sends its headers and then nothing, or a trickle, holds a
// connection and a goroutine for as long as it likes. http.Server's
// ReadTimeout cannot stop it without also failing honest uploads of large
// artifacts over slow links: it is one deadline for the whole request, and
// when it expires during a long response it cancels the request's
// context. So each body is read under a connection read deadline that
// moves with progress: the body has a budget of BodyTimeout of time spent
// waiting for the client, spent only while a Read waits (a server busy
// writing what it read, to S3 say, does not spend it) and refilled each
// time BodyMinBytes more bytes have arrived. A body slower than that fails
// with errBodyTimeout (408) and its connection is closed.
//
// The middleware also sets a first deadline when the request arrives, so
// that a body nobody reads (a request refused, or a handler that takes no
// body) cannot hold the connection either: net/http reads up to 256 KiB of
// an unread body after the handler, to reuse the connection.

// Defaults of Config.BodyTimeout and Config.BodyMinBytes: at least 16 KiB
// in every 30 s, about 550 bytes a second.
const (
	DefaultBodyTimeout  = 30 * time.Second
	DefaultBodyMinBytes = 16 << 10
)

var (
	// errBodyTimeout: the body arrived slower than the minimum rate.
	errBodyTimeout = errors.New("request body too slow")
	// errClientGone: the client closed the connection before the end of
	// the body. Nobody is left to answer; the status (499) is for the
	// metrics and the log.
	errClientGone = errors.New("client closed the request")
)

// StatusClientClosedRequest is the status a request ended by its client
// is counted and logged with: nginx's 499, as no standard status says it.
const StatusClientClosedRequest = 499

const bodyKey = "dml.body"

// guardBody puts every request body under the minimum-rate deadline.
func (s *Server) guardBody(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		c.Next()
		return
	}
	rc := http.NewResponseController(c.Writer)
	if err := rc.SetReadDeadline(time.Now().Add(s.bodyTimeout)); err != nil {
		// Not a net/http connection (a test recorder): nothing to guard.
		c.Next()
		return
	}
	orig := r.Body
	b := &guardedBody{body: orig, rc: rc, window: s.bodyTimeout, minBytes: s.bodyMinBytes, budget: s.bodyTimeout}
	r.Body = b
	c.Set(bodyKey, b)
	c.Next()
	// After the handler net/http looks at the request's own body to tell
	// whether it was closed early with bytes unread; only then does it
	// half-close and linger (closeWriteAndWait) so that the client reads
	// the answer before the connection is reset under its unsent body.
	r.Body = orig
}

// guardedBody is a request body read at a minimum rate.
type guardedBody struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	window   time.Duration
	minBytes int64
	budget   time.Duration // waiting time left before minBytes more must have arrived
	got      int64         // bytes since the budget was last refilled
	// done: EOF, an error, or refused; the deadline is no longer the
	// body's to move.
	done atomic.Bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return b.body.Read(p)
	}
	start := time.Now()
	_ = b.rc.SetReadDeadline(start.Add(b.budget))
	n, err := b.body.Read(p)
	b.budget -= time.Since(start)
	if b.got += int64(n); b.got >= b.minBytes {
		b.got, b.budget = 0, b.window
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		// The whole body is in: lift the deadline, or the server's wait
		// for the next request would hit it and cancel this one.
		if !b.done.Swap(true) {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.done.Store(true)
		err = fmt.Errorf("%w: fewer than %d bytes arrived in %s", errBodyTimeout, b.minBytes, b.window)
	case errors.Is(err, io.ErrUnexpectedEOF) || isNetError(err):
		b.done.Store(true)
		err = fmt.Errorf("%w: %w", errClientGone, err)
	default:
		// What net/http's body reader refuses itself: a chunked body that
		// is not chunked, bad trailers. The client's doing.
		b.done.Store(true)
		err = fmt.Errorf("%w: request body: %w", errMalformed, err)
	}
	return n, err
}

func (b *guardedBody) Close() error { return b.body.Close() }

func isNetError(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// refuseUnreadBody makes an answer sent before the body was read the last
// one on its connection: "Connection: close" keeps net/http from reading
// (up to 256 KiB of) the body before writing the answer, so the client
// gets its answer without sending the rest. After the answer net/http
// still drains a small unread body (up to 256 KiB) so that closing does
// not reset the connection under an answer the client has not read yet;
// that drain may wait at most refusedBodyGrace, then the connection is
// closed. A larger unread body is not drained: the server half-closes
// and lingers instead.
func refuseUnreadBody(c *gin.Context) {
	v, ok := c.Get(bodyKey)
	b, _ := v.(*guardedBody)
	if !ok || b == nil || b.done.Swap(true) {
		return
	}
	c.Header("Connection", "close")
	_ = b.rc.SetReadDeadline(time.Now().Add(min(b.window, refusedBodyGrace)))
}

// refusedBodyGrace bounds the drain of a refused request's small body.
const refusedBodyGrace = 2 * time.Second
