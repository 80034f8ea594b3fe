package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
)

// receipt is one request a test receiver got.
type receipt struct {
	eventID, eventType, delivery string
	answered                     int
	body                         []byte
}

// receiver is a webhook receiver on loopback that verifies every
// delivery as docs/events.md tells receivers to, and answers with the
// status it is set to.
type receiver struct {
	t      *testing.T
	secret []byte
	status atomic.Int32
	srv    *httptest.Server

	mu      sync.Mutex
	got     []receipt
	changed chan struct{}
}

func newReceiver(t *testing.T, secret string, status int) *receiver {
	r := &receiver{t: t, secret: []byte(secret), changed: make(chan struct{})}
	r.status.Store(int32(status))
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

// verifySignature is the receiver's side of X-DML-Signature, written from
// docs/events.md: t=UNIX,v1=HEX with HEX = hex(HMAC-SHA256(secret, t + "."
// + body)), compared in constant time, t within five minutes.
func verifySignature(header string, secret, body []byte, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("no timestamp in %q", header)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %d too far from now", unix)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return fmt.Errorf("signature %q does not match", sig)
	}
	return nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		r.t.Errorf("receiver: reading the body: %v", err)
		return
	}
	if err := verifySignature(req.Header.Get("X-DML-Signature"), r.secret, body, time.Now()); err != nil {
		r.t.Errorf("receiver: delivery %s: %v", req.Header.Get("X-DML-Delivery"), err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev wire.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("receiver: body %q: %v", body, err)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" || req.Method != http.MethodPost {
		r.t.Errorf("receiver: %s with Content-Type %q", req.Method, ct)
	}
	if h := req.Header.Get("X-DML-Event"); h != ev.Type {
		r.t.Errorf("receiver: X-DML-Event %q, body type %q", h, ev.Type)
	}
	status := int(r.status.Load())
	w.WriteHeader(status)
	r.mu.Lock()
	r.got = append(r.got, receipt{eventID: ev.ID, eventType: ev.Type, delivery: req.Header.Get("X-DML-Delivery"), answered: status, body: body})
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// waitFor waits until cond holds over what was received. The deadline
// only keeps a broken server from hanging the test.
func (r *receiver) waitFor(what string, cond func([]receipt) bool) []receipt {
	r.t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		r.mu.Lock()
		got, changed := slices.Clone(r.got), r.changed
		r.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			r.t.Fatalf("receiver: still waiting for %s; got %d requests: %v", what, len(got), ids(got))
		}
	}
}

func ids(rs []receipt) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s(%d)", r.eventID, r.answered)
	}
	return out
}

// acknowledged lists, in order, the event ids the receiver answered 2xx.
func acknowledged(rs []receipt) []string {
	var out []string
	for _, r := range rs {
		if r.answered/100 == 2 {
			out = append(out, r.eventID)
		}
	}
	return out
}

// streamAfter reads every event after since through the API.
func streamAfter(t *testing.T, c *client.Client, since string) []wire.Event {
	t.Helper()
	var out []wire.Event
	for range 1000 {
		page, err := c.Events().List(context.Background(), client.EventQuery{Since: since})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			return out
		}
		out = append(out, page.Events...)
		since = page.Next
	}
	t.Fatal("the stream did not end")
	return nil
}

// eventOrder is an event id's place in the stream.
func eventOrder(t *testing.T, id string) [2]int64 {
	seq, n, _ := strings.Cut(id, ".")
	a, err1 := strconv.ParseInt(seq, 10, 64)
	b, err2 := strconv.ParseInt(n, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("event id %q is not SEQ.N", id)
	}
	return [2]int64{a, b}
}

// TestWebhookDeliveryAcrossRestart: a receiver that fails keeps its
// events in the outbox across a restart of the server; once it answers,
// it gets every event, signed, in order, each acknowledged once; the
// deliveries record what happened; a redelivery sends an event again.
//
// The server is stopped as an operator stops it (SIGINT), and killed
// (SIGKILL): then the delivery it held under a lease is sent again when
// the lease runs out (--webhook-timeout + 10s).
func TestWebhookDeliveryAcrossRestart(t *testing.T) {
	t.Run("stop", func(t *testing.T) { testWebhookRestart(t, false) })
	t.Run("kill9", func(t *testing.T) { testWebhookRestart(t, true) })
}

