package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases"
)

// SetSetting stores value under key (replacing it) and records
// "settings.set" with the key as subject.
func (db *DB) SetSetting(ctx context.Context, actor releases.Actor, key string, value json.RawMessage) (releases.Setting, error) {
	if key == "" {
		return releases.Setting{}, fmt.Errorf("%w: setting needs a key", releases.ErrInvalidInput)
	}
	if err := checkJSON(value); err != nil {
		return releases.Setting{}, fmt.Errorf("setting %s: %w", key, err)
	}
	s := releases.Setting{Key: key, Value: bytes.Clone(value), UpdatedBy: actor.Name, UpdatedAt: fromNanos(toNanos(db.now()))}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO settings (key, value, updated_by, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at`),
			s.Key, string(s.Value), s.UpdatedBy, toNanos(s.UpdatedAt))
		if err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, s.UpdatedAt, actor, releases.ActionSettingSet, key, s.Value)
	})
	if err != nil {
		return releases.Setting{}, fmt.Errorf("sqlstore: set setting %s: %w", key, db.translate(err))
	}
	return s, nil
}

// Setting returns the value under key; releases.ErrNotFound if never set.
func (db *DB) Setting(ctx context.Context, key string) (releases.Setting, error) {
	s := releases.Setting{Key: key}
	var (
		value   string
		updated int64
	)
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT value, updated_by, updated_at FROM settings WHERE key = ?`), key).Scan(&value, &s.UpdatedBy, &updated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return releases.Setting{}, fmt.Errorf("setting %s: %w", key, releases.ErrNotFound)
	case err != nil:
		return releases.Setting{}, fmt.Errorf("sqlstore: setting %s: %w", key, db.translate(err))
	}
	s.Value = json.RawMessage(value)
	s.UpdatedAt = fromNanos(updated)
	return s, nil
}
