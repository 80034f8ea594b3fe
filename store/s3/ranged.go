package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/dmlproject/dml/store"
)

// Reads of large objects go as several ranged GETs in flight at once,
// ahead of the reader: one GET streams at the speed of one connection and
// of one request on the server, and the reader (a download, hashed as it
// goes) waits for none of them while it works on what came before.
const (
	// readRangeSize is the size of one ranged GET.
	readRangeSize = 8 << 20
	// readAhead is how many ranged GETs are in flight (or read and
	// waiting) for one reader: the memory one read holds is
	// readAhead × readRangeSize (32 MiB), whatever the object's size.
	readAhead = 4
)

var rangeBuffers = sync.Pool{New: func() any { return new([readRangeSize]byte) }}

// rangedReader reads [next, end) of an object in ranges fetched
// concurrently, and delivers them in order. Every range asks for the
// ETag the object had when the read began: a read never mixes the bytes
// of two versions of an object, it fails.
type rangedReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	b      *Backend
	key    string
	name   string
	etag   string
	next   int64 // first byte not yet asked for
	end    int64
	size   int // of one range (readRangeSize; lower in tests)
	depth  int // ranges in flight
	queue  []*rangeFetch
	wg     sync.WaitGroup
	err    error
}

// rangeFetch is one ranged GET: done is closed once buf[:n] or err is set.
type rangeFetch struct {
	done chan struct{}
	buf  *[readRangeSize]byte
	n    int
	off  int // bytes of buf already delivered
	err  error
}

// rangedReader reads [offset, end) of key, whose ETag is etag. first is
// the response of a GET of that whole span already under way: its first
// range is read from it (so a large read costs no request more than a
// small one before it knows it is large), the others with ranged GETs.
func (b *Backend) rangedReader(ctx context.Context, key, name, etag string, first io.ReadCloser, offset, end int64) *rangedReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &rangedReader{
		ctx: ctx, cancel: cancel, b: b, key: key, name: name, etag: etag,
		next: offset, end: end, size: b.readRangeSize, depth: b.readAhead,
	}
	n := min(int64(r.size), end-offset)
	r.next += n
	f := &rangeFetch{done: make(chan struct{}), buf: rangeBuffers.Get().(*[readRangeSize]byte)}
	r.queue = append(r.queue, f)
	r.wg.Go(func() {
		defer close(f.done)
		defer first.Close() // the rest of its body is not read: its connection goes
		f.n, f.err = io.ReadFull(first, f.buf[:n])
		if errors.Is(f.err, io.ErrUnexpectedEOF) || errors.Is(f.err, io.EOF) {
			f.err = fmt.Errorf("s3: get %s: the object ended at %d, before %d: %w", key, offset+int64(f.n), offset+n, io.ErrUnexpectedEOF)
		} else if f.err != nil {
			f.err = translate("get", key, f.err)
		}
	})
	return r
}

// fill starts ranged GETs until depth are queued or the end is asked for.
func (r *rangedReader) fill() {
	for len(r.queue) < r.depth && r.next < r.end {
		off, n := r.next, min(int64(r.size), r.end-r.next)
		r.next += n
		f := &rangeFetch{done: make(chan struct{}), buf: rangeBuffers.Get().(*[readRangeSize]byte)}
		r.queue = append(r.queue, f)
		r.wg.Go(func() {
			defer close(f.done)
			f.n, f.err = r.fetch(off, f.buf[:n])
		})
	}
}

// fetch reads len(p) bytes from off into p with one ranged GET.
func (r *rangedReader) fetch(off int64, p []byte) (int, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return 0, fmt.Errorf("s3: get %s: %w: %v", r.key, store.ErrInvalidRange, err)
	}
	if r.etag != "" {
		if err := opts.SetMatchETag(r.etag); err != nil {
			return 0, fmt.Errorf("s3: get %s: %w", r.key, err)
		}
	}
	obj, err := r.b.client.GetObject(r.ctx, r.b.bucket, r.name, opts)
	if err != nil {
		return 0, translate("get", r.key, err)
	}
	defer obj.Close()
	n, err := io.ReadFull(obj, p)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		// The object is shorter than when the read began: it was
		// replaced (an ETag that still matched cannot end early).
		return n, fmt.Errorf("s3: get %s: the object ended at %d, before %d: %w", r.key, off+int64(n), off+int64(len(p)), io.ErrUnexpectedEOF)
	}
	if err != nil {
		return n, translate("get", r.key, err)
	}
	return n, nil
}

func (r *rangedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.fill()
	if len(r.queue) == 0 {
		return 0, io.EOF
	}
	f := r.queue[0]
	select {
	case <-f.done:
	case <-r.ctx.Done():
		r.err = r.ctx.Err()
		return 0, r.err
	}
	if f.err != nil {
		r.err = f.err
		return 0, r.err
	}
	n := copy(p, f.buf[f.off:f.n])
	f.off += n
	if f.off == f.n {
		r.queue = r.queue[1:]
		rangeBuffers.Put(f.buf)
		r.fill()
	}
	return n, nil
}

// Close stops the GETs in flight and waits for them.
func (r *rangedReader) Close() error {
	r.cancel()
	r.wg.Wait()
	for _, f := range r.queue {
		rangeBuffers.Put(f.buf)
	}
	r.queue = nil
	if r.err == nil {
		r.err = errors.New("s3: read after close")
	}
	return nil
}
