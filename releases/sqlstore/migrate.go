package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
)

// migration is one numbered schema change, NNNN_description.sql.
type migration struct {
	version int64
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]+)_[a-z0-9_]+\.sql$`)

// loadMigrations reads the migrations of fsys in version order. A .sql file
// whose name does not parse, or two files with one version, is an error:
// silently skipping either would leave a schema half-built.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %q: name must be NNNN_description.sql", e.Name())
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: bad version", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return int(a.version - b.version) })
	return ms, nil
}

// migrationStep is the Go half of a migration, if it has one: work that
// SQL cannot do portably, such as hashing. It runs after the migration's
// SQL, in its transaction, so the two are applied together or not at all.
// Versions mean the same change in every dialect.
func (db *DB) migrationStep(version int64) func(context.Context, *sql.Tx) error {
	switch version {
	case 4: // 0004_audit_log: log the events recorded before the log existed.
		return db.backfillAuditLog
	case 8: // 0008_release_edits: who changed what, from the events.
		return db.backfillReleaseEdits
	}
	return nil
}

// migrate brings the schema up to date. Each migration runs in its own
// transaction together with its schema_migrations row, so a failure leaves
// the previous version intact and re-opening applies only what is missing.
// The check for "already applied" is inside that transaction, and on a
// dialect with several writers the whole run holds the migration lock
// (dialect.migrationLock): processes opening one database at once (N
// replicas starting together) migrate one after the other, and each
// migration is applied once. A database whose schema is newer than this
// program knows is refused before anything is written.
func (db *DB) migrate(ctx context.Context) error {
	fsys, err := db.dialect.migrationFS()
	if err != nil {
		return err
	}
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return fmt.Errorf("no migrations for dialect %s", db.dialect.name)
	}
	if db.dialect.migrationLock != nil {
		release, err := db.dialect.migrationLock(ctx, db.sql.DB)
		if err != nil {
			return err
		}
		defer release()
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    BIGINT NOT NULL PRIMARY KEY,
			name       TEXT   NOT NULL,
			applied_at BIGINT NOT NULL
		)`)
		return err
	})
	if err != nil {
		return err
	}

	// A database written by a newer dml has tables this one does not
	// know; writing to it could break the newer version's invariants.
	var newest sql.NullInt64
	if err := db.sql.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return err
	}
	if known := ms[len(ms)-1].version; newest.Valid && newest.Int64 > known {
		return fmt.Errorf("database schema version %d is newer than this program's %d: a newer dml has migrated this database; run that version (or newer), never an older one", newest.Int64, known)
	}

	for _, m := range ms {
		err := db.write(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if step := db.migrationStep(m.version); step != nil {
				if err := step(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, toNanos(db.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return nil
}
