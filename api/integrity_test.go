package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// served is stored content as one of the serving endpoints delivers it.
type served struct {
	url    string
	digest digest.Digest
	body   []byte
	// repush sends the same bytes again, the way an admin repairs a blob.
	repush func(t *testing.T)
}

// surfaces are every endpoint that serves stored bytes: each stores its
// content and says where it is served and how to push it again.
var surfaces = []struct {
	name    string
	prepare func(t *testing.T, e *integrityEnv) served
}{
	{"rest-content", func(t *testing.T, e *integrityEnv) served {
		body := fixture(t, "payments-api-1.4.2.tar.gz")
		return served{
			url: e.artifactURL + "/content", digest: digest.FromBytes(body), body: body,
			repush: func(t *testing.T) {
				if code := apiCall(t, http.MethodPut, e.artifactURL, e.publisher, body, nil); code != http.StatusOK {
					t.Fatalf("re-push: %d", code)
				}
			},
		}
	}},
	{"oci-blob", func(t *testing.T, e *integrityEnv) served {
		reg := registry{t: t, base: e.url, token: e.publisher}
		// More than one buffer of the copy to the client (1 MiB), so
		// that a damage shows after the response began.
		body := bytes.Repeat([]byte("layer bytes of integrity/app "), 40000)
		desc := reg.pushBlob("integrity/app", body, ocispec.MediaTypeImageLayer)
		return served{
			url: e.url + "/v2/integrity/app/blobs/" + desc.Digest.String(), digest: desc.Digest, body: body,
			repush: func(t *testing.T) { reg.pushBlob("integrity/app", body, ocispec.MediaTypeImageLayer) },
		}
	}},
	{"oci-manifest", func(t *testing.T, e *integrityEnv) served {
		reg := registry{t: t, base: e.url, token: e.publisher}
		img := reg.pushImage("integrity/app", "integrity", nil, "")
		reg.expect(reg.pushManifest("integrity/app", "1.0", ocispec.MediaTypeImageManifest, img.manifest), http.StatusCreated, "")
		return served{
			url: e.url + "/v2/integrity/app/manifests/1.0", digest: img.desc.Digest, body: img.manifest,
			repush: func(t *testing.T) {
				reg.expect(reg.pushManifest("integrity/app", "1.0", ocispec.MediaTypeImageManifest, img.manifest), http.StatusCreated, "")
			},
		}
	}},
	{"evidence", func(t *testing.T, e *integrityEnv) served {
		sig := keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig"))
		var list struct {
			Evidence []struct {
				Digest digest.Digest `json:"digest"`
				Kind   string        `json:"kind"`
			} `json:"evidence"`
		}
		if code := apiCall(t, http.MethodGet, e.artifactURL+"/evidence", e.admin, nil, &list); code != http.StatusOK {
			t.Fatalf("list evidence: %d", code)
		}
		i := slices.IndexFunc(list.Evidence, func(ev struct {
			Digest digest.Digest `json:"digest"`
			Kind   string        `json:"kind"`
		}) bool {
			return ev.Kind == "signature"
		})
		if i < 0 {
			t.Fatalf("no signature among %+v", list.Evidence)
		}
		d := list.Evidence[i].Digest
		body := download(t, http.MethodGet, e.artifactURL+"/evidence/"+d.String(), e.admin).body
		return served{
			url: e.artifactURL + "/evidence/" + d.String(), digest: d, body: body,
			repush: func(t *testing.T) {
				var ev errorView
				if code := apiCall(t, http.MethodPost, e.artifactURL+"/signatures", e.publisher, sig, &ev); code != http.StatusCreated {
					t.Fatalf("re-post the signature: %d %+v", code, ev)
				}
			},
		}
	}},
	{"release-manifest", func(t *testing.T, e *integrityEnv) served {
		r := e.driveTo(t, "released")
		url := e.releaseURL(r.Name) + "/manifest"
		body := download(t, http.MethodGet, url, e.admin).body
		d := digest.Digest(r.ManifestDigest)
		return served{
			url: url, digest: d, body: body,
			repush: func(t *testing.T) {
				// Any push of the same bytes repairs a blob: here an admin
				// uploads them as an OCI blob.
				reg := registry{t: t, base: e.url, token: e.admin}
				reg.pushBlob("repair/release-manifests", body, ocispec.MediaTypeImageIndex)
			},
		}
	}},
}

