package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/gin-gonic/gin"
)

// routeKeyless serves the trusted roots and identities keyless evidence
// is verified against.
func (s *Server) routeKeyless(g *gin.RouterGroup) {
	g.GET("/trust/roots", s.listTrustedRoots)
	g.GET("/trust/roots/:id", s.getTrustedRoot)
	g.PUT("/trust/roots/:id", s.putTrustedRoot)
	g.POST("/trust/roots/:id/revoke", s.revokeTrustedRoot)
	g.GET("/trust/identities", s.listIdentities)
	g.POST("/trust/identities", s.addIdentity)
	g.POST("/trust/identities/:id/revoke", s.revokeIdentity)
}

// putTrustedRoot installs the body, a trusted_root.json: 201 for a new
// ID, 200 for a new version or the same document again.
func (s *Server) putTrustedRoot(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, trust.MaxRootSize))
	if err != nil {
		s.writeError(c, fmt.Errorf("%w: %w", errBodyTooLarge, err), nil)
		return
	}
	r, installed, err := s.dml.Trust.PutTrustedRoot(c.Request.Context(), principal(c), c.Param("id"), body)
	if err != nil {
		s.writeError(c, err, map[string]string{"id": c.Param("id")})
		return
	}
	out, err := toTrustedRoot(r, true)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	status := http.StatusOK
	if installed && r.Version == 1 {
		status = http.StatusCreated
	}
	c.JSON(status, out)
}

func (s *Server) getTrustedRoot(c *gin.Context) {
	r, err := s.dml.Trust.TrustedRoot(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out, err := toTrustedRoot(r, true)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) listTrustedRoots(c *gin.Context) {
	roots, err := s.dml.Trust.TrustedRoots(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.TrustedRootList{Roots: make([]wire.TrustedRoot, len(roots))}
	for i, r := range roots {
		if out.Roots[i], err = toTrustedRoot(r, false); err != nil {
			s.writeError(c, err, nil)
			return
		}
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) revokeTrustedRoot(c *gin.Context) {
	if err := s.dml.Trust.RevokeTrustedRoot(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}

// toTrustedRoot is the wire form of a root, with its document or not.
func toTrustedRoot(r trust.TrustedRoot, withDocument bool) (wire.TrustedRoot, error) {
	sum, err := r.Summary()
	if err != nil {
		return wire.TrustedRoot{}, err
	}
	out := wire.TrustedRoot{
		ID: r.ID, Version: r.Version, SHA256: r.Digest(),
		Summary: wire.RootSummary{
			CertificateAuthorities: toRootAuthorities(sum.CertificateAuthorities),
			TimestampAuthorities:   toRootAuthorities(sum.TimestampAuthorities),
			RekorLogs:              toRootLogs(sum.RekorLogs),
			CTLogs:                 toRootLogs(sum.CTLogs),
		},
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, RevokedAt: r.RevokedAt, RevokedBy: r.RevokedBy,
	}
	if withDocument {
		out.Document = r.Document
	}
	return out, nil
}

// optionalTime is nil for the zero time: no bound.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toRootAuthorities(as []trust.AuthoritySummary) []wire.RootAuthority {
	out := make([]wire.RootAuthority, len(as))
	for i, a := range as {
		out[i] = wire.RootAuthority{URI: a.URI, Subject: a.Subject, ValidFrom: optionalTime(a.ValidFrom), ValidUntil: optionalTime(a.ValidUntil)}
	}
	return out
}

func toRootLogs(ls []trust.LogSummary) []wire.RootLog {
	out := make([]wire.RootLog, len(ls))
	for i, l := range ls {
		out[i] = wire.RootLog{ID: l.ID, BaseURL: l.BaseURL, ValidFrom: optionalTime(l.ValidFrom), ValidUntil: optionalTime(l.ValidUntil)}
	}
	return out
}

func (s *Server) addIdentity(c *gin.Context) {
	var req wire.SignerIdentityRequest
	if !s.bindJSON(c, &req) {
		return
	}
	id, err := s.dml.Trust.AddIdentity(c.Request.Context(), principal(c), trust.Identity{
		ID: req.ID, Root: req.Root, Issuer: req.Issuer, Subject: req.Subject, SubjectRegexp: req.SubjectRegexp, Claims: req.Claims,
	})
	if err != nil {
		if errors.Is(err, errdef.ErrConflict) && !errors.Is(err, trust.ErrRootRevoked) {
			err = meaning(errIdentityExists, err)
		}
		s.writeError(c, err, map[string]string{"id": req.ID, "root": req.Root})
		return
	}
	c.JSON(http.StatusCreated, toIdentity(id))
}

func toIdentity(id trust.Identity) wire.SignerIdentity {
	return wire.SignerIdentity{
		ID: id.ID, Root: id.Root, Issuer: id.Issuer, Subject: id.Subject, SubjectRegexp: id.SubjectRegexp, Claims: id.Claims,
		CreatedBy: id.CreatedBy, CreatedAt: id.CreatedAt, RevokedAt: id.RevokedAt, RevokedBy: id.RevokedBy,
	}
}

func (s *Server) listIdentities(c *gin.Context) {
	ids, err := s.dml.Trust.Identities(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.SignerIdentityList{Identities: make([]wire.SignerIdentity, len(ids))}
	for i, id := range ids {
		out.Identities[i] = toIdentity(id)
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) revokeIdentity(c *gin.Context) {
	if err := s.dml.Trust.RevokeIdentity(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}
