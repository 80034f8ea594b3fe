package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// payload is a file of incompressible bytes the pushes send. freshen
// makes its bytes new before each push: dml and the registry store a blob
// once, and a second push of the same bytes would measure nothing.
type payload struct {
	path   string
	size   int64
	digest digest.Digest
}

// newPayload writes size pseudo-random bytes (ChaCha8, seeded from
// crypto/rand) to a file in dir.
func newPayload(dir, name string, size int64) (*payload, error) {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	gen := mrand.NewChaCha8(seed)
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		_, _ = gen.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return nil, err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &payload{path: path, size: size, digest: digest.NewDigest(digest.SHA256, h)}, nil
}

// newPayloadDir makes a directory of its own in the work directory and a
// payload named name of size bytes in it; the caller removes the
// directory.
func (b *bencher) newPayloadDir(name string, size int64) (string, *payload, error) {
	dir, err := os.MkdirTemp(b.work, "payload-")
	if err != nil {
		return "", nil, err
	}
	p, err := newPayload(dir, name, size)
	if err != nil {
		removeAll(dir)
		return "", nil, err
	}
	return dir, p, nil
}

// freshen overwrites the payload's first bytes with new random ones and
// computes its digest again (untimed setup of a repetition).
func (p *payload) freshen() error {
	f, err := os.OpenFile(p.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, min(p.size, 64))
	if _, err := rand.Read(head); err != nil {
		return err
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 4<<20)); err != nil {
		return err
	}
	p.digest = digest.NewDigest(digest.SHA256, h)
	return nil
}

func (p *payload) open() (*os.File, error) { return os.Open(p.path) }

// writeFsync is the disk's baseline of a push: the bytes copied into a
// new file in dir through a 4 MiB buffer, then fsync'd — `dd bs=4M
// conv=fsync`. It returns the new file's path.
func writeFsync(src, dir string) (path string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "dd-")
	if err != nil {
		return "", err
	}
	path = out.Name()
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	// A plain read/write loop, as dd does: io.Copy between two files
	// would use copy_file_range and move no bytes through memory.
	buf := make([]byte, 4<<20)
	for {
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return path, werr
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return path, rerr
		}
	}
	return path, out.Sync()
}

// ddTimed is the timed side of writeFsync; the copy is removed after the
// clock stops, so that repetitions do not fill the disk.
func ddTimed(src, dir string) timed {
	return func(int) (time.Duration, error) {
		var path string
		d, err := stopwatch(func() error {
			var err error
			path, err = writeFsync(src, dir)
			return err
		})
		if path != "" {
			_ = os.Remove(path)
		}
		return d, err
	}
}

// readFile is the disk's baseline of a pull: the bytes read through a
// 4 MiB buffer and dropped — `cat FILE >/dev/null`.
func readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, make([]byte, 4<<20))
	return err
}

// endpoint is where the same client code sends its requests: a dml server
// (REST with a bearer token, /v2/ with basic auth) or the reference
// registry (no auth).
type endpoint struct {
	base  string
	basic string // /v2/ password (the token); empty: no auth
}

func (e endpoint) request(ctx context.Context, method, target string, body io.Reader, size int64) (*http.Request, error) {
	u := target
	if !strings.HasPrefix(target, "http://") {
		u = e.base + target
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	if e.basic != "" {
		req.SetBasicAuth("bench", e.basic)
	}
	return req, nil
}

// send sends a request and wants status; the answer's body is drained.
func send(hc *http.Client, req *http.Request, want int) (*http.Response, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return nil, fmt.Errorf("%s %s: %s, want %d: %s", req.Method, req.URL.Path, resp.Status, want, bytes.TrimSpace(msg))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, nil
}

// location resolves an upload's Location against the endpoint.
func (e endpoint) location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil || (u.Path == "" && u.Host == "") {
		return "", fmt.Errorf("upload location %q", loc)
	}
	base, _ := url.Parse(e.base)
	return base.ResolveReference(u).String(), nil
}

func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + url.QueryEscape(d.String())
}