// damages are the ways stored bytes go bad: changed on the backend (one
// byte flipped, or cut short), or read back wrong while the object looks
// untouched (a rotting disk, a connection cut early).
var damages = []struct {
	name string
	// onBackend rewrites the object; otherwise reads of it fail.
	onBackend bool
	fault     func([]byte) []byte
	// shortByStat: the object's size shows the damage, so the very first
	// request is refused before any header; otherwise the transfer that
	// finds it is aborted.
	shortByStat bool
}{
	{"flipped", true, flipByte, false},
	{"truncated", true, truncateHalf, true},
	{"rotten-read", false, flipByte, false},
	{"cut-read", false, truncateHalf, false},
}

// TestCorruptBlobsAreNeverServed is finding 1 of issue 9: on fs and S3,
// for every endpoint that serves stored bytes and every way of damaging
// them, the client never receives the bytes as valid: the transfer that
// finds them is aborted before the last byte (or, when nothing was sent
// yet, refused with 500 BLOB_CORRUPT), the blob is marked corrupt (audit
// record, ERROR log, metric), every later request answers 500
// BLOB_CORRUPT before any header, and a re-push of the same bytes repairs
// it. The large bodies (REST content, OCI blob) are sent in many writes,
// so for them the aborted transfer is what the test sees.
func TestCorruptBlobsAreNeverServed(t *testing.T) {
	for _, st := range storages {
		t.Run(st.name, func(t *testing.T) {
			for _, sf := range surfaces {
				for _, dmg := range damages {
					t.Run(sf.name+"/"+dmg.name, func(t *testing.T) {
						e := newIntegrityEnv(t, st.open(t))
						c := sf.prepare(t, e)
						key := blobKey(c.digest)

						good := download(t, http.MethodGet, c.url, e.admin)
						if good.status != http.StatusOK || good.readErr != nil || !bytes.Equal(good.body, c.body) {
							t.Fatalf("healthy GET: %d, %d bytes, %v", good.status, len(good.body), good.readErr)
						}

						if dmg.onBackend {
							e.st.put(t, key, dmg.fault(e.st.get(t, key)))
						} else {
							e.faults.set(key, dmg.fault)
						}

						first := download(t, http.MethodGet, c.url, e.admin)
						switch {
						case dmg.shortByStat:
							wantCorrupt(t, "first GET of a blob whose size is wrong", first)
						case len(c.body) <= store.CopyBufferSize && first.status == http.StatusInternalServerError:
							// Found wrong before the first byte went out
							// (the first buffer of the copy holds all of
							// it): a clean refusal.
							wantCorrupt(t, "first GET of a small damaged blob", first)
						case first.status != http.StatusOK:
							t.Fatalf("first GET after damage: %d %q; want a 200 whose transfer is aborted", first.status, truncateForLog(first.body))
						case first.readErr == nil:
							t.Fatalf("first GET after damage delivered %d bytes as a complete body (%d expected): corrupt bytes served as valid", len(first.body), len(c.body))
						case len(first.body) >= len(c.body):
							t.Fatalf("aborted transfer delivered %d of %d bytes: the last byte went out", len(first.body), len(c.body))
						}

						// The fault is gone from reads now: only the mark
						// refuses what follows.
						e.faults.set(key, nil)
						wantCorrupt(t, "GET after the damage was found", download(t, http.MethodGet, c.url, e.admin))
						wantCorrupt(t, "Range GET after the damage was found", download(t, http.MethodGet, c.url, e.admin, "Range", "bytes=0-9"))
						head := download(t, http.MethodHead, c.url, e.admin)
						if head.status != http.StatusInternalServerError {
							t.Fatalf("HEAD after the damage was found: %d; want 500", head.status)
						}

						if !slices.Contains(auditActions(t, e.url, e.admin), "blob.corrupt "+c.digest.String()) {
							t.Errorf("no blob.corrupt audit record for %s", c.digest)
						}
						if logs := e.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, c.digest.String()) {
							t.Errorf("no ERROR log line naming %s:\n%s", c.digest, logs)
						}
						if got := metric(t, e.url, `dml_blob_corruption_detected_total{source="read"}`); got != "1" {
							t.Errorf("dml_blob_corruption_detected_total{source=\"read\"} = %q, want 1", got)
						}

						c.repush(t)
						if got := e.st.get(t, key); !bytes.Equal(got, c.body) {
							t.Fatalf("after the re-push the backend holds %d bytes, not the %d pushed", len(got), len(c.body))
						}
						again := download(t, http.MethodGet, c.url, e.admin)
						if again.status != http.StatusOK || again.readErr != nil || !bytes.Equal(again.body, c.body) {
							t.Fatalf("GET after repair: %d, %d bytes, %v %q", again.status, len(again.body), again.readErr, truncateForLog(again.body))
						}
						rng := download(t, http.MethodGet, c.url, e.admin, "Range", "bytes=1-4")
						if rng.status != http.StatusPartialContent || !bytes.Equal(rng.body, c.body[1:5]) {
							t.Fatalf("Range GET after repair: %d %q", rng.status, truncateForLog(rng.body))
						}
						if !slices.Contains(auditActions(t, e.url, e.admin), "blob.repaired "+c.digest.String()) {
							t.Errorf("no blob.repaired audit record for %s", c.digest)
						}
					})
				}
			}
		})
	}
}

