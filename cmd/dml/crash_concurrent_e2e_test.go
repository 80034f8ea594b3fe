package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmlproject/dml/store/storetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
)

// TestKill9DuringConcurrentUploads (item 13) kills the server with SIGKILL
// while 50 uploads are under way, some finished, some in the middle of
// their bodies, restarts it on the same data, and checks that every
// acknowledged artifact reads back as the bytes it was acknowledged for,
// that an unacknowledged one is either absent or whole, that every stored
// blob re-hashes to its digest, and that nothing partial is left.
func TestKill9DuringConcurrentUploads(t *testing.T) {
	t.Run("fs", func(t *testing.T) {
		dataDir := t.TempDir()
		blobDir := filepath.Join(dataDir, "blobs")
		check := func(t *testing.T) (blobs, leftovers []string) { return fsBlobs(t, blobDir) }
		killDuringUploads(t, []string{"--data-dir", dataDir, "--staging-max-age", "0s"}, nil, check)
	})
	t.Run("s3", func(t *testing.T) {
		endpoint, access, secret := storetest.S3FromEnv(t)
		bucket := fmt.Sprintf("dml-crash50-%d", time.Now().UnixNano())
		mc, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), BucketLookup: minio.BucketLookupPath})
		if err != nil {
			t.Fatal(err)
		}
		env := []string{"DML_S3_ACCESS_KEY=" + access, "DML_S3_SECRET_KEY=" + secret}
		args := []string{"--data-dir", t.TempDir(), "--s3-endpoint", endpoint, "--s3-bucket", bucket, "--s3-insecure", "--staging-max-age", "0s"}
		check := func(t *testing.T) (blobs, leftovers []string) { return s3Blobs(t, mc, bucket) }
		killDuringUploads(t, args, env, check)
	})
}

// concurrentUpload is one of the uploads the kill interrupts.
type concurrentUpload struct {
	name   string
	seed   uint64
	size   int64
	digest digest.Digest
	// stall uploads send half their body, then wait for the kill.
	stall bool
	acked atomic.Bool
}

