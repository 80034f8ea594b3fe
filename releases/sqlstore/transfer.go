package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/mod/sumdb/tlog"
)

// Moving a DML's metadata from one database to another (`dml admin
// migrate-metadata`): the embedded SQLite file to the PostgreSQL database
// replicas share, or back. Every row of every table is copied as it is —
// event seqs, audit indexes and hashes, times, token hashes, release
// documents — so the audit log on the target is the same log, and a
// checkpoint saved before the move is extended by the target's.
//
// The tables are read from the source's schema, not from a list kept by
// hand: a table a future migration adds is copied without anyone
// remembering to add it here. What is per dialect is only how a schema
// describes itself and how an identity column's sequence is read and set.

// Errors of CopyMetadata, wrapped with what was found.
var (
	// ErrTargetNotEmpty: the target already holds rows. Copying into it
	// would mix two histories (two audit logs cannot be merged).
	ErrTargetNotEmpty = errors.New("target database is not empty")
	// ErrSchemaVersion: the source's schema is not the one this program
	// writes; copy with the dml that matches it.
	ErrSchemaVersion = errors.New("schema version differs")
	// ErrCopyMismatch: after copying, the target does not hold what the
	// source does. Nothing was committed.
	ErrCopyMismatch = errors.New("copy does not match the source")
)

// TableCopy is one table copied: its rows, and the SHA-256 of their
// values in primary-key order, equal on both sides.
type TableCopy struct {
	Table  string
	Rows   int64
	Digest [sha256.Size]byte
}

// CopyReport is what CopyMetadata copied and verified.
type CopyReport struct {
	// SchemaVersion is the schema both databases are at.
	SchemaVersion int64
	// Tables in the order they were copied (referenced tables first).
	Tables []TableCopy
	// AuditSize and AuditRoot are the audit log's size and Merkle root
	// hash, computed from the stored hashes on each side and found equal.
	AuditSize int64
	AuditRoot tlog.Hash
}

// copyBatchValues bounds the values bound in one INSERT, under SQLite's
// and PostgreSQL's limits on parameters.
const copyBatchValues = 900

// OpenExisting opens database, named as OpenDatabase takes it (sqlite:PATH
// or a postgres:// URL), as it is: it creates nothing (a SQLite file that
// is not there is an error, not a new empty database) and migrates
// nothing. It is the source of CopyMetadata, which must read the schema a
// dml wrote, not one this program has just changed. No error it returns
// carries the URL's password.
func OpenExisting(ctx context.Context, database string) (*DB, error) {
	var (
		sqldb   *sql.DB
		d       dialect
		secrets []string
	)
	switch path, isSQLite := strings.CutPrefix(database, "sqlite:"); {
	case isSQLite:
		if path == "" || strings.ContainsRune(path, '?') {
			return nil, fmt.Errorf("sqlstore: %w: database path %q must be non-empty and contain no '?'", errdef.ErrInvalidInput, path)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("sqlstore: %w: %s is not a file", errdef.ErrInvalidInput, path)
		}
		if sqldb, err = sql.Open("sqlite", path+"?"+sqlitePragmas); err != nil {
			return nil, fmt.Errorf("sqlstore: open: %w", err)
		}
		d = sqliteDialect
	case isPostgresURL(database):
		secrets = urlSecrets(database)
		cfg, err := pgx.ParseConfig(database)
		if err != nil {
			return nil, scrub(fmt.Errorf("sqlstore: %w: PostgreSQL URL %s: %w", errdef.ErrInvalidInput, Redact(database), err), secrets)
		}
		sqldb = stdlib.OpenDB(*cfg)
		d = postgresDialect
	default:
		return nil, fmt.Errorf("sqlstore: %w: database %q must be sqlite:PATH or a postgres:// URL", errdef.ErrInvalidInput, Redact(database))
	}
	// One read transaction and the schema queries made inside it.
	sqldb.SetMaxOpenConns(2)
	db := newDB(sqldb, d)
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, scrub(fmt.Errorf("sqlstore: open: %w", db.translate(err)), secrets)
	}
	return db, nil
}