// TestRangeRequestsVerifyFirst: a Range request of a blob whose backend
// object changed since it was last verified is answered only after the
// whole blob verified again; a damaged one is refused with 500
// BLOB_CORRUPT and marked, without ever reading a byte of it out.
func TestRangeRequestsVerifyFirst(t *testing.T) {
	for _, st := range storages {
		t.Run(st.name, func(t *testing.T) {
			e := newIntegrityEnv(t, st.open(t))
			body := fixture(t, "payments-api-1.4.2.tar.gz")
			url := e.artifactURL + "/content"
			key := blobKey(digest.FromBytes(body))

			// Verified when it was written: served at once.
			rng := download(t, http.MethodGet, url, e.admin, "Range", "bytes=100-199")
			if rng.status != http.StatusPartialContent || !bytes.Equal(rng.body, body[100:200]) {
				t.Fatalf("Range of a healthy blob: %d %q", rng.status, truncateForLog(rng.body))
			}

			// A byte far from the range changes: the range alone would
			// look fine, the blob is not.
			damaged := bytes.Clone(body)
			damaged[len(damaged)-1] ^= 0x80
			e.st.put(t, key, damaged)
			wantCorrupt(t, "Range of a blob changed on the backend", download(t, http.MethodGet, url, e.admin, "Range", "bytes=100-199"))
			wantCorrupt(t, "full GET after that", download(t, http.MethodGet, url, e.admin))
			if got := metric(t, e.url, `dml_blob_corruption_detected_total{source="read"}`); got != "1" {
				t.Errorf("dml_blob_corruption_detected_total{source=\"read\"} = %q, want 1", got)
			}

			// Restoring the bytes behind the server's back does not lift
			// the mark: only a push (or fsck) does.
			e.st.put(t, key, body)
			wantCorrupt(t, "Range after the bytes were put back by hand", download(t, http.MethodGet, url, e.admin, "Range", "bytes=100-199"))
			if code := apiCall(t, http.MethodPut, e.artifactURL, e.publisher, body, nil); code != http.StatusOK {
				t.Fatalf("re-push: %d", code)
			}
			rng = download(t, http.MethodGet, url, e.admin, "Range", "bytes=100-199")
			if rng.status != http.StatusPartialContent || !bytes.Equal(rng.body, body[100:200]) {
				t.Fatalf("Range after repair: %d %q", rng.status, truncateForLog(rng.body))
			}

			if st.name == "fs" {
				// A change that keeps the modification time is still a
				// change of the file (its ctime moves): verified again.
				info, err := e.st.backend.Stat(t.Context(), key)
				if err != nil {
					t.Fatal(err)
				}
				e.st.put(t, key, damaged)
				e.st.age(t, key, info.ModTime)
				wantCorrupt(t, "Range of a file changed with its mtime restored", download(t, http.MethodGet, url, e.admin, "Range", "bytes=100-199"))
			}
		})
	}
}

