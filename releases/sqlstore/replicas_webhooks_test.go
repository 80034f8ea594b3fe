package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	dmlevents "github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/sqlstore"
)

// TestReplicaDispatchers: three replicas over one database each run a
// webhook dispatcher; a receiver that always answers gets every event
// once, in order: the claims (FOR UPDATE SKIP LOCKED and leases on
// PostgreSQL, the single writer on SQLite) never hand one delivery to two
// dispatchers in normal operation.
func TestReplicaDispatchers(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		open := storage(t)
		rs := domaintest.NewReplicas(t, 3, func() *sqlstore.DB { return open(t) })
		const secret = "replica-secret-0123456789abcdef"
		var (
			mu      sync.Mutex
			got     []string
			changed = make(chan struct{})
		)
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if err := dmlevents.Verify(r.Header.Get(dmlevents.HeaderSignature), []byte(secret), body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("receiver: %v", err)
			}
			var e struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(body, &e)
			mu.Lock()
			got = append(got, e.ID)
			close(changed)
			changed = make(chan struct{})
			mu.Unlock()
		}))
		defer receiver.Close()
		hook, err := rs[0].DML.Events.CreateWebhook(rs[0].Ctx, rs[0].Admin, dmlevents.WebhookRequest{
			URL: receiver.URL, Secret: secret, Filter: dmlevents.Filter{Types: []string{"token.*"}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, r := range rs {
			d, err := r.DML.Events.NewDispatcher(dmlevents.DispatchConfig{Poll: 10 * time.Millisecond, Backoff: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { d.Run(ctx) })
		}
		defer func() { cancel(); wg.Wait() }()

		const n = 30
		var want []string
		for i := range n {
			r := rs[i%len(rs)]
			r.Principal(fmt.Sprintf("p-%d", i), nil, access.RoleAuditor)
		}
		page, err := rs[0].DML.Events.Events(rs[0].Ctx, rs[0].Admin, dmlevents.Query{Filter: dmlevents.Filter{Types: []string{"token.*"}}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events[1:] { // after the bootstrap admin's, before the webhook
			want = append(want, e.ID)
		}
		deadline := time.After(2 * time.Minute)
		for {
			mu.Lock()
			n, ch := len(got), changed
			mu.Unlock()
			if n >= len(want) {
				break
			}
			select {
			case <-ch:
			case <-deadline:
				t.Fatalf("received %d of %d events", n, len(want))
			}
		}
		// Let the dispatchers run on: a second send would show up now.
		ds := settle(t, rs[0].Meta, hook.ID)
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("received %v\nwant each of %v once, in order", got, want)
		}
		if len(ds) != len(want) {
			t.Errorf("%d deliveries; want %d", len(ds), len(want))
		}
	})
}

// settle reads a webhook's deliveries until none is pending.
func settle(t *testing.T, db *sqlstore.DB, id string) []dmlevents.Delivery {
	t.Helper()
	for range 1000 {
		ds, err := db.Webhooks().Deliveries(context.Background(), id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ds, func(d dmlevents.Delivery) bool { return d.State != dmlevents.DeliveryDelivered }) {
			return ds
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("deliveries never settled")
	return nil
}
