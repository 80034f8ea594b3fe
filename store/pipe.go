package store

import (
	"errors"
	"io"
	"sync"
)

// Large bodies are copied in large buffers, with the reading one step
// ahead of the writing on another goroutine. A blob's bytes are hashed as
// they are read (VerifyingReader), and SHA-256 is what bounds a stream on
// a fast disk (about 1.3–1.5 GB/s on one core): with the hash on one core
// and the socket or file writes on the other, a stream costs about its
// hash alone instead of its hash plus its I/O. 32 KiB (io.Copy's buffer)
// costs a system call per 32 KiB on each side; 1 MiB, 32 times fewer.
const (
	// CopyBufferSize is the size of one buffer of Copy.
	CopyBufferSize = 1 << 20
	// copyDepth buffers per copy: one being read, one being written, one
	// waiting between them. A stream holds at most copyDepth ×
	// CopyBufferSize (3 MiB), whatever its length.
	copyDepth = 3
)

var copyBuffers = sync.Pool{New: func() any { return new([CopyBufferSize]byte) }}

// chunk is one buffer on its way from the reader to the writer: n bytes,
// then err (nil, or what the read ended with).
type chunk struct {
	buf *[CopyBufferSize]byte
	n   int
	err error
}

// Copy copies from src to dst until src ends or, when n ≥ 0, n bytes were
// copied, like io.Copy (io.CopyN when n ≥ 0), with src read ahead of dst
// on another goroutine in CopyBufferSize buffers. Bytes are written in the
// order read, and only bytes that a Read returned; an error of src is
// returned after the bytes read before it were written. When dst fails
// Copy stops reading and returns its error once the Read under way has
// returned: src is never read after Copy returns.
func Copy(dst io.Writer, src io.Reader, n int64) (int64, error) {
	if n >= 0 {
		src = io.LimitReader(src, n)
	}
	full := make(chan chunk, copyDepth)
	free := make(chan *[CopyBufferSize]byte, copyDepth)
	for range copyDepth {
		free <- copyBuffers.Get().(*[CopyBufferSize]byte)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(full)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var buf *[CopyBufferSize]byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			k, err := io.ReadFull(src, buf[:])
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF // a short last buffer
			}
			full <- chunk{buf: buf, n: k, err: err}
			if err != nil {
				return
			}
		}
	})
	var written int64
	var err error
	for c := range full {
		if err == nil && c.n > 0 {
			var k int
			k, err = dst.Write(c.buf[:c.n])
			written += int64(k)
			if err == nil && k < c.n {
				err = io.ErrShortWrite
			}
			if err != nil {
				close(stop) // the reader stops at its next buffer
			}
		}
		if err == nil && c.err != nil && c.err != io.EOF {
			err = c.err
		}
		free <- c.buf
	}
	wg.Wait()
	close(free)
	for buf := range free {
		copyBuffers.Put(buf)
	}
	return written, err
}
