package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/store/storetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const crashToken = "crash-test-admin-token-0123456789"

// TestKill9DuringUpload kills the server with SIGKILL in the middle of a
// push, restarts it on the same data, and checks that no partial blob is
// visible and that what the crash left behind has been cleaned.
func TestKill9DuringUpload(t *testing.T) {
	for _, withChecksum := range []bool{true, false} {
		t.Run(fmt.Sprintf("fs/checksum=%v", withChecksum), func(t *testing.T) {
			dataDir := t.TempDir()
			blobDir := filepath.Join(dataDir, "blobs")
			leftovers := func() []string { return filesUnder(t, blobDir) }
			crashAndRestart(t, withChecksum, []string{"--data-dir", dataDir}, nil, leftovers)
		})
		t.Run(fmt.Sprintf("s3/checksum=%v", withChecksum), func(t *testing.T) {
			endpoint, access, secret := storetest.S3FromEnv(t)
			bucket := fmt.Sprintf("dml-crash-%d", time.Now().UnixNano())
			mc, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: false, BucketLookup: minio.BucketLookupPath})
			if err != nil {
				t.Fatal(err)
			}
			leftovers := func() []string { return s3Leftovers(t, mc, bucket) }
			env := []string{"DML_S3_ACCESS_KEY=" + access, "DML_S3_SECRET_KEY=" + secret}
			args := []string{"--data-dir", t.TempDir(), "--s3-endpoint", endpoint, "--s3-bucket", bucket, "--s3-insecure", "--staging-max-age", "0s"}
			crashAndRestart(t, withChecksum, args, env, leftovers)
		})
	}
}

func crashAndRestart(t *testing.T, withChecksum bool, args, env []string, leftovers func() []string) {
	t.Helper()
	env = append(env, "DML_BOOTSTRAP_TOKEN="+crashToken)
	srv := startServer(t, env, args...)

	// 64 MiB declared, of which 20 MiB are sent before the kill: more than
	// one 16 MiB S3 part, so a multipart upload is under way.
	const size, sent = 64 << 20, 20 << 20
	content := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{7}), size) }
	h := sha256.New()
	if _, err := io.Copy(h, content()); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, srv.url()+"/api/v1/artifacts/crash/test/versions/1.0", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+crashToken)
	if withChecksum {
		req.Header.Set("X-Checksum-Sha256", hex.EncodeToString(h.Sum(nil)))
	}
	reqDone := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("push finished with %s", resp.Status)
		}
		reqDone <- err
	}()
	if _, err := io.Copy(pw, io.LimitReader(content(), sent)); err != nil {
		t.Fatalf("sending the first part: %v", err)
	}
	// Wait (bounded) until the partial upload is visible to the storage.
	deadline := time.Now().Add(60 * time.Second)
	for len(leftovers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no partial upload appeared in storage; server logs:\n%s", srv.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.kill9()
	pw.CloseWithError(fmt.Errorf("server killed"))
	<-reqDone

	before := leftovers()
	if len(before) == 0 {
		t.Fatal("the crash left nothing behind; the test would prove nothing")
	}
	t.Logf("left behind by kill -9: %v", before)

	srv = startServer(t, env, args...)
	resp := get(t, srv.url()+"/api/v1/artifacts/crash/test/versions/1.0", crashToken)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("artifact after crash: %s, want 404", resp.Status)
	}
	resp = get(t, srv.url()+"/readyz", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readyz after restart: %s", resp.Status)
	}
	if after := leftovers(); len(after) != 0 {
		t.Errorf("still there after restart: %v", after)
	}
}

func get(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// filesUnder lists regular files under dir except the backend's lock file.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && d.Name() != ".lock" {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// s3Leftovers lists every object and incomplete multipart upload in bucket.
func s3Leftovers(t *testing.T, mc *minio.Client, bucket string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := mc.BucketExists(ctx, bucket); err != nil || !ok {
		return nil
	}
	var out []string
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		out = append(out, "object:"+obj.Key)
	}
	for up := range mc.ListIncompleteUploads(ctx, bucket, "", true) {
		if up.Err != nil {
			if strings.Contains(up.Err.Error(), "NotImplemented") {
				t.Fatalf("S3 server cannot list multipart uploads: %v", up.Err)
			}
			t.Fatal(up.Err)
		}
		out = append(out, "multipart:"+up.Key)
	}
	return out
}
