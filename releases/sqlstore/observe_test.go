package sqlstore_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/opencontainers/go-digest"
)

type observed struct {
	mu     sync.Mutex
	events []audit.Event
	ops    map[string]int
	failed map[string]int
}

func observe(db *sqlstore.DB) *observed {
	o := &observed{ops: map[string]int{}, failed: map[string]int{}}
	db.OnRecorded(func(evs []audit.Event) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.events = append(o.events, evs...)
	})
	db.Observe(func(op string, _ time.Duration, failed bool) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.ops[op]++
		if failed {
			o.failed[op]++
		}
	})
	return o
}

// OnRecorded hands over the events of committed writes, and only those;
// Observe sees reads and writes, and counts as failed none of the
// answers (a conflict, a missing row) nor a domain rule's refusal.
func TestObserveAndOnRecorded(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		db := fresh(storage)(t).(*sqlstore.DB)
		o := observe(db)
		ctx, actor := t.Context(), access.Actor{TokenID: "tok_pub", Name: "ci"}
		a := catalog.Artifact{Name: "payments/api", Version: "1.0.0", Digest: digest.FromString("x"), Size: 1, MediaType: "application/gzip", CreatedBy: "ci"}
		if _, _, err := catalog.CreateArtifact(ctx, db.Catalog(), actor, a); err != nil {
			t.Fatal(err)
		}
		other := a
		other.Digest = digest.FromString("y")
		if _, _, err := catalog.CreateArtifact(ctx, db.Catalog(), actor, other); !errors.Is(err, catalog.ErrVersionExists) {
			t.Fatalf("CreateArtifact of other bytes = %v; want ErrVersionExists", err)
		}
		refused := errors.New("refused by the rule")
		_, err := db.Catalog().SetAdmission(ctx, actor, a.Name, a.Version, func(catalog.Artifact) (catalog.Admission, audit.Change, error) {
			return catalog.Admission{}, audit.Change{}, refused
		})
		if !errors.Is(err, refused) {
			t.Fatalf("SetAdmission = %v; want the rule's refusal", err)
		}
		if _, err := db.Catalog().GetArtifact(ctx, a.Name, "9.9.9"); !errors.Is(err, errdef.ErrNotFound) {
			t.Fatalf("GetArtifact of none = %v", err)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if len(o.events) != 1 || o.events[0].Action != catalog.ActionArtifactPushed || o.events[0].Subject != "payments/api:1.0.0" || o.events[0].Seq == 0 {
			t.Errorf("recorded = %+v; want the one artifact.pushed, with its seq", o.events)
		}
		if o.ops[sqlstore.OpWrite] < 2 || o.ops[sqlstore.OpRead] < 1 {
			t.Errorf("operations seen = %v; want the writes and the read", o.ops)
		}
		if len(o.failed) != 0 {
			t.Errorf("failed = %v; want none: every error was an answer", o.failed)
		}
	})
}

// A closed database fails: reads and writes are counted as failed.
func TestObserveCountsFailures(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		db := fresh(storage)(t).(*sqlstore.DB)
		o := observe(db)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		_, _ = db.Catalog().GetArtifact(ctx, "payments/api", "1")
		_, _, _ = catalog.CreateArtifact(ctx, db.Catalog(), access.Actor{Name: "ci"}, catalog.Artifact{Name: "payments/api", Version: "1", Digest: digest.FromString("x"), Size: 1, MediaType: "application/gzip"})
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.failed[sqlstore.OpRead] == 0 || o.failed[sqlstore.OpWrite] == 0 {
			t.Errorf("failed = %v (of %v); want the read and the write on a closed database", o.failed, o.ops)
		}
		if len(o.events) != 0 {
			t.Errorf("recorded = %+v; want none", o.events)
		}
	})
}
