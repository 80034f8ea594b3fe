package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/signing"
	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
)

// toEvidence is the wire form of a piece of evidence.
func toEvidence(e catalog.Evidence) wire.Evidence {
	return wire.Evidence{
		Digest: e.Digest, Kind: string(e.Kind), Format: e.Format, MediaType: e.MediaType,
		Size: e.Size, KeyID: e.KeyID, PredicateType: e.PredicateType, Result: predicateResult(e),
		Keyless: toKeylessSigner(e.Keyless), CreatedBy: e.CreatedBy, CreatedAt: e.CreatedAt,
	}
}

func toKeylessSigner(k *signing.KeylessSigner) *wire.KeylessSigner {
	if k == nil {
		return nil
	}
	return &wire.KeylessSigner{Root: k.Root, Issuer: k.Issuer, Subject: k.Subject, Claims: k.Claims, LogIndex: k.LogIndex, IntegratedTime: k.IntegratedTime}
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
	c.JSON(http.StatusCreated, wire.EvidenceAdded{Artifact: toArtifact(a), Evidence: toEvidence(e)})
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
	out := make([]wire.Evidence, len(list))
	for i, e := range list {
		out[i] = toEvidence(e)
	}
	c.JSON(http.StatusOK, wire.EvidenceList{Evidence: out})
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