func testWebhookRestart(t *testing.T, kill bool) {
	const token, secret = "webhook-e2e-admin-token-0123456789", "receiver-secret-0123456789abcdef"
	dataDir := t.TempDir()
	env := []string{"DML_BOOTSTRAP_TOKEN=" + token}
	args := []string{"--data-dir", dataDir, "--webhook-backoff", "20ms", "--webhook-max-backoff", "100ms",
		"--webhook-poll", "50ms", "--webhook-attempts", "100000", "--webhook-timeout", "1s"}
	rcv := newReceiver(t, secret, http.StatusInternalServerError)

	srv := startServer(t, env, args...)
	c, err := client.New(srv.url(), token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hook, err := c.Webhooks().Create(ctx, wire.WebhookRequest{URL: rcv.srv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.Tokens().Create(ctx, wire.TokenRequest{Name: fmt.Sprintf("before-%d", i), Roles: []string{"auditor"}}); err != nil {
			t.Fatal(err)
		}
	}
	// The first event is tried again and again; nothing after it is sent.
	rcv.waitFor("three failed attempts", func(rs []receipt) bool { return len(rs) >= 3 })
	ds, err := c.Webhooks().Deliveries(ctx, hook.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("%d deliveries; want 3 (one per token issued)", len(ds))
	}
	head := ds[len(ds)-1]
	if head.State != "pending" || head.Attempts < 1 || head.LastStatus != 500 || head.LastError == "" {
		t.Errorf("first delivery = %+v; want pending, tried, last status 500", head)
	}
	for _, d := range ds[:len(ds)-1] {
		if d.Attempts != 0 {
			t.Errorf("delivery %d (%s) was tried before the one ahead of it: %+v", d.ID, d.EventID, d)
		}
	}

	// Stop the server while the receiver fails, start it again on the
	// same data, and change more.
	t.Logf("before the restart: %d attempts of delivery %d (event %s), each answered %d; the two behind it wait", head.Attempts, head.ID, head.EventID, head.LastStatus)
	if kill {
		srv.kill9()
		t.Log("server killed (SIGKILL); started again on the same data directory; the receiver now answers 204")
	} else {
		srv.stop()
		t.Log("server stopped (SIGINT); started again on the same data directory; the receiver now answers 204")
	}
	srv = startServer(t, env, args...)
	if c, err = client.New(srv.url(), token); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := c.Tokens().Create(ctx, wire.TokenRequest{Name: fmt.Sprintf("after-%d", i), Roles: []string{"auditor"}}); err != nil {
			t.Fatal(err)
		}
	}
	created := streamAfter(t, c, "")
	i := slices.IndexFunc(created, func(e wire.Event) bool { return e.Type == "webhook.created" && e.Subject == hook.ID })
	if i < 0 {
		t.Fatal("no webhook.created event")
	}
	want := created[i+1:]
	wantIDs := make([]string, len(want))
	for j, e := range want {
		wantIDs[j] = e.ID
	}
	if len(wantIDs) != 5 {
		t.Fatalf("events after the webhook's creation: %v; want the five tokens issued", wantIDs)
	}

	rcv.status.Store(http.StatusNoContent)
	got := rcv.waitFor("every event acknowledged", func(rs []receipt) bool { return len(acknowledged(rs)) >= len(wantIDs) })
	if ack := acknowledged(got); !slices.Equal(ack, wantIDs) {
		t.Errorf("acknowledged %v; want each of %v once, in order", ack, wantIDs)
	}
	// Ordering over every request, failed ones included: never an event
	// before the one ahead of it was acknowledged.
	for j := 1; j < len(got); j++ {
		a, b := eventOrder(t, got[j-1].eventID), eventOrder(t, got[j].eventID)
		if b[0] < a[0] || b[0] == a[0] && b[1] < a[1] {
			t.Errorf("request %d is %s after %s", j, got[j].eventID, got[j-1].eventID)
		}
	}
	// A webhook body is the event as the stream gives it.
	for _, r := range got {
		j := slices.Index(wantIDs, r.eventID)
		if j < 0 {
			t.Errorf("received %s, which is not an event after the webhook's creation", r.eventID)
			continue
		}
		var body, polled map[string]any
		wantBody, _ := json.Marshal(want[j])
		_ = json.Unmarshal(r.body, &body)
		_ = json.Unmarshal(wantBody, &polled)
		if !reflect.DeepEqual(body, polled) {
			t.Errorf("webhook body %s; the stream has %s", r.body, wantBody)
		}
	}

	// The receiver answered before the server recorded the answer.
	ds = settledDeliveries(t, c, hook.ID)
	for _, d := range ds {
		if d.State != "delivered" || d.LastStatus != http.StatusNoContent || d.DeliveredAt == nil || d.NextAttemptAt != nil {
			t.Errorf("delivery %+v; want delivered with 204", d)
		}
	}
	first := ds[len(ds)-1]
	// At least the two failures recorded before the stop (a third may
	// have been cut short by the kill) and the success.
	if first.EventID != wantIDs[0] || first.Attempts < 3 {
		t.Errorf("first delivery %+v; want %s after at least three attempts", first, wantIDs[0])
	}

	// Redelivery: the same event, as a new delivery.
	re, err := c.Webhooks().Redeliver(ctx, hook.ID, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if re.EventID != first.EventID || re.RedeliveryOf != first.ID || re.ID == first.ID {
		t.Errorf("redelivery = %+v", re)
	}
	got = rcv.waitFor("the redelivery", func(rs []receipt) bool {
		return slices.ContainsFunc(rs, func(r receipt) bool { return r.delivery == strconv.FormatInt(re.ID, 10) && r.answered/100 == 2 })
	})
	// The redelivery is itself audited, so a webhook.redelivered event
	// may arrive before or after it; find the redelivery by its id.
	i = slices.IndexFunc(got, func(r receipt) bool { return r.delivery == strconv.FormatInt(re.ID, 10) })
	if again := got[i]; again.eventID != first.EventID || !bytes.Contains(again.body, []byte(`"id":"`+first.EventID+`"`)) {
		t.Errorf("redelivery request %+v; want event %s as delivery %d", again, first.EventID, re.ID)
	}
	// What the receiver saw, every request's signature verified (the
	// receiver refuses any other), for the record of the run.
	for _, r := range got {
		t.Logf("receiver: delivery %-3s event %-5s %-13s signature verified, answered %d", r.delivery, r.eventID, r.eventType, r.answered)
	}
	t.Logf("redelivery %d of delivery %d (event %s) received and acknowledged", re.ID, first.ID, first.EventID)
	if _, err := c.Webhooks().Redeliver(ctx, hook.ID, 999999); err == nil {
		t.Error("redelivering an unknown delivery succeeded")
	}

	// The secret is in neither the database nor the logs.
	srv.stop()
	db, err := os.ReadFile(filepath.Join(dataDir, "dml.db"))
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(filepath.Join(dataDir, "dml.db-wal"))
	if bytes.Contains(db, []byte(secret)) || bytes.Contains(wal, []byte(secret)) {
		t.Error("the webhook secret is stored in plain text")
	}
	if strings.Contains(srv.logs.String(), secret) {
		t.Error("the webhook secret is in the server's log")
	}
}

// settledDeliveries reads a webhook's deliveries until none is pending (a
// bounded number of times): a receiver has its answer before the server
// records it.
func settledDeliveries(t *testing.T, c *client.Client, id string) []wire.Delivery {
	t.Helper()
	var ds []wire.Delivery
	for range 1000 {
		var err error
		if ds, err = c.Webhooks().Deliveries(context.Background(), id, 0); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ds, func(d wire.Delivery) bool { return d.State == "pending" }) {
			return ds
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("deliveries of %s still pending: %+v", id, ds)
	return nil
}
