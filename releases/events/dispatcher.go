package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dmlproject/dml/releases/audit"
)

// DispatchConfig tunes delivery. Zero values take the defaults.
type DispatchConfig struct {
	// Attempts is how many times a delivery is tried before it fails and
	// the webhook's next delivery goes on (default 12).
	Attempts int
	// Backoff is the pause before the first retry; each retry doubles it
	// up to MaxBackoff, and a random part of up to half of it is taken
	// off so that receivers coming back are not hit all at once. The
	// defaults (1m, 6h, 12 attempts) retry for about a day.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds each HTTP call, connection to answer (default 10s).
	Timeout time.Duration
	// Poll is how often the outbox is read when no local write woke the
	// dispatcher: events written by other replicas, retries coming due
	// (default 2s).
	Poll time.Duration
	// Transport sends the requests; nil: a clone of http.DefaultTransport
	// without proxies from the environment.
	Transport http.RoundTripper
}

// Defaults of DispatchConfig.
const (
	DefaultAttempts   = 12
	DefaultBackoff    = time.Minute
	DefaultMaxBackoff = 6 * time.Hour
	DefaultTimeout    = 10 * time.Second
	DefaultPoll       = 2 * time.Second
	// enqueuePage is how many audit events one outbox transaction reads;
	// claimBatch how many deliveries (of distinct webhooks) one round
	// sends at once.
	enqueuePage = 200
	claimBatch  = 16
	// maxErrorText bounds the error recorded for an attempt.
	maxErrorText = 512
)

// Dispatcher moves the audit log into the webhooks' outboxes and sends
// their deliveries. Several dispatchers (replicas) may run over one
// database: each claims deliveries under a lease, so none is sent by two
// at once while the leases hold.
type Dispatcher struct {
	s      *Service
	cfg    DispatchConfig
	client *http.Client
	owner  string
}

