package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/events"
)

// Webhooks is the store of webhooks and their outbox of deliveries.
type Webhooks struct{ db *DB }

var _ events.Store = (*Webhooks)(nil)

// Webhooks returns the webhook store.
func (db *DB) Webhooks() events.Store { return &Webhooks{db} }

// outboxLock serialises what reads or changes the set of webhooks and
// their queues as a whole: enqueueing (one dispatcher at a time reads the
// events after the cursors), deleting a webhook, redelivering.
const outboxLock = "webhooks.outbox"

// filterDoc is a webhook's filter as stored.
type filterDoc struct {
	Types        []string `json:"types"`
	Match        []string `json:"match"`
	Environments []string `json:"environments"`
}

const webhookColumns = `id, url, filter, secret, created_by, created_at, event_cursor`

func scanWebhook(r rowScanner) (events.Webhook, error) {
	var (
		w       events.Webhook
		filter  string
		created int64
	)
	if err := r.Scan(&w.ID, &w.URL, &filter, &w.SealedSecret, &w.CreatedBy, &created, &w.Cursor); err != nil {
		return events.Webhook{}, err
	}
	var f filterDoc
	if err := json.Unmarshal([]byte(filter), &f); err != nil {
		return events.Webhook{}, fmt.Errorf("webhook %s: stored filter: %w", w.ID, err)
	}
	w.Filter = events.Filter{Types: nonNil(f.Types), Match: nonNil(f.Match), Environments: nonNil(f.Environments)}
	w.CreatedAt = fromNanos(created)
	return w, nil
}

// CreateWebhook stores w with the cursor at the last event, its own
// creation's.
func (x *Webhooks) CreateWebhook(ctx context.Context, actor access.Actor, w events.Webhook, details json.RawMessage) (events.Webhook, error) {
	db := x.db
	if w.ID == "" || w.URL == "" || len(w.SealedSecret) == 0 {
		return events.Webhook{}, fmt.Errorf("%w: a webhook needs an id, a URL and a sealed secret", errdef.ErrInvalidInput)
	}
	if err := checkJSON(details); len(details) > 0 && err != nil {
		return events.Webhook{}, fmt.Errorf("webhook %s: %w", w.ID, err)
	}
	filter, err := json.Marshal(filterDoc{Types: nonNil(w.Types), Match: nonNil(w.Match), Environments: nonNil(w.Environments)})
	if err != nil {
		return events.Webhook{}, err
	}
	w.CreatedAt = fromNanos(toNanos(db.timeOrNowValue(w.CreatedAt)))
	err = db.write(ctx, func(tx *sql.Tx) error {
		if err := db.recordEvent(ctx, tx, w.CreatedAt, actor, events.ActionWebhookCreated, w.ID, details); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&w.Cursor); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			w.ID, w.URL, string(filter), w.SealedSecret, actor.Name, toNanos(w.CreatedAt), w.Cursor)
		return err
	})
	if err != nil {
		return events.Webhook{}, fmt.Errorf("sqlstore: create webhook %s: %w", w.ID, db.translate(err))
	}
	w.CreatedBy = actor.Name
	w.Filter = events.Filter{Types: nonNil(w.Types), Match: nonNil(w.Match), Environments: nonNil(w.Environments)}
	return w, nil
}

// timeOrNowValue is t, or the time of the call when t is zero.
func (db *DB) timeOrNowValue(t time.Time) time.Time {
	if t.IsZero() {
		return db.now()
	}
	return t
}

// DeleteWebhook removes a webhook; its deliveries go with it (ON DELETE
// CASCADE).
func (x *Webhooks) DeleteWebhook(ctx context.Context, actor access.Actor, id string) error {
	db := x.db
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := db.lock(ctx, tx, outboxLock); err != nil {
			return err
		}
		var url string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT url FROM webhooks WHERE id = ?`), id).Scan(&url); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM webhook_deliveries WHERE webhook_id = ?`), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM webhooks WHERE id = ?`), id); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, events.ActionWebhookDeleted, id, struct {
			URL string `json:"url"`
		}{url})
	})
	if err != nil {
		return fmt.Errorf("sqlstore: delete webhook %s: %w", id, db.translate(err))
	}
	return nil
}

// Webhooks lists every webhook, oldest first.
func (x *Webhooks) Webhooks(ctx context.Context) ([]events.Webhook, error) {
	list, err := x.db.webhooks(ctx, x.db.sql)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: webhooks: %w", x.db.translate(err))
	}
	return list, nil
}

func (db *DB) webhooks(ctx context.Context, q querier) ([]events.Webhook, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []events.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// Webhook returns one webhook.
func (x *Webhooks) Webhook(ctx context.Context, id string) (events.Webhook, error) {
	db := x.db
	w, err := scanWebhook(db.sql.QueryRowContext(ctx, db.q(`SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return events.Webhook{}, fmt.Errorf("webhook %s: %w", id, errdef.ErrNotFound)
	}
	if err != nil {
		return events.Webhook{}, fmt.Errorf("sqlstore: webhook %s: %w", id, db.translate(err))
	}
	return w, nil
}

