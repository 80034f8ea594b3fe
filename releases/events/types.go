package events

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
)

// Event actions of webhooks (audited like every other change).
const (
	ActionWebhookCreated     = "webhook.created"
	ActionWebhookDeleted     = "webhook.deleted"
	ActionWebhookRedelivered = "webhook.redelivered"
)

// ErrDeliveryNotFinished refuses to redeliver a delivery still being
// tried: it will be sent anyway.
var ErrDeliveryNotFinished = errors.New("delivery not finished")

// Event is one public event: what webhooks receive and pollers read.
// Its JSON encoding is the body of a webhook delivery.
type Event struct {
	// ID is "SEQ.N": the audit event's sequence number and the index of
	// this public event among those it gave. IDs order the stream.
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Subject   string          `json:"subject"`
	Principal Principal       `json:"principal"`
	Data      json.RawMessage `json:"data"`

	// Position is where the event is in the stream (ID, parsed).
	Position Position `json:"-"`
	// Names are the artifact or release names the event concerns (what a
	// webhook's match patterns select); Environments the environments it
	// concerns (a deployment's, a deploy gate's).
	Names        []string `json:"-"`
	Environments []string `json:"-"`
}

// Principal is who made the change.
type Principal struct {
	Name    string `json:"name"`
	TokenID string `json:"tokenId,omitempty"`
	// Issuer and Subject: the single sign-on identity of a person's
	// session (docs/sso.md); omitted for machine tokens.
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// Webhook is a registered receiver of events.
type Webhook struct {
	ID  string
	URL string
	Filter
	// SealedSecret is the signing secret, encrypted with the server's
	// webhook key (sealSecret); the plain secret is never stored.
	SealedSecret []byte
	CreatedBy    string
	CreatedAt    time.Time
	// Cursor is the last audit sequence number examined for this webhook:
	// events after it are still to be enqueued.
	Cursor int64
}

// DeliveryState is where a delivery stands.
type DeliveryState string

const (
	// DeliveryPending: waiting for its turn or its next attempt.
	DeliveryPending DeliveryState = "pending"
	// DeliveryDelivered: a receiver answered 2xx.
	DeliveryDelivered DeliveryState = "delivered"
	// DeliveryFailed: every attempt failed; the next delivery goes on.
	DeliveryFailed DeliveryState = "failed"
)

// Delivery is one event to send to one webhook, and what came of it.
type Delivery struct {
	ID        int64
	WebhookID string
	EventID   string
	EventType string
	// Body is the event's JSON, fixed when the delivery is enqueued, so
	// every attempt and every redelivery sends the same bytes.
	Body          []byte
	State         DeliveryState
	Attempts      int
	LastStatus    int
	LastError     string
	LastAttemptAt *time.Time
	NextAttemptAt *time.Time
	DeliveredAt   *time.Time
	CreatedAt     time.Time
	// RedeliveryOf is the delivery this one sends again, or 0.
	RedeliveryOf int64
}

// Attempt is the outcome of one attempt to send a delivery.
type Attempt struct {
	At     time.Time
	Status int    // the receiver's status code, 0 if none came
	Error  string // why the attempt failed, "" when delivered
	// Delivered: the receiver answered 2xx. Otherwise Next is when to try
	// again, nil to give up (the delivery fails).
	Delivered bool
	Next      *time.Time
}

// Store persists webhooks and their outbox of deliveries. Webhook
// creation, deletion and redelivery record their audit event in the same
// transaction, like every change.
type Store interface {
	// CreateWebhook stores w, recording ActionWebhookCreated with details;
	// the stored webhook's Cursor is the last event's Seq, its own
	// creation included: it receives what happens after it.
	CreateWebhook(ctx context.Context, actor access.Actor, w Webhook, details json.RawMessage) (Webhook, error)
	// DeleteWebhook removes a webhook and its deliveries, recording
	// ActionWebhookDeleted; errdef.ErrNotFound for an unknown id.
	DeleteWebhook(ctx context.Context, actor access.Actor, id string) error
	// Webhooks lists every webhook, oldest first; Webhook returns one
	// (errdef.ErrNotFound).
	Webhooks(ctx context.Context) ([]Webhook, error)
	Webhook(ctx context.Context, id string) (Webhook, error)
	// Enqueue reads, in one write transaction that no other Enqueue
	// enters, every webhook and up to limit audit events after the
	// smallest cursor, calls plan with them, inserts the deliveries it
	// returns (pending, due at once, in the order given) and moves every
	// webhook's cursor to the last event read. It returns the number of
	// events read: less than limit means the stream is drained. A crash
	// before the commit leaves cursors and deliveries as they were, so no
	// event is lost nor skipped.
	Enqueue(ctx context.Context, limit int, plan func(hooks []Webhook, evs []audit.Event) ([]Delivery, error)) (int, error)
	// ClaimDeliveries leases up to limit due deliveries to owner until
	// now+lease: for each webhook only its oldest pending delivery (the
	// next waits for the one before to be delivered or to fail), and none
	// another owner holds an unexpired lease on. Claims of several
	// processes at once never return the same delivery.
	ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// FinishAttempt records an attempt of a delivery owner holds and ends
	// its lease; false when the lease was lost (the attempt is then not
	// recorded: the new owner's is).
	FinishAttempt(ctx context.Context, id int64, owner string, a Attempt) (bool, error)
	// Deliveries lists up to limit deliveries of a webhook, newest first;
	// Delivery returns one (errdef.ErrNotFound).
	Deliveries(ctx context.Context, webhookID string, limit int) ([]Delivery, error)
	Delivery(ctx context.Context, webhookID string, id int64) (Delivery, error)
	// Redeliver enqueues a finished delivery again, as a new delivery at
	// the end of the webhook's queue with the same event and body,
	// recording ActionWebhookRedelivered; ErrDeliveryNotFinished while it
	// is pending.
	Redeliver(ctx context.Context, actor access.Actor, webhookID string, id int64, now time.Time) (Delivery, error)
	// LastSeq is the Seq of the last recorded event, 0 when none.
	LastSeq(ctx context.Context) (int64, error)
}
