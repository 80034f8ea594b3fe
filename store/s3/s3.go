package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dmlproject/dml/store"
)

const (
	// DefaultPartSize is the multipart part size when Config.PartSize is 0.
	DefaultPartSize = 16 << 20
	// MinPartSize is the smallest part S3 accepts (except for the last one).
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part S3 accepts.
	MaxPartSize = 5 << 30
	// maxParts is the S3 limit on parts per multipart upload.
	maxParts = 10000
	// maxObjectSize is the S3 limit on one object (5 TiB).
	maxObjectSize = 5 << 40
	// unknownSizeHead is how much of a body of unknown size is read into
	// memory to find out whether it is small enough for a single PUT.
	unknownSizeHead = 1 << 20
	// DefaultMaxRetries is how many times a request is tried when
	// Config.MaxRetries is 0. minio-go's own default is 10 tries with a
	// backoff of up to a second each: 5 to 8 s before a request that
	// cannot reach the server gives up, for every request of an upload.
	DefaultMaxRetries = 3
	// DefaultDialTimeout bounds connecting to the server when
	// Config.DialTimeout is 0 (minio-go's default is 30 s, per try).
	DefaultDialTimeout = 5 * time.Second
)

// ErrInvalidKey is returned for keys with empty, "." or ".." segments or a
// leading slash: the fs backend refuses them, and the two must agree.
var ErrInvalidKey = errors.New("invalid key")

// Config says where the bucket is and how to talk to it.
type Config struct {
	// Endpoint is host:port, without a scheme.
	Endpoint string
	Bucket   string
	// Prefix is put in front of every key, e.g. "dml/"; a missing trailing
	// slash is added.
	Prefix    string
	Region    string
	AccessKey string
	SecretKey string
	// Insecure selects plain HTTP instead of HTTPS.
	Insecure bool
	// PathStyle forces path-style requests (http://host/bucket/key), which
	// most self-hosted servers need; otherwise the style is chosen
	// automatically.
	PathStyle bool
	// PartSize is the multipart part size and the memory one upload holds:
	// DefaultPartSize when 0, at least MinPartSize. The largest object is
	// PartSize × 10,000.
	PartSize int64
	// CreateBucket creates the bucket when it does not exist yet.
	CreateBucket bool
	// MaxRetries is how many times one request is tried before the
	// backend reports store.ErrUnavailable (DefaultMaxRetries when 0);
	// DialTimeout bounds each connection attempt (DefaultDialTimeout
	// when 0). Together they bound how long a request waits for a server
	// that cannot be reached.
	MaxRetries  int
	DialTimeout time.Duration
}

// Backend stores keys as objects in one bucket, under an optional prefix.
type Backend struct {
	client   *minio.Client
	bucket   string
	prefix   string
	partSize int64
	// copyPartSize is the part size of multipart copies in Move; 0 lets
	// minio-go pick S3's maximum (5 GiB). Tests lower it.
	copyPartSize int64
	// readRangeSize and readAhead shape the ranged GETs of a large read
	// (ranged.go); tests lower the range size.
	readRangeSize int
	readAhead     int
}

var (
	_ store.Backend     = (*Backend)(nil)
	_ store.Sweeper     = (*Backend)(nil)
	_ store.SizeLimiter = (*Backend)(nil)
	_ store.Kinder      = (*Backend)(nil)
)

// New connects to the bucket described by cfg. It contacts the server only
// when cfg.CreateBucket is set; use Ping to check that it is reachable.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3: endpoint and bucket are required")
	}
	if strings.HasPrefix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("s3: prefix %q must not start with a slash", cfg.Prefix)
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize || partSize > MaxPartSize {
		return nil, fmt.Errorf("s3: part size %d is outside [%d, %d]", partSize, MinPartSize, MaxPartSize)
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	retries := cfg.MaxRetries
	if retries <= 0 {
		retries = DefaultMaxRetries
	}
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = DefaultDialTimeout
	}
	transport, err := minio.DefaultTransport(!cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("s3: transport: %w", err)
	}
	transport.DialContext = (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       !cfg.Insecure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
		MaxRetries:   retries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %s: %w", cfg.Endpoint, err)
	}
	b := &Backend{client: client, bucket: cfg.Bucket, prefix: prefix, partSize: partSize, readRangeSize: readRangeSize, readAhead: readAhead}
	if cfg.CreateBucket {
		if err := b.createBucket(ctx, cfg.Region); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *Backend) createBucket(ctx context.Context, region string) error {
	exists, err := b.client.BucketExists(ctx, b.bucket)
	if err != nil {
		return translate("check bucket", b.bucket, err)
	}
	if exists {
		return nil
	}
	err = b.client.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{Region: region})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		// Created meanwhile, by another replica or by someone else; in the
		// second case the first request will tell.
		return nil
	}
	if err != nil {
		return translate("create bucket", b.bucket, err)
	}
	return nil
}

// Bucket is the name of the bucket.
func (b *Backend) Bucket() string { return b.bucket }

// Prefix is what every key is prefixed with in the bucket ("" or ending in "/").
func (b *Backend) Prefix() string { return b.prefix }