// CopyMetadata copies every row of every table of src into dst, which
// must be migrated to the same schema version as src (OpenDatabase does)
// and hold no rows. Nothing in src is changed.
//
// src is read in one read-only transaction, so the copy is one state of
// it even if something writes meanwhile (stop the servers first all the
// same: what they write after the copy is not in it). dst is written in
// one transaction, which first locks its tables on a dialect with several
// writers, so a dml started on dst meanwhile waits, and checks inside it
// that they are empty. Identity sequences (event and access log seqs) are
// set on dst to where src's stand, so no seq is ever handed out twice.
//
// Before committing, CopyMetadata reads every table back from dst and
// compares its row count and the digest of its values with src's, and
// computes the audit log's root hash on both sides from their stored
// hashes: any difference is ErrCopyMismatch and nothing is committed. A
// failure of any kind leaves dst as it was.
//
// progress, if not nil, is called after each table is copied (and not yet
// committed).
func CopyMetadata(ctx context.Context, src, dst *DB, progress func(TableCopy)) (CopyReport, error) {
	var rep CopyReport
	rtx, err := src.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: src.dialect.snapshot})
	if err != nil {
		return rep, fmt.Errorf("sqlstore: copy: source: %w", src.translate(err))
	}
	defer func() { _ = rtx.Rollback() }() // read-only: nothing to keep
	if rep.SchemaVersion, err = src.checkSchemaVersion(ctx, rtx); err != nil {
		return rep, fmt.Errorf("sqlstore: copy: source: %w", err)
	}
	tables, err := src.readSchema(ctx, rtx)
	if err != nil {
		return rep, fmt.Errorf("sqlstore: copy: source schema: %w", src.translate(err))
	}
	order, err := copyOrder(tables)
	if err != nil {
		return rep, fmt.Errorf("sqlstore: copy: source schema: %w", err)
	}

	wtx, err := dst.sql.BeginTx(ctx, nil)
	if err != nil {
		return rep, fmt.Errorf("sqlstore: copy: target: %w", dst.translate(err))
	}
	defer func() { _ = wtx.Rollback() }() // a no-op after Commit
	if _, err := dst.checkSchemaVersion(ctx, wtx); err != nil {
		return rep, fmt.Errorf("sqlstore: copy: target: %w", err)
	}
	if err := dst.checkSameSchema(ctx, wtx, tables); err != nil {
		return rep, fmt.Errorf("sqlstore: copy: target: %w", err)
	}
	if err := dst.lockTables(ctx, wtx, order); err != nil {
		return rep, fmt.Errorf("sqlstore: copy: target: lock tables: %w", dst.translate(err))
	}
	if err := dst.checkEmpty(ctx, wtx, order); err != nil {
		return rep, fmt.Errorf("sqlstore: copy: %w", err)
	}

	for _, t := range order {
		c, err := copyTable(ctx, src, rtx, dst, wtx, t)
		if err != nil {
			return rep, fmt.Errorf("sqlstore: copy %s: %w", t.name, err)
		}
		rep.Tables = append(rep.Tables, c)
		if progress != nil {
			progress(c)
		}
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("sqlstore: copy: %w", err)
		}
	}

	// Read back what was written, in the transaction that wrote it.
	for _, c := range rep.Tables {
		n, sum, err := digestTable(ctx, wtx, tables[c.Table])
		if err != nil {
			return rep, fmt.Errorf("sqlstore: copy: verify %s: %w", c.Table, dst.translate(err))
		}
		if n != c.Rows || sum != c.Digest {
			return rep, fmt.Errorf("sqlstore: copy: %w: table %s: %d rows copied, %d read back, digests %s", ErrCopyMismatch, c.Table, c.Rows, n, sameOrDiffer(sum == c.Digest))
		}
	}
	srcSize, srcRoot, err := src.auditRoot(ctx, rtx)
	if err != nil {
		return rep, fmt.Errorf("sqlstore: copy: source audit log: %w", src.translate(err))
	}
	dstSize, dstRoot, err := dst.auditRoot(ctx, wtx)
	if err != nil {
		return rep, fmt.Errorf("sqlstore: copy: target audit log: %w", dst.translate(err))
	}
	if srcSize != dstSize || srcRoot != dstRoot {
		return rep, fmt.Errorf("sqlstore: copy: %w: audit log of %d records, root %s, on the source; %d records, root %s, on the target",
			ErrCopyMismatch, srcSize, srcRoot, dstSize, dstRoot)
	}
	rep.AuditSize, rep.AuditRoot = srcSize, srcRoot
	if err := wtx.Commit(); err != nil {
		return rep, fmt.Errorf("sqlstore: copy: commit: %w", dst.translate(err))
	}
	return rep, nil
}

