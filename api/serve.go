package api

import (
	"fmt"
	"io"
	"net/http"

	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/store"
	"github.com/gin-gonic/gin"
)

// serveStored answers a GET or HEAD with the stored bytes of one blob; it
// is how every endpoint that serves stored bytes answers (REST content and
// evidence, the sealed release manifest, /v2/ blobs and manifests). The
// caller has set Content-Type and its own headers. It sets the digest
// headers and nosniff, and lets http.ServeContent answer Range, If-Range,
// If-None-Match and HEAD (through serveContent, ranges.go).
//
// The bytes are verified as they stream (blobs.BlobReader). A Range
// request of a blob not verified since its backend object was last
// written waits for a verification of the whole blob. When the bytes turn
// out wrong before anything was sent, the answer is 500 BLOB_CORRUPT; when
// part of the body is already out, the connection is broken before the
// last byte, so that every HTTP client sees a failed transfer (a short
// body against its Content-Length, or a reset HTTP/2 stream), never a
// complete wrong one.
func (s *Server) serveStored(c *gin.Context, b *blobs.BlobReader) {
	defer b.Close()
	h := c.Writer.Header()
	// Stored bytes are whatever their pusher sent, with the media type the
	// pusher named: a browser must never sniff them into a page of this
	// site.
	h.Set("X-Content-Type-Options", "nosniff")
	d := b.Digest().String()
	h.Set("Docker-Content-Digest", d)
	h.Set("ETag", `"`+d+`"`)
	// An error answer replaces the content: what describes it goes.
	fail := func(err error, detail any) {
		clearContentHeaders(h)
		s.writeError(c, err, detail)
	}
	if c.Request.Method == http.MethodGet && c.GetHeader("Range") != "" {
		if err := b.VerifyForRange(); err != nil {
			fail(err, nil)
			return
		}
	}
	w := &serveContentWriter{ResponseWriter: c.Writer}
	err := serveContent(w, c.Request, b)
	if err == nil {
		err = b.Err()
	}
	if err != nil && w.failed == 0 {
		if !c.Writer.Written() {
			// gin sends the status line with the first byte of the body:
			// nothing is out yet, so the error can still be answered.
			fail(err, nil)
			return
		}
		s.log.Warn("transfer aborted: reading the stored bytes failed after the response began", "method", c.Request.Method, "path", c.Request.URL.Path, "digest", d, "err", err)
		// Send what was written, then break the connection: the client's
		// body ends short of its Content-Length and reading it fails.
		c.Writer.Flush()
		panic(http.ErrAbortHandler)
	}
	switch w.failed {
	case 0:
	case http.StatusRequestedRangeNotSatisfiable:
		fail(fmt.Errorf("%w: the requested range is outside the %d bytes of %s", store.ErrInvalidRange, b.Size(), d), map[string]int64{"size": b.Size()})
	case http.StatusPreconditionFailed:
		fail(errPreconditionFailed, nil)
	default:
		fail(fmt.Errorf("serving %s: status %d", d, w.failed), nil)
	}
}

// clearContentHeaders removes what describes the content, before an error
// body replaces it.
func clearContentHeaders(h http.Header) {
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Range", "Content-Encoding", "ETag", "Docker-Content-Digest", "Accept-Ranges", "Last-Modified"} {
		h.Del(k)
	}
}

// serveContentWriter swallows the error responses http.ServeContent writes
// itself, so that serveStored can answer them in the API's error shape.
type serveContentWriter struct {
	gin.ResponseWriter
	failed int
}

func (w *serveContentWriter) WriteHeader(code int) {
	if code >= 400 {
		w.failed = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *serveContentWriter) Write(b []byte) (int, error) {
	if w.failed != 0 {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom is how http.ServeContent copies the content (io.CopyN finds
// it): the stored bytes are read, and a whole blob hashed, one large
// buffer ahead of the writes to the client, on another goroutine
// (store.Copy), instead of io.Copy's 32 KiB at a time with the hash and
// the socket taking turns. What the verification withholds is withheld
// the same way: the Read that fails delivers nothing.
func (w *serveContentWriter) ReadFrom(src io.Reader) (int64, error) {
	return store.Copy(writeOnly{w}, src, -1)
}

// writeOnly hides ReadFrom from the copy.
type writeOnly struct{ io.Writer }
