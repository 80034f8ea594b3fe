package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dmlproject/dml/releases/registry"
	"github.com/gin-gonic/gin"
	"github.com/opencontainers/go-digest"
)

// ociStartUpload serves POST /v2/NAME/blobs/uploads/: a cross-repository
// mount (?mount=DIGEST[&from=REPO]), a whole blob (?digest=DIGEST with the
// body), or a new upload session. A mount that cannot be made starts a
// session instead (202), as the spec asks.
func (s *Server) ociStartUpload(c *gin.Context, r ociRoute) {
	ctx, p := c.Request.Context(), principal(c)
	if mount := c.Query("mount"); mount != "" {
		l, mounted, err := s.dml.Registry.MountBlob(ctx, p, r.Name, c.Query("from"), digest.Digest(mount))
		if err != nil {
			s.writeError(c, err, nil)
			return
		}
		if mounted {
			blobCreated(c, l)
			return
		}
	} else if d := c.Query("digest"); d != "" {
		l, err := s.dml.Registry.PushBlob(ctx, p, r.Name, digest.Digest(d), c.Request.Body, c.Request.ContentLength)
		if err != nil {
			s.writeError(c, err, nil)
			return
		}
		blobCreated(c, l)
		return
	}
	u, err := s.dml.Registry.StartUpload(ctx, p, r.Name)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	uploadState(c, u)
	c.Status(http.StatusAccepted)
}

// ociUploadStatus serves GET /v2/NAME/blobs/uploads/ID.
func (s *Server) ociUploadStatus(c *gin.Context, r ociRoute) {
	u, err := s.dml.Registry.UploadStatus(c.Request.Context(), principal(c), r.Name, r.Ref)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	uploadState(c, u)
	c.Status(http.StatusNoContent)
}

// ociPatchUpload serves PATCH /v2/NAME/blobs/uploads/ID: a chunk, with a
// Content-Range, or a stream without one. An out-of-order chunk is 416,
// with the upload's state so the client can resume.
func (s *Server) ociPatchUpload(c *gin.Context, r ociRoute) {
	rng, err := contentRange(c)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	u, err := s.dml.Registry.AppendUpload(c.Request.Context(), principal(c), r.Name, r.Ref, c.Request.Body, rng, c.Request.ContentLength)
	if u.ID != "" {
		uploadState(c, u)
	}
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusAccepted)
}

// ociCompleteUpload serves PUT /v2/NAME/blobs/uploads/ID?digest=DIGEST,
// with the last chunk as body (possibly empty).
func (s *Server) ociCompleteUpload(c *gin.Context, r ociRoute) {
	d := c.Query("digest")
	if d == "" {
		s.writeError(c, fmt.Errorf("%w: completing an upload needs ?digest=", errDigestParam), nil)
		return
	}
	rng, err := contentRange(c)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	l, err := s.dml.Registry.CompleteUpload(c.Request.Context(), principal(c), r.Name, r.Ref, digest.Digest(d), c.Request.Body, rng, c.Request.ContentLength)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	blobCreated(c, l)
}

// ociCancelUpload serves DELETE /v2/NAME/blobs/uploads/ID.
func (s *Server) ociCancelUpload(c *gin.Context, r ociRoute) {
	if err := s.dml.Registry.CancelUpload(c.Request.Context(), principal(c), r.Name, r.Ref); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}

// blobCreated answers a blob that is now in the repository.
func blobCreated(c *gin.Context, l registry.BlobLink) {
	c.Header("Location", "/v2/"+l.Repository+"/blobs/"+l.Digest.String())
	c.Header("Docker-Content-Digest", l.Digest.String())
	c.Status(http.StatusCreated)
}

// uploadState sets the headers that say where an upload stands. Range is
// inclusive, "0-0" before the first byte (as the reference registry says).
func uploadState(c *gin.Context, u registry.UploadSession) {
	c.Header("Location", "/v2/"+u.Repository+"/blobs/uploads/"+u.ID)
	c.Header("Docker-Upload-UUID", u.ID)
	c.Header("Range", fmt.Sprintf("0-%d", max(u.Offset-1, 0)))
}

// contentRange parses a chunk's Content-Range, "START-END" (inclusive; a
// "bytes " prefix is tolerated); nil when there is none. A header that is
// not such a range is a bad request (BLOB_UPLOAD_INVALID), not an
// out-of-order chunk: resuming from the upload's offset would not help.
func contentRange(c *gin.Context) (*registry.ChunkRange, error) {
	return parseContentRange(c.GetHeader("Content-Range"))
}

// parseContentRange is contentRange on the header's value.
func parseContentRange(header string) (*registry.ChunkRange, error) {
	h := strings.TrimSpace(header)
	if h == "" {
		return nil, nil
	}
	h = strings.TrimPrefix(h, "bytes ")
	h, length, hasLength := strings.Cut(h, "/")
	start, end, ok := strings.Cut(h, "-")
	a, okA := decimal(start)
	b, okB := decimal(end)
	if !ok || !okA || !okB || b < a || (hasLength && length != "*" && !isDigits(length)) {
		return nil, fmt.Errorf("%w: Content-Range %.64q is not START-END", registry.ErrUploadInvalid, header)
	}
	return &registry.ChunkRange{Start: a, End: b}, nil
}

// decimal parses digits only: strconv.ParseInt alone would take "+5".
func decimal(s string) (int64, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
