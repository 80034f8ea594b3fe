// Package s3test gives tests a fresh bucket on the real S3 server named by
// the DML_TEST_S3_* variables (see storetest.S3FromEnv), removed with
// everything in it when the test ends.
package s3test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dmlproject/dml/store/s3"
	"github.com/dmlproject/dml/store/storetest"
)

// Config returns the configuration of a new, uniquely named bucket on the
// test server, with CreateBucket set. The bucket and everything in it,
// incomplete multipart uploads included, are removed when t ends.
func Config(t testing.TB) s3.Config {
	t.Helper()
	endpoint, access, secret := storetest.S3FromEnv(t)
	cfg := s3.Config{
		Endpoint:     endpoint,
		Bucket:       "dmltest-" + strings.ReplaceAll(uuid.NewString(), "-", ""),
		Region:       "us-east-1",
		AccessKey:    access,
		SecretKey:    secret,
		Insecure:     true, // a local test server
		PathStyle:    true,
		CreateBucket: true,
	}
	client := Client(t)
	t.Cleanup(func() { removeBucket(t, client, cfg.Bucket) })
	return cfg
}

// NewBackend returns a backend over a new bucket (see Config). modify, if
// not nil, adjusts the configuration first, e.g. to set a Prefix or a
// smaller PartSize.
func NewBackend(t testing.TB, modify func(*s3.Config)) *s3.Backend {
	t.Helper()
	cfg := Config(t)
	if modify != nil {
		modify(&cfg)
	}
	b, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("s3 backend: %v", err)
	}
	return b
}

// Client is a plain minio-go client for the test server, for checking what
// a backend left in a bucket.
func Client(t testing.TB) *minio.Client {
	t.Helper()
	endpoint, access, secret := storetest.S3FromEnv(t)
	c, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(access, secret, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("s3 client: %v", err)
	}
	return c
}

func removeBucket(t testing.TB, c *minio.Client, bucket string) {
	ctx := context.Background()
	if ok, err := c.BucketExists(ctx, bucket); err != nil {
		t.Errorf("remove test bucket %s: %v", bucket, err)
		return
	} else if !ok {
		return
	}
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Errorf("remove test bucket %s: %v", bucket, u.Err)
			return
		}
		if err := (minio.Core{Client: c}).AbortMultipartUpload(ctx, bucket, u.Key, u.UploadID); err != nil {
			t.Errorf("remove test bucket %s: %v", bucket, err)
		}
	}
	for oi := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Errorf("remove test bucket %s: %v", bucket, oi.Err)
			return
		}
		if err := c.RemoveObject(ctx, bucket, oi.Key, minio.RemoveObjectOptions{}); err != nil {
			t.Errorf("remove test bucket %s: %v", bucket, err)
		}
	}
	if err := c.RemoveBucket(ctx, bucket); err != nil {
		t.Errorf("remove test bucket %s: %v", bucket, err)
	}
}
