package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/opencontainers/go-digest"
)

// contentRangeGrammar is what RFC 9110 allows of a chunk's Content-Range
// (digits only, no sign), with the prefix and length OCI clients send.
var contentRangeGrammar = regexp.MustCompile(`^(bytes )?[0-9]+-[0-9]+(/([0-9]+|\*))?$`)

// FuzzParseContentRange: a Content-Range is accepted only when it follows
// the grammar, its range is ordered, and formatting the range parses back
// to the same range.
func FuzzParseContentRange(f *testing.F) {
	f.Fuzz(func(t *testing.T, header string) {
		rng, err := parseContentRange(header)
		if err != nil {
			if !strings.Contains(err.Error(), "blob upload invalid") {
				t.Fatalf("%q: error %v is not an invalid upload", header, err)
			}
			return
		}
		if rng == nil {
			if strings.TrimSpace(header) != "" {
				t.Fatalf("%q: no range and no error", header)
			}
			return
		}
		if !contentRangeGrammar.MatchString(strings.TrimSpace(header)) {
			t.Fatalf("%q accepted as %d-%d, but it is not START-END", header, rng.Start, rng.End)
		}
		if rng.Start < 0 || rng.End < rng.Start {
			t.Fatalf("%q accepted as %d-%d", header, rng.Start, rng.End)
		}
		for _, again := range []string{fmt.Sprintf("%d-%d", rng.Start, rng.End), fmt.Sprintf("bytes %d-%d/*", rng.Start, rng.End)} {
			back, err := parseContentRange(again)
			if err != nil || *back != *rng {
				t.Fatalf("%q → %+v, but %q → %+v, %v", header, *rng, again, back, err)
			}
		}
	})
}

// FuzzRoutePaths: every valid name, tag and digest survives the REST and
// /v2/ path parsers: parse(format(x)) == x, whatever "versions",
// "manifests" or "blobs" components the name itself holds.
func FuzzRoutePaths(f *testing.F) {
	f.Fuzz(func(t *testing.T, name, tag string) {
		if names.ValidateName(name) != nil || names.ValidateVersion(tag) != nil {
			return
		}
		d := digest.FromString(name + ":" + tag)
		for _, tc := range []struct {
			path string
			want ociRoute
		}{
			{"/" + name + "/manifests/" + tag, ociRoute{"manifest", name, tag}},
			{"/" + name + "/manifests/" + d.String(), ociRoute{"manifest", name, d.String()}},
			{"/" + name + "/blobs/" + d.String(), ociRoute{"blob", name, d.String()}},
			{"/" + name + "/blobs/uploads/", ociRoute{"upload-start", name, ""}},
			{"/" + name + "/blobs/uploads/" + tag, ociRoute{"upload", name, tag}},
			{"/" + name + "/tags/list", ociRoute{"tags", name, ""}},
			{"/" + name + "/referrers/" + d.String(), ociRoute{"referrers", name, d.String()}},
		} {
			got, ok := parseOCIPath(tc.path)
			if !ok || got != tc.want {
				t.Errorf("parseOCIPath(%q) = %+v, %v; want %+v", tc.path, got, ok, tc.want)
			}
		}
		for _, tc := range []struct {
			path string
			want artifactRef
		}{
			{"/" + name + "/versions/" + tag, artifactRef{Name: name, Version: tag}},
			{"/" + name + "/versions/" + tag + "/content", artifactRef{Name: name, Version: tag, Action: "content"}},
			{"/" + name + "/versions/" + tag + "/evidence", artifactRef{Name: name, Version: tag, Action: "evidence"}},
			{"/" + name + "/versions/" + tag + "/evidence/" + d.String(), artifactRef{Name: name, Version: tag, Action: "evidence", Item: d.String()}},
		} {
			got, ok := parseArtifactPath(tc.path)
			if !ok || got != tc.want {
				t.Errorf("parseArtifactPath(%q) = %+v, %v; want %+v", tc.path, got, ok, tc.want)
			}
		}
	})
}

// FuzzServeRange serves a stored blob the way the content routes do
// (serveContent over a store.ReadSeeker) with any Range header: the answer
// is the whole blob (200), exactly the bytes each returned range names
// (206), or 416 — never other bytes, never an impossible range.
func FuzzServeRange(f *testing.F) {
	backend, err := fs.New(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	st := store.New(backend)
	content := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	b, err := st.Ingest(context.Background(), bytes.NewReader(content), store.IngestOptions{Size: int64(len(content))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rangeHeader string) {
		rs := st.ReadSeeker(context.Background(), b.Digest, b.Size)
		defer rs.Close()
		req := httptest.NewRequest(http.MethodGet, "/blob", nil)
		req.Header.Set("Range", rangeHeader)
		w := httptest.NewRecorder()
		serveContent(w, req, rs)
		body := w.Body.Bytes()
		switch w.Code {
		case http.StatusOK:
			if !bytes.Equal(body, content) {
				t.Fatalf("Range %q: 200 with %d bytes, not the blob", rangeHeader, len(body))
			}
		case http.StatusPartialContent:
			checkPartial(t, rangeHeader, w.Result().Header, body, content)
		case http.StatusRequestedRangeNotSatisfiable:
		default:
			t.Fatalf("Range %q: status %d", rangeHeader, w.Code)
		}
	})
}

var contentRangeRE = regexp.MustCompile(`^bytes ([0-9]+)-([0-9]+)/([0-9]+)$`)

// checkPartial checks a 206 body, single range or multipart, against the
// blob.
func checkPartial(t *testing.T, rangeHeader string, h http.Header, body, content []byte) {
	t.Helper()
	part := func(cr string, got []byte) {
		m := contentRangeRE.FindStringSubmatch(cr)
		if m == nil {
			t.Fatalf("Range %q: Content-Range %q", rangeHeader, cr)
		}
		start, _ := strconv.ParseInt(m[1], 10, 64)
		end, _ := strconv.ParseInt(m[2], 10, 64)
		if m[3] != fmt.Sprint(len(content)) || start > end || end >= int64(len(content)) || !bytes.Equal(got, content[start:end+1]) {
			t.Fatalf("Range %q: Content-Range %q with %d bytes that are not those", rangeHeader, cr, len(got))
		}
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		part(h.Get("Content-Range"), body)
		return
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("Range %q: multipart: %v", rangeHeader, err)
		}
		got, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		part(p.Header.Get("Content-Range"), got)
	}
}
