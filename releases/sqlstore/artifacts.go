package sqlstore

import (
	"context"
	_ "crypto/sha256" // digest.Validate accepts only algorithms linked into the binary
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/opencontainers/go-digest"
)

// artifactColumns are what CreateArtifact writes; selectArtifact reads them,
// the retirement (RetireArtifact) and the latest admission decision
// (admission.go) in the order scanArtifact expects.
const (
	artifactColumns = `name, version, digest, size, media_type, state, created_by, created_at`
	retiredColumns  = `retired_at, retired_by`
	selectArtifact  = `SELECT ` + artifactColumns + `, ` + retiredColumns + `, ` + admissionColumns + ` FROM artifacts`
)

// Catalog is the persistence of the catalogue (catalog.Store):
// db.Catalog().
type Catalog struct{ db *DB }

var _ catalog.Store = (*Catalog)(nil)

// Catalog returns the catalogue's store.
func (db *DB) Catalog() catalog.Store { return &Catalog{db} }

type rowScanner interface{ Scan(dest ...any) error }

func scanArtifact(r rowScanner) (catalog.Artifact, error) {
	var (
		a       catalog.Artifact
		d       string
		state   string
		created int64
		retired sql.NullInt64
		adm     admissionRow
	)
	dest := append([]any{&a.Name, &a.Version, &d, &a.Size, &a.MediaType, &state, &a.CreatedBy, &created,
		&retired, &a.RetiredBy}, adm.dest()...)
	if err := r.Scan(dest...); err != nil {
		return catalog.Artifact{}, err
	}
	a.Digest = digest.Digest(d)
	a.State = catalog.ArtifactState(state)
	a.CreatedAt = fromNanos(created)
	if retired.Valid {
		at := fromNanos(retired.Int64)
		a.RetiredAt = &at
	}
	var err error
	if a.Admission, err = adm.admission(); err != nil {
		return catalog.Artifact{}, fmt.Errorf("artifact %s:%s: %w", a.Name, a.Version, err)
	}
	return a, nil
}

// checkArtifact validates what the store needs to keep rows meaningful and
// fills a zero CreatedAt with now. Which state an artifact starts in, and
// the name and version grammar, are the domain's business
// (catalog.CreateArtifact, names.ValidateName), not the store's.
func (db *DB) checkArtifact(a catalog.Artifact) (catalog.Artifact, error) {
	ref := a.Name + ":" + a.Version
	switch {
	case a.Name == "" || a.Version == "":
		return a, fmt.Errorf("%w: artifact %q needs a name and a version", errdef.ErrInvalidInput, ref)
	case a.Digest.Validate() != nil:
		return a, fmt.Errorf("%w: artifact %s: digest %q: %v", errdef.ErrInvalidInput, ref, a.Digest, a.Digest.Validate())
	case a.Size < 0:
		return a, fmt.Errorf("%w: artifact %s: negative size %d", errdef.ErrInvalidInput, ref, a.Size)
	case a.RetiredAt != nil || a.RetiredBy != "":
		return a, fmt.Errorf("%w: artifact %s: an artifact is pushed unretired", errdef.ErrInvalidInput, ref)
	}
	if !a.State.Valid() {
		return a, fmt.Errorf("%w: artifact %s: unknown state %q", errdef.ErrInvalidInput, ref, a.State)
	}
	t, ok := db.timeOrNow(a.CreatedAt)
	if !ok {
		return a, fmt.Errorf("%w: artifact %s: creation time %s out of range", errdef.ErrInvalidInput, ref, a.CreatedAt)
	}
	a.CreatedAt = t
	return a, nil
}

// InsertArtifact inserts a and records "artifact.pushed", unless
// name+version exists: then it returns the stored artifact and
// created=false and records nothing. Whether the stored version may stand
// for a (a version is immutable) is the domain's rule
// (catalog.CreateArtifact), not the store's.
//
// The insert relies on the primary key (ON CONFLICT DO NOTHING) rather
// than a read-then-insert, so two callers racing on one version get one
// winner and one clean answer on any dialect, not a constraint error. On
// PostgreSQL it also takes the name's lock (nameLock), so that an OCI tag
// about to create the same version (setTag), which decided on its absence,
// commits first or sees this one.
func (x *Catalog) InsertArtifact(ctx context.Context, actor access.Actor, a catalog.Artifact) (catalog.Artifact, bool, error) {
	return x.InsertArtifactWithin(ctx, actor, a, nil)
}