func sameOrDiffer(same bool) string {
	if same {
		return "equal"
	}
	return "differ"
}

// tableInfo is what the copy needs of one table's schema.
type tableInfo struct {
	name string
	// columns are the stored columns, in the schema's order; generated
	// ones (releases.manifest_digest) are computed by the target.
	columns []string
	// key is the primary key, in key order: rows are copied and
	// digested in this order on both sides.
	key []string
	// identity is the column a sequence numbers (events.seq,
	// access_log.seq), or "".
	identity string
	// refs are the tables its foreign keys reference, copied before it.
	refs []string
}

// checkSchemaVersion reads the schema version q's database is at and
// refuses one that is not this program's: every migration it knows
// applied, and no other.
// SchemaVersion returns the schema version of a database opened with
// OpenExisting, and ErrSchemaVersion when it is not the one this program
// writes: a tool that writes to a served database (dml admin
// reset-token) must neither migrate it under a running server nor write
// to a schema it does not know.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	return db.checkSchemaVersion(ctx, db.sql)
}

func (db *DB) checkSchemaVersion(ctx context.Context, q querier) (int64, error) {
	fsys, err := db.dialect.migrationFS()
	if err != nil {
		return 0, err
	}
	ms, err := loadMigrations(fsys)
	if err != nil {
		return 0, err
	}
	var (
		newest sql.NullInt64
		count  int
	)
	if err := q.QueryRowContext(ctx, `SELECT MAX(version), COUNT(*) FROM schema_migrations`).Scan(&newest, &count); err != nil {
		return 0, fmt.Errorf("schema version: %w", db.translate(err))
	}
	want := ms[len(ms)-1].version
	if !newest.Valid || newest.Int64 != want || count != len(ms) {
		return 0, fmt.Errorf("%w: the database is at schema version %d (%d migrations applied), this dml at %d (%d migrations); run the dml that matches the database, or start this one on it once to migrate it",
			ErrSchemaVersion, newest.Int64, count, want, len(ms))
	}
	return want, nil
}

