package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/gin-gonic/gin"
)

func (s *Server) routeTrust(g *gin.RouterGroup) {
	g.GET("/keys/server", s.serverKey)
	g.GET("/trust/keys", s.listTrustKeys)
	g.GET("/trust/policy", s.getTrustPolicy)
	g.POST("/trust/keys", s.addTrustKey)
	g.POST("/trust/keys/:id/revoke", s.revokeTrustKey)
	g.PUT("/trust/policy", s.setTrustPolicy)
}

func (s *Server) serverKey(c *gin.Context) {
	c.Data(http.StatusOK, "application/x-pem-file", s.dml.ServerPublicKeyPEM())
}

func (s *Server) addTrustKey(c *gin.Context) {
	var req wire.TrustKeyRequest
	if !s.bindJSON(c, &req) {
		return
	}
	k, err := s.dml.Trust.AddTrustKey(c.Request.Context(), principal(c), trust.AddTrustKeyRequest{ID: req.ID, PublicKey: req.PublicKey, Comment: req.Comment})
	if err != nil {
		if errors.Is(err, errdef.ErrConflict) {
			s.writeError(c, meaning(errKeyExists, err), map[string]string{"id": req.ID})
			return
		}
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusCreated, toTrustKey(k))
}

// toTrustKey is the wire form of a trusted key.
func toTrustKey(k trust.TrustKey) wire.TrustKey {
	return wire.TrustKey{ID: k.ID, PublicKey: k.PublicKeyPEM, Algorithm: k.Algorithm, Comment: k.Comment,
		CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt, RevokedBy: k.RevokedBy}
}

func (s *Server) listTrustKeys(c *gin.Context) {
	keys, err := s.dml.Trust.TrustKeys(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := make([]wire.TrustKey, len(keys))
	for i, k := range keys {
		out[i] = toTrustKey(k)
	}
	c.JSON(http.StatusOK, wire.TrustKeyList{Keys: out})
}

func (s *Server) revokeTrustKey(c *gin.Context) {
	if err := s.dml.Trust.RevokeTrustKey(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}

// toTrustPolicy is the wire form of a trust policy version.
func toTrustPolicy(pv trust.PolicyVersion) wire.TrustPolicy {
	return wire.TrustPolicy{Version: pv.Version, Policy: pv.Document, CreatedBy: pv.CreatedBy, CreatedAt: pv.CreatedAt}
}

func (s *Server) setTrustPolicy(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
	if err != nil {
		s.writeError(c, fmt.Errorf("%w: %w", errBodyTooLarge, err), nil)
		return
	}
	pv, err := s.dml.Trust.SetTrustPolicy(c.Request.Context(), principal(c), body)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toTrustPolicy(pv))
}

func (s *Server) getTrustPolicy(c *gin.Context) {
	pv, err := s.dml.Trust.TrustPolicy(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toTrustPolicy(pv))
}