// InsertArtifactWithin is InsertArtifact, with check run first in its
// transaction when the version does not exist yet (under the name's lock,
// no one else can create it meanwhile), over the quotas and the usage as
// the transaction reads them (txQuotas locks each prefix it counts).
func (x *Catalog) InsertArtifactWithin(ctx context.Context, actor access.Actor, a catalog.Artifact, check func(quota.Reader) error) (catalog.Artifact, bool, error) {
	db := x.db
	a, err := db.checkArtifact(a)
	if err != nil {
		return catalog.Artifact{}, false, err
	}
	ref := a.Name + ":" + a.Version
	var (
		stored   catalog.Artifact
		created  bool
		checkErr error
	)
	err = db.write(ctx, func(tx *sql.Tx) error {
		stored, created, checkErr = catalog.Artifact{}, false, nil
		if err := db.lock(ctx, tx, nameLock(a.Name)); err != nil {
			return err
		}
		if check != nil {
			var one int
			err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM artifacts WHERE name = ? AND version = ?`), a.Name, a.Version).Scan(&one)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if err := check(txQuotas{db: db, tx: tx}); err != nil {
					checkErr = err
					return err
				}
			case err != nil:
				return err
			}
		}
		res, err := tx.ExecContext(ctx, db.q(`INSERT INTO artifacts (`+artifactColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name, version) DO NOTHING`),
			a.Name, a.Version, a.Digest.String(), a.Size, a.MediaType, string(a.State), a.CreatedBy, toNanos(a.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			stored, created = a, true
			return db.recordEvent(ctx, tx, db.now(), actor, catalog.ActionArtifactPushed, ref, struct {
				Digest    digest.Digest `json:"digest"`
				Size      int64         `json:"size"`
				MediaType string        `json:"mediaType"`
			}{a.Digest, a.Size, a.MediaType})
		}
		// Someone else holds this version (possibly committed a moment
		// ago by a racing caller): answer with what is stored.
		stored, err = scanArtifact(tx.QueryRowContext(ctx, db.q(selectArtifact+` WHERE name = ? AND version = ?`), a.Name, a.Version))
		return err
	})
	if checkErr != nil {
		return catalog.Artifact{}, false, checkErr
	}
	if err != nil {
		return catalog.Artifact{}, false, fmt.Errorf("sqlstore: create artifact %s: %w", ref, db.translate(err))
	}
	return stored, created, nil
}

// GetArtifact returns errdef.ErrNotFound when name+version is unknown.
func (x *Catalog) GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error) {
	db := x.db
	return db.getArtifact(ctx, db.sql, name, version)
}

// getArtifact reads through q: the database, or a transaction.
func (db *DB) getArtifact(ctx context.Context, q querier, name, version string) (catalog.Artifact, error) {
	return db.readArtifact(ctx, q, name, version, "")
}

// lockArtifact reads an artifact inside a write transaction that decides
// on it, keeping other writers off its row until the commit on a dialect
// with several writers (dialect.lockRow). The decisions that read an
// artifact in one change and change it in another — a tag moving it, a
// release including it, an admission deciding on it — are then serialised
// by the database, not by a lock in one process.
func (db *DB) lockArtifact(ctx context.Context, tx *sql.Tx, name, version string) (catalog.Artifact, error) {
	return db.readArtifact(ctx, tx, name, version, db.dialect.lockRow)
}

func (db *DB) readArtifact(ctx context.Context, q querier, name, version, lock string) (catalog.Artifact, error) {
	a, err := scanArtifact(q.QueryRowContext(ctx, db.q(selectArtifact+` WHERE name = ? AND version = ?`+lock), name, version))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return catalog.Artifact{}, fmt.Errorf("artifact %s:%s: %w", name, version, errdef.ErrNotFound)
	case err != nil:
		return catalog.Artifact{}, fmt.Errorf("sqlstore: get artifact %s:%s: %w", name, version, db.translate(err))
	}
	return a, nil
}

