package api

import (
	"fmt"
	"io"
	"net/http"

	"github.com/dmlproject/dml/releases/registry"
	"github.com/gin-gonic/gin"
)

// ociGetManifest serves GET and HEAD /v2/NAME/manifests/REFERENCE. The
// manifest is served as pushed, with the media type it was pushed with,
// whatever the Accept header says: dml converts nothing.
func (s *Server) ociGetManifest(c *gin.Context, r ociRoute) {
	content, err := s.dml.Registry.OpenManifest(c.Request.Context(), principal(c), r.Name, r.Ref)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Writer.Header().Set("Content-Type", content.Manifest.MediaType)
	s.serveStored(c, content.Reader)
}

// ociPutManifest serves PUT /v2/NAME/manifests/REFERENCE. Manifests are
// small (at most registry.MaxManifestSize) and must be parsed whole, so
// this is the one /v2/ body that is read into memory.
func (s *Server) ociPutManifest(c *gin.Context, r ociRoute) {
	if c.Request.ContentLength > registry.MaxManifestSize {
		s.writeError(c, fmt.Errorf("%w: a manifest of %d bytes; the limit is %d", errBodyTooLarge, c.Request.ContentLength, registry.MaxManifestSize), nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, registry.MaxManifestSize))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	m, err := s.dml.Registry.PushManifest(c.Request.Context(), principal(c), registry.PushManifestRequest{
		Repository:  r.Name,
		Reference:   r.Ref,
		ContentType: c.GetHeader("Content-Type"),
		Body:        body,
		Tags:        c.QueryArray("tag"),
	})
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Header("Location", "/v2/"+m.Repository+"/manifests/"+m.Digest.String())
	c.Header("Docker-Content-Digest", m.Digest.String())
	if m.Subject != "" {
		c.Header("OCI-Subject", m.Subject.String())
	}
	for _, t := range c.QueryArray("tag") {
		c.Writer.Header().Add("OCI-Tag", t)
	}
	c.Status(http.StatusCreated)
}

// ociDeleteManifest serves DELETE /v2/NAME/manifests/REFERENCE: a tag, or
// a manifest with its tags.
func (s *Server) ociDeleteManifest(c *gin.Context, r ociRoute) {
	if err := s.dml.Registry.DeleteManifest(c.Request.Context(), principal(c), r.Name, r.Ref); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusAccepted)
}