// readSchema describes every table of q's database but schema_migrations
// (each database keeps its own record of its migrations).
func (db *DB) readSchema(ctx context.Context, q querier) (map[string]*tableInfo, error) {
	var names []string
	listQuery := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`
	if db.dialect.numbered {
		listQuery = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	if err := collect(ctx, q, &names, listQuery); err != nil {
		return nil, err
	}
	tables := map[string]*tableInfo{}
	for _, name := range names {
		if name == "schema_migrations" {
			continue
		}
		t := &tableInfo{name: name}
		var err error
		if db.dialect.numbered {
			err = pgDescribe(ctx, q, t)
		} else {
			err = sqliteDescribe(ctx, q, t)
		}
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", name, err)
		}
		if len(t.key) == 0 {
			// Without a key there is no order to copy and compare in.
			return nil, fmt.Errorf("table %s has no primary key", name)
		}
		tables[name] = t
	}
	return tables, nil
}

func sqliteDescribe(ctx context.Context, q querier, t *tableInfo) error {
	// hidden is 0 for a stored column; 2 and 3 are generated ones.
	rows, err := q.QueryContext(ctx, `SELECT name, type, pk FROM pragma_table_xinfo(?) WHERE hidden = 0 ORDER BY cid`, t.name)
	if err != nil {
		return err
	}
	type keyCol struct {
		name string
		pos  int
	}
	var (
		keys    []keyCol
		intKeys int
	)
	for rows.Next() {
		var (
			name, typ string
			pk        int
		)
		if err := rows.Scan(&name, &typ, &pk); err != nil {
			rows.Close()
			return err
		}
		t.columns = append(t.columns, name)
		if pk > 0 {
			keys = append(keys, keyCol{name, pk})
			if strings.EqualFold(typ, "INTEGER") {
				intKeys++
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	slices.SortFunc(keys, func(a, b keyCol) int { return a.pos - b.pos })
	for _, k := range keys {
		t.key = append(t.key, k.name)
	}
	if err := collect(ctx, q, &t.refs, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`, t.name); err != nil {
		return err
	}
	// SQLite's identity column: an INTEGER PRIMARY KEY AUTOINCREMENT,
	// whose high-water mark is kept in sqlite_sequence.
	var ddl string
	if err := q.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, t.name).Scan(&ddl); err != nil {
		return err
	}
	if len(keys) == 1 && intKeys == 1 && strings.Contains(strings.ToUpper(ddl), "AUTOINCREMENT") {
		t.identity = keys[0].name
	}
	return nil
}

func pgDescribe(ctx context.Context, q querier, t *tableInfo) error {
	if err := collect(ctx, q, &t.columns, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position`, t.name); err != nil {
		return err
	}
	if err := collect(ctx, q, &t.key, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass AND i.indisprimary
		ORDER BY array_position(i.indkey, a.attnum)`, t.name); err != nil {
		return err
	}
	if err := collect(ctx, q, &t.refs, `SELECT DISTINCT r.relname FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
		WHERE c.contype = 'f' AND c.conrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass`, t.name); err != nil {
		return err
	}
	var identity []string
	if err := collect(ctx, q, &identity, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND is_identity = 'YES'`, t.name); err != nil {
		return err
	}
	if len(identity) > 1 {
		return fmt.Errorf("%d identity columns", len(identity))
	}
	if len(identity) == 1 {
		t.identity = identity[0]
	}
	return nil
}

// collect appends the first column of every row of query to out.
func collect(ctx context.Context, q querier, out *[]string, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		*out = append(*out, s)
	}
	return rows.Err()
}

// copyOrder sorts the tables so that every table comes after those its
// foreign keys reference (the target checks them row by row), by name
// among tables free to go.
func copyOrder(tables map[string]*tableInfo) ([]*tableInfo, error) {
	var (
		order []*tableInfo
		done  = map[string]bool{}
	)
	for len(order) < len(tables) {
		var ready []string
		for name, t := range tables {
			if done[name] {
				continue
			}
			if !slices.ContainsFunc(t.refs, func(r string) bool { return r != name && !done[r] }) {
				ready = append(ready, name)
			}
		}
		if len(ready) == 0 {
			return nil, errors.New("foreign keys reference each other in a circle")
		}
		slices.Sort(ready)
		for _, name := range ready {
			done[name] = true
			order = append(order, tables[name])
		}
	}
	return order, nil
}

// checkSameSchema refuses a target whose tables or columns are not the
// source's: the same version in two dialects must mean the same tables.
func (db *DB) checkSameSchema(ctx context.Context, q querier, want map[string]*tableInfo) error {
	got, err := db.readSchema(ctx, q)
	if err != nil {
		return fmt.Errorf("schema: %w", db.translate(err))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			return fmt.Errorf("%w: the source has table %s, the target does not", ErrSchemaVersion, name)
		}
		if gc, wc := slices.Sorted(slices.Values(g.columns)), slices.Sorted(slices.Values(w.columns)); !slices.Equal(gc, wc) {
			return fmt.Errorf("%w: table %s has columns %v on the source, %v on the target", ErrSchemaVersion, name, wc, gc)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			return fmt.Errorf("%w: the target has table %s, the source does not", ErrSchemaVersion, name)
		}
	}
	return nil
}

// lockTables keeps every other writer off the target's tables until the
// commit, on a dialect with several writers: a dml started on the target
// meanwhile waits rather than writing between the emptiness check and the
// copy. (SQLite's write transaction excludes every other writer already.)
func (db *DB) lockTables(ctx context.Context, tx *sql.Tx, tables []*tableInfo) error {
	if db.dialect.lock == nil {
		return nil
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = quoteIdent(t.name)
	}
	_, err := tx.ExecContext(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`)
	return err
}

