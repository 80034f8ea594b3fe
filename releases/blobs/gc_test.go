package blobs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/opencontainers/go-digest"
)

// pause is a point where a test holds one goroutine: reached is closed
// when the goroutine gets there, and it waits until release is closed.
type pause struct {
	reached, release chan struct{}
	once             sync.Once
}

func newPause() *pause { return &pause{reached: make(chan struct{}), release: make(chan struct{})} }

// hold signals that the point is reached and waits to be released.
func (p *pause) hold() {
	p.once.Do(func() { close(p.reached) })
	<-p.release
}

// gatedBackend pauses the gc's listing just before it hands over one key,
// or a delete of that key, when the test arms those points.
type gatedBackend struct {
	store.Backend
	key              string
	beforeListingKey *pause
	beforeDelete     *pause
}

func (g *gatedBackend) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	return g.Backend.List(ctx, prefix, func(info store.Info) error {
		if info.Key == g.key && g.beforeListingKey != nil {
			g.beforeListingKey.hold()
		}
		return fn(info)
	})
}

func (g *gatedBackend) Delete(ctx context.Context, key string) error {
	if key == g.key && g.beforeDelete != nil {
		g.beforeDelete.hold()
	}
	return g.Backend.Delete(ctx, key)
}

// gatedMetadata signals a writer's refused claim (claimRefused is
// closed), and pauses a writer just before it records its reference to
// the blob.
type gatedMetadata struct {
	*sqlstore.DB
	d                 digest.Digest
	claimRefused      chan struct{}
	beforeReferencing *pause
	refusedOnce       sync.Once
}

func (g *gatedMetadata) Blobs() blobs.Store { return gatedBlobs{Store: g.DB.Blobs(), g: g} }

// gatedBlobs is the gated catalogue's blob integrity store.
type gatedBlobs struct {
	blobs.Store
	g *gatedMetadata
}

func (b gatedBlobs) ClaimBlob(ctx context.Context, id string, d digest.Digest, at time.Time, allow func(*time.Time) error) error {
	g := b.g
	err := b.Store.ClaimBlob(ctx, id, d, at, allow)
	if d == g.d && errors.Is(err, blobs.ErrBlobCollecting) && g.claimRefused != nil {
		g.refusedOnce.Do(func() { close(g.claimRefused) })
	}
	return err
}

func (g *gatedMetadata) Catalog() catalog.Store { return gatedCatalog{Store: g.DB.Catalog(), g: g} }

// gatedCatalog is the gated catalogue's own store.
type gatedCatalog struct {
	catalog.Store
	g *gatedMetadata
}

func (c gatedCatalog) InsertArtifact(ctx context.Context, actor access.Actor, a catalog.Artifact) (catalog.Artifact, bool, error) {
	g := c.g
	if a.Digest == g.d && g.beforeReferencing != nil {
		g.beforeReferencing.hold()
	}
	return c.Store.InsertArtifact(ctx, actor, a)
}

// InsertArtifactWithin is how a push records its version (within the
// quotas): gated the same way.
func (c gatedCatalog) InsertArtifactWithin(ctx context.Context, actor access.Actor, a catalog.Artifact, check func(quota.Reader) error) (catalog.Artifact, bool, error) {
	g := c.g
	if a.Digest == g.d && g.beforeReferencing != nil {
		g.beforeReferencing.hold()
	}
	return c.Store.InsertArtifactWithin(ctx, actor, a, check)
}

// gcRaceEnv is a service over a gated fs backend and a gated catalogue,
// holding one old blob that nothing refers to yet.
type gcRaceEnv struct {
	t          *testing.T
	svc        *releases.DML
	backend    *gatedBackend
	meta       *gatedMetadata
	admin, pub access.Principal
	body       []byte
	d          digest.Digest
}

