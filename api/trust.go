package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

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
	var req trust.AddTrustKeyRequest
	if !s.bindJSON(c, &req) {
		return
	}
	k, err := s.dml.Trust.AddTrustKey(c.Request.Context(), principal(c), req)
	if err != nil {
		if errors.Is(err, errdef.ErrConflict) {
			s.writeError(c, meaning(errKeyExists, err), map[string]string{"id": req.ID})
			return
		}
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusCreated, k)
}

func (s *Server) listTrustKeys(c *gin.Context) {
	keys, err := s.dml.Trust.TrustKeys(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	if keys == nil {
		keys = []trust.TrustKey{}
	}
	c.JSON(http.StatusOK, gin.H{"keys": keys})
}

func (s *Server) revokeTrustKey(c *gin.Context) {
	if err := s.dml.Trust.RevokeTrustKey(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}

// policyJSON is the wire form of the current trust policy.
type policyJSON struct {
	Version   int64           `json:"version"`
	Policy    json.RawMessage `json:"policy"`
	CreatedBy string          `json:"createdBy"`
	CreatedAt any             `json:"createdAt"`
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
	c.JSON(http.StatusOK, policyJSON{Version: pv.Version, Policy: pv.Document, CreatedBy: pv.CreatedBy, CreatedAt: pv.CreatedAt})
}

func (s *Server) getTrustPolicy(c *gin.Context) {
	pv, err := s.dml.Trust.TrustPolicy(c.Request.Context())
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, policyJSON{Version: pv.Version, Policy: pv.Document, CreatedBy: pv.CreatedBy, CreatedAt: pv.CreatedAt})
}