// checkEmpty refuses a target that holds any row, naming the tables that do.
func (db *DB) checkEmpty(ctx context.Context, q querier, tables []*tableInfo) error {
	var full []string
	for _, t := range tables {
		var n int64
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.name)).Scan(&n); err != nil {
			return fmt.Errorf("target: count %s: %w", t.name, db.translate(err))
		}
		if n > 0 {
			full = append(full, fmt.Sprintf("%s (%d rows)", t.name, n))
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("%w: %s; copy into a new, empty database (one no dml has served from)", ErrTargetNotEmpty, strings.Join(full, ", "))
	}
	return nil
}

// selectAll reads every stored column of t in primary-key order. Keys are
// text compared bytewise on both dialects (PostgreSQL columns are COLLATE
// "C") and integers, so both sides read the rows in the same order.
func selectAll(t *tableInfo) string {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = quoteIdent(c)
	}
	keys := make([]string, len(t.key))
	for i, k := range t.key {
		keys[i] = quoteIdent(k)
	}
	return `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + quoteIdent(t.name) + ` ORDER BY ` + strings.Join(keys, ", ")
}

// copyTable copies t's rows from src's transaction into dst's, in
// batches, and sets dst's identity sequence where src's stands.
func copyTable(ctx context.Context, src *DB, rtx *sql.Tx, dst *DB, wtx *sql.Tx, t *tableInfo) (TableCopy, error) {
	c := TableCopy{Table: t.name}
	rows, err := rtx.QueryContext(ctx, selectAll(t))
	if err != nil {
		return c, fmt.Errorf("read: %w", src.translate(err))
	}
	defer rows.Close()

	cols := make([]string, len(t.columns))
	for i, col := range t.columns {
		cols[i] = quoteIdent(col)
	}
	insert := `INSERT INTO ` + quoteIdent(t.name) + ` (` + strings.Join(cols, ", ") + `)`
	if t.identity != "" && dst.dialect.numbered {
		// PostgreSQL's GENERATED ALWAYS refuses a value unless told
		// that this is a copy.
		insert += ` OVERRIDING SYSTEM VALUE`
	}
	perRow := len(cols)
	batchRows := max(1, copyBatchValues/perRow)
	group := "(" + placeholders("?", perRow) + ")"
	flush := func(args []any) error {
		n := len(args) / perRow
		if n == 0 {
			return nil
		}
		_, err := wtx.ExecContext(ctx, dst.q(insert+` VALUES `+placeholders(group, n)), args...)
		if err != nil {
			return fmt.Errorf("write: %w", dst.translate(err))
		}
		return nil
	}

	h := sha256.New()
	idCol := slices.Index(t.columns, t.identity)
	var maxID int64
	args := make([]any, 0, batchRows*perRow)
	err = eachRow(rows, perRow, func(vals []any) error {
		if err := digestRow(h, vals); err != nil {
			return err
		}
		if idCol >= 0 {
			if id, ok := vals[idCol].(int64); ok {
				maxID = max(maxID, id)
			}
		}
		args = append(args, vals...)
		c.Rows++
		if len(args) < batchRows*perRow {
			return nil
		}
		err := flush(args)
		args = args[:0]
		return err
	})
	if err != nil {
		return c, err
	}
	if err := flush(args); err != nil {
		return c, err
	}
	copy(c.Digest[:], h.Sum(nil))

	if t.identity != "" {
		at, err := src.sequenceAt(ctx, rtx, t)
		if err != nil {
			return c, fmt.Errorf("read sequence: %w", src.translate(err))
		}
		if err := dst.setSequence(ctx, wtx, t, max(at, maxID)); err != nil {
			return c, fmt.Errorf("set sequence: %w", dst.translate(err))
		}
	}
	return c, nil
}

// digestTable counts and digests t's rows as copyTable did on the source.
func digestTable(ctx context.Context, q querier, t *tableInfo) (int64, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	rows, err := q.QueryContext(ctx, selectAll(t))
	if err != nil {
		return 0, sum, err
	}
	defer rows.Close()
	h := sha256.New()
	var n int64
	err = eachRow(rows, len(t.columns), func(vals []any) error {
		n++
		return digestRow(h, vals)
	})
	if err != nil {
		return 0, sum, err
	}
	copy(sum[:], h.Sum(nil))
	return n, sum, nil
}

// eachRow scans every row of rows, n columns, into one slice reused from
// row to row, and calls fn with it; fn's error stops the scan.
func eachRow(rows *sql.Rows, n int, fn func(vals []any) error) error {
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

// digestRow writes one row's values to h in a form both drivers give the
// same: a tag, then the value (integers as 8 bytes, text and bytes with
// their length). Text and bytes share a tag: what is compared is the
// stored bytes, whichever Go type a driver hands them back as.
func digestRow(h hash.Hash, vals []any) error {
	var b [9]byte
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			h.Write([]byte{'N'})
		case int64:
			b[0] = 'I'
			binary.BigEndian.PutUint64(b[1:], uint64(v))
			h.Write(b[:])
		case float64:
			b[0] = 'F'
			binary.BigEndian.PutUint64(b[1:], math.Float64bits(v))
			h.Write(b[:])
		case bool:
			b[0] = 'I'
			binary.BigEndian.PutUint64(b[1:], 0)
			if v {
				b[8] = 1
			}
			h.Write(b[:])
		case string:
			writeBytes(h, []byte(v))
		case []byte:
			writeBytes(h, v)
		default:
			return fmt.Errorf("a value of type %T, which the copy does not know", v)
		}
	}
	return nil
}

func writeBytes(w io.Writer, p []byte) {
	var b [9]byte
	b[0] = 'B'
	binary.BigEndian.PutUint64(b[1:], uint64(len(p)))
	w.Write(b[:])
	w.Write(p)
}

// sequenceAt is the last value t's identity sequence handed out, or 0.
// It may be past the largest value in the table: rows rolled back, or
// pruned from the end of the access log, never give their seq back.
func (db *DB) sequenceAt(ctx context.Context, q querier, t *tableInfo) (int64, error) {
	var at sql.NullInt64
	query := `SELECT seq FROM sqlite_sequence WHERE name = ?`
	if db.dialect.numbered {
		query = `SELECT pg_sequence_last_value(pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident($1), $2)::regclass)`
	}
	args := []any{t.name}
	if db.dialect.numbered {
		args = append(args, t.identity)
	}
	err := q.QueryRowContext(ctx, query, args...).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil // SQLite: no row has ever been inserted
	}
	return at.Int64, err
}

// setSequence makes t's identity sequence hand out values after at.
func (db *DB) setSequence(ctx context.Context, tx *sql.Tx, t *tableInfo, at int64) error {
	if at <= 0 {
		return nil
	}
	if db.dialect.numbered {
		_, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident($1), $2), $3)`,
			t.name, t.identity, at)
		return err
	}
	// Inserting rows has set it to the largest copied seq already.
	res, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?`, at, t.name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, t.name, at)
	return err
}

// auditRoot is the audit log's size and its root hash, computed from the
// stored hashes as a checkpoint is.
func (db *DB) auditRoot(ctx context.Context, q querier) (int64, tlog.Hash, error) {
	n, err := db.auditSize(ctx, q)
	if err != nil {
		return 0, tlog.Hash{}, err
	}
	root, err := tlog.TreeHash(n, db.hashReader(ctx, q))
	return n, root, err
}

// quoteIdent quotes a table or column name read from the schema.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