// NewDispatcher builds a dispatcher over s's store.
func (s *Service) NewDispatcher(cfg DispatchConfig) (*Dispatcher, error) {
	if cfg.Attempts < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 || cfg.Timeout < 0 || cfg.Poll < 0 {
		return nil, errors.New("events: dispatch settings must not be negative")
	}
	setDefault(&cfg.Attempts, DefaultAttempts)
	setDefault(&cfg.Backoff, DefaultBackoff)
	setDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	setDefault(&cfg.Timeout, DefaultTimeout)
	setDefault(&cfg.Poll, DefaultPoll)
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = cfg.Backoff
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		tr = t
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Dispatcher{s: s, cfg: cfg, owner: "dispatcher-" + hex.EncodeToString(b), client: &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// Receivers get the body at the URL registered, nowhere else: a
		// redirect is an answer like any other non-2xx, and retried.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Run delivers until ctx ends, then returns once the sends in flight
// ended (each is bounded by Timeout). A send cut short by the end is not
// recorded: its lease runs out and it is sent again, which is why delivery
// is at least once.
func (d *Dispatcher) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		changed := d.s.notify.Changed()
		if err := d.enqueue(ctx); err != nil && ctx.Err() == nil {
			d.s.log.Warn("webhook outbox: enqueue failed", "err", err)
		}
		sent, err := d.sendDue(ctx)
		if err != nil && ctx.Err() == nil {
			d.s.log.Warn("webhook outbox: claim failed", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if sent > 0 {
			continue // the next of each queue may be due now
		}
		timer.Reset(d.cfg.Poll)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-timer.C:
		}
	}
}

// enqueue drains the audit log into the outboxes, a page per transaction.
func (d *Dispatcher) enqueue(ctx context.Context) error {
	for range 1000 { // bounded: 200,000 events per round, the rest next round
		n, err := d.s.store.Enqueue(ctx, enqueuePage, Plan)
		if err != nil || n < enqueuePage {
			return err
		}
	}
	return nil
}

// Plan is what Enqueue inserts: for every event after a webhook's cursor
// that its filter selects, a delivery of the event's JSON, in event
// order.
func Plan(hooks []Webhook, evs []audit.Event) ([]Delivery, error) {
	var out []Delivery
	for _, ae := range evs {
		for _, e := range Public(ae) {
			var body []byte
			for _, w := range hooks {
				if ae.Seq <= w.Cursor || !w.Filter.Matches(e) {
					continue
				}
				if body == nil {
					b, err := json.Marshal(e)
					if err != nil {
						return nil, fmt.Errorf("event %s: %w", e.ID, err)
					}
					body = b
				}
				out = append(out, Delivery{WebhookID: w.ID, EventID: e.ID, EventType: e.Type, Body: body})
			}
		}
	}
	return out, nil
}

// sendDue claims the deliveries due now and sends them, one per webhook,
// in parallel.
func (d *Dispatcher) sendDue(ctx context.Context) (int, error) {
	// A lease outlives the attempt (Timeout) and its recording; a
	// dispatcher that dies holding one (kill -9) delays that delivery
	// by this much.
	lease := d.cfg.Timeout + 10*time.Second
	list, err := d.s.store.ClaimDeliveries(ctx, d.owner, d.s.now(), lease, claimBatch)
	if err != nil || len(list) == 0 {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, dl := range list {
		wg.Go(func() { d.deliver(ctx, dl) })
	}
	wg.Wait()
	return len(list), nil
}

// deliver makes one attempt of dl and records it.
func (d *Dispatcher) deliver(ctx context.Context, dl Delivery) {
	status, sendErr := d.send(ctx, dl)
	now := d.s.now()
	a := Attempt{At: now, Status: status}
	outcome := OutcomeFailed
	switch {
	case sendErr == nil:
		a.Delivered = true
		outcome = OutcomeDelivered
	case ctx.Err() != nil:
		// Stopping: the attempt was cut short, and the delivery is due
		// again at once, for whichever dispatcher runs next. The
		// receiver may have had it: delivery is at least once.
		a.Error = "interrupted: the server stopped during the attempt"
		a.Next = &now
		outcome = OutcomeInterrupted
	default:
		a.Error = truncate(sendErr.Error(), maxErrorText)
		if dl.Attempts+1 < d.cfg.Attempts {
			next := now.Add(d.backoff(dl.Attempts + 1))
			a.Next = &next
			outcome = OutcomeRetrying
		}
	}
	ok, err := d.s.store.FinishAttempt(context.WithoutCancel(ctx), dl.ID, d.owner, a)
	if err == nil && ok {
		d.s.countAttempt(outcome)
	}
	switch {
	case err != nil:
		d.s.log.Warn("webhook delivery: recording the attempt failed", "webhook", dl.WebhookID, "delivery", dl.ID, "err", err)
	case !ok:
		d.s.log.Warn("webhook delivery: lease lost before the attempt was recorded", "webhook", dl.WebhookID, "delivery", dl.ID)
	case sendErr != nil:
		d.s.log.Info("webhook delivery failed", "webhook", dl.WebhookID, "delivery", dl.ID, "event", dl.EventID,
			"attempt", dl.Attempts+1, "status", status, "err", a.Error, "gaveUp", a.Next == nil)
	default:
		d.s.log.Debug("webhook delivered", "webhook", dl.WebhookID, "delivery", dl.ID, "event", dl.EventID, "status", status)
	}
}

// send POSTs the delivery's body, signed. A 2xx answer is a success;
// anything else, or no answer, is the error.
func (d *Dispatcher) send(ctx context.Context, dl Delivery) (int, error) {
	w, err := d.s.store.Webhook(ctx, dl.WebhookID)
	if err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	secret, err := d.s.sealer.open(w.ID, w.SealedSecret)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(dl.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dml-webhook/1")
	req.Header.Set(HeaderEvent, dl.EventType)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(dl.ID, 10))
	req.Header.Set(HeaderSignature, Sign(secret, dl.Body, time.Now()))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Read a little of the answer so the connection can be reused;
	// nothing of it is kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// backoff is the pause before retry n (1, 2, …): Backoff doubled n-1
// times, at most MaxBackoff, less a random part of up to half.
func (d *Dispatcher) backoff(n int) time.Duration {
	p := d.cfg.Backoff
	for i := 1; i < n && p < d.cfg.MaxBackoff; i++ {
		p *= 2
	}
	p = min(p, d.cfg.MaxBackoff)
	return p - time.Duration(mrand.Int64N(int64(p/2)+1))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
