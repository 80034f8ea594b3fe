package api

import (
	"fmt"
	"net/http"

	"github.com/dmlproject/dml/store"
	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
)

// ociGetBlob serves GET and HEAD /v2/NAME/blobs/DIGEST, with Range.
func (s *Server) ociGetBlob(c *gin.Context, r ociRoute) {
	d := digest.Digest(r.Ref)
	content, err := s.svc.OpenBlob(c.Request.Context(), principal(c), r.Name, d)
	if err != nil {
		s.writeOCIError(c, err, nil)
		return
	}
	defer content.Reader.Close()
	h := c.Writer.Header()
	h.Set("Content-Type", "application/octet-stream")
	s.serveOCIContent(c, content.Digest, content.Size, content.Reader)
}

// serveOCIContent answers a GET or HEAD of content whose Content-Type is
// set: http.ServeContent handles Range, HEAD and Content-Length; its own
// plain-text errors are replaced by OCI errors.
func (s *Server) serveOCIContent(c *gin.Context, d digest.Digest, size int64, rs *store.ReadSeeker) {
	h := c.Writer.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	w := &serveContentWriter{ResponseWriter: c.Writer}
	serveContent(w, c.Request, rs)
	switch w.failed {
	case 0:
	case http.StatusRequestedRangeNotSatisfiable:
		h.Del("Content-Type")
		s.writeOCIError(c, fmt.Errorf("%w: the requested range is outside the %d bytes of %s", store.ErrInvalidRange, size, d), map[string]int64{"size": size})
	default: // 412: a failed If-Match or If-Unmodified-Since
		h.Del("Content-Type")
		c.AbortWithStatus(w.failed)
	}
}

// ociDeleteBlob serves DELETE /v2/NAME/blobs/DIGEST.
func (s *Server) ociDeleteBlob(c *gin.Context, r ociRoute) {
	if err := s.svc.DeleteBlob(c.Request.Context(), principal(c), r.Name, digest.Digest(r.Ref)); err != nil {
		s.writeOCIError(c, err, nil)
		return
	}
	c.Status(http.StatusAccepted)
}