// TestStoredBytesAreNotSniffed is item 9 (nosniff) of issue 9: stored
// bytes are served with X-Content-Type-Options: nosniff, so a browser
// never renders an artifact pushed as text/html.
func TestStoredBytesAreNotSniffed(t *testing.T) {
	e := newIntegrityEnv(t, fsStorage(t))
	html := []byte("<html><script>alert(document.cookie)</script></html>")
	htmlURL := e.url + "/api/v1/artifacts/web/page/versions/1"
	req, err := http.NewRequest(http.MethodPut, htmlURL, bytes.NewReader(html))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.publisher)
	req.Header.Set("Content-Type", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push text/html: %d", resp.StatusCode)
	}
	urls := map[string]string{"text/html artifact": htmlURL + "/content"}
	for _, sf := range surfaces {
		urls[sf.name] = sf.prepare(t, e).url
	}
	for what, url := range urls {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			tr := download(t, method, url, e.admin)
			if tr.status != http.StatusOK {
				t.Fatalf("%s %s: %d", method, what, tr.status)
			}
			if got := tr.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s %s (Content-Type %q): X-Content-Type-Options %q, want nosniff", method, what, tr.header.Get("Content-Type"), got)
			}
		}
	}
}

// fsckLine is one NDJSON line of the fsck and gc endpoints.
type fsckLine struct {
	Type    string         `json:"type"`
	Kind    string         `json:"kind"`
	Digest  string         `json:"digest"`
	Key     string         `json:"key"`
	Holders []string       `json:"holders"`
	Summary map[string]any `json:"summary"`
}

// runAdmin posts to an admin maintenance endpoint and returns its lines.
func runAdmin(t *testing.T, url, token string, body any) (int, []fsckLine) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []fsckLine
	dec := json.NewDecoder(resp.Body)
	for {
		var l fsckLine
		if err := dec.Decode(&l); err != nil {
			break
		}
		lines = append(lines, l)
	}
	return resp.StatusCode, lines
}

// findings returns "kind digest" for every finding line.
func findings(lines []fsckLine) []string {
	var out []string
	for _, l := range lines {
		if l.Type == "finding" {
			out = append(out, l.Kind+" "+l.Digest)
		}
	}
	slices.Sort(out)
	return out
}

func summaryOf(t *testing.T, lines []fsckLine) map[string]any {
	t.Helper()
	if len(lines) == 0 || lines[len(lines)-1].Type != "summary" {
		t.Fatalf("the stream does not end with a summary: %+v", lines)
	}
	return lines[len(lines)-1].Summary
}

func count(t *testing.T, summary map[string]any, key string) int {
	t.Helper()
	v, ok := summary[key].(float64)
	if !ok {
		t.Fatalf("summary has no count %q: %v", key, summary)
	}
	return int(v)
}

