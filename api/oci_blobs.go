package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
)

// ociGetBlob serves GET and HEAD /v2/NAME/blobs/DIGEST, with Range.
func (s *Server) ociGetBlob(c *gin.Context, r ociRoute) {
	d := digest.Digest(r.Ref)
	content, err := s.dml.Registry.OpenBlob(c.Request.Context(), principal(c), r.Name, d)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Writer.Header().Set("Content-Type", "application/octet-stream")
	s.serveStored(c, content.Reader)
}

// ociDeleteBlob serves DELETE /v2/NAME/blobs/DIGEST.
func (s *Server) ociDeleteBlob(c *gin.Context, r ociRoute) {
	if err := s.dml.Registry.DeleteBlob(c.Request.Context(), principal(c), r.Name, digest.Digest(r.Ref)); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusAccepted)
}
