package metadatatest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/events"
)

// RunWebhooks is the suite of events.Store: webhooks and their outbox.
func RunWebhooks(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Webhooks/CreateListDelete", testWebhookCRUD},
		{"Webhooks/EnqueueAfterCursor", testEnqueue},
		{"Webhooks/EnqueueFailureKeepsCursor", testEnqueueFailure},
		{"Webhooks/ClaimInOrder", testClaimOrder},
		{"Webhooks/LostLease", testLostLease},
		{"Webhooks/Redeliver", testRedeliver},
		{"Concurrent/ClaimDeliveries", testConcurrentClaims},
	})
}

func newHook(id string, f events.Filter) events.Webhook {
	return events.Webhook{ID: id, URL: "https://hooks.example.com/" + id, Filter: f, SealedSecret: []byte("sealed-" + id), CreatedAt: t0}
}

func mustCreateHook(t *testing.T, m store, w events.Webhook) events.Webhook {
	t.Helper()
	got, err := m.meta.Webhooks().CreateWebhook(t.Context(), admin, w, json.RawMessage(`{"url":"`+w.URL+`"}`))
	if err != nil {
		t.Fatalf("CreateWebhook(%s): %v", w.ID, err)
	}
	return got
}

// everyEvent plans one delivery per event after each webhook's cursor,
// its body the event's id, as events.Plan does without filtering.
func everyEvent(hooks []events.Webhook, evs []audit.Event) ([]events.Delivery, error) {
	var out []events.Delivery
	for _, e := range evs {
		for _, w := range hooks {
			if e.Seq > w.Cursor {
				id := fmt.Sprintf("%d.0", e.Seq)
				out = append(out, events.Delivery{WebhookID: w.ID, EventID: id, EventType: e.Action, Body: []byte(`{"id":"` + id + `"}`)})
			}
		}
	}
	return out, nil
}

func drain(t *testing.T, m store) {
	t.Helper()
	for range 100 {
		n, err := m.meta.Webhooks().Enqueue(t.Context(), 3, everyEvent)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		if n < 3 {
			return
		}
	}
	t.Fatal("Enqueue never drained")
}