// TestFsckFindsDamage is item 14 (fsck) of issue 9, on fs and S3: fsck
// re-hashes every blob and checks every reference; it reports a byte
// flipped on the backend (and marks the blob, so the next GET answers
// BLOB_CORRUPT), a blob deleted under a reference (missing) and a blob
// nothing refers to (orphan); a re-push clears what it found.
func TestFsckFindsDamage(t *testing.T) {
	for _, st := range storages {
		t.Run(st.name, func(t *testing.T) {
			e := newIntegrityEnv(t, st.open(t))
			fsckURL := e.url + "/api/v1/admin/fsck"
			reg := registry{t: t, base: e.url, token: e.publisher}
			img := reg.pushImage("integrity/app", "fsck", nil, "")
			reg.expect(reg.pushManifest("integrity/app", "1.0", ocispec.MediaTypeImageManifest, img.manifest), http.StatusCreated, "")
			e.driveTo(t, "released")
			orphan := []byte("bytes nothing refers to")
			orphanDigest := digest.FromBytes(orphan)
			if _, err := e.svc.Blobs.Store().Ingest(t.Context(), bytes.NewReader(orphan), store.IngestOptions{Digest: orphanDigest, Size: int64(len(orphan))}); err != nil {
				t.Fatal(err)
			}

			if code, _ := runAdmin(t, fsckURL, e.publisher, map[string]any{}); code != http.StatusForbidden {
				t.Fatalf("fsck as a publisher: %d, want 403", code)
			}
			code, lines := runAdmin(t, fsckURL, e.admin, map[string]any{})
			if code != http.StatusOK {
				t.Fatalf("fsck: %d %+v", code, lines)
			}
			if got, want := findings(lines), []string{"orphan " + orphanDigest.String()}; !slices.Equal(got, want) {
				t.Fatalf("fsck of a healthy store found %v, want %v", got, want)
			}
			sum := summaryOf(t, lines)
			if count(t, sum, "problems") != 0 || count(t, sum, "blobs") < 8 {
				t.Fatalf("healthy summary %v", sum)
			}

			content := fixture(t, "payments-api-1.4.2.tar.gz")
			contentDigest := digest.FromBytes(content)
			e.st.put(t, blobKey(contentDigest), flipByte(content))
			e.st.remove(t, blobKey(img.layer.Digest))

			_, lines = runAdmin(t, fsckURL, e.admin, map[string]any{})
			want := []string{
				"corrupt " + contentDigest.String(),
				"missing " + img.layer.Digest.String(),
				"orphan " + orphanDigest.String(),
			}
			if got := findings(lines); !slices.Equal(got, want) {
				t.Fatalf("fsck found %v, want %v", got, want)
			}
			for _, l := range lines {
				if l.Type == "finding" && l.Kind == "missing" && !strings.Contains(strings.Join(l.Holders, " "), "integrity/app") {
					t.Errorf("missing finding names holders %q, want the repository", l.Holders)
				}
			}
			sum = summaryOf(t, lines)
			if count(t, sum, "problems") != 2 || count(t, sum, "corrupt") != 1 || count(t, sum, "missing") != 1 {
				t.Fatalf("summary %v", sum)
			}
			if got := metric(t, e.url, `dml_blob_corruption_detected_total{source="fsck"}`); got != "1" {
				t.Errorf("dml_blob_corruption_detected_total{source=\"fsck\"} = %q, want 1", got)
			}

			// The GET that follows is refused before any header: fsck
			// marked the blob as a failed read would have.
			wantCorrupt(t, "GET after fsck", download(t, http.MethodGet, e.artifactURL+"/content", e.admin))

			if code := apiCall(t, http.MethodPut, e.artifactURL, e.publisher, content, nil); code != http.StatusOK {
				t.Fatalf("re-push: %d", code)
			}
			reg.pushBlob("integrity/app", []byte("layer of fsck"), ocispec.MediaTypeImageLayer)
			_, lines = runAdmin(t, fsckURL, e.admin, map[string]any{})
			if got, want := findings(lines), []string{"orphan " + orphanDigest.String()}; !slices.Equal(got, want) {
				t.Fatalf("fsck after repair found %v, want %v", got, want)
			}
			if tr := download(t, http.MethodGet, e.artifactURL+"/content", e.admin); tr.status != http.StatusOK || !bytes.Equal(tr.body, content) {
				t.Fatalf("GET after repair: %d", tr.status)
			}
		})
	}
}

