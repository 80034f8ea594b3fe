package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/wire"
)

// Events reads the event stream; Webhooks manages webhooks (admins).
func (c *Client) Events() Events { return Events{c} }

// Webhooks registers, lists and removes webhooks and reads their
// deliveries (admins).
func (c *Client) Webhooks() Webhooks { return Webhooks{c} }

// Events is the client of the event stream.
type Events struct{ c *Client }

// EventQuery asks for events after Since ("" for the start, "latest" for
// only what comes next).
type EventQuery struct {
	Since string
	Limit int
	// Wait, when positive, waits on the server that long for a first
	// event (a long-poll; at most 5m).
	Wait         time.Duration
	Types        []string
	Match        []string
	Environments []string
}

// List reads one page of events. Pass page.Next as the next Since.
func (x Events) List(ctx context.Context, q EventQuery) (wire.EventPage, error) {
	v := url.Values{}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Wait > 0 {
		v.Set("wait", q.Wait.String())
	}
	if len(q.Types) > 0 {
		v.Set("type", strings.Join(q.Types, ","))
	}
	if len(q.Match) > 0 {
		v.Set("match", strings.Join(q.Match, ","))
	}
	if len(q.Environments) > 0 {
		v.Set("environment", strings.Join(q.Environments, ","))
	}
	var page wire.EventPage
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/events", query: v}, &page, http.StatusOK)
	return page, err
}

// Webhooks is the client of webhooks.
type Webhooks struct{ c *Client }

// Create registers a webhook; its secret is never returned.
func (x Webhooks) Create(ctx context.Context, req wire.WebhookRequest) (wire.Webhook, error) {
	for _, l := range []*[]string{&req.Events, &req.Match, &req.Environments} {
		if *l == nil {
			*l = []string{}
		}
	}
	r, err := jsonRequest(http.MethodPost, "/api/v1/webhooks", req)
	if err != nil {
		return wire.Webhook{}, err
	}
	var w wire.Webhook
	_, err = x.c.call(ctx, r, &w, http.StatusCreated)
	return w, err
}

// List lists the webhooks, oldest first.
func (x Webhooks) List(ctx context.Context) ([]wire.Webhook, error) {
	var out wire.WebhookList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/webhooks"}, &out, http.StatusOK)
	return out.Webhooks, err
}

// Get returns one webhook.
func (x Webhooks) Get(ctx context.Context, id string) (wire.Webhook, error) {
	var w wire.Webhook
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/webhooks/" + url.PathEscape(id)}, &w, http.StatusOK)
	return w, err
}

// Delete removes a webhook and its deliveries.
func (x Webhooks) Delete(ctx context.Context, id string) error {
	_, err := x.c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/webhooks/" + url.PathEscape(id)}, nil, http.StatusNoContent)
	return err
}

// Deliveries lists up to limit (0: 100) deliveries of a webhook, newest
// first.
func (x Webhooks) Deliveries(ctx context.Context, id string, limit int) ([]wire.Delivery, error) {
	v := url.Values{}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out wire.DeliveryList
	_, err := x.c.call(ctx, request{method: http.MethodGet, path: "/api/v1/webhooks/" + url.PathEscape(id) + "/deliveries", query: v}, &out, http.StatusOK)
	return out.Deliveries, err
}

// Redeliver sends a finished delivery again; the answer is the new
// delivery.
func (x Webhooks) Redeliver(ctx context.Context, id string, delivery int64) (wire.Delivery, error) {
	var d wire.Delivery
	_, err := x.c.call(ctx, request{method: http.MethodPost,
		path: "/api/v1/webhooks/" + url.PathEscape(id) + "/deliveries/" + strconv.FormatInt(delivery, 10) + "/redeliver"}, &d, http.StatusAccepted)
	return d, err
}