// Enqueue moves events after the cursors into the outbox.
func (x *Webhooks) Enqueue(ctx context.Context, limit int, plan func([]events.Webhook, []audit.Event) ([]events.Delivery, error)) (int, error) {
	db := x.db
	limit, err := pageLimit(limit)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	// Most rounds find nothing new: a read says so without taking the
	// write lock (SQLite's is the whole database's).
	var behind bool
	if err := db.sql.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks
		WHERE event_cursor < (SELECT COALESCE(MAX(seq), 0) FROM events))`).Scan(&behind); err != nil {
		return 0, fmt.Errorf("sqlstore: enqueue deliveries: %w", db.translate(err))
	}
	if !behind {
		return 0, nil
	}
	var read int
	var planErr error
	err = db.write(ctx, func(tx *sql.Tx) error {
		read, planErr = 0, nil
		if err := db.lock(ctx, tx, outboxLock); err != nil {
			return err
		}
		hooks, err := db.webhooks(ctx, tx)
		if err != nil || len(hooks) == 0 {
			return err
		}
		from := hooks[0].Cursor
		for _, w := range hooks {
			from = min(from, w.Cursor)
		}
		evs, err := db.events(ctx, tx, from, limit, true)
		if err != nil || len(evs) == 0 {
			return err
		}
		read = len(evs)
		list, err := plan(hooks, evs)
		if err != nil {
			planErr = err
			return err
		}
		known := map[string]bool{}
		for _, w := range hooks {
			known[w.ID] = true
		}
		now := toNanos(db.now())
		for _, d := range list {
			if !known[d.WebhookID] {
				planErr = fmt.Errorf("%w: enqueue: delivery of %s to unknown webhook %q", errdef.ErrInvalidInput, d.EventID, d.WebhookID)
				return planErr
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO webhook_deliveries
				(webhook_id, event_id, event_type, body, state, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)`),
				d.WebhookID, d.EventID, d.EventType, string(d.Body), now, now); err != nil {
				return err
			}
		}
		last := evs[len(evs)-1].Seq
		_, err = tx.ExecContext(ctx, db.q(`UPDATE webhooks SET event_cursor = ? WHERE event_cursor < ?`), last, last)
		return err
	})
	if planErr != nil {
		return 0, planErr
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: enqueue deliveries: %w", db.translate(err))
	}
	return read, nil
}

const deliveryColumns = `id, webhook_id, event_id, event_type, body, state, attempts, last_status, last_error,
	last_attempt_at, next_attempt_at, delivered_at, created_at, redelivery_of`

func scanDelivery(r rowScanner) (events.Delivery, error) {
	var (
		d                         events.Delivery
		body, state               string
		lastAt, nextAt, delivered sql.NullInt64
		created                   int64
		of                        sql.NullInt64
	)
	if err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &body, &state, &d.Attempts, &d.LastStatus, &d.LastError,
		&lastAt, &nextAt, &delivered, &created, &of); err != nil {
		return events.Delivery{}, err
	}
	d.Body, d.State = []byte(body), events.DeliveryState(state)
	d.LastAttemptAt, d.NextAttemptAt, d.DeliveredAt = optionalTime(lastAt), optionalTime(nextAt), optionalTime(delivered)
	d.CreatedAt, d.RedeliveryOf = fromNanos(created), of.Int64
	return d, nil
}

func (db *DB) deliveries(ctx context.Context, q querier, where string, args ...any) ([]events.Delivery, error) {
	rows, err := q.QueryContext(ctx, db.q(`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE `+where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []events.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimDeliveries leases the due head of each webhook's queue. On
// PostgreSQL the heads are locked FOR UPDATE SKIP LOCKED, so a claim of
// another replica running at the same moment passes over them instead of
// waiting, and the lease written keeps them off once this commits; SQLite
// has one writer, whose transaction excludes every other.
func (x *Webhooks) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]events.Delivery, error) {
	db := x.db
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("%w: a claim needs an owner, a positive lease and a positive limit", errdef.ErrInvalidInput)
	}
	query := `SELECT d.id FROM webhook_deliveries d
		WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND d.lease_until <= ?
		AND d.id = (SELECT MIN(h.id) FROM webhook_deliveries h WHERE h.webhook_id = d.webhook_id AND h.state = 'pending')
		ORDER BY d.id LIMIT ?`
	// Most rounds find nothing due: a read says so without taking the
	// write lock.
	var due bool
	if err := db.sql.QueryRowContext(ctx, db.q(`SELECT EXISTS (`+query+`)`), toNanos(now), toNanos(now), limit).Scan(&due); err != nil {
		return nil, fmt.Errorf("sqlstore: claim deliveries: %w", db.translate(err))
	}
	if !due {
		return nil, nil
	}
	var out []events.Delivery
	err := db.write(ctx, func(tx *sql.Tx) error {
		out = nil
		query := query
		if db.dialect.lockRow != "" {
			query += " FOR UPDATE OF d SKIP LOCKED"
		}
		rows, err := tx.QueryContext(ctx, db.q(query), toNanos(now), toNanos(now), limit)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil || len(ids) == 0 {
			return err
		}
		in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
		args := append([]any{owner, toNanos(now.Add(lease))}, ids...)
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? WHERE id IN `+in), args...); err != nil {
			return err
		}
		out, err = db.deliveries(ctx, tx, `id IN `+in+` ORDER BY id`, ids...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim deliveries: %w", db.translate(err))
	}
	return out, nil
}

// FinishAttempt records an attempt of a delivery owner still holds.
func (x *Webhooks) FinishAttempt(ctx context.Context, id int64, owner string, a events.Attempt) (bool, error) {
	db := x.db
	state, next, delivered := events.DeliveryFailed, sql.NullInt64{}, sql.NullInt64{}
	switch {
	case a.Delivered:
		state, delivered = events.DeliveryDelivered, sql.NullInt64{Int64: toNanos(a.At), Valid: true}
	case a.Next != nil:
		state, next = events.DeliveryPending, sql.NullInt64{Int64: toNanos(*a.Next), Valid: true}
	}
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?,
			last_attempt_at = ?, state = ?, next_attempt_at = ?, delivered_at = ?, lease_owner = '', lease_until = 0
			WHERE id = ? AND lease_owner = ? AND state = 'pending'`),
			a.Status, a.Error, toNanos(a.At), string(state), next, delivered, id, owner)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: record attempt of delivery %d: %w", id, db.translate(err))
	}
	return n == 1, nil
}

