package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3PartSize is dml serve's default multipart part size
// (--s3-part-size-mib 16); raw minio-go uploads use the same.
const s3PartSize = 16 << 20

// s3: dml with its blobs in the S3 server, pushing and pulling a large
// artifact over REST, against minio-go putting and getting the same bytes
// to and from the same server directly.
func (b *bencher) s3(ctx context.Context) ([]Row, error) {
	cfg := b.cfg.S3
	mc, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: false,
		Transport: b.hc.Transport,
	})
	if err != nil {
		return nil, err
	}
	// The raw side's bucket: the one given; dml's is a fresh one (created
	// by dml serve), so that runs never share blobs.
	raw := cfg.Bucket
	if ok, err := mc.BucketExists(ctx, raw); err != nil {
		return nil, fmt.Errorf("S3 bucket %s: %w", raw, err)
	} else if !ok {
		if err := mc.MakeBucket(ctx, raw, minio.MakeBucketOptions{}); err != nil {
			return nil, fmt.Errorf("S3 bucket %s: %w", raw, err)
		}
	}
	p0, err := b.startDMLS3(ctx)
	if err != nil {
		return nil, err
	}
	s, err := b.clients(ctx, p0)
	if err != nil {
		p0.close()
		return nil, err
	}
	defer s.close()
	n := b.cfg.LargeSize
	dir, p, err := b.newPayloadDir("large", n)
	if err != nil {
		return nil, err
	}
	defer removeAll(dir)
	const name = "bench/s3"
	key := fmt.Sprintf("dml-bench/%d", time.Now().UnixNano())
	var last string
	push := Row{Scenario: "S3: REST push " + size(n), Baseline: "minio-go PutObject", Bytes: n,
		Note: "target: peak RSS ≤ part size (16 MiB) + 64 MiB"}
	err = b.measure(&push, s.proc, nil, s.restPush(ctx, p, name, &last), func(int) (time.Duration, error) {
		f, err := p.open()
		if err != nil {
			return 0, err
		}
		defer f.Close()
		return stopwatch(func() error {
			_, err := mc.PutObject(ctx, raw, key, f, n, minio.PutObjectOptions{PartSize: s3PartSize, ContentType: "application/octet-stream"})
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	pull := Row{Scenario: "S3: REST pull " + size(n), Baseline: "minio-go GetObject", Bytes: n,
		Note: "target: ≥ 0.9× minio-go (ratio ≤ 1.11); both sides check the bytes against the digest on the client"}
	err = b.measure(&pull, s.proc, nil, s.restPull(ctx, b.hc, p, name, last), func(int) (time.Duration, error) {
		return stopwatch(func() error {
			obj, err := mc.GetObject(ctx, raw, key, minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer obj.Close()
			v := p.digest.Verifier()
			if _, err := io.CopyBuffer(v, obj, make([]byte, 256<<10)); err != nil {
				return err
			}
			if !v.Verified() {
				return errors.New("GetObject: bytes do not match their digest")
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	_ = mc.RemoveObject(ctx, raw, key, minio.RemoveObjectOptions{})
	return []Row{push, pull}, nil
}