// startUpload is POST /v2/<repo>/blobs/uploads/: the upload's location.
func (e endpoint) startUpload(ctx context.Context, hc *http.Client, repo string) (string, error) {
	req, err := e.request(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, 0)
	if err != nil {
		return "", err
	}
	resp, err := send(hc, req, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	return e.location(resp)
}

// pushMonolithic uploads a blob as oras does: POST, then PUT with the
// whole body and its digest.
func (e endpoint) pushMonolithic(ctx context.Context, hc *http.Client, repo string, body io.Reader, size int64, d digest.Digest) error {
	loc, err := e.startUpload(ctx, hc, repo)
	if err != nil {
		return err
	}
	req, err := e.request(ctx, http.MethodPut, withDigest(loc, d), body, size)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = send(hc, req, http.StatusCreated)
	return err
}

// pushStreamed uploads a blob as crane does: POST, one PATCH streaming
// the whole body (chunked transfer encoding, no Content-Range), then PUT
// with the digest and no body.
func (e endpoint) pushStreamed(ctx context.Context, hc *http.Client, repo string, body io.Reader, d digest.Digest) error {
	loc, err := e.startUpload(ctx, hc, repo)
	if err != nil {
		return err
	}
	req, err := e.request(ctx, http.MethodPatch, loc, struct{ io.Reader }{body}, -1)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := send(hc, req, http.StatusAccepted)
	if err != nil {
		return err
	}
	if loc, err = e.location(resp); err != nil {
		return err
	}
	return e.finishUpload(ctx, hc, loc, d)
}

// pushChunks uploads a blob in PATCHes of chunk bytes, each with its
// Content-Range, then PUT with the digest.
func (e endpoint) pushChunks(ctx context.Context, hc *http.Client, repo string, f io.ReaderAt, size, chunk int64, d digest.Digest) error {
	loc, err := e.startUpload(ctx, hc, repo)
	if err != nil {
		return err
	}
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		req, err := e.request(ctx, http.MethodPatch, loc, io.NewSectionReader(f, off, n), n)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		resp, err := send(hc, req, http.StatusAccepted)
		if err != nil {
			return fmt.Errorf("chunk at %d: %w", off, err)
		}
		if loc, err = e.location(resp); err != nil {
			return err
		}
	}
	return e.finishUpload(ctx, hc, loc, d)
}

func (e endpoint) finishUpload(ctx context.Context, hc *http.Client, loc string, d digest.Digest) error {
	req, err := e.request(ctx, http.MethodPut, withDigest(loc, d), nil, 0)
	if err != nil {
		return err
	}
	_, err = send(hc, req, http.StatusCreated)
	return err
}

// emptyConfig is the OCI empty descriptor's content, the config of an
// artifact manifest.
var emptyConfig = []byte("{}")

// pushArtifact pushes a small OCI artifact as oras push does: the file's
// blob, the empty config blob, and a manifest tagged tag.
func (e endpoint) pushArtifact(ctx context.Context, hc *http.Client, repo, tag string, data []byte) error {
	d := digest.FromBytes(data)
	if err := e.pushMonolithic(ctx, hc, repo, bytes.NewReader(data), int64(len(data)), d); err != nil {
		return err
	}
	cd := digest.FromBytes(emptyConfig)
	if err := e.pushMonolithic(ctx, hc, repo, bytes.NewReader(emptyConfig), int64(len(emptyConfig)), cd); err != nil {
		return err
	}
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"artifactType":  "application/vnd.dml.bench",
		"config":        map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": len(emptyConfig)},
		"layers":        []map[string]any{{"mediaType": "application/octet-stream", "digest": d, "size": len(data)}},
	})
	if err != nil {
		return err
	}
	req, err := e.request(ctx, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, bytes.NewReader(m), int64(len(m)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	_, err = send(hc, req, http.StatusCreated)
	return err
}

// pull downloads target and checks the bytes against want, as every OCI
// client does; it says how many bytes came.
func (e endpoint) pull(ctx context.Context, hc *http.Client, target string, header http.Header, want digest.Digest) (int64, error) {
	req, err := e.request(ctx, http.MethodGet, target, nil, 0)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return 0, fmt.Errorf("GET %s: %s: %s", req.URL.Path, resp.Status, bytes.TrimSpace(msg))
	}
	v := want.Verifier()
	n, err := io.CopyBuffer(v, resp.Body, make([]byte, 256<<10))
	if err != nil {
		return n, err
	}
	if !v.Verified() {
		return n, errors.New("pulled bytes do not match their digest")
	}
	return n, nil
}
