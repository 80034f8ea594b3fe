package store

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// Backend operations as monitoring names them (Store.Observe).
const (
	OpPut    = "put"
	OpGet    = "get"
	OpStat   = "stat"
	OpMove   = "move"
	OpAppend = "append"
	OpDelete = "delete"
	OpList   = "list"
	OpPing   = "ping"
)

// Kinder is implemented by backends that name their kind ("fs", "s3"),
// for monitoring.
type Kinder interface {
	Kind() string
}

// Kind names the kind of the store's backend, or "other".
func (s *Store) Kind() string {
	if k, ok := s.raw.(Kinder); ok {
		return k.Kind()
	}
	return "other"
}

// Observe makes fn see every backend operation the store makes: its name
// (OpPut…), how long it took (a Get until the reader is returned, a Put
// until the body is stored, its upload included; a List its whole walk),
// and whether the backend failed — not a missing object, not a body that
// failed to arrive or to verify, not a caller that went away. fn must not
// block.
func (s *Store) Observe(fn func(op string, d time.Duration, failed bool)) {
	s.backend.(*observedBackend).fn.Store(&fn)
}

// observedBackend times the operations of the backend underneath.
type observedBackend struct {
	b  Backend
	fn atomic.Pointer[func(op string, d time.Duration, failed bool)]
}

var _ Backend = (*observedBackend)(nil)

func (o *observedBackend) done(op string, start time.Time, err error) {
	if f := o.fn.Load(); f != nil {
		(*f)(op, time.Since(start), backendFailure(err))
	}
}

// backendFailure says whether err is the backend failing rather than an
// answer about the request.
func backendFailure(err error) bool {
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalidRange), errors.Is(err, ErrTooLarge),
		errors.Is(err, context.Canceled):
		return false
	}
	return true
}

func (o *observedBackend) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	start := time.Now()
	body := &bodyReader{r: r}
	err := o.b.Put(ctx, key, body, size)
	observed := err
	if body.err != nil {
		// The body failed (a client that stopped sending, a digest that
		// did not verify): the backend only passed that on.
		observed = nil
	}
	o.done(OpPut, start, observed)
	return err
}

// Append times the backend's Append (Store only calls it when the backend
// has one: see Store.appender).
func (o *observedBackend) Append(ctx context.Context, src, dst string, offset int64, r io.Reader, size int64) (int64, error) {
	start := time.Now()
	body := &bodyReader{r: r}
	n, err := o.b.(Appender).Append(ctx, src, dst, offset, body, size)
	observed := err
	if body.err != nil {
		observed = nil // the body failed, not the backend
	}
	o.done(OpAppend, start, observed)
	return n, err
}

// stage is Put for a Stager: the write of the body, timed as a put.
func (o *observedBackend) stage(ctx context.Context, st Stager, r io.Reader, size int64) (Staged, error) {
	start := time.Now()
	body := &bodyReader{r: r}
	staged, err := st.Stage(ctx, body, size)
	observed := err
	if body.err != nil {
		observed = nil
	}
	o.done(OpPut, start, observed)
	return staged, err
}

// commit names a staged body, timed as the move it replaces.
func (o *observedBackend) commit(ctx context.Context, staged Staged, key string) error {
	start := time.Now()
	err := staged.Commit(ctx, key)
	o.done(OpMove, start, err)
	return err
}

func (o *observedBackend) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := o.b.Get(ctx, key, offset, length)
	o.done(OpGet, start, err)
	return rc, err
}

func (o *observedBackend) Stat(ctx context.Context, key string) (Info, error) {
	start := time.Now()
	info, err := o.b.Stat(ctx, key)
	o.done(OpStat, start, err)
	return info, err
}

func (o *observedBackend) Move(ctx context.Context, src, dst string) error {
	start := time.Now()
	err := o.b.Move(ctx, src, dst)
	o.done(OpMove, start, err)
	return err
}

func (o *observedBackend) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := o.b.Delete(ctx, key)
	o.done(OpDelete, start, err)
	return err
}

func (o *observedBackend) List(ctx context.Context, prefix string, fn func(Info) error) error {
	start := time.Now()
	var fnErr error
	err := o.b.List(ctx, prefix, func(i Info) error {
		fnErr = fn(i)
		return fnErr
	})
	observed := err
	if fnErr != nil {
		observed = nil // the caller's function stopped the walk
	}
	o.done(OpList, start, observed)
	return err
}

func (o *observedBackend) Ping(ctx context.Context) error {
	start := time.Now()
	err := o.b.Ping(ctx)
	o.done(OpPing, start, err)
	return err
}

// bodyReader remembers whether the body a Put reads failed.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}
