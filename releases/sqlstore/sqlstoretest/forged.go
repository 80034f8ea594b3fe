// Package sqlstoretest holds test doubles around the real SQL database.
package sqlstoretest

import (
	"bytes"
	"context"
	"sync/atomic"

	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/sqlstore"
)

// ForgedAudit serves the audit log of a real database with record 1
// rewritten (the first Old in its bytes replaced by New) while Forge is
// set: what someone editing the table behind the server's back would
// leave. Everything else is the database itself, hooks included.
type ForgedAudit struct {
	*sqlstore.DB
	Forge    *atomic.Bool
	Old, New string
}

// Audit is the database's audit store, read through the forgery.
func (m ForgedAudit) Audit() audit.Store { return forgedStore{m.DB.Audit(), m} }

type forgedStore struct {
	audit.Store
	m ForgedAudit
}

func (a forgedStore) AuditEntries(ctx context.Context, start, limit int64, fn func(audit.AuditEntry) error) error {
	return a.Store.AuditEntries(ctx, start, limit, func(e audit.AuditEntry) error {
		if a.m.Forge.Load() && e.Index == 1 {
			e.Record = bytes.Replace(e.Record, []byte(a.m.Old), []byte(a.m.New), 1)
		}
		return fn(e)
	})
}
