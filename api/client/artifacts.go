package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dmlproject/dml/api/wire"
	"github.com/opencontainers/go-digest"
)

// Artifacts is the client of artifact versions: push, pull, read, list,
// retire, and their provenance.
type Artifacts struct{ c *Client }

// PushRequest is one artifact upload.
type PushRequest struct {
	Name    string
	Version string
	// MediaType is sent as Content-Type; empty lets the server choose
	// (application/octet-stream).
	MediaType string
	// Digest, when set, must be a sha256 digest; the server verifies the
	// body against it while streaming and refuses a known conflict before
	// reading the body. Empty: the server computes it.
	Digest digest.Digest
	// Size is the exact body length, or -1 when unknown (the body is then
	// sent chunked). 0 sends an empty body.
	Size int64
	// Body is streamed, never buffered. It is not closed.
	Body io.Reader
}

// Push uploads an artifact version. created is false when the version
// already held exactly these bytes. A version holding other bytes is an
// *Error with code VERSION_EXISTS.
func (x Artifacts) Push(ctx context.Context, p PushRequest) (a wire.Artifact, created bool, err error) {
	path, err := artifactPath(p.Name, p.Version, "")
	if err != nil {
		return wire.Artifact{}, false, err
	}
	h := http.Header{}
	if p.Digest != "" {
		if err := p.Digest.Validate(); err != nil {
			return wire.Artifact{}, false, fmt.Errorf("push %s:%s: digest: %w", p.Name, p.Version, err)
		}
		if p.Digest.Algorithm() != digest.SHA256 {
			return wire.Artifact{}, false, fmt.Errorf("push %s:%s: digest %s: only sha256 can be sent as X-Checksum-Sha256", p.Name, p.Version, p.Digest)
		}
		h.Set("X-Checksum-Sha256", p.Digest.Encoded())
	}
	if p.MediaType != "" {
		h.Set("Content-Type", p.MediaType)
	}
	body := p.Body
	if body == nil {
		body = http.NoBody
	}
	status, err := x.c.call(ctx, request{method: http.MethodPut, path: path, header: h, body: body, size: p.Size}, &a, http.StatusCreated, http.StatusOK)
	if err != nil {
		return wire.Artifact{}, false, err
	}
	return a, status == http.StatusCreated, nil
}

// Get returns the metadata of one artifact version.
func (x Artifacts) Get(ctx context.Context, name, version string) (wire.Artifact, error) {
	path, err := artifactPath(name, version, "")
	if err != nil {
		return wire.Artifact{}, err
	}
	var a wire.Artifact
	_, err = x.c.call(ctx, request{method: http.MethodGet, path: path}, &a, http.StatusOK)
	return a, err
}

// Retire retires an artifact version (admins and release managers):
// nothing is deleted, but no new release may include it and open build
// gates refuse it. The answer carries RetiredAt and RetiredBy.
func (x Artifacts) Retire(ctx context.Context, name, version string) (wire.Artifact, error) {
	path, err := artifactPath(name, version, "retire")
	if err != nil {
		return wire.Artifact{}, err
	}
	var a wire.Artifact
	_, err = x.c.call(ctx, request{method: http.MethodPost, path: path}, &a, http.StatusOK)
	return a, err
}

// Provenance returns the provenance document of an artifact version, as
// the server wrote it (JSON; see releases/provenance).
func (x Artifacts) Provenance(ctx context.Context, name, version string) ([]byte, error) {
	path, err := artifactPath(name, version, "provenance")
	if err != nil {
		return nil, err
	}
	resp, err := x.c.do(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse))
}

// Content is a stream of an artifact's bytes. Close Body when done.
type Content struct {
	// Body yields the bytes. For a whole pull it is verified: it returns an
	// error instead of io.EOF when the bytes do not hash to Digest or are
	// not Size long.
	Body io.ReadCloser
	// Digest is the blob's digest, from the Docker-Content-Digest header.
	Digest digest.Digest
	// Size is the number of bytes Body yields (Content-Length).
	Size int64
	// MediaType is the artifact's media type (Content-Type).
	MediaType string
	// Offset is where Body starts in the blob: 0 for a whole pull.
	Offset int64
	// TotalSize is the size of the whole blob.
	TotalSize int64
}

// Pull opens an artifact's bytes. The body is verified against the digest
// and size the server announced; see Content.Body.
func (x Artifacts) Pull(ctx context.Context, name, version string) (*Content, error) {
	resp, err := x.openContent(ctx, name, version, "")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("pull %s:%s: unexpected status %s", name, version, resp.Status)
	}
	ct, err := contentFrom(resp)
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("pull %s:%s: %w", name, version, err)
	}
	if ct.Size < 0 {
		resp.Body.Close()
		return nil, fmt.Errorf("pull %s:%s: the server sent no Content-Length", name, version)
	}
	ct.TotalSize = ct.Size
	ct.Body = &verifyingBody{rc: resp.Body, want: ct.Digest, size: ct.Size, digester: ct.Digest.Algorithm().Digester()}
	return ct, nil
}

