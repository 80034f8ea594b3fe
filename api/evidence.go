package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
)

type evidenceJSON struct {
	Digest        string    `json:"digest"`
	Kind          string    `json:"kind"`
	Format        string    `json:"format"`
	MediaType     string    `json:"mediaType"`
	Size          int64     `json:"size"`
	KeyID         string    `json:"keyId"`
	PredicateType string    `json:"predicateType,omitempty"`
	Result        string    `json:"result,omitempty"`
	CreatedBy     string    `json:"createdBy"`
	CreatedAt     time.Time `json:"createdAt"`
}

func toEvidenceJSON(e catalog.Evidence) evidenceJSON {
	return evidenceJSON{
		Digest: e.Digest.String(), Kind: string(e.Kind), Format: e.Format, MediaType: e.MediaType,
		Size: e.Size, KeyID: e.KeyID, PredicateType: e.PredicateType, Result: predicateResult(e),
		CreatedBy: e.CreatedBy, CreatedAt: e.CreatedAt,
	}
}

func (s *Server) addSignature(c *gin.Context, ref artifactRef) {
	s.addEvidence(c, ref, catalog.EvidenceSignature)
}

func (s *Server) addAttestation(c *gin.Context, ref artifactRef) {
	s.addEvidence(c, ref, catalog.EvidenceAttestation)
}

func (s *Server) addEvidence(c *gin.Context, ref artifactRef, kind catalog.EvidenceKind) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, catalog.MaxEvidenceSize))
	if err != nil {
		s.writeError(c, fmt.Errorf("%w: evidence: %w", errBodyTooLarge, err), nil)
		return
	}
	e, a, err := s.dml.Catalog.AddEvidence(c.Request.Context(), principal(c), catalog.EvidenceRequest{
		Name: ref.Name, Version: ref.Version, Kind: kind, Body: body,
	})
	if err != nil {
		s.writeError(c, err, verificationDetail(err))
		return
	}
	c.JSON(http.StatusCreated, gin.H{"evidence": toEvidenceJSON(e), "artifact": toArtifactJSON(a)})
}

// getEvidence lists evidence, or serves one piece's bytes when the path
// names its digest.
func (s *Server) getEvidence(c *gin.Context, ref artifactRef) {
	if ref.Item != "" {
		d, err := digest.Parse(ref.Item)
		if err != nil {
			s.writeError(c, fmt.Errorf("%w: %q: %v", errDigestHeader, ref.Item, err), nil)
			return
		}
		e, r, err := s.dml.Catalog.OpenEvidence(c.Request.Context(), principal(c), ref.Name, ref.Version, d)
		if err != nil {
			s.writeError(c, err, nil)
			return
		}
		c.Header("Content-Type", e.MediaType)
		s.serveStored(c, r)
		return
	}
	if c.Request.Method == http.MethodHead {
		s.writeError(c, meaning(errMethodNotAllowed, errors.New("HEAD is allowed on one piece of evidence, not on the list")), nil)
		return
	}
	list, err := s.dml.Catalog.ListEvidence(c.Request.Context(), ref.Name, ref.Version)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := make([]evidenceJSON, len(list))
	for i, e := range list {
		out[i] = toEvidenceJSON(e)
	}
	c.JSON(http.StatusOK, gin.H{"evidence": out})
}

// predicateResult pulls the test result out of a test-result predicate,
// so listings show PASSED/FAILED without the whole predicate.
func predicateResult(e catalog.Evidence) string {
	if len(e.Predicate) == 0 {
		return ""
	}
	var p struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal(e.Predicate, &p); err != nil {
		return ""
	}
	return p.Result
}
