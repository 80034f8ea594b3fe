package api

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/provenance"
	"github.com/gin-gonic/gin"
	"golang.org/x/mod/sumdb/tlog"
)

// maxAuditPage bounds one page of audit entries.
const maxAuditPage = 1_000_000

func (s *Server) routeAudit(g *gin.RouterGroup) {
	g.GET("/audit/key", s.auditKey)
	g.GET("/audit/checkpoint", s.auditCheckpoint)
	g.GET("/audit/entries", s.auditEntries)
	g.GET("/audit/proofs/inclusion", s.auditInclusion)
	g.GET("/audit/proofs/consistency", s.auditConsistency)
	g.GET("/audit/access", s.auditAccess)
}

func (s *Server) auditKey(c *gin.Context) {
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(s.dml.Audit.LogVerifierKey()+"\n"))
}

func (s *Server) auditCheckpoint(c *gin.Context) {
	msg, cp, err := s.dml.Audit.Checkpoint(c.Request.Context(), principal(c))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Header("X-Dml-Log-Size", strconv.FormatInt(cp.Size, 10))
	c.Data(http.StatusOK, "text/plain; charset=utf-8", msg)
}

func int64Query(c *gin.Context, name string, def int64) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s must be an integer", errdef.ErrInvalidInput, name)
	}
	return n, nil
}

// auditEntries streams records as newline-delimited canonical JSON, each
// line exactly the bytes hashed into the Merkle tree.
func (s *Server) auditEntries(c *gin.Context) {
	start, err := int64Query(c, "start", 0)
	if err == nil && start < 0 {
		err = fmt.Errorf("%w: start must not be negative", errdef.ErrInvalidInput)
	}
	var limit int64
	if err == nil {
		limit, err = int64Query(c, "limit", 1000)
	}
	if err == nil && (limit < 1 || limit > maxAuditPage) {
		err = fmt.Errorf("%w: limit must be between 1 and %d", errdef.ErrInvalidInput, maxAuditPage)
	}
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	p := principal(c)
	c.Header("Content-Type", "application/x-ndjson")
	w := bufio.NewWriterSize(c.Writer, 64<<10)
	started := false
	err = s.dml.Audit.AuditEntries(c.Request.Context(), p, start, limit, func(e audit.AuditEntry) error {
		if !started {
			c.Status(http.StatusOK)
			started = true
		}
		if _, err := w.Write(e.Record); err != nil {
			return err
		}
		return w.WriteByte('\n')
	})
	if err != nil && !started {
		s.writeError(c, err, nil)
		return
	}
	if err != nil {
		// Headers are gone; cut the stream so the client sees a short read.
		s.log.Warn("streaming audit entries", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !started {
		c.Status(http.StatusOK)
	}
	_ = w.Flush()
}

func hashesJSON(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

func (s *Server) auditInclusion(c *gin.Context) {
	index, err := int64Query(c, "index", -1)
	var size int64
	if err == nil {
		size, err = int64Query(c, "size", -1)
	}
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	proof, err := s.dml.Audit.InclusionProof(c.Request.Context(), principal(c), index, size)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, wire.InclusionProof{Index: index, Proof: hashesJSON(proof), Size: size})
}

func (s *Server) auditConsistency(c *gin.Context) {
	from, err := int64Query(c, "from", -1)
	var to int64
	if err == nil {
		to, err = int64Query(c, "to", -1)
	}
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	proof, err := s.dml.Audit.ConsistencyProof(c.Request.Context(), principal(c), from, to)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, wire.ConsistencyProof{From: from, Proof: hashesJSON(proof), To: to})
}

// getProvenance returns the provenance document of an artifact version.
func (s *Server) getProvenance(c *gin.Context, ref artifactRef) {
	src, err := s.dml.Provenance.Sources(c.Request.Context(), principal(c), ref.Name, ref.Version)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	doc, err := provenance.Build(src)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, doc)
}