// PullRange opens length bytes of an artifact starting at offset (length
// < 0: to the end). A part of a blob cannot be checked against the blob's
// digest, so the body is not verified; the caller that assembles the
// whole blob must verify it.
func (x Artifacts) PullRange(ctx context.Context, name, version string, offset, length int64) (*Content, error) {
	if offset < 0 || length == 0 {
		return nil, fmt.Errorf("pull %s:%s: invalid range offset %d length %d", name, version, offset, length)
	}
	rng := fmt.Sprintf("bytes=%d-", offset)
	if length > 0 {
		rng += strconv.FormatInt(offset+length-1, 10)
	}
	resp, err := x.openContent(ctx, name, version, rng)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, fmt.Errorf("pull %s:%s: asked for %s, got %s instead of 206 Partial Content", name, version, rng, resp.Status)
	}
	ct, err := contentFrom(resp)
	if err == nil {
		ct.Offset, ct.TotalSize, err = parseContentRange(resp.Header.Get("Content-Range"))
	}
	if err == nil && ct.Offset != offset {
		err = fmt.Errorf("asked for %s, the server answered Content-Range %q", rng, resp.Header.Get("Content-Range"))
	}
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("pull %s:%s: %w", name, version, err)
	}
	ct.Body = resp.Body
	return ct, nil
}

func (x Artifacts) openContent(ctx context.Context, name, version, rng string) (*http.Response, error) {
	path, err := artifactPath(name, version, "content")
	if err != nil {
		return nil, err
	}
	h := http.Header{"Accept": {"*/*"}}
	if rng != "" {
		h.Set("Range", rng)
	}
	return x.c.do(ctx, request{method: http.MethodGet, path: path, header: h})
}

// contentFrom reads the headers every content answer carries.
func contentFrom(resp *http.Response) (*Content, error) {
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return nil, fmt.Errorf("Docker-Content-Digest %q: %w", resp.Header.Get("Docker-Content-Digest"), err)
	}
	if !d.Algorithm().Available() {
		return nil, fmt.Errorf("Docker-Content-Digest %s: unsupported algorithm", d)
	}
	return &Content{Digest: d, Size: resp.ContentLength, MediaType: resp.Header.Get("Content-Type")}, nil
}

// parseContentRange parses "bytes START-END/TOTAL".
func parseContentRange(s string) (start, total int64, err error) {
	spec, ok := strings.CutPrefix(s, "bytes ")
	rng, tot, ok2 := strings.Cut(spec, "/")
	from, _, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", s)
	}
	if start, err = strconv.ParseInt(from, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", s)
	}
	if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", s)
	}
	return start, total, nil
}

// verifyingBody hashes and counts a pulled body and returns an error
// instead of io.EOF when it does not match the announced digest and size.
type verifyingBody struct {
	rc       io.ReadCloser
	want     digest.Digest
	size     int64
	digester digest.Digester
	n        int64
	err      error
}

func (v *verifyingBody) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	if n > 0 {
		v.digester.Hash().Write(p[:n])
		v.n += int64(n)
	}
	switch {
	case v.n > v.size:
		v.err = fmt.Errorf("content longer than the announced %d bytes", v.size)
	case v.n == v.size:
		// Check on the read that delivers the last byte, not at EOF: a
		// caller that reads exactly Size bytes never asks for the EOF.
		if got := v.digester.Digest(); got != v.want {
			v.err = fmt.Errorf("content hashes to %s, the server announced %s", got, v.want)
		} else {
			v.err = io.EOF
		}
	case err == io.EOF:
		v.err = fmt.Errorf("content ended after %d of %d bytes: %w", v.n, v.size, io.ErrUnexpectedEOF)
	case err != nil:
		v.err = err
	}
	return n, v.err
}

func (v *verifyingBody) Close() error { return v.rc.Close() }

// ArtifactFilter selects artifacts to list. Zero fields select everything.
type ArtifactFilter struct {
	Name  string
	State string
	// Limit is the page size; 0 lets the server choose.
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// List returns one page of artifacts, ordered by name and version.
func (x Artifacts) List(ctx context.Context, f ArtifactFilter) (wire.ArtifactPage, error) {
	q := url.Values{}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	var page wire.ArtifactPage
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/artifacts", query: q}, &page, http.StatusOK)
	return page, err
}

// All lists every artifact the filter selects, following cursors from
// f.Cursor on; f.Limit is the page size. It stops at the first error,
// which it yields.
func (x Artifacts) All(ctx context.Context, f ArtifactFilter) iter.Seq2[wire.Artifact, error] {
	return allPages(f.Cursor, func(cursor string) ([]wire.Artifact, string, error) {
		f.Cursor = cursor
		page, err := x.List(ctx, f)
		return page.Artifacts, page.NextCursor, err
	})
}
