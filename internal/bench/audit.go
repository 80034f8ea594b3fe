package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"golang.org/x/mod/sumdb/tlog"

	_ "modernc.org/sqlite" // the driver of the embedded default's database
)

// auditVerify: `dml audit verify` of a log of AuditRecords records, the
// command run as a user runs it, against downloading the same records
// only (what the verification adds is the Merkle tree and the checks).
//
// A million records through the API would take an hour of token issues;
// instead a real server makes its database, and the records are then
// appended to it directly — the events, their canonical records
// (audit.Event.Record) and the Merkle hashes (tlog.StoredHashes), as the
// store writes them, in large transactions — before a server is started
// on it again.
func (b *bencher) auditVerify(ctx context.Context) ([]Row, error) {
	dir, err := os.MkdirTemp(b.work, "dml-auditlog-")
	if err != nil {
		return nil, err
	}
	defer removeAll(dir)
	p, err := b.startDMLIn(ctx, dir)
	if err != nil {
		return nil, err
	}
	p.stop()
	n := b.cfg.AuditRecords
	started := time.Now()
	if err := appendAuditRecords(ctx, filepath.Join(dir, "dml.db"), n); err != nil {
		return nil, fmt.Errorf("building the audit log: %w", err)
	}
	b.progress("audit log of %d records built in %s", n, time.Since(started).Round(time.Millisecond))
	if p, err = b.startDMLIn(ctx, dir); err != nil {
		return nil, err
	}
	defer p.stop()
	admin, err := client.New(p.url(), adminToken, client.WithHTTPClient(b.hc))
	if err != nil {
		return nil, err
	}
	const page = 100_000 // dml audit verify's default --page-size
	row := Row{Scenario: fmt.Sprintf("dml audit verify, %d records", n), Baseline: "download the records only", Ops: n,
		Note: "target < 5 s for 1,000,000 records"}
	err = b.measure(&row, p, nil, func(rep int) (time.Duration, error) {
		state := filepath.Join(dir, fmt.Sprintf("state-%d.json", rep))
		cmd := exec.CommandContext(ctx, b.cfg.DMLBin, "audit", "verify", "--server", p.url(), "--state-file", state, "--output", "json")
		cmd.Env = append(os.Environ(), "DML_TOKEN="+adminToken)
		var out []byte
		d, err := stopwatch(func() error {
			var err error
			out, err = cmd.CombinedOutput()
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("dml audit verify: %w: %s", err, out)
		}
		var res struct {
			OK      bool  `json:"ok"`
			Records int64 `json:"records"`
		}
		if err := json.Unmarshal(out, &res); err != nil || !res.OK {
			return 0, fmt.Errorf("dml audit verify: %s", out)
		}
		// The server's own records (bootstrap) come before the appended ones.
		if res.Records < n {
			return 0, fmt.Errorf("dml audit verify verified %d records, want at least %d", res.Records, n)
		}
		return d, nil
	}, func(int) (time.Duration, error) {
		return stopwatch(func() error {
			for start := int64(0); ; start += page {
				rc, err := admin.Audit().Entries(ctx, start, page)
				if err != nil {
					return err
				}
				m, err := io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil {
					return err
				}
				if m == 0 || start+page >= n {
					return nil
				}
			}
		})
	})
	if err != nil {
		return nil, err
	}
	return []Row{row}, nil
}

// appendAuditRecords appends n audited events to the SQLite database at
// path: what n artifact pushes would have written to the events, the
// audit log's records and its stored Merkle hashes.
func appendAuditRecords(ctx context.Context, path string, n int64) (err error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var size, seq int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records`).Scan(&size); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq); err != nil {
		return err
	}
	hashes := make([]tlog.Hash, 0, tlog.StoredHashCount(size+n))
	rows, err := db.QueryContext(ctx, `SELECT id, hash FROM audit_hashes ORDER BY id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			rows.Close()
			return err
		}
		if id != int64(len(hashes)) || len(h) != len(tlog.Hash{}) {
			rows.Close()
			return fmt.Errorf("stored hash %d out of place", id)
		}
		hashes = append(hashes, tlog.Hash(h))
	}
	if err := rows.Close(); err != nil {
		return err
	}
	read := tlog.HashReaderFunc(func(ids []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			if id < 0 || id >= int64(len(hashes)) {
				return nil, fmt.Errorf("stored hash %d not written yet", id)
			}
			out[i] = hashes[id]
		}
		return out, nil
	})
	actor := access.Actor{TokenID: "tok-bench-pipeline", Name: "pipeline"}
	at := time.Now().UTC().Add(-time.Duration(n) * time.Millisecond)
	const batch = 20_000
	for done := int64(0); done < n; {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		evStmt, err := tx.PrepareContext(ctx, `INSERT INTO events (seq, time, actor_token_id, actor_name, actor_issuer, actor_subject, action, subject, details) VALUES (?, ?, ?, ?, '', '', ?, ?, ?)`)
		if err != nil {
			tx.Rollback()
			return err
		}
		recStmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_records (idx, event_seq, subject, record) VALUES (?, ?, ?, ?)`)
		if err != nil {
			tx.Rollback()
			return err
		}
		for end := min(n, done+batch); done < end; done++ {
			seq++
			idx := size + done
			at = at.Add(time.Millisecond)
			d := fmt.Sprintf("sha256:%064x", idx)
			e := audit.Event{Seq: seq, Time: at, Actor: actor, Action: "artifact.created",
				Subject: fmt.Sprintf("bench/app-%d:1.%d.0", idx%100, idx),
				Details: json.RawMessage(`{"digest":"` + d + `","size":4096,"mediaType":"application/octet-stream"}`),
			}
			record, err := e.Record(idx)
			if err != nil {
				tx.Rollback()
				return err
			}
			hs, err := tlog.StoredHashes(idx, record, read)
			if err != nil {
				tx.Rollback()
				return err
			}
			first := int64(len(hashes))
			hashes = append(hashes, hs...)
			if _, err := evStmt.ExecContext(ctx, seq, e.Time.UnixNano(), actor.TokenID, actor.Name, e.Action, e.Subject, string(e.Details)); err != nil {
				tx.Rollback()
				return err
			}
			if _, err := recStmt.ExecContext(ctx, idx, seq, e.Subject, string(record)); err != nil {
				tx.Rollback()
				return err
			}
			args := make([]any, 0, 2*len(hs))
			for i, h := range hs {
				args = append(args, first+int64(i), h[:])
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_hashes (id, hash) VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?), ", len(hs)), ", "), args...); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
