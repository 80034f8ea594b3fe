package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/defaults"
)

// Service manages webhooks and reads the event stream.
type Service struct {
	store  Store
	audit  audit.Store
	sealer sealer
	notify *notifier
	log    *slog.Logger
	now    func() time.Time
	// recheck is how often a long-poll reads the database again when no
	// local write woke it (writes of other replicas).
	recheck time.Duration
	// stopped is closed by StopWaiting: long-polls answer at once.
	stopped  chan struct{}
	stopOnce sync.Once
	// attempts counts the delivery attempts this process recorded, by
	// outcome (DeliveryOutcomes), for monitoring.
	attempts [len(DeliveryOutcomes)]atomic.Int64
}

// Outcomes of a delivery attempt, as monitoring counts them: delivered
// (2xx), retrying (failed, to be tried again), failed (failed, the last
// attempt: the delivery failed), interrupted (cut short by a shutdown,
// to be sent again).
const (
	OutcomeDelivered   = "delivered"
	OutcomeRetrying    = "retrying"
	OutcomeFailed      = "failed"
	OutcomeInterrupted = "interrupted"
)

// DeliveryOutcomes lists every outcome of an attempt.
var DeliveryOutcomes = [...]string{OutcomeDelivered, OutcomeRetrying, OutcomeFailed, OutcomeInterrupted}

// DeliveryAttempts is how many delivery attempts with outcome this
// process's dispatcher recorded since it started.
func (s *Service) DeliveryAttempts(outcome string) int64 {
	for i, o := range DeliveryOutcomes {
		if o == outcome {
			return s.attempts[i].Load()
		}
	}
	return 0
}

func (s *Service) countAttempt(outcome string) {
	for i, o := range DeliveryOutcomes {
		if o == outcome {
			s.attempts[i].Add(1)
		}
	}
}

// StopWaiting ends every long-poll now and makes later ones answer at
// once: a server shutting down lets its requests finish, and a poll
// waiting for minutes would hold the shutdown up.
func (s *Service) StopWaiting() { s.stopOnce.Do(func() { close(s.stopped) }) }