func testWebhookCRUD(t *testing.T, m store) {
	ctx, ws := t.Context(), m.meta.Webhooks()
	mustCreate(t, m, artifact("payments/api", "1.0.0", "a"))
	f := events.Filter{Types: []string{"gate.*"}, Match: []string{"payments/*"}, Environments: []string{"production"}}
	w := mustCreateHook(t, m, newHook("wh_1", f))
	evs := allEvents(t, m)
	last := evs[len(evs)-1]
	if last.Action != events.ActionWebhookCreated || last.Subject != "wh_1" || last.Actor != admin || string(last.Details) != `{"url":"https://hooks.example.com/wh_1"}` {
		t.Errorf("last event = %+v; want webhook.created of wh_1 by the admin", last)
	}
	if w.Cursor != last.Seq {
		t.Errorf("cursor = %d; want %d (its own creation)", w.Cursor, last.Seq)
	}
	got, err := ws.Webhook(ctx, "wh_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != w.URL || !slices.Equal(got.Types, f.Types) || !slices.Equal(got.Match, f.Match) || !slices.Equal(got.Environments, f.Environments) ||
		string(got.SealedSecret) != "sealed-wh_1" || got.CreatedBy != admin.Name || !got.CreatedAt.Equal(t0) || got.Cursor != w.Cursor {
		t.Errorf("Webhook = %+v; want %+v", got, w)
	}
	mustCreateHook(t, m, newHook("wh_2", events.Filter{}))
	list, err := ws.Webhooks(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "wh_1" || list[1].ID != "wh_2" || list[1].Types == nil {
		t.Errorf("Webhooks = %+v, %v; want wh_1, wh_2 with empty (not nil) lists", list, err)
	}
	_, err = ws.CreateWebhook(ctx, admin, newHook("wh_1", f), nil)
	checkErr(t, "CreateWebhook with a taken id", err, errdef.ErrConflict)
	_, err = ws.CreateWebhook(ctx, admin, events.Webhook{ID: "wh_3"}, nil)
	checkErr(t, "CreateWebhook without URL and secret", err, errdef.ErrInvalidInput)

	drain(t, m)
	mustCreate(t, m, artifact("payments/api", "1.1.0", "b"))
	drain(t, m)
	if err := ws.DeleteWebhook(ctx, admin, "wh_1"); err != nil {
		t.Fatal(err)
	}
	evs = allEvents(t, m)
	if last := evs[len(evs)-1]; last.Action != events.ActionWebhookDeleted || last.Subject != "wh_1" {
		t.Errorf("last event = %+v; want webhook.deleted of wh_1", last)
	}
	_, err = ws.Webhook(ctx, "wh_1")
	checkErr(t, "Webhook after delete", err, errdef.ErrNotFound)
	checkErr(t, "DeleteWebhook again", ws.DeleteWebhook(ctx, admin, "wh_1"), errdef.ErrNotFound)
	if ds, err := ws.Deliveries(ctx, "wh_1", 0); err != nil || len(ds) != 0 {
		t.Errorf("deliveries of a deleted webhook = %d, %v; want none", len(ds), err)
	}
	if ds, err := ws.Deliveries(ctx, "wh_2", 0); err != nil || len(ds) == 0 {
		t.Errorf("deliveries of the other webhook = %d, %v; want kept", len(ds), err)
	}
}

func testEnqueue(t *testing.T, m store) {
	ctx, ws := t.Context(), m.meta.Webhooks()
	if n, err := ws.Enqueue(ctx, 10, everyEvent); err != nil || n != 0 {
		t.Errorf("Enqueue without webhooks = %d, %v", n, err)
	}
	mustCreate(t, m, artifact("app", "1", "1"))
	w1 := mustCreateHook(t, m, newHook("wh_1", events.Filter{}))
	mustCreate(t, m, artifact("app", "2", "2"))
	mustCreateHook(t, m, newHook("wh_2", events.Filter{}))
	mustCreate(t, m, artifact("app", "3", "3"))
	drain(t, m)
	evs := allEvents(t, m)
	// wh_1 gets everything after its creation, wh_2 after its own.
	want := map[string][]string{}
	for _, e := range evs {
		if e.Seq > w1.Cursor {
			want["wh_1"] = append(want["wh_1"], fmt.Sprintf("%d.0", e.Seq))
		}
	}
	want["wh_2"] = want["wh_1"][len(want["wh_1"])-1:]
	for id, ids := range want {
		ds, err := ws.Deliveries(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := len(ds) - 1; i >= 0; i-- { // newest first
			got = append(got, ds[i].EventID)
			if ds[i].State != events.DeliveryPending || ds[i].Attempts != 0 || ds[i].NextAttemptAt == nil || ds[i].DeliveredAt != nil {
				t.Errorf("new delivery %+v; want pending, due, no attempt", ds[i])
			}
			if string(ds[i].Body) != `{"id":"`+ds[i].EventID+`"}` {
				t.Errorf("body %q", ds[i].Body)
			}
		}
		if !slices.Equal(got, ids) {
			t.Errorf("deliveries of %s = %v; want %v", id, got, ids)
		}
	}
	if n, err := ws.Enqueue(ctx, 10, everyEvent); err != nil || n != 0 {
		t.Errorf("Enqueue again = %d, %v; want 0 (drained)", n, err)
	}
	hooks, _ := ws.Webhooks(ctx)
	for _, h := range hooks {
		if h.Cursor != evs[len(evs)-1].Seq {
			t.Errorf("cursor of %s = %d; want %d", h.ID, h.Cursor, evs[len(evs)-1].Seq)
		}
	}
}

// A plan that fails (or a crash before the commit) leaves the cursor and
// the outbox as they were: the events are enqueued by the next run.
func testEnqueueFailure(t *testing.T, m store) {
	ctx, ws := t.Context(), m.meta.Webhooks()
	w := mustCreateHook(t, m, newHook("wh_1", events.Filter{}))
	mustCreate(t, m, artifact("app", "1", "1"))
	boom := errors.New("boom")
	_, err := ws.Enqueue(ctx, 10, func(h []events.Webhook, evs []audit.Event) ([]events.Delivery, error) {
		ds, _ := everyEvent(h, evs)
		return append(ds, events.Delivery{WebhookID: "wh_unknown", EventID: "x", EventType: "x", Body: []byte("{}")}), nil
	})
	if err == nil {
		t.Error("Enqueue of a delivery to an unknown webhook succeeded")
	}
	_, err = ws.Enqueue(ctx, 10, func([]events.Webhook, []audit.Event) ([]events.Delivery, error) { return nil, boom })
	checkErr(t, "Enqueue with a failing plan", err, boom)
	if got, _ := ws.Webhook(ctx, "wh_1"); got.Cursor != w.Cursor {
		t.Errorf("cursor after failures = %d; want %d", got.Cursor, w.Cursor)
	}
	if ds, _ := ws.Deliveries(ctx, "wh_1", 0); len(ds) != 0 {
		t.Errorf("%d deliveries after failures; want none", len(ds))
	}
	drain(t, m)
	if ds, _ := ws.Deliveries(ctx, "wh_1", 0); len(ds) != 1 {
		t.Errorf("%d deliveries after the retry; want 1", len(ds))
	}
}

func testClaimOrder(t *testing.T, m store) {
	ctx, ws := t.Context(), m.meta.Webhooks()
	mustCreateHook(t, m, newHook("wh_1", events.Filter{}))
	mustCreateHook(t, m, newHook("wh_2", events.Filter{}))
	for _, v := range []string{"1", "2", "3"} {
		mustCreate(t, m, artifact("app", v, v))
	}
	drain(t, m)
	now := time.Now().UTC()
	claim := func(owner string, at time.Time) []events.Delivery {
		t.Helper()
		ds, err := ws.ClaimDeliveries(ctx, owner, at, time.Minute, 10)
		if err != nil {
			t.Fatalf("ClaimDeliveries: %v", err)
		}
		return ds
	}
	first := claim("a", now)
	if len(first) != 2 || first[0].WebhookID == first[1].WebhookID {
		t.Fatalf("first claim = %+v; want the head of each webhook", first)
	}
	if again := claim("b", now); len(again) != 0 {
		t.Errorf("claim while leased = %+v; want none", again)
	}
	byHook := map[string]events.Delivery{}
	for _, d := range first {
		byHook[d.WebhookID] = d
	}
	// wh_1's head is delivered; wh_2's is to be retried later.
	at := now.Add(time.Second)
	if ok, err := ws.FinishAttempt(ctx, byHook["wh_1"].ID, "a", events.Attempt{At: at, Status: 204, Delivered: true}); !ok || err != nil {
		t.Fatalf("FinishAttempt(delivered) = %v, %v", ok, err)
	}
	later := now.Add(time.Hour)
	if ok, err := ws.FinishAttempt(ctx, byHook["wh_2"].ID, "a", events.Attempt{At: at, Status: 500, Error: "receiver answered 500", Next: &later}); !ok || err != nil {
		t.Fatalf("FinishAttempt(retry) = %v, %v", ok, err)
	}
	d, _ := ws.Delivery(ctx, "wh_1", byHook["wh_1"].ID)
	if d.State != events.DeliveryDelivered || d.Attempts != 1 || d.LastStatus != 204 || d.DeliveredAt == nil || !d.DeliveredAt.Equal(at) || d.NextAttemptAt != nil {
		t.Errorf("delivered = %+v", d)
	}
	d, _ = ws.Delivery(ctx, "wh_2", byHook["wh_2"].ID)
	if d.State != events.DeliveryPending || d.Attempts != 1 || d.LastStatus != 500 || d.LastError != "receiver answered 500" || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(later) {
		t.Errorf("retried = %+v", d)
	}
	// Now: wh_1's next, not wh_2's (its head waits for its retry).
	second := claim("a", now.Add(2*time.Second))
	if len(second) != 1 || second[0].WebhookID != "wh_1" || second[0].ID <= byHook["wh_1"].ID {
		t.Fatalf("second claim = %+v; want wh_1's next", second)
	}
	if ok, _ := ws.FinishAttempt(ctx, second[0].ID, "a", events.Attempt{At: at, Status: 0, Error: "connection refused"}); !ok {
		t.Fatal("FinishAttempt(give up) lost")
	}
	d, _ = ws.Delivery(ctx, "wh_1", second[0].ID)
	if d.State != events.DeliveryFailed || d.NextAttemptAt != nil || d.LastError != "connection refused" {
		t.Errorf("given up = %+v", d)
	}
	// When the retry is due, wh_2's head again, and wh_1's third.
	third := claim("a", later)
	if len(third) != 2 || !slices.ContainsFunc(third, func(d events.Delivery) bool { return d.ID == byHook["wh_2"].ID }) {
		t.Errorf("claim at the retry = %+v; want wh_2's head again and wh_1's third", third)
	}
	if _, err := ws.ClaimDeliveries(ctx, "", now, time.Minute, 1); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("claim without an owner: %v", err)
	}
}

func testLostLease(t *testing.T, m store) {
	ctx, ws := t.Context(), m.meta.Webhooks()
	mustCreateHook(t, m, newHook("wh_1", events.Filter{}))
	mustCreate(t, m, artifact("app", "1", "1"))
	drain(t, m)
	now := time.Now().UTC()
	a, _ := ws.ClaimDeliveries(ctx, "a", now, time.Minute, 10)
	if len(a) != 1 {
		t.Fatalf("claim = %+v", a)
	}
	b, _ := ws.ClaimDeliveries(ctx, "b", now.Add(2*time.Minute), time.Minute, 10)
	if len(b) != 1 || b[0].ID != a[0].ID {
		t.Fatalf("claim after the lease expired = %+v; want the same delivery", b)
	}
	if ok, err := ws.FinishAttempt(ctx, a[0].ID, "a", events.Attempt{At: now, Delivered: true, Status: 200}); ok || err != nil {
		t.Errorf("FinishAttempt by the old owner = %v, %v; want false", ok, err)
	}
	if ok, err := ws.FinishAttempt(ctx, b[0].ID, "b", events.Attempt{At: now, Delivered: true, Status: 200}); !ok || err != nil {
		t.Errorf("FinishAttempt by the new owner = %v, %v; want true", ok, err)
	}
	if d, _ := ws.Delivery(ctx, "wh_1", a[0].ID); d.Attempts != 1 {
		t.Errorf("attempts = %d; want 1 (the lost attempt is not recorded)", d.Attempts)
	}
}

func testRedeliver(t *testing.T, m store) {
	ctx, ws := t.Context(), m.meta.Webhooks()
	mustCreateHook(t, m, newHook("wh_1", events.Filter{}))
	mustCreate(t, m, artifact("app", "1", "1"))
	drain(t, m)
	ds, _ := ws.Deliveries(ctx, "wh_1", 0)
	orig := ds[0]
	now := time.Now().UTC()
	_, err := ws.Redeliver(ctx, admin, "wh_1", orig.ID, now)
	checkErr(t, "Redeliver a pending delivery", err, events.ErrDeliveryNotFinished)
	checkErr(t, "Redeliver a pending delivery", err, errdef.ErrConflict)
	_, err = ws.Redeliver(ctx, admin, "wh_1", orig.ID+1000, now)
	checkErr(t, "Redeliver an unknown delivery", err, errdef.ErrNotFound)
	_, err = ws.Redeliver(ctx, admin, "wh_2", orig.ID, now)
	checkErr(t, "Redeliver through another webhook", err, errdef.ErrNotFound)
	claimed, _ := ws.ClaimDeliveries(ctx, "a", now, time.Minute, 10)
	if len(claimed) != 1 {
		t.Fatal(claimed)
	}
	ws.FinishAttempt(ctx, orig.ID, "a", events.Attempt{At: now, Status: 200, Delivered: true})
	before := len(allEvents(t, m))
	re, err := ws.Redeliver(ctx, admin, "wh_1", orig.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if re.ID <= orig.ID || re.EventID != orig.EventID || string(re.Body) != string(orig.Body) || re.State != events.DeliveryPending || re.Attempts != 0 || re.RedeliveryOf != orig.ID {
		t.Errorf("redelivery = %+v; want a new pending delivery of %+v", re, orig)
	}
	evs := allEvents(t, m)
	if len(evs) != before+1 || evs[len(evs)-1].Action != events.ActionWebhookRedelivered {
		t.Errorf("events after redelivery: %s", describeEvents(evs[before:]))
	}
	if got, _ := ws.Delivery(ctx, "wh_1", orig.ID); got.State != events.DeliveryDelivered {
		t.Errorf("the original delivery = %+v; want kept as delivered", got)
	}
}

// Claims made at once by several dispatchers never hand out one delivery
// twice.
func testConcurrentClaims(t *testing.T, m store) {
	ctx, ws := t.Context(), m.meta.Webhooks()
	const hooks = 8
	for i := range hooks {
		mustCreateHook(t, m, newHook(fmt.Sprintf("wh_%d", i), events.Filter{}))
	}
	mustCreate(t, m, artifact("app", "1", "1"))
	drain(t, m)
	now := time.Now().UTC()
	var (
		mu  sync.Mutex
		got = map[int64]string{}
		wg  sync.WaitGroup
	)
	for i := range 6 {
		owner := fmt.Sprintf("owner-%d", i)
		wg.Go(func() {
			ds, err := ws.ClaimDeliveries(ctx, owner, now, time.Minute, 3)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, d := range ds {
				if prev, dup := got[d.ID]; dup {
					t.Errorf("delivery %d claimed by %s and %s", d.ID, prev, owner)
				}
				got[d.ID] = owner
			}
		})
	}
	wg.Wait()
	if len(got) != hooks {
		t.Errorf("%d deliveries claimed; want all %d", len(got), hooks)
	}
}
