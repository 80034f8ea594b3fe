package audit_test

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/releases/sqlstore/sqlstoretest"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
)

// VerifyLog passes on an honest log, fails (and says so in
// Verification) on a rewritten record, and passes again once the record
// is back: each run's outcome is what monitoring reads.
func TestVerifyLog(t *testing.T) {
	ctx, dir := t.Context(), t.TempDir()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "dml.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	backend, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	forge := &atomic.Bool{}
	d := domaintest.New(t, sqlstoretest.ForgedAudit{DB: db, Forge: forge, Old: `"ops"`, New: `"sop"`}, store.New(backend))
	if _, err := d.Access.BootstrapAdmin(ctx, domaintest.AdminSecret); err != nil {
		t.Fatal(err)
	}
	admin, err := d.Access.Authenticate(ctx, domaintest.AdminSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ops", "audit"} {
		if _, err := d.Access.IssueToken(ctx, admin, access.TokenRequest{Name: name, Roles: []access.Role{access.RoleAuditor}}); err != nil {
			t.Fatal(err)
		}
	}
	if v := d.Audit.Verification(); v.Runs != 0 || !d.Audit.LastCheckpoint().IsZero() {
		t.Fatalf("before any run: %+v, checkpoint at %s; want nothing", v, d.Audit.LastCheckpoint())
	}

	if err := d.Audit.VerifyLog(ctx); err != nil {
		t.Fatalf("VerifyLog of an honest log: %v", err)
	}
	if v := d.Audit.Verification(); !v.OK || v.Runs != 1 || v.Failures != 0 || v.Records != 3 || v.At.IsZero() {
		t.Errorf("after an honest run: %+v; want OK over 3 records", v)
	}
	if d.Audit.LastCheckpoint().IsZero() {
		t.Error("VerifyLog signed no checkpoint")
	}

	forge.Store(true)
	err = d.Audit.VerifyLog(ctx)
	var ve *auditlog.VerifyError
	if !errors.As(err, &ve) || ve.Index != 1 {
		t.Fatalf("VerifyLog with record 1 rewritten = %v; want a VerifyError naming record 1", err)
	}
	if v := d.Audit.Verification(); v.OK || v.Runs != 2 || v.Failures != 1 || v.Problem == "" {
		t.Errorf("after a failed run: %+v; want not OK, the problem named", v)
	}

	forge.Store(false)
	if err := d.Audit.VerifyLog(ctx); err != nil {
		t.Fatalf("VerifyLog once the record is back: %v", err)
	}
	if v := d.Audit.Verification(); !v.OK || v.Runs != 3 || v.Failures != 1 {
		t.Errorf("after the record is back: %+v; want OK again, one failure counted", v)
	}
}
