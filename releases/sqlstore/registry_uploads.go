package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/registry"
)

// Upload sessions are working state, like the blob store's staging
// objects: they change with every chunk, so they record no events. What
// they produce, a blob in a repository, is recorded by LinkBlob.

const uploadColumns = `id, repository, received, chunks, sha256_state, sha512_state, owner, started_at, updated_at`

func scanUpload(r rowScanner) (registry.UploadSession, error) {
	var (
		u                registry.UploadSession
		chunks           int64
		started, updated int64
	)
	if err := r.Scan(&u.ID, &u.Repository, &u.Offset, &chunks, &u.SHA256State, &u.SHA512State, &u.Owner, &started, &updated); err != nil {
		return registry.UploadSession{}, err
	}
	u.Chunks = int(chunks)
	u.StartedAt, u.UpdatedAt = fromNanos(started), fromNanos(updated)
	return u, nil
}

func (db *DB) checkUpload(s registry.UploadSession) (registry.UploadSession, error) {
	switch {
	case s.ID == "" || s.Repository == "" || s.Owner == "":
		return s, fmt.Errorf("%w: upload session needs an id, a repository and an owner", errdef.ErrInvalidInput)
	case s.Offset < 0 || s.Chunks < 0:
		return s, fmt.Errorf("%w: upload %s: negative offset or chunk count", errdef.ErrInvalidInput, s.ID)
	case s.SHA256State == nil || s.SHA512State == nil:
		return s, fmt.Errorf("%w: upload %s: missing hash state", errdef.ErrInvalidInput, s.ID)
	}
	var ok bool
	if s.StartedAt, ok = db.timeOrNow(s.StartedAt); !ok {
		return s, fmt.Errorf("%w: upload %s: start time out of range", errdef.ErrInvalidInput, s.ID)
	}
	if s.UpdatedAt, ok = db.timeOrNow(s.UpdatedAt); !ok {
		return s, fmt.Errorf("%w: upload %s: update time out of range", errdef.ErrInvalidInput, s.ID)
	}
	return s, nil
}

// CreateUpload stores a new upload session.
func (x *Uploads) CreateUpload(ctx context.Context, s registry.UploadSession) error {
	db := x.db
	s, err := db.checkUpload(s)
	if err != nil {
		return err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO oci_uploads (`+uploadColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			s.ID, s.Repository, s.Offset, int64(s.Chunks), s.SHA256State, s.SHA512State, s.Owner, toNanos(s.StartedAt), toNanos(s.UpdatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: create upload %s: %w", s.ID, db.translate(err))
	}
	return nil
}

// Upload returns one upload session.
func (x *Uploads) Upload(ctx context.Context, id string) (registry.UploadSession, error) {
	db := x.db
	s, err := scanUpload(db.sql.QueryRowContext(ctx, db.q(`SELECT `+uploadColumns+` FROM oci_uploads WHERE id = ?`), id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return registry.UploadSession{}, fmt.Errorf("upload %s: %w", id, errdef.ErrNotFound)
	case err != nil:
		return registry.UploadSession{}, fmt.Errorf("sqlstore: upload %s: %w", id, db.translate(err))
	}
	return s, nil
}

// UpdateUpload loads session id in a write transaction and stores what
// next returns for it; next's error is returned as it is and stores
// nothing (whether the session may move on is the domain's
// compare-and-set: registry.UpdateUpload). errdef.ErrNotFound if the
// session is gone.
func (x *Uploads) UpdateUpload(ctx context.Context, id string, next func(cur registry.UploadSession) (registry.UploadSession, error)) error {
	db := x.db
	var nextErr error
	err := db.write(ctx, func(tx *sql.Tx) error {
		nextErr = nil
		cur, err := scanUpload(tx.QueryRowContext(ctx, db.q(`SELECT `+uploadColumns+` FROM oci_uploads WHERE id = ?`+db.dialect.lockRow), id))
		if err != nil {
			return err // sql.ErrNoRows: the session is gone
		}
		s, err := next(cur)
		if err != nil {
			nextErr = err
			return err
		}
		if s.ID != id {
			return fmt.Errorf("%w: upload %s cannot become %q", errdef.ErrInvalidInput, id, s.ID)
		}
		if s, err = db.checkUpload(s); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE oci_uploads SET received = ?, chunks = ?, sha256_state = ?, sha512_state = ?, updated_at = ?
			WHERE id = ?`),
			s.Offset, int64(s.Chunks), s.SHA256State, s.SHA512State, toNanos(s.UpdatedAt), s.ID)
		return err
	})
	if nextErr != nil {
		return nextErr
	}
	if err := db.translate(err); errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("upload %s: %w", id, err)
	} else if err != nil && !errors.Is(err, errdef.ErrInvalidInput) {
		return fmt.Errorf("sqlstore: update upload %s: %w", id, err)
	} else if err != nil {
		return err
	}
	return nil
}

// DeleteUpload removes a session.
func (x *Uploads) DeleteUpload(ctx context.Context, id string) error {
	db := x.db
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`DELETE FROM oci_uploads WHERE id = ?`), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: delete upload %s: %w", id, db.translate(err))
	}
	return nil
}

// StaleUploads lists up to limit sessions last updated before before,
// oldest first.
func (x *Uploads) StaleUploads(ctx context.Context, before time.Time, limit int) ([]registry.UploadSession, error) {
	db := x.db
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+uploadColumns+` FROM oci_uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?`), toNanos(before), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: stale uploads: %w", db.translate(err))
	}
	defer rows.Close()
	out := []registry.UploadSession{}
	for rows.Next() {
		s, err := scanUpload(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: stale uploads: %w", db.translate(err))
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: stale uploads: %w", db.translate(err))
	}
	return out, nil
}
