package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
)

// outage fails every Stat of a real backend, as an unreachable bucket
// would.
type outage struct{ store.Backend }

func (outage) Stat(context.Context, string) (store.Info, error) {
	return store.Info{}, fmt.Errorf("%w: connection refused", store.ErrUnavailable)
}

type opLog struct {
	mu     sync.Mutex
	ops    map[string]int
	failed map[string]int
}

func observeStore(s *store.Store) *opLog {
	l := &opLog{ops: map[string]int{}, failed: map[string]int{}}
	s.Observe(func(op string, _ time.Duration, failed bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.ops[op]++
		if failed {
			l.failed[op]++
		}
	})
	return l
}

// Observe sees the backend operations of an ingest and a read, and
// counts as failures only the backend's own: not a missing blob, not a
// body that does not verify, not one that stops arriving.
func TestObserveBackend(t *testing.T) {
	ctx := t.Context()
	s := store.New(openFS(t))
	if s.Kind() != "fs" {
		t.Errorf("Kind = %q; want fs", s.Kind())
	}
	l := observeStore(s)
	body := []byte("observed bytes")
	b, err := s.Ingest(ctx, bytes.NewReader(body), store.IngestOptions{Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, b.Digest, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, err := s.Open(ctx, digest.FromString("absent"), 0, -1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Open of an absent blob = %v", err)
	}
	_, err = s.Ingest(ctx, bytes.NewReader(body), store.IngestOptions{Digest: digest.FromString("other"), Size: int64(len(body))})
	if !errors.Is(err, store.ErrDigestMismatch) {
		t.Fatalf("Ingest under the wrong digest = %v", err)
	}
	cut := io.MultiReader(bytes.NewReader(body[:4]), iotestErr{})
	if _, err := s.Ingest(ctx, cut, store.IngestOptions{Size: -1}); err == nil {
		t.Fatal("Ingest of a body that fails: no error")
	}
	l.mu.Lock()
	if l.ops[store.OpPut] < 3 || l.ops[store.OpGet] < 1 || l.ops[store.OpStat] < 2 {
		t.Errorf("operations = %v; want the puts, gets and stats", l.ops)
	}
	if len(l.failed) != 0 {
		t.Errorf("failed = %v; want none", l.failed)
	}
	l.mu.Unlock()

	down := store.New(outage{openFS(t)})
	dl := observeStore(down)
	if _, err := down.Stat(ctx, b.Digest); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Stat during an outage = %v", err)
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.failed[store.OpStat] != 1 {
		t.Errorf("failed = %v; want the stat", dl.failed)
	}
	if down.Kind() != "other" {
		t.Errorf("Kind of a backend that names none = %q; want other", down.Kind())
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("client went away") }