// TestFsckClearsRestoredBlob: bytes put back by hand (from a backup) are
// served again once fsck has verified them.
func TestFsckClearsRestoredBlob(t *testing.T) {
	e := newIntegrityEnv(t, fsStorage(t))
	content := fixture(t, "payments-api-1.4.2.tar.gz")
	key := blobKey(digest.FromBytes(content))
	e.st.put(t, key, flipByte(content))
	wantCorrupt(t, "Range of a changed blob", download(t, http.MethodGet, e.artifactURL+"/content", e.admin, "Range", "bytes=0-0"))
	e.st.put(t, key, content)
	wantCorrupt(t, "GET of the restored blob before fsck", download(t, http.MethodGet, e.artifactURL+"/content", e.admin))
	_, lines := runAdmin(t, e.url+"/api/v1/admin/fsck", e.admin, map[string]any{})
	if sum := summaryOf(t, lines); count(t, sum, "problems") != 0 || count(t, sum, "repaired") != 1 {
		t.Fatalf("fsck of the restored blob: %v", sum)
	}
	if tr := download(t, http.MethodGet, e.artifactURL+"/content", e.admin); tr.status != http.StatusOK || !bytes.Equal(tr.body, content) {
		t.Fatalf("GET after fsck: %d", tr.status)
	}
}