// MaxObjectSize is PartSize × 10,000 parts, capped at S3's 5 TiB.
func (b *Backend) MaxObjectSize() int64 { return min(b.partSize*maxParts, maxObjectSize) }

// Put uploads r under key. See the package documentation for how a failed
// body is kept from becoming an object.
func (b *Backend) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	name, err := b.object(key)
	if err != nil {
		return err
	}
	if limit := b.MaxObjectSize(); size > limit {
		return fmt.Errorf("s3: put %s: %w: %d bytes, the limit is %d", key, store.ErrTooLarge, size, limit)
	}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		// Always explicit: with size -1 and no PartSize minio-go would
		// buffer parts of about 512 MiB.
		PartSize: uint64(b.partSize),
		// One part in flight, so one part buffer per upload.
		NumThreads: 1,
	}
	body := &body{r: r, size: size}
	if size < 0 || size <= b.partSize {
		limit := int64(unknownSizeHead)
		if size >= 0 {
			limit = size
		}
		head, err := readHead(body, limit)
		if err != nil {
			return fmt.Errorf("s3: put %s: %w", key, err)
		}
		if int64(len(head)) <= limit {
			// The whole body is in memory and ended cleanly. Sending it
			// only now means no request can carry a body that later turns
			// out to be wrong: with a plain Content-Length PUT the server
			// would store it as soon as the last byte arrived, even if the
			// reader reported an error with that byte.
			_, err = b.client.PutObject(ctx, b.bucket, name, bytes.NewReader(head), int64(len(head)), opts)
			return translate("put", key, err)
		}
		r = io.MultiReader(bytes.NewReader(head), body)
	} else {
		r = body
	}
	// Size -1 on purpose, even when the size is known: that minio-go path
	// reads until the reader returns io.EOF and aborts the multipart
	// upload on any other error. The known-size path stops reading after
	// the last expected byte and never sees an error reported after it.
	_, err = b.client.PutObject(ctx, b.bucket, name, r, -1, opts)
	if err != nil && body.err != nil && body.err != io.EOF {
		// Report the reader's own error (a digest mismatch, a dropped
		// client), not what minio-go wrapped it in.
		return fmt.Errorf("s3: put %s: %w", key, body.err)
	}
	return translate("put", key, err)
}

