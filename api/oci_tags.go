package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ociListTags serves GET /v2/NAME/tags/list[?n=N][&last=TAG]. Without n
// a page is names.MaxPageSize tags; a page that is not the last
// carries a Link header to the next.
func (s *Server) ociListTags(c *gin.Context, r ociRoute) {
	n := names.MaxPageSize
	if v, ok := c.GetQuery("n"); ok {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			s.writeError(c, fmt.Errorf("%w: n is %.40q, not an integer", registry.ErrPaginationNumberInvalid, v), map[string]string{"n": truncate(v, 40)})
			return
		}
	}
	list, err := s.dml.Registry.Tags(c.Request.Context(), r.Name, c.Query("last"), n)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	if list.More && len(list.Tags) > 0 {
		q := url.Values{"n": {strconv.Itoa(len(list.Tags))}, "last": {list.Tags[len(list.Tags)-1]}}
		c.Header("Link", fmt.Sprintf(`</v2/%s/tags/list?%s>; rel="next"`, r.Name, q.Encode()))
	}
	c.JSON(http.StatusOK, gin.H{"name": r.Name, "tags": list.Tags})
}

// truncate shortens s to at most n bytes, for echoing client input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ociListReferrers serves GET /v2/NAME/referrers/DIGEST[?artifactType=T]:
// an image index of the manifests whose subject is DIGEST that the caller
// may pull (empty when there are none, or when the subject is unknown).
func (s *Server) ociListReferrers(c *gin.Context, r ociRoute) {
	artifactType := c.Query("artifactType")
	list, err := s.dml.Registry.Referrers(c.Request.Context(), principal(c), r.Name, digest.Digest(r.Ref), artifactType)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: make([]ocispec.Descriptor, 0, len(list)),
	}
	for _, m := range list {
		index.Manifests = append(index.Manifests, ocispec.Descriptor{
			MediaType:    m.MediaType,
			Digest:       m.Digest,
			Size:         m.Size,
			ArtifactType: m.ArtifactType,
			Annotations:  m.Annotations,
		})
	}
	if artifactType != "" {
		c.Header("OCI-Filters-Applied", "artifactType")
	}
	body, err := json.Marshal(index)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Data(http.StatusOK, ocispec.MediaTypeImageIndex, body)
}