func newGCRaceEnv(t *testing.T) *gcRaceEnv {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	fsb, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsb.Close() })
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "dml.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	body := bytes.Repeat([]byte("bytes that gc and a push both want "), 100)
	d := digest.FromBytes(body)
	e := &gcRaceEnv{t: t, body: body, d: d,
		backend: &gatedBackend{Backend: fsb, key: store.BlobKey(d)},
		meta:    &gatedMetadata{DB: db, d: d},
	}
	e.svc = domaintest.New(t, e.meta, store.New(e.backend))
	if _, err := e.svc.Access.BootstrapAdmin(ctx, "bootstrap-secret-123456"); err != nil {
		t.Fatal(err)
	}
	if e.admin, err = e.svc.Access.Authenticate(ctx, "bootstrap-secret-123456"); err != nil {
		t.Fatal(err)
	}
	issued, err := e.svc.Access.IssueToken(ctx, e.admin, access.TokenRequest{Name: "pipeline", Roles: []access.Role{access.RolePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	if e.pub, err = e.svc.Access.Authenticate(ctx, issued.Secret); err != nil {
		t.Fatal(err)
	}

	// The blob is stored (left by a push that was refused, say), verified,
	// referred to by nothing, and three hours old: gc's to collect.
	if _, err := e.svc.Blobs.Store().Ingest(ctx, bytes.NewReader(body), store.IngestOptions{Digest: d, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(filepath.Join(fsb.Root(), filepath.FromSlash(store.BlobKey(d))), old, old); err != nil {
		t.Fatal(err)
	}
	info, err := e.svc.Blobs.Store().StatBlob(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.RecordVerified(ctx, db.Blobs(), e.admin.Actor(), d, info.Fingerprint(), "push", time.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

// gc runs a gc with a one-hour grace period.
func (e *gcRaceEnv) gc() (blobs.GCSummary, error) {
	return e.svc.Maintenance.GC(context.Background(), e.admin, blobs.GCOptions{Grace: time.Hour}, func(blobs.MaintenanceEvent[blobs.GCSummary]) error { return nil })
}

// push pushes the blob's bytes as app:version, with the digest declared.
func (e *gcRaceEnv) push(version string) error {
	_, _, err := e.svc.Catalog.Push(context.Background(), e.pub, catalog.PushRequest{
		Name: "app", Version: version, Digest: e.d, Size: int64(len(e.body)), Body: bytes.NewReader(e.body),
	})
	return err
}

// wantConsistent fails the test unless every artifact the catalogue holds
// is stored and hashes to its digest: what gc must never break.
func (e *gcRaceEnv) wantConsistent() {
	e.t.Helper()
	ctx := context.Background()
	list, _, err := e.svc.Catalog.Artifacts(ctx, catalog.ArtifactFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range list {
		rc, err := e.svc.Blobs.Store().Open(ctx, a.Digest, 0, -1)
		if err != nil {
			e.t.Fatalf("%s:%s refers to %s, which is not stored: %v", a.Name, a.Version, a.Digest, err)
		}
		got, err := digest.FromReader(rc)
		rc.Close()
		if err != nil || got != a.Digest {
			e.t.Fatalf("%s:%s: stored bytes hash to %s (%v), want %s", a.Name, a.Version, got, err, a.Digest)
		}
	}
}

func (e *gcRaceEnv) stored() bool {
	ok, err := e.svc.Blobs.Store().Exists(context.Background(), e.d)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

// TestGCConcurrentReference is the race of issue 9, item 14: a blob that
// becomes referenced while gc runs is never deleted from under its
// reference, whichever way the two interleave. Each case holds the two
// goroutines at the points where the interleaving matters.
func TestGCConcurrentReference(t *testing.T) {
	t.Run("referenced after gc listed it", func(t *testing.T) {
		// gc has listed the blob as a candidate; a push of the same bytes
		// completes (finding the blob stored, writing nothing) before gc
		// decides. gc must see the reference.
		e := newGCRaceEnv(t)
		e.backend.beforeListingKey = newPause()
		type result struct {
			sum blobs.GCSummary
			err error
		}
		gcDone := make(chan result)
		go func() { sum, err := e.gc(); gcDone <- result{sum, err} }()
		<-e.backend.beforeListingKey.reached
		if err := e.push("1"); err != nil {
			t.Fatalf("push while gc looks at the blob: %v", err)
		}
		close(e.backend.beforeListingKey.release)
		r := <-gcDone
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.sum.DeletedBlobs != 0 || r.sum.KeptReferenced != 1 {
			t.Fatalf("gc summary %+v, want the blob kept as referenced", r.sum)
		}
		if !e.stored() {
			t.Fatal("gc deleted a blob referenced while it ran")
		}
		e.wantConsistent()
	})

	t.Run("push between its look at the blob and its reference", func(t *testing.T) {
		// A push found the blob stored and is about to record its
		// reference when gc comes by: its claim keeps the blob.
		e := newGCRaceEnv(t)
		e.meta.beforeReferencing = newPause()
		pushDone := make(chan error)
		go func() { pushDone <- e.push("1") }()
		<-e.meta.beforeReferencing.reached
		sum, err := e.gc()
		if err != nil {
			t.Fatal(err)
		}
		close(e.meta.beforeReferencing.release)
		if err := <-pushDone; err != nil {
			t.Fatalf("push: %v", err)
		}
		if sum.DeletedBlobs != 0 || sum.KeptClaimed != 1 {
			t.Fatalf("gc summary %+v, want the blob kept for the writer's claim", sum)
		}
		if !e.stored() {
			t.Fatal("gc deleted a blob a push had claimed")
		}
		e.wantConsistent()
	})

	t.Run("push while gc deletes", func(t *testing.T) {
		// gc has begun deleting the blob when a push of the same bytes
		// arrives: the push waits for the deletion, finds the blob gone
		// and fails instead of referring to it; pushed again, it stores
		// the bytes anew.
		e := newGCRaceEnv(t)
		e.backend.beforeDelete = newPause()
		e.meta.claimRefused = make(chan struct{})
		gcDone := make(chan error)
		go func() { _, err := e.gc(); gcDone <- err }()
		<-e.backend.beforeDelete.reached
		pushDone := make(chan error, 1)
		go func() { pushDone <- e.push("1") }()
		var err error
		pushed := false
		select {
		case <-e.meta.claimRefused: // the push waits for the deletion
		case err = <-pushDone: // it did not wait: the checks below fail
			pushed = true
		}
		close(e.backend.beforeDelete.release)
		if err := <-gcDone; err != nil {
			t.Fatal(err)
		}
		if !pushed {
			err = <-pushDone
		}
		if !errors.Is(err, errdef.ErrConflict) {
			t.Fatalf("push racing the deletion: %v, want a conflict (push again)", err)
		}
		if _, err := e.svc.Catalog.Artifact(context.Background(), "app", "1"); !errors.Is(err, errdef.ErrNotFound) {
			t.Fatalf("the failed push left app:1 (%v)", err)
		}
		e.wantConsistent()
		if err := e.push("1"); err != nil {
			t.Fatalf("pushing again: %v", err)
		}
		if !e.stored() {
			t.Fatal("the second push did not store the bytes")
		}
		e.wantConsistent()
	})
}

// TestMaintenanceFreeOnceSummarised: a run is over for its caller once the
// summary is reported — a client reads it and may start the next run at
// once. Before, the one-run lock was released only after the summary was
// sent, so an fsck followed by a gc could be refused as "already running".
func TestMaintenanceFreeOnceSummarised(t *testing.T) {
	env := domaintest.NewEnv(t)
	m := env.DML.Maintenance
	ctx := env.Ctx
	gcNow := func() error {
		_, err := m.GC(ctx, env.Admin, blobs.GCOptions{Grace: time.Hour, DryRun: true}, func(blobs.MaintenanceEvent[blobs.GCSummary]) error { return nil })
		return err
	}
	fsckNow := func() error {
		_, err := m.Fsck(ctx, env.Admin, func(blobs.MaintenanceEvent[blobs.FsckSummary]) error { return nil })
		return err
	}

	var afterFsck, afterGC error
	if _, err := m.Fsck(ctx, env.Admin, func(ev blobs.MaintenanceEvent[blobs.FsckSummary]) error {
		if ev.Summary != nil {
			afterFsck = gcNow()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GC(ctx, env.Admin, blobs.GCOptions{Grace: time.Hour, DryRun: true}, func(ev blobs.MaintenanceEvent[blobs.GCSummary]) error {
		if ev.Summary != nil {
			afterGC = fsckNow()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if afterFsck != nil || afterGC != nil {
		t.Errorf("a run started when the previous one's summary arrived: after fsck %v, after gc %v; want both to run", afterFsck, afterGC)
	}

	// While a run is under way (before its summary), another is refused.
	var during error
	if _, err := m.Fsck(ctx, env.Admin, func(ev blobs.MaintenanceEvent[blobs.FsckSummary]) error {
		if ev.Summary == nil && during == nil {
			during = fsckNow()
			if during == nil {
				during = errors.New("ran")
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(during, errdef.ErrConflict) {
		t.Errorf("an fsck started during another: %v, want a conflict", during)
	}
}