// readHead reads body until it ends or more than limit bytes have arrived.
func readHead(body *body, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if body.size >= 0 {
		buf.Grow(int(body.size) + bytes.MinRead) // the exact size: no regrowth
	}
	if _, err := buf.ReadFrom(io.LimitReader(body, limit+1)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// body checks the declared size and makes errors sticky: once a Read has
// failed, every later Read fails the same way. minio-go drops an error that
// comes with the bytes that fill a part buffer; it only notices the failure
// on its next Read, which must not look like a clean io.EOF.
type body struct {
	r    io.Reader
	size int64 // or -1
	n    int64
	err  error
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.size >= 0 && b.n > b.size:
		err = fmt.Errorf("%w: body longer than the declared %d bytes", store.ErrSizeMismatch, b.size)
	case err == io.EOF && b.size >= 0 && b.n < b.size:
		err = fmt.Errorf("%w: body ended after %d of %d bytes", store.ErrSizeMismatch, b.n, b.size)
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// Get reads key from offset. It makes the first request before returning,
// because minio-go's GetObject is lazy: a missing key must fail here, not
// at the first Read.
func (b *Backend) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	name, err := b.object(key)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("s3: get %s: %w: offset %d", key, store.ErrInvalidRange, offset)
	}
	if length == 0 {
		return b.emptyAt(ctx, key, offset)
	}
	if length > math.MaxInt64-offset {
		length = -1 // past any possible end: read to the end
	}
	var opts minio.GetObjectOptions
	if offset > 0 || length > 0 {
		end := int64(0) // to the end
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return nil, fmt.Errorf("s3: get %s: %w: %v", key, store.ErrInvalidRange, err)
		}
	}
	obj, err := b.client.GetObject(ctx, b.bucket, name, opts)
	if err != nil {
		return nil, translate("get", key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		err = translate("get", key, err)
		if errors.Is(err, store.ErrInvalidRange) {
			// S3 refuses a range that starts at the end of the object;
			// the store reads it as empty.
			return b.emptyAt(ctx, key, offset)
		}
		return nil, err
	}
	if info.Size > int64(b.readAhead)*int64(b.readRangeSize) && b.readAhead > 1 {
		// Long enough for ranged GETs in parallel to pay (ranged.go).
		return b.rangedReader(ctx, key, name, info.ETag, obj, offset, offset+info.Size), nil
	}
	return obj, nil
}

// emptyAt returns an empty reader if offset is within or at the end of key.
func (b *Backend) emptyAt(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	info, err := b.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if offset > info.Size {
		return nil, fmt.Errorf("s3: get %s: %w: offset %d, size %d", key, store.ErrInvalidRange, offset, info.Size)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// Stat reports the size and modification time of key.
func (b *Backend) Stat(ctx context.Context, key string) (store.Info, error) {
	name, err := b.object(key)
	if err != nil {
		return store.Info{}, err
	}
	oi, err := b.client.StatObject(ctx, b.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return store.Info{}, translate("stat", key, err)
	}
	return store.Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, ETag: oi.ETag}, nil
}

// Move copies src to dst and removes src. ComposeObject is used rather than
// CopyObject, which S3 limits to 5 GiB: for a single source up to 5 GiB it
// sends the same one CopyObject request, and above that a multipart copy
// (UploadPartCopy) that is aborted on failure. dst appears whole or not at
// all; if the process dies between the copy and the removal, src is left as
// stale staging for CleanStaging.
func (b *Backend) Move(ctx context.Context, src, dst string) error {
	from, err := b.object(src)
	if err != nil {
		return err
	}
	to, err := b.object(dst)
	if err != nil {
		return err
	}
	_, err = b.client.ComposeObject(ctx,
		minio.CopyDestOptions{Bucket: b.bucket, Object: to, PartSize: uint64(b.copyPartSize)},
		minio.CopySrcOptions{Bucket: b.bucket, Object: from})
	if err != nil {
		return translate("move "+src+" to", dst, err)
	}
	if err := b.client.RemoveObject(ctx, b.bucket, from, minio.RemoveObjectOptions{}); err != nil {
		return translate("move: remove", src, err)
	}
	return nil
}

// Delete removes key; S3 reports success for a missing key too.
func (b *Backend) Delete(ctx context.Context, key string) error {
	name, err := b.object(key)
	if err != nil {
		return err
	}
	err = translate("delete", key, b.client.RemoveObject(ctx, b.bucket, name, minio.RemoveObjectOptions{}))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// List calls fn for every object whose key starts with prefix.
func (b *Backend) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when fn fails
	for oi := range b.client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return translate("list", prefix, oi.Err)
		}
		info := store.Info{Key: strings.TrimPrefix(oi.Key, b.prefix), Size: oi.Size, ModTime: oi.LastModified, ETag: oi.ETag}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Ping checks that the bucket exists and the credentials are accepted.
// Kind names this backend for monitoring (store.Kinder).
func (b *Backend) Kind() string { return "s3" }

func (b *Backend) Ping(ctx context.Context) error {
	exists, err := b.client.BucketExists(ctx, b.bucket)
	if err != nil {
		return translate("ping", b.bucket, err)
	}
	if !exists {
		return fmt.Errorf("s3: bucket %s: %w", b.bucket, store.ErrNotFound)
	}
	return nil
}

// Sweep aborts the incomplete multipart uploads under the prefix that were
// initiated before startedBefore (what a crash in the middle of a large
// upload leaves, invisible but billed). Uploads are aborted by upload ID,
// not with RemoveIncompleteUpload, which would also abort a newer upload of
// the same key that is still in progress.
func (b *Backend) Sweep(ctx context.Context, startedBefore time.Time) (int, error) {
	type upload struct{ key, id string }
	var stale []upload
	for u := range b.client.ListIncompleteUploads(ctx, b.bucket, b.prefix, true) {
		if u.Err != nil {
			return 0, translate("list incomplete uploads under", b.prefix, u.Err)
		}
		if u.Initiated.Before(startedBefore) {
			stale = append(stale, upload{u.Key, u.UploadID})
		}
	}
	core := minio.Core{Client: b.client}
	removed := 0
	for _, u := range stale {
		err := core.AbortMultipartUpload(ctx, b.bucket, u.key, u.id)
		if code := minio.ToErrorResponse(err).Code; err != nil && code != "NoSuchUpload" {
			return removed, translate("abort upload of", u.key, err)
		}
		removed++
	}
	return removed, nil
}

// object maps a key to its object name.
func (b *Backend) object(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	return b.prefix + key, nil
}

// translate is the one place minio-go errors become store errors. A
// server that cannot be reached (connection refused or reset, timeouts,
// and what minio-go makes of them) or that says it is unavailable is
// store.ErrUnavailable; a cancelled context is not: that is the caller
// giving up, not the server.
func translate(op, key string, err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	var sentinel error
	switch {
	case errors.Is(err, context.Canceled):
	case minio.IsNetworkOrHostDown(err, false) || unavailableStatus[resp.StatusCode] || resp.Code == "SlowDown" || resp.Code == "ServiceUnavailable":
		sentinel = store.ErrUnavailable
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchBucket" || resp.Code == "NotFound" ||
		(resp.Code == "" && resp.StatusCode == http.StatusNotFound):
		sentinel = store.ErrNotFound
	case resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		sentinel = store.ErrInvalidRange
	case resp.Code == "EntityTooLarge":
		sentinel = store.ErrTooLarge
	}
	if sentinel != nil {
		return fmt.Errorf("s3: %s %s: %w: %v", op, key, sentinel, err)
	}
	return fmt.Errorf("s3: %s %s: %w", op, key, err)
}

// unavailableStatus are the HTTP statuses of a server (or a proxy in
// front of it) that cannot serve now but may later.
var unavailableStatus = map[int]bool{
	http.StatusBadGateway:         true,
	http.StatusServiceUnavailable: true,
	http.StatusGatewayTimeout:     true,
}
