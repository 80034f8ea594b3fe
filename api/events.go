package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/events"
	"github.com/gin-gonic/gin"
)

func (s *Server) routeEvents(g *gin.RouterGroup) {
	g.GET("/events", s.listEvents)
	g.POST("/webhooks", s.createWebhook)
	g.GET("/webhooks", s.listWebhooks)
	g.GET("/webhooks/:id", s.getWebhook)
	g.DELETE("/webhooks/:id", s.deleteWebhook)
	g.GET("/webhooks/:id/deliveries", s.listDeliveries)
	g.POST("/webhooks/:id/deliveries/:delivery/redeliver", s.redeliver)
}

// listEvents answers the events after ?since= (an event id, or "latest"
// for only what comes next), at most ?limit=, filtered by ?type= (types or
// prefix patterns, repeated or comma-separated), ?match= and
// ?environment=; with ?wait= (a duration: 30s, or seconds) it waits for
// the first event that long.
func (s *Server) listEvents(c *gin.Context) {
	q, err := eventQuery(c)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	page, err := s.dml.Events.Events(c.Request.Context(), principal(c), q)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.EventPage{Events: make([]wire.Event, len(page.Events)), Next: page.Next.String()}
	for i, e := range page.Events {
		out.Events[i] = toEvent(e)
	}
	c.JSON(http.StatusOK, out)
}

func eventQuery(c *gin.Context) (events.Query, error) {
	var q events.Query
	var err error
	switch since := c.Query("since"); since {
	case "latest":
		q.Latest = true
	default:
		if q.Since, err = events.ParsePosition(since); err != nil {
			return q, fmt.Errorf("since: %w", err)
		}
	}
	if l := c.Query("limit"); l != "" {
		if q.Limit, err = strconv.Atoi(l); err != nil {
			return q, fmt.Errorf("%w: limit must be an integer", errdef.ErrInvalidInput)
		}
	}
	if w := c.Query("wait"); w != "" {
		if q.Wait, err = parseWait(w); err != nil {
			return q, err
		}
	}
	q.Types, q.Match, q.Environments = listQuery(c, "type"), listQuery(c, "match"), listQuery(c, "environment")
	return q, nil
}

// parseWait reads a duration ("30s", "2m") or a number of seconds.
func parseWait(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%w: wait must be a duration (30s) or seconds", errdef.ErrInvalidInput)
	}
	return d, nil
}

// listQuery gathers a repeated, comma-separated query parameter.
func listQuery(c *gin.Context, name string) []string {
	var out []string
	for _, v := range c.QueryArray(name) {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func toEvent(e events.Event) wire.Event {
	return wire.Event{ID: e.ID, Type: e.Type, Time: e.Time, Subject: e.Subject,
		Principal: wire.EventPrincipal{Name: e.Principal.Name, TokenID: e.Principal.TokenID, Issuer: e.Principal.Issuer, Subject: e.Principal.Subject}, Data: e.Data}
}

func (s *Server) createWebhook(c *gin.Context) {
	var req wire.WebhookRequest
	if !s.bindJSON(c, &req) {
		return
	}
	w, err := s.dml.Events.CreateWebhook(c.Request.Context(), principal(c), events.WebhookRequest{
		URL: req.URL, Secret: req.Secret, Filter: events.Filter{Types: req.Events, Match: req.Match, Environments: req.Environments},
	})
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Header("Location", "/api/v1/webhooks/"+w.ID)
	c.JSON(http.StatusCreated, toWebhook(w))
}

// toWebhook is a webhook as shown: never its secret, sealed or not.
func toWebhook(w events.Webhook) wire.Webhook {
	return wire.Webhook{ID: w.ID, URL: w.URL, Events: orEmpty(w.Types), Match: orEmpty(w.Match), Environments: orEmpty(w.Environments),
		CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt}
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (s *Server) listWebhooks(c *gin.Context) {
	list, err := s.dml.Events.Webhooks(c.Request.Context(), principal(c))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.WebhookList{Webhooks: make([]wire.Webhook, len(list))}
	for i, w := range list {
		out.Webhooks[i] = toWebhook(w)
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getWebhook(c *gin.Context) {
	w, err := s.dml.Events.Webhook(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusOK, toWebhook(w))
}

func (s *Server) deleteWebhook(c *gin.Context) {
	if err := s.dml.Events.DeleteWebhook(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) listDeliveries(c *gin.Context) {
	limit := 0
	if l := c.Query("limit"); l != "" {
		var err error
		if limit, err = strconv.Atoi(l); err != nil {
			s.writeError(c, fmt.Errorf("%w: limit must be an integer", errdef.ErrInvalidInput), nil)
			return
		}
	}
	list, err := s.dml.Events.Deliveries(c.Request.Context(), principal(c), c.Param("id"), limit)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	out := wire.DeliveryList{Deliveries: make([]wire.Delivery, len(list))}
	for i, d := range list {
		out.Deliveries[i] = toDelivery(d)
	}
	c.JSON(http.StatusOK, out)
}

func toDelivery(d events.Delivery) wire.Delivery {
	return wire.Delivery{ID: d.ID, EventID: d.EventID, EventType: d.EventType, State: string(d.State), Attempts: d.Attempts,
		LastStatus: d.LastStatus, LastError: d.LastError, LastAttemptAt: d.LastAttemptAt, NextAttemptAt: d.NextAttemptAt,
		DeliveredAt: d.DeliveredAt, CreatedAt: d.CreatedAt, RedeliveryOf: d.RedeliveryOf}
}

// redeliver enqueues a finished delivery again: 202, the new delivery.
func (s *Server) redeliver(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("delivery"), 10, 64)
	if err != nil {
		s.writeError(c, fmt.Errorf("%w: delivery %q of webhook %s", errdef.ErrNotFound, c.Param("delivery"), c.Param("id")), nil)
		return
	}
	d, err := s.dml.Events.Redeliver(c.Request.Context(), principal(c), c.Param("id"), id)
	if err != nil {
		s.writeError(c, err, nil)
		return
	}
	c.JSON(http.StatusAccepted, toDelivery(d))
}