// Config is what the service is built from.
type Config struct {
	Store Store
	Audit audit.Store
	// SecretKey encrypts webhook secrets at rest (32 bytes; derive it with
	// signing.ServerSigner.DeriveKey(SecretKeyPurpose)).
	SecretKey []byte
	Log       *slog.Logger
	Now       func() time.Time
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil {
		return nil, errors.New("events: the webhook store and the audit store are required")
	}
	s, err := newSealer(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	return &Service{store: cfg.Store, audit: cfg.Audit, sealer: s, notify: newNotifier(),
		log: defaults.Logger(cfg.Log), now: defaults.Clock(cfg.Now), recheck: time.Second, stopped: make(chan struct{})}, nil
}

// Notify says that something was written (the metadata store calls it
// after every commit): long-polls and the dispatcher wake.
func (s *Service) Notify() { s.notify.Notify() }

func requireAdmin(p access.Principal) error {
	if !p.Has(access.RoleAdmin) {
		return fmt.Errorf("%w: managing webhooks needs the admin role", errdef.ErrDenied)
	}
	return nil
}

// WebhookRequest registers a webhook.
type WebhookRequest struct {
	URL    string
	Secret string
	Filter
}

// Bounds of a webhook's URL and secret.
const (
	maxURL          = 2048
	minSecret       = 16
	maxSecret       = 512
	webhookIDPrefix = "wh_"
)

// ValidateURL accepts https URLs, and http URLs to a loopback address
// (a receiver on the same host). Credentials in the URL are refused: they
// would be stored in plain text, and the secret signs instead.
func ValidateURL(raw string) error {
	if raw == "" || len(raw) > maxURL || strings.ContainsFunc(raw, unicode.IsControl) {
		return fmt.Errorf("%w: url must be 1 to %d characters without control characters", errdef.ErrInvalidInput, maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: url %q: %v", errdef.ErrInvalidInput, raw, err)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%w: url %q has no host", errdef.ErrInvalidInput, raw)
	case u.User != nil:
		return fmt.Errorf("%w: url %q must not hold credentials (the secret signs each delivery)", errdef.ErrInvalidInput, raw)
	case u.Fragment != "":
		return fmt.Errorf("%w: url %q must not have a fragment", errdef.ErrInvalidInput, raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%w: url %q: http is accepted only for a loopback receiver (127.0.0.1, ::1, localhost); use https", errdef.ErrInvalidInput, raw)
	}
	return fmt.Errorf("%w: url %q must be https (or http to a loopback address)", errdef.ErrInvalidInput, raw)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CreateWebhook registers a webhook (admins). The secret is encrypted
// before it is stored and never returned.
func (s *Service) CreateWebhook(ctx context.Context, p access.Principal, req WebhookRequest) (Webhook, error) {
	if err := requireAdmin(p); err != nil {
		return Webhook{}, err
	}
	if err := ValidateURL(req.URL); err != nil {
		return Webhook{}, err
	}
	if n := len(req.Secret); n < minSecret || n > maxSecret {
		return Webhook{}, fmt.Errorf("%w: secret must be %d to %d bytes (it signs every delivery; use a random one)", errdef.ErrInvalidInput, minSecret, maxSecret)
	}
	if err := req.Filter.Validate(); err != nil {
		return Webhook{}, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	w := Webhook{
		ID: webhookIDPrefix + hex.EncodeToString(b), URL: req.URL, Filter: nonNilFilter(req.Filter),
		CreatedBy: p.Name, CreatedAt: s.now(),
	}
	w.SealedSecret = s.sealer.seal(w.ID, []byte(req.Secret))
	details, err := json.Marshal(map[string]any{
		"url": w.URL, "events": w.Types, "match": w.Match, "environments": w.Environments,
	})
	if err != nil {
		return Webhook{}, err
	}
	return s.store.CreateWebhook(ctx, p.Actor(), w, details)
}

func nonNilFilter(f Filter) Filter {
	for _, l := range []*[]string{&f.Types, &f.Match, &f.Environments} {
		if *l == nil {
			*l = []string{}
		}
	}
	return f
}

// Webhooks lists the webhooks (admins).
func (s *Service) Webhooks(ctx context.Context, p access.Principal) ([]Webhook, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	return s.store.Webhooks(ctx)
}

// Webhook returns one webhook (admins).
func (s *Service) Webhook(ctx context.Context, p access.Principal, id string) (Webhook, error) {
	if err := requireAdmin(p); err != nil {
		return Webhook{}, err
	}
	return s.store.Webhook(ctx, id)
}

// DeleteWebhook removes a webhook and its deliveries (admins).
func (s *Service) DeleteWebhook(ctx context.Context, p access.Principal, id string) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	return s.store.DeleteWebhook(ctx, p.Actor(), id)
}

// Deliveries lists a webhook's deliveries, newest first (admins).
func (s *Service) Deliveries(ctx context.Context, p access.Principal, id string, limit int) ([]Delivery, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if _, err := s.store.Webhook(ctx, id); err != nil {
		return nil, err
	}
	return s.store.Deliveries(ctx, id, limit)
}

// Redeliver sends a finished delivery again, as a new delivery at the
// end of the webhook's queue (admins).
func (s *Service) Redeliver(ctx context.Context, p access.Principal, id string, delivery int64) (Delivery, error) {
	if err := requireAdmin(p); err != nil {
		return Delivery{}, err
	}
	return s.store.Redeliver(ctx, p.Actor(), id, delivery, s.now())
}

// Query asks for events after a position.
type Query struct {
	Since Position
	// Latest starts at the end of the stream (Since is ignored): only
	// events recorded from now on.
	Latest bool
	// Limit bounds the events answered (0: 100, at most 1000).
	Limit int
	// Wait, when positive, waits up to that long for a first event
	// (MaxWait at most).
	Wait time.Duration
	Filter
}

// Page is an answer to a Query.
type Page struct {
	Events []Event
	// Next is where the next query starts: after the last event answered,
	// or after the last one examined when the filter skipped the rest.
	Next Position
}

// Bounds of a query.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	MaxWait      = 5 * time.Minute
	// scanPage is how many audit events one read examines.
	scanPage = 500
)

// Events reads the public events after q.Since that q's filter selects.
// With a wait, it answers as soon as one exists, or empty when the wait
// ends. Any authenticated principal may read the stream: every role can
// read the releases, artifacts and settings the events describe, and the
// events name no secret.
func (s *Service) Events(ctx context.Context, _ access.Principal, q Query) (Page, error) {
	switch {
	case q.Limit < 0:
		return Page{}, fmt.Errorf("%w: limit must not be negative", errdef.ErrInvalidInput)
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit > MaxLimit:
		q.Limit = MaxLimit
	}
	if q.Wait < 0 || q.Wait > MaxWait {
		return Page{}, fmt.Errorf("%w: wait must be between 0 and %s", errdef.ErrInvalidInput, MaxWait)
	}
	if err := q.Filter.Validate(); err != nil {
		return Page{}, err
	}
	if q.Latest {
		last, err := s.store.LastSeq(ctx)
		if err != nil {
			return Page{}, err
		}
		q.Since = Position{Seq: last, N: AllOfSeq}
	}
	// Waits are real time, whatever the domain's clock says.
	deadline := time.Now().Add(q.Wait)
	var timer *time.Timer
	for {
		// Subscribed before the read, so a write between the read and the
		// wait still wakes it.
		changed := s.notify.Changed()
		page, err := s.read(ctx, q)
		if err != nil || len(page.Events) > 0 || q.Wait == 0 {
			return page, err
		}
		q.Since = page.Next
		left := time.Until(deadline)
		if left <= 0 {
			return page, nil
		}
		if timer == nil {
			timer = time.NewTimer(min(left, s.recheck))
			defer timer.Stop()
		} else {
			timer.Reset(min(left, s.recheck))
		}
		select {
		case <-ctx.Done():
			return page, nil
		case <-s.stopped:
			return page, nil
		case <-changed:
		case <-timer.C:
		}
	}
}

// read is one pass over the audit events after q.Since, until q.Limit
// public events are selected, or some are and a page of the log is read,
// or the end of the log: an empty answer means nothing after q.Since
// matches now, whatever the filter skipped, so pollers can stop there.
func (s *Service) read(ctx context.Context, q Query) (Page, error) {
	page := Page{Events: []Event{}, Next: q.Since}
	after := max(q.Since.Seq-1, 0)
	for {
		evs, err := s.audit.Events(ctx, after, scanPage)
		if err != nil {
			return page, err
		}
		for _, ae := range evs {
			for _, e := range Public(ae) {
				if !e.Position.After(page.Next) {
					continue
				}
				if q.Filter.Matches(e) {
					page.Events = append(page.Events, e)
					page.Next = e.Position
					if len(page.Events) == q.Limit {
						return page, nil
					}
				}
			}
			page.Next = Position{Seq: ae.Seq, N: AllOfSeq}
		}
		if len(evs) < scanPage || len(page.Events) > 0 {
			return page, nil
		}
		after = evs[len(evs)-1].Seq
	}
}