func killDuringUploads(t *testing.T, args, env []string, check func(*testing.T) (blobs, leftovers []string)) {
	t.Helper()
	env = append(env, "DML_BOOTSTRAP_TOKEN="+crashToken)
	srv := startServer(t, env, args...)

	const uploads, ackedBeforeKill = 50, 20
	list := make([]*concurrentUpload, uploads)
	for i := range list {
		u := &concurrentUpload{name: fmt.Sprintf("crash/u%02d", i), seed: uint64(100 + i), size: int64(64<<10 + i*37<<10), stall: i%5 == 0}
		u.digest = storetest.BodyDigest(digest.SHA256, u.seed, u.size)
		list[i] = u
	}
	killed := make(chan struct{})
	halfway := make(chan struct{}, uploads)
	acks := make(chan struct{}, uploads)
	client := &http.Client{Timeout: 5 * time.Minute} // a hang guard
	var wg sync.WaitGroup
	for i, u := range list {
		wg.Go(func() {
			pr, pw := io.Pipe()
			go func() {
				body := storetest.Body(u.seed, u.size)
				if u.stall {
					if _, err := io.CopyN(pw, body, u.size/2); err != nil {
						return
					}
					halfway <- struct{}{}
					<-killed
					pw.CloseWithError(fmt.Errorf("server killed"))
					return
				}
				_, err := io.Copy(pw, body)
				pw.CloseWithError(err)
			}()
			req, err := http.NewRequest(http.MethodPut, srv.url()+"/api/v1/artifacts/"+u.name+"/versions/1.0", pr)
			if err != nil {
				t.Error(err)
				return
			}
			req.ContentLength = u.size
			req.Header.Set("Authorization", "Bearer "+crashToken)
			if i%2 == 0 {
				req.Header.Set("X-Checksum-Sha256", u.digest.Encoded())
			}
			resp, err := client.Do(req)
			if err != nil {
				return // cut by the kill
			}
			var a struct{ Digest string }
			err = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			if resp.StatusCode == http.StatusCreated && err == nil {
				if a.Digest != u.digest.String() {
					t.Errorf("%s acknowledged as %s; its bytes are %s", u.name, a.Digest, u.digest)
				}
				u.acked.Store(true)
				acks <- struct{}{}
			} else {
				t.Errorf("%s: %s before the kill", u.name, resp.Status)
			}
		})
	}
	// Kill once enough uploads are acknowledged and every stalled one is
	// in the middle of its body (bounded waits).
	deadline := time.After(3 * time.Minute)
	for range ackedBeforeKill {
		select {
		case <-acks:
		case <-deadline:
			t.Fatalf("fewer than %d uploads acknowledged; server logs:\n%s", ackedBeforeKill, srv.logs.String())
		}
	}
	for range uploads / 5 {
		select {
		case <-halfway:
		case <-deadline:
			t.Fatalf("the stalled uploads did not reach their middle; server logs:\n%s", srv.logs.String())
		}
	}
	srv.kill9()
	close(killed)
	wg.Wait()

	acked := 0
	for _, u := range list {
		if u.acked.Load() {
			acked++
		}
	}
	if acked < ackedBeforeKill || acked == uploads {
		t.Fatalf("%d of %d uploads acknowledged: the kill did not land in the middle", acked, uploads)
	}
	t.Logf("%d of %d uploads acknowledged before kill -9", acked, uploads)

	srv = startServer(t, env, args...)
	for _, u := range list {
		var a struct{ Digest string }
		resp := getJSON(t, srv.url()+"/api/v1/artifacts/"+u.name+"/versions/1.0", &a)
		switch {
		case resp == http.StatusOK && a.Digest == u.digest.String():
			got, n := contentDigest(t, srv.url()+"/api/v1/artifacts/"+u.name+"/versions/1.0/content")
			if got != u.digest || n != u.size {
				t.Errorf("%s reads back as %d bytes hashing to %s; want %d of %s", u.name, n, got, u.size, u.digest)
			}
		case resp == http.StatusOK:
			t.Errorf("%s names %s; its bytes are %s", u.name, a.Digest, u.digest)
		case u.acked.Load():
			t.Errorf("%s was acknowledged, and after the restart: %d", u.name, resp)
		case resp != http.StatusNotFound:
			t.Errorf("%s (not acknowledged) after the restart: %d; want 404 or the whole artifact", u.name, resp)
		}
	}
	blobs, leftovers := check(t)
	if len(blobs) < acked {
		t.Errorf("%d blobs stored for %d acknowledged uploads", len(blobs), acked)
	}
	if len(leftovers) > 0 {
		t.Errorf("partial writes left after the restart: %v", leftovers)
	}
}

// getJSON GETs url as the admin and decodes a 200 answer into out.
func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+crashToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// contentDigest GETs url as the admin and hashes what comes back.
func contentDigest(t *testing.T, url string) (digest.Digest, int64) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+crashToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	dg := digest.SHA256.Digester()
	n, err := io.Copy(dg.Hash(), resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v after %d bytes", url, err, n)
	}
	return dg.Digest(), n
}

// fsBlobs re-hashes every blob file under dir (a blob that does not hash
// to its name fails the test) and lists everything else but the lock.
func fsBlobs(t *testing.T, dir string) (blobs, leftovers []string) {
	t.Helper()
	for _, rel := range filesUnder(t, dir) {
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 4 || parts[0] != "blobs" {
			leftovers = append(leftovers, rel)
			continue
		}
		f, err := os.Open(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		want := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[3])
		got, _ := storetest.ReadDigest(t, want.Algorithm(), f)
		f.Close()
		if got != want {
			t.Errorf("blob %s holds bytes hashing to %s", rel, got)
		}
		blobs = append(blobs, rel)
	}
	return blobs, leftovers
}

// s3Blobs is fsBlobs for a bucket; incomplete multipart uploads count as
// leftovers.
func s3Blobs(t *testing.T, mc *minio.Client, bucket string) (blobs, leftovers []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, key := range s3Leftovers(t, mc, bucket) {
		name, ok := strings.CutPrefix(key, "object:")
		parts := strings.Split(name, "/")
		if !ok || len(parts) != 4 || parts[0] != "blobs" {
			leftovers = append(leftovers, key)
			continue
		}
		obj, err := mc.GetObject(ctx, bucket, name, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[3])
		got, _ := storetest.ReadDigest(t, want.Algorithm(), obj)
		obj.Close()
		if got != want {
			t.Errorf("blob %s holds bytes hashing to %s", name, got)
		}
		blobs = append(blobs, name)
	}
	return blobs, leftovers
}
