package sqlstore

import (
	"context"
	"fmt"
)

// ArtifactNames lists, in order, at most limit distinct artifact names
// beginning with prefix.
func (x *Catalog) ArtifactNames(ctx context.Context, prefix string, limit int) ([]string, error) {
	return x.db.namesWithPrefix(ctx, "artifacts", prefix, limit)
}

// ReleaseNames lists, in order, at most limit release names beginning
// with prefix.
func (x *Releases) ReleaseNames(ctx context.Context, prefix string, limit int) ([]string, error) {
	return x.db.namesWithPrefix(ctx, "releases", prefix, limit)
}

// namesWithPrefix reads the distinct names of table (a constant of this
// package, never input) that begin with prefix. The prefix is a range of
// the primary key, so the read stays on its index: names (artifact names,
// release names) are printable ASCII below 0x7f, and every name column
// compares bytewise (SQLite's BINARY, PostgreSQL's COLLATE "C").
func (db *DB) namesWithPrefix(ctx context.Context, table, prefix string, limit int) ([]string, error) {
	if limit < 1 {
		return []string{}, nil
	}
	q := `SELECT DISTINCT name FROM ` + table + ` WHERE name >= ? AND name < ? ORDER BY name LIMIT ?`
	rows, err := db.sql.QueryContext(ctx, db.q(q), prefix, prefix+"\x7f", limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s names with prefix %q: %w", table, prefix, db.translate(err))
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlstore: %s names with prefix %q: %w", table, prefix, db.translate(err))
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: %s names with prefix %q: %w", table, prefix, db.translate(err))
	}
	return out, nil
}
