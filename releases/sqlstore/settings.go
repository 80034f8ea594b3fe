package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// SetSetting stores value under key (replacing it) and records
// "settings.set" with the key as subject.
func (x *Releases) SetSetting(ctx context.Context, actor access.Actor, key string, value json.RawMessage) (lifecycle.Setting, error) {
	if err := checkJSON(value); err != nil {
		return lifecycle.Setting{}, fmt.Errorf("setting %s: %w", key, err)
	}
	return x.ModifySetting(ctx, actor, key, func(lifecycle.Setting, bool) (json.RawMessage, error) { return value, nil })
}

// ModifySetting lets fn decide key's next value inside one write
// transaction. The key's lock (settingLock) keeps a decision about a key
// that may have no row yet still on a dialect with several writers.
func (x *Releases) ModifySetting(ctx context.Context, actor access.Actor, key string, fn func(cur lifecycle.Setting, found bool) (json.RawMessage, error)) (lifecycle.Setting, error) {
	db := x.db
	if key == "" {
		return lifecycle.Setting{}, fmt.Errorf("%w: setting needs a key", errdef.ErrInvalidInput)
	}
	var (
		stored lifecycle.Setting
		fnErr  error
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		stored, fnErr = lifecycle.Setting{}, nil
		if err := db.lock(ctx, tx, settingLock(key)); err != nil {
			return err
		}
		cur, err := db.setting(ctx, tx, key)
		found := err == nil
		if err != nil && !errors.Is(err, errdef.ErrNotFound) {
			return err
		}
		value, err := fn(cur, found)
		if err != nil {
			fnErr = err
			return err
		}
		if value == nil {
			stored = cur
			return nil
		}
		if err := checkJSON(value); err != nil {
			fnErr = fmt.Errorf("setting %s: %w", key, err)
			return fnErr
		}
		stored = lifecycle.Setting{Key: key, Value: bytes.Clone(value), UpdatedBy: actor.Name, UpdatedAt: fromNanos(toNanos(db.now()))}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO settings (key, value, updated_by, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at`),
			stored.Key, string(stored.Value), stored.UpdatedBy, toNanos(stored.UpdatedAt))
		if err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, stored.UpdatedAt, actor, lifecycle.ActionSettingSet, key, stored.Value)
	})
	if fnErr != nil {
		return lifecycle.Setting{}, fnErr
	}
	if err != nil {
		return lifecycle.Setting{}, fmt.Errorf("sqlstore: set setting %s: %w", key, db.translate(err))
	}
	return stored, nil
}

// Setting returns the value under key; errdef.ErrNotFound if never set.
func (x *Releases) Setting(ctx context.Context, key string) (lifecycle.Setting, error) {
	return x.db.setting(ctx, x.db.sql, key)
}

// setting reads a setting through q: the database, or a transaction.
func (db *DB) setting(ctx context.Context, q querier, key string) (lifecycle.Setting, error) {
	s := lifecycle.Setting{Key: key}
	var (
		value   string
		updated int64
	)
	err := q.QueryRowContext(ctx, db.q(`SELECT value, updated_by, updated_at FROM settings WHERE key = ?`), key).Scan(&value, &s.UpdatedBy, &updated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return lifecycle.Setting{}, fmt.Errorf("setting %s: %w", key, errdef.ErrNotFound)
	case err != nil:
		return lifecycle.Setting{}, fmt.Errorf("sqlstore: setting %s: %w", key, db.translate(err))
	}
	s.Value = json.RawMessage(value)
	s.UpdatedAt = fromNanos(updated)
	return s, nil
}
