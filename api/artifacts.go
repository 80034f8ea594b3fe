package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
)

// Artifact names contain slashes (payments/api), which gin parameters
// cannot hold, so every route under /artifacts/ is one catch-all that
// artifactPath splits: NAME/versions/VERSION[/ACTION].
func (s *Server) routeArtifacts(g *gin.RouterGroup) {
	g.GET("/artifacts", s.listArtifacts)
	g.GET("/artifacts/*path", s.dispatchArtifact)
	g.HEAD("/artifacts/*path", s.dispatchArtifact)
	g.PUT("/artifacts/*path", s.dispatchArtifact)
	g.POST("/artifacts/*path", s.dispatchArtifact)
}

// artifactRef is a parsed /artifacts/ path.
type artifactRef struct {
	Name, Version, Action string
	// Item is the evidence digest in .../evidence/{digest}.
	Item string
}

// artifactActions are the sub-resources of a version.
var artifactActions = map[string]bool{"content": true, "signatures": true, "attestations": true, "evidence": true, "retire": true, "provenance": true}

// parseArtifactPath splits "/payments/api/versions/1.4.2/content" and
// ".../versions/1.4.2/evidence/sha256:…". The version and action are taken
// from the end, so a name may itself contain a "versions" component.
func parseArtifactPath(p string) (artifactRef, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	n := len(parts)
	// NAME/versions/VERSION first: a path that ends so is the version
	// itself, whatever words VERSION or NAME hold (a:content is
	// a/versions/content; b/versions:evidence is
	// b/versions/versions/evidence). Read with an action, the component
	// before the action would be a version named "versions", which
	// names.ValidateVersion refuses, so no path reads two ways.
	if n >= 3 && parts[n-2] == "versions" {
		return artifactRef{Name: strings.Join(parts[:n-2], "/"), Version: parts[n-1]}, true
	}
	if n >= 5 && parts[n-4] == "versions" && parts[n-2] == "evidence" {
		return artifactRef{Name: strings.Join(parts[:n-4], "/"), Version: parts[n-3], Action: "evidence", Item: parts[n-1]}, true
	}
	if n >= 4 && parts[n-3] == "versions" && artifactActions[parts[n-1]] {
		return artifactRef{Name: strings.Join(parts[:n-3], "/"), Version: parts[n-2], Action: parts[n-1]}, true
	}
	return artifactRef{}, false
}

// suffix is the sub-route below /versions/{version}: "", "/content",
// "/evidence/{digest}"...
func (r artifactRef) suffix() string {
	switch {
	case r.Item != "":
		return "/" + r.Action + "/{digest}"
	case r.Action != "":
		return "/" + r.Action
	}
	return ""
}

type artifactHandler func(*gin.Context, artifactRef)

// artifactRoutes are the sub-routes of /artifacts/*path, by method and
// suffix; each has a row in the access matrix (authz.go).
func (s *Server) artifactRoutes() map[string]artifactHandler {
	return map[string]artifactHandler{
		"PUT ":                    s.pushArtifact,
		"GET ":                    s.getArtifact,
		"HEAD ":                   s.getArtifact,
		"GET /content":            s.getContent,
		"HEAD /content":           s.getContent,
		"POST /signatures":        s.addSignature,
		"POST /attestations":      s.addAttestation,
		"GET /evidence":           s.getEvidence,
		"GET /evidence/{digest}":  s.getEvidence,
		"HEAD /evidence/{digest}": s.getEvidence,
		"POST /retire":            s.retireArtifact,
		"GET /provenance":         s.getProvenance,
	}
}

func (s *Server) dispatchArtifact(c *gin.Context) {
	ref, ok := parseArtifactPath(c.Param("path"))
	if !ok {
		s.writeError(c, errNoRoute, map[string]string{"path": c.Request.URL.Path})
		return
	}
	h, ok := s.artifactRoutes()[c.Request.Method+" "+ref.suffix()]
	if !ok {
		s.writeError(c, methodNotAllowed(c), nil)
		return
	}
	h(c, ref)
}

// toArtifact is the wire form of an artifact. Admission is always sent:
// before the first decision it holds the state alone.
func toArtifact(a catalog.Artifact) wire.Artifact {
	adm := &wire.Admission{State: string(a.State), Unmet: []string{}}
	if d := a.Admission; d != nil {
		adm.Reason, adm.Rule, adm.PolicyVersion, adm.Evidence = d.Reason, d.Rule, d.PolicyVersion, d.Evidence
		if d.Unmet != nil {
			adm.Unmet = d.Unmet
		}
		if len(d.Receipt) > 0 {
			adm.Receipt = d.Receipt
		}
		if !d.DecidedAt.IsZero() {
			t := d.DecidedAt
			adm.DecidedAt = &t
		}
	}
	return wire.Artifact{
		Name: a.Name, Version: a.Version, Digest: a.Digest, Size: a.Size,
		MediaType: a.MediaType, State: string(a.State), CreatedBy: a.CreatedBy, CreatedAt: a.CreatedAt,
		RetiredAt: a.RetiredAt, RetiredBy: a.RetiredBy, Admission: adm,
	}
}

func (s *Server) pushArtifact(c *gin.Context, ref artifactRef) {
	var d digest.Digest
	if sum := c.GetHeader("X-Checksum-Sha256"); sum != "" {
		sum = strings.ToLower(strings.TrimSpace(sum))
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			s.writeError(c, fmt.Errorf("%w: X-Checksum-Sha256 must be 64 hex characters", errDigestHeader), nil)
			return
		}
		d = digest.NewDigestFromEncoded(digest.SHA256, sum)
	}
	a, created, err := s.dml.Catalog.Push(c.Request.Context(), principal(c), catalog.PushRequest{
		Name:      ref.Name,
		Version:   ref.Version,
		MediaType: c.GetHeader("Content-Type"),
		Digest:    d,
		Size:      c.Request.ContentLength,
		Body:      c.Request.Body,
	})
	if err != nil {
		var detail any
		if errors.Is(err, catalog.ErrVersionExists) {
			detail = map[string]string{"digest": a.Digest.String()}
		}
		s.writeError(c, err, detail)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Header("Location", "/api/v1/artifacts/"+a.Name+"/versions/"+a.Version)
	}
	c.JSON(status, toArtifact(a))
}

func (s *Server) getArtifact(c *gin.Context, ref artifactRef) {
	a, err := s.dml.Catalog.Artifact(c.Request.Context(), ref.Name, ref.Version)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toArtifact(a))
}

func (s *Server) getContent(c *gin.Context, ref artifactRef) {
	content, err := s.dml.Catalog.OpenContent(c.Request.Context(), principal(c), ref.Name, ref.Version)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", content.Artifact.MediaType)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	s.serveStored(c, content.Reader)
}

func (s *Server) listArtifacts(c *gin.Context) {
	f := catalog.ArtifactFilter{
		Name:   c.Query("name"),
		State:  catalog.ArtifactState(c.Query("state")),
		Cursor: c.Query("cursor"),
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			s.writeError(c, fmt.Errorf("%w: limit must be a positive integer", errdef.ErrInvalidInput), nil)
			return
		}
		f.Limit = n
	}
	list, next, err := s.dml.Catalog.Artifacts(c.Request.Context(), f)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := make([]wire.Artifact, len(list))
	for i, a := range list {
		out[i] = toArtifact(a)
	}
	c.JSON(http.StatusOK, wire.ArtifactPage{Artifacts: out, NextCursor: next})
}
