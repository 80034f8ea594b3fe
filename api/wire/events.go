package wire

import (
	"encoding/json"
	"time"
)

// Event is one event of the stream (GET /events) and the body of a
// webhook delivery: an audited change, typed (docs/events.md).
type Event struct {
	// ID is "SEQ.N", in stream order; pass it as ?since= to read on.
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Subject   string          `json:"subject"`
	Principal EventPrincipal  `json:"principal"`
	Data      json.RawMessage `json:"data"`
}

// EventPrincipal is who made the change.
type EventPrincipal struct {
	Name    string `json:"name"`
	TokenID string `json:"tokenId,omitempty"`
	// Issuer and Subject: the single sign-on identity of a person's
	// session; omitted for machine tokens.
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// EventPage answers GET /events: the events after ?since=, and where the
// next request starts (?since=NEXT), which is past events a filter
// skipped.
type EventPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next"`
}

// WebhookRequest is the body of POST /webhooks (admins).
type WebhookRequest struct {
	// URL receives the deliveries: https, or http to a loopback address.
	URL string `json:"url"`
	// Secret signs every delivery (X-DML-Signature); 16 to 512 bytes,
	// never shown again.
	Secret string `json:"secret"`
	// Events are types ("gate.opened") or prefix patterns ("gate.*");
	// empty: every event.
	Events []string `json:"events"`
	// Match are name patterns ("payments/*") of the artifacts and
	// releases the events concern; empty: every name.
	Match []string `json:"match"`
	// Environments selects deployments and deploy gates of those
	// environments; empty: every event.
	Environments []string `json:"environments"`
}

// Webhook is a registered webhook: never its secret.
type Webhook struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Events       []string  `json:"events"`
	Match        []string  `json:"match"`
	Environments []string  `json:"environments"`
	CreatedBy    string    `json:"createdBy"`
	CreatedAt    time.Time `json:"createdAt"`
}

// WebhookList answers GET /webhooks, oldest first.
type WebhookList struct {
	Webhooks []Webhook `json:"webhooks"`
}

// Delivery is one event sent (or to send) to a webhook, and what came of
// it. Times not set are null; lastStatus is 0 when no answer came.
type Delivery struct {
	ID        int64  `json:"id"`
	EventID   string `json:"eventId"`
	EventType string `json:"eventType"`
	// State: pending, delivered or failed (every attempt failed).
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"lastStatus"`
	LastError     string     `json:"lastError"`
	LastAttemptAt *time.Time `json:"lastAttemptAt"`
	NextAttemptAt *time.Time `json:"nextAttemptAt"`
	DeliveredAt   *time.Time `json:"deliveredAt"`
	CreatedAt     time.Time  `json:"createdAt"`
	// RedeliveryOf is the delivery this one sends again, or 0.
	RedeliveryOf int64 `json:"redeliveryOf"`
}

// DeliveryList answers GET /webhooks/{id}/deliveries, newest first.
type DeliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
}