// TestGC is item 14 (gc) of issue 9, on fs and S3: gc removes blobs
// nothing refers to and abandoned uploads once they are older than the
// grace period, never anything referenced and nothing younger; a dry run
// removes nothing.
func TestGC(t *testing.T) {
	for _, st := range storages {
		t.Run(st.name, func(t *testing.T) {
			e := newIntegrityEnv(t, st.open(t))
			gcURL := e.url + "/api/v1/admin/gc"
			reg := registry{t: t, base: e.url, token: e.publisher}
			img := reg.pushImage("integrity/app", "gc", nil, "")
			reg.expect(reg.pushManifest("integrity/app", "1.0", ocispec.MediaTypeImageManifest, img.manifest), http.StatusCreated, "")
			// An untagged manifest and a blob only linked are referenced too.
			untagged := reg.pushImage("integrity/app", "untagged", nil, "")
			reg.expect(reg.pushManifest("integrity/app", untagged.desc.Digest.String(), ocispec.MediaTypeImageManifest, untagged.manifest), http.StatusCreated, "")
			linked := reg.pushBlob("integrity/app", []byte("only linked"), "application/octet-stream")
			r := e.driveTo(t, "released")

			orphan := []byte("orphan blob")
			orphanDigest := digest.FromBytes(orphan)
			if _, err := e.svc.Blobs.Store().Ingest(t.Context(), bytes.NewReader(orphan), store.IngestOptions{Digest: orphanDigest, Size: int64(len(orphan))}); err != nil {
				t.Fatal(err)
			}
			// An abandoned chunked upload: started, one chunk, never
			// finished.
			start := reg.do(http.MethodPost, "/v2/integrity/app/blobs/uploads/", nil)
			reg.expect(start, http.StatusAccepted, "")
			chunk := reg.do(http.MethodPatch, start.Header.Get("Location"), bytes.NewReader([]byte("abandoned chunk")), "Content-Type", "application/octet-stream")
			reg.expect(chunk, http.StatusAccepted, "")

			referenced := []digest.Digest{
				digest.FromBytes(fixture(t, "payments-api-1.4.2.tar.gz")),
				img.config.Digest, img.layer.Digest, img.desc.Digest,
				untagged.config.Digest, untagged.layer.Digest, untagged.desc.Digest,
				linked.Digest, digest.Digest(r.ManifestDigest),
			}
			stored := func(d digest.Digest) bool {
				_, err := e.st.backend.Stat(t.Context(), blobKey(d))
				return err == nil
			}

			// Young: nothing goes, even in a real run.
			_, lines := runAdmin(t, gcURL, e.admin, map[string]any{"grace": "1h"})
			if sum := summaryOf(t, lines); count(t, sum, "deletedBlobs") != 0 || count(t, sum, "deletedUploads") != 0 {
				t.Fatalf("gc with everything younger than the grace period removed something: %v", sum)
			}
			if !stored(orphanDigest) {
				t.Fatal("gc removed a young orphan")
			}

			// Old enough: a dry run says what would go and removes nothing.
			_, lines = runAdmin(t, gcURL, e.admin, map[string]any{"grace": "0s", "dryRun": true})
			if got, want := findings(lines), []string{"orphan " + orphanDigest.String(), "upload "}; !slices.Equal(got, want) {
				t.Fatalf("dry run would remove %v, want %v", got, want)
			}
			if !stored(orphanDigest) {
				t.Fatal("a dry run removed the orphan")
			}

			_, lines = runAdmin(t, gcURL, e.admin, map[string]any{"grace": "0s"})
			sum := summaryOf(t, lines)
			if count(t, sum, "deletedBlobs") != 1 || count(t, sum, "deletedUploads") != 1 {
				t.Fatalf("gc summary %v, want 1 blob and 1 upload removed", sum)
			}
			if stored(orphanDigest) {
				t.Fatal("the orphan is still stored")
			}
			for _, d := range referenced {
				if !stored(d) {
					t.Errorf("gc removed referenced blob %s", d)
				}
			}
			if resp := reg.do(http.MethodGet, start.Header.Get("Location"), nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("the abandoned upload still answers %d", resp.StatusCode)
			}
			var staging []string
			if err := e.st.backend.List(t.Context(), "uploads/", func(i store.Info) error {
				staging = append(staging, i.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(staging) != 0 {
				t.Errorf("staging objects left: %v", staging)
			}
			_, lines = runAdmin(t, e.url+"/api/v1/admin/fsck", e.admin, map[string]any{})
			if sum := summaryOf(t, lines); count(t, sum, "problems") != 0 || count(t, sum, "orphans") != 0 {
				t.Fatalf("fsck after gc: %v %v", sum, findings(lines))
			}
			if code, _ := runAdmin(t, gcURL, e.publisher, map[string]any{}); code != http.StatusForbidden {
				t.Fatalf("gc as a publisher: %d, want 403", code)
			}
			if code, _ := runAdmin(t, gcURL, e.admin, map[string]any{"grace": "soon"}); code != http.StatusBadRequest {
				t.Fatalf("gc with a bad grace: %d, want 400", code)
			}
		})
	}
}

// TestGCKeepsYoungUploads (fs, where files can be aged): with a grace
// period, an old orphan and an old abandoned staging object go, a young
// orphan and a young staging object stay.
func TestGCKeepsYoungUploads(t *testing.T) {
	e := newIntegrityEnv(t, fsStorage(t))
	ingest := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		if _, err := e.svc.Blobs.Store().Ingest(t.Context(), bytes.NewReader(b), store.IngestOptions{Digest: d, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	old, young := ingest([]byte("old orphan")), ingest([]byte("young orphan"))
	past := time.Now().Add(-3 * time.Hour)
	e.st.age(t, blobKey(old), past)
	e.st.put(t, "uploads/abandoned-old", []byte("x"))
	e.st.age(t, "uploads/abandoned-old", past)
	e.st.put(t, "uploads/in-progress", []byte("y"))

	_, lines := runAdmin(t, e.url+"/api/v1/admin/gc", e.admin, map[string]any{"grace": "1h"})
	sum := summaryOf(t, lines)
	if count(t, sum, "deletedBlobs") != 1 || count(t, sum, "deletedUploads") != 1 {
		t.Fatalf("gc summary %v %v", sum, findings(lines))
	}
	if _, err := e.st.backend.Stat(t.Context(), blobKey(old)); err == nil {
		t.Error("the old orphan is still there")
	}
	if _, err := e.st.backend.Stat(t.Context(), blobKey(young)); err != nil {
		t.Errorf("the young orphan is gone: %v", err)
	}
	if _, err := e.st.backend.Stat(t.Context(), "uploads/abandoned-old"); err == nil {
		t.Error("the old staging object is still there")
	}
	if _, err := e.st.backend.Stat(t.Context(), "uploads/in-progress"); err != nil {
		t.Errorf("the young staging object is gone: %v", err)
	}
}

// TestChunkedUploadRepairs: a chunked OCI upload of a corrupt blob's bytes
// repairs it, whether the upload ends with its last chunk in the PUT or
// with all of it already saved.
func TestChunkedUploadRepairs(t *testing.T) {
	for _, lastInPut := range []bool{true, false} {
		e := newIntegrityEnv(t, fsStorage(t))
		reg := registry{t: t, base: e.url, token: e.publisher}
		body := bytes.Repeat([]byte("chunked repair "), 5000)
		desc := reg.pushBlob("integrity/app", body, "application/octet-stream")
		url := e.url + "/v2/integrity/app/blobs/" + desc.Digest.String()
		e.st.put(t, blobKey(desc.Digest), flipByte(body))
		wantCorrupt(t, "Range of a changed blob", download(t, http.MethodGet, url, e.admin, "Range", "bytes=0-0"))

		start := reg.do(http.MethodPost, "/v2/integrity/app/blobs/uploads/", nil)
		reg.expect(start, http.StatusAccepted, "")
		loc := start.Header.Get("Location")
		half := len(body) / 2
		reg.expect(reg.do(http.MethodPatch, loc, bytes.NewReader(body[:half]), "Content-Type", "application/octet-stream"), http.StatusAccepted, "")
		var put ociResponse
		if lastInPut {
			put = reg.do(http.MethodPut, loc+"?digest="+desc.Digest.String(), bytes.NewReader(body[half:]), "Content-Type", "application/octet-stream")
		} else {
			reg.expect(reg.do(http.MethodPatch, loc, bytes.NewReader(body[half:]), "Content-Type", "application/octet-stream"), http.StatusAccepted, "")
			put = reg.do(http.MethodPut, loc+"?digest="+desc.Digest.String(), nil)
		}
		reg.expect(put, http.StatusCreated, "")
		if got := e.st.get(t, blobKey(desc.Digest)); !bytes.Equal(got, body) {
			t.Fatalf("last chunk in the PUT %v: the backend holds %d bytes, not the pushed ones", lastInPut, len(got))
		}
		if tr := download(t, http.MethodGet, url, e.admin); tr.status != http.StatusOK || !bytes.Equal(tr.body, body) {
			t.Fatalf("last chunk in the PUT %v: GET after the repair: %d", lastInPut, tr.status)
		}
	}
}

// TestMountOfCorruptBlobUploads: a blob marked corrupt is not mounted into
// another repository; the client gets an upload session instead (the
// spec's fallback), and its upload repairs the blob.
func TestMountOfCorruptBlobUploads(t *testing.T) {
	e := newIntegrityEnv(t, fsStorage(t))
	reg := registry{t: t, base: e.url, token: e.publisher}
	body := bytes.Repeat([]byte("mounted "), 1000)
	desc := reg.pushBlob("integrity/app", body, "application/octet-stream")
	mount := "/v2/integrity/other/blobs/uploads/?mount=" + desc.Digest.String() + "&from=integrity/app"
	reg.expect(reg.do(http.MethodPost, mount, nil), http.StatusCreated, "")
	e.st.put(t, blobKey(desc.Digest), flipByte(body))
	wantCorrupt(t, "Range of a changed blob", download(t, http.MethodGet, e.url+"/v2/integrity/app/blobs/"+desc.Digest.String(), e.admin, "Range", "bytes=0-0"))
	reg.expect(reg.do(http.MethodPost, "/v2/integrity/third/blobs/uploads/?mount="+desc.Digest.String()+"&from=integrity/app", nil), http.StatusAccepted, "")
	reg.pushBlob("integrity/third", body, "application/octet-stream")
	if got := e.st.get(t, blobKey(desc.Digest)); !bytes.Equal(got, body) {
		t.Fatal("the upload that followed the refused mount did not repair the blob")
	}
}
