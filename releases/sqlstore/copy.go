package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dmlproject/dml/releases/errdef"
)

// Growing from the embedded DML to the shared one: the metadata moves from
// SQLite to PostgreSQL row for row — ids, sequence numbers, the audit
// log's records and hashes as they are — so the log after the move is the
// same log, and a `dml audit verify` state saved before it still verifies.

// ErrTargetNotEmpty refuses to copy into a database that holds data.
var ErrTargetNotEmpty = errors.New("the target database is not empty")

// TableCopy is how many rows of one table were copied.
type TableCopy struct {
	Table string
	Rows  int64
}

// CopyTo copies every row of db into to, a PostgreSQL database migrated to
// the same schema version and holding no row (ErrTargetNotEmpty
// otherwise), in one transaction on to: it commits whole or not at all.
// Tables are copied parents first (foreign keys), each in its primary
// key's order; identity columns keep their values and their sequences
// continue after them; generated columns are computed again. It returns
// the rows copied per table, checked against the source's counts.
func (db *DB) CopyTo(ctx context.Context, to *DB) ([]TableCopy, error) {
	if to.dialect.name != postgresDialect.name {
		return nil, fmt.Errorf("sqlstore: copy: %w: the target must be a PostgreSQL database", errdef.ErrInvalidInput)
	}
	from, err := schemaVersion(ctx, db)
	if err != nil {
		return nil, err
	}
	target, err := schemaVersion(ctx, to)
	if err != nil {
		return nil, err
	}
	if from != target {
		return nil, fmt.Errorf("sqlstore: copy: the source's schema is version %d, the target's %d", from, target)
	}
	tables, err := pgTablesInOrder(ctx, to.sql)
	if err != nil {
		return nil, err
	}
	var out []TableCopy
	err = to.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, t := range tables {
			if t == "schema_migrations" {
				continue
			}
			var any bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+t+`)`).Scan(&any); err != nil {
				return err
			}
			if any {
				return fmt.Errorf("%w: table %s holds rows; copy only into a new database", ErrTargetNotEmpty, t)
			}
		}
		for _, t := range tables {
			if t == "schema_migrations" {
				continue
			}
			n, err := copyTable(ctx, db.sql, tx, t)
			if err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
			out = append(out, TableCopy{Table: t, Rows: n})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: copy: %w", to.translate(err))
	}
	return out, nil
}

// schemaVersion is the highest migration applied to db.
func schemaVersion(ctx context.Context, db *DB) (int, error) {
	var v sql.NullInt64
	if err := db.sql.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlstore: schema version: %w", db.translate(err))
	}
	return int(v.Int64), nil
}

// pgTablesInOrder lists the tables of the current schema, each after the
// tables its foreign keys refer to.
func pgTablesInOrder(ctx context.Context, q *sql.DB) ([]string, error) {
	names, err := queryStrings(ctx, q, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT child.relname, parent.relname FROM pg_constraint c
		JOIN pg_class child ON child.oid = c.conrelid JOIN pg_class parent ON parent.oid = c.confrelid
		JOIN pg_namespace n ON n.oid = child.relnamespace
		WHERE c.contype = 'f' AND n.nspname = current_schema()`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	parents := map[string][]string{}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			return nil, err
		}
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var order []string
	placed := map[string]bool{}
	for len(order) < len(names) {
		progress := false
		for _, t := range names {
			if placed[t] || slices.ContainsFunc(parents[t], func(p string) bool { return !placed[p] }) {
				continue
			}
			order, placed[t], progress = append(order, t), true, true
		}
		if !progress {
			return nil, errors.New("sqlstore: copy: the tables' foreign keys go round in a circle")
		}
	}
	return order, nil
}

// pgColumn is a column of the target as the copy writes it.
type pgColumn struct {
	name, dataType string
	identity       bool
}

// copyTable copies every row of table from src into tx and returns how
// many, after checking the source has as many.
func copyTable(ctx context.Context, src *sql.DB, tx *sql.Tx, table string) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type, is_identity = 'YES' FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position`, table)
	if err != nil {
		return 0, err
	}
	var cols []pgColumn
	for rows.Next() {
		var c pgColumn
		if err := rows.Scan(&c.name, &c.dataType, &c.identity); err != nil {
			rows.Close()
			return 0, err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	keys, err := primaryKey(ctx, tx, table)
	if err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	params := make([]string, len(cols))
	identity := ""
	for i, c := range cols {
		names[i], params[i] = c.name, fmt.Sprintf("$%d", i+1)
		if c.identity {
			identity = c.name
		}
	}
	list := strings.Join(names, ", ")
	order := ""
	if len(keys) > 0 {
		order = " ORDER BY " + strings.Join(keys, ", ")
	}
	insert := `INSERT INTO ` + table + ` (` + list + `)`
	if identity != "" {
		insert += ` OVERRIDING SYSTEM VALUE`
	}
	stmt, err := tx.PrepareContext(ctx, insert+` VALUES (`+strings.Join(params, ", ")+`)`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	srows, err := src.QueryContext(ctx, `SELECT `+list+` FROM `+table+order)
	if err != nil {
		return 0, fmt.Errorf("reading the source: %w", err)
	}
	defer srows.Close()
	var n int64
	values := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range values {
		ptrs[i] = &values[i]
	}
	for srows.Next() {
		if err := srows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, c := range cols {
			values[i] = convert(values[i], c.dataType)
		}
		if _, err := stmt.ExecContext(ctx, values...); err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		n++
	}
	if err := srows.Err(); err != nil {
		return n, err
	}
	var want int64
	if err := src.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&want); err != nil {
		return n, err
	}
	if want != n {
		return n, fmt.Errorf("copied %d rows of %d", n, want)
	}
	if identity != "" {
		// The next value continues after the copied ones.
		if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX(`+identity+`) FROM `+table+`), 0) + 1, false)`,
			table, identity); err != nil {
			return n, err
		}
	}
	return n, nil
}

// primaryKey lists table's primary key columns in order.
func primaryKey(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`, table)
	if err != nil {
		return nil, err
	}
	return scanStrings(rows)
}

// convert turns what SQLite returned into what the PostgreSQL column
// stores: SQLite keeps text and bytes loosely, PostgreSQL does not.
func convert(v any, dataType string) any {
	switch x := v.(type) {
	case []byte:
		if dataType != "bytea" {
			return string(x)
		}
	case string:
		if dataType == "bytea" {
			return []byte(x)
		}
	}
	return v
}

func queryStrings(ctx context.Context, q *sql.DB, query string) ([]string, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return scanStrings(rows)
}