// Deliveries lists a webhook's deliveries, newest first.
func (x *Webhooks) Deliveries(ctx context.Context, webhookID string, limit int) ([]events.Delivery, error) {
	db := x.db
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	list, err := db.deliveries(ctx, db.sql, `webhook_id = ? ORDER BY id DESC LIMIT ?`, webhookID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: deliveries of %s: %w", webhookID, db.translate(err))
	}
	return list, nil
}

// Delivery returns one delivery of a webhook.
func (x *Webhooks) Delivery(ctx context.Context, webhookID string, id int64) (events.Delivery, error) {
	return x.db.delivery(ctx, x.db.sql, webhookID, id)
}

func (db *DB) delivery(ctx context.Context, q querier, webhookID string, id int64) (events.Delivery, error) {
	list, err := db.deliveries(ctx, q, `webhook_id = ? AND id = ?`, webhookID, id)
	switch {
	case err != nil:
		return events.Delivery{}, fmt.Errorf("sqlstore: delivery %d of %s: %w", id, webhookID, db.translate(err))
	case len(list) == 0:
		return events.Delivery{}, fmt.Errorf("delivery %d of webhook %s: %w", id, webhookID, errdef.ErrNotFound)
	}
	return list[0], nil
}

// Redeliver appends a copy of a finished delivery to its webhook's queue.
func (x *Webhooks) Redeliver(ctx context.Context, actor access.Actor, webhookID string, id int64, now time.Time) (events.Delivery, error) {
	db := x.db
	var out events.Delivery
	var refused error
	err := db.write(ctx, func(tx *sql.Tx) error {
		refused = nil
		if err := db.lock(ctx, tx, outboxLock); err != nil {
			return err
		}
		d, err := db.delivery(ctx, tx, webhookID, id)
		if err != nil {
			refused = err
			return err
		}
		if d.State == events.DeliveryPending {
			refused = fmt.Errorf("%w: %w: delivery %d of webhook %s is still pending (attempt %d); it will be sent",
				errdef.ErrConflict, events.ErrDeliveryNotFinished, id, webhookID, d.Attempts+1)
			return refused
		}
		var newID int64
		if err := tx.QueryRowContext(ctx, db.q(`INSERT INTO webhook_deliveries
			(webhook_id, event_id, event_type, body, state, next_attempt_at, created_at, redelivery_of)
			VALUES (?, ?, ?, ?, 'pending', ?, ?, ?) RETURNING id`),
			webhookID, d.EventID, d.EventType, string(d.Body), toNanos(now), toNanos(now), id).Scan(&newID); err != nil {
			return err
		}
		if err := db.recordEvent(ctx, tx, now, actor, events.ActionWebhookRedelivered, webhookID, struct {
			Delivery   int64  `json:"delivery"`
			Redelivery int64  `json:"redelivery"`
			Event      string `json:"event"`
		}{id, newID, d.EventID}); err != nil {
			return err
		}
		out, err = db.delivery(ctx, tx, webhookID, newID)
		return err
	})
	if refused != nil {
		return events.Delivery{}, refused
	}
	if err != nil {
		return events.Delivery{}, fmt.Errorf("sqlstore: redeliver %d of %s: %w", id, webhookID, db.translate(err))
	}
	return out, nil
}

// LastSeq is the Seq of the last recorded event.
func (x *Webhooks) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := x.db.sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlstore: last event: %w", x.db.translate(err))
	}
	return seq, nil
}