// cursor is the position after which the next page starts. It is sent to
// clients as base64url JSON: opaque to them, and a keyset rather than an
// offset, so pages stay correct while items are being added. Artifacts are
// ordered by (name, version), releases by name alone and without Version.
type cursor struct {
	Name    string `json:"n"`
	Version string `json:"v,omitempty"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c) // two strings cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses s, which must carry a version exactly when
// withVersion is set: a cursor of one list is malformed for the other.
func decodeCursor(s string, withVersion bool) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Name == "" || withVersion != (c.Version != "") {
		return cursor{}, fmt.Errorf("%w: malformed cursor %q", errdef.ErrInvalidInput, s)
	}
	return c, nil
}

// onePage cuts list, read with a LIMIT of limit+1, to one page and returns
// the cursor of the next ("" when this page is the last). The extra row
// tells whether another page exists, so the last page carries no cursor
// and clients never fetch an empty page.
func onePage[T any](list []T, limit int, cursorOf func(T) cursor) ([]T, string) {
	if len(list) <= limit {
		return list, ""
	}
	list = list[:limit]
	return list, cursorOf(list[limit-1]).String()
}

// ListArtifacts returns one page ordered by (name, version), filtered by
// exact name and state when set, and the cursor of the next page ("" when
// this page is the last). Limit 0 means 100; at most 1000 are returned.
func (x *Catalog) ListArtifacts(ctx context.Context, f catalog.ArtifactFilter) ([]catalog.Artifact, string, error) {
	db := x.db
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", fmt.Errorf("list artifacts: %w", err)
	}
	if f.State != "" && !f.State.Valid() {
		return nil, "", fmt.Errorf("list artifacts: %w: unknown state %q", errdef.ErrInvalidInput, f.State)
	}
	var (
		where []string
		args  []any
	)
	if f.Name != "" {
		where = append(where, "name = ?")
		args = append(args, f.Name)
	}
	if f.State != "" {
		where = append(where, "state = ?")
		args = append(args, string(f.State))
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor, true)
		if err != nil {
			return nil, "", fmt.Errorf("list artifacts: %w", err)
		}
		// A row-value comparison is standard SQL (SQLite >= 3.15,
		// PostgreSQL) and matches ORDER BY name, version exactly.
		where = append(where, "(name, version) > (?, ?)")
		args = append(args, c.Name, c.Version)
	}
	q := selectArtifact
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY name, version LIMIT ?`
	args = append(args, limit+1)

	rows, err := db.sql.QueryContext(ctx, db.q(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list artifacts: %w", db.translate(err))
	}
	defer rows.Close()
	list := make([]catalog.Artifact, 0, min(limit+1, 64))
	for rows.Next() {
		a, err := scanArtifact(rows)
		if err != nil {
			return nil, "", fmt.Errorf("sqlstore: list artifacts: %w", db.translate(err))
		}
		list = append(list, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: list artifacts: %w", db.translate(err))
	}
	list, next := onePage(list, limit, func(a catalog.Artifact) cursor { return cursor{Name: a.Name, Version: a.Version} })
	return list, next, nil
}

// RetireArtifact marks an artifact retired by actor and records
// "artifact.retired"; errdef.ErrNotFound if unknown. Retiring a retired
// artifact returns it unchanged and records nothing.
//
// Whether the artifact may be retired (say, while a release is being
// deployed with it) is the domain's question; the store keeps the mark.
func (x *Catalog) RetireArtifact(ctx context.Context, actor access.Actor, name, version string) (catalog.Artifact, error) {
	db := x.db
	ref := name + ":" + version
	var stored catalog.Artifact
	err := db.write(ctx, func(tx *sql.Tx) error {
		now := db.now()
		// "AND retired_at IS NULL" makes a second retirement, or the loser
		// of a race on a database with several writers, update nothing.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE artifacts SET retired_at = ?, retired_by = ?
			WHERE name = ? AND version = ? AND retired_at IS NULL`), toNanos(now), actor.Name, name, version)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		// Read either way: an unknown artifact is sql.ErrNoRows here, a
		// retired one is returned as it was retired.
		stored, err = scanArtifact(tx.QueryRowContext(ctx, db.q(selectArtifact+` WHERE name = ? AND version = ?`), name, version))
		if err != nil || n == 0 {
			return err
		}
		return db.recordEvent(ctx, tx, now, actor, catalog.ActionArtifactRetired, ref, struct {
			Digest digest.Digest `json:"digest"`
		}{stored.Digest})
	})
	if err := db.translate(err); errors.Is(err, errdef.ErrNotFound) {
		return catalog.Artifact{}, fmt.Errorf("artifact %s: %w", ref, err)
	} else if err != nil {
		return catalog.Artifact{}, fmt.Errorf("sqlstore: retire artifact %s: %w", ref, err)
	}
	return stored, nil
}
