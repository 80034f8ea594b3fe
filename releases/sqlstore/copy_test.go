package sqlstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/dmlproject/dml/internal/pgtest"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/sqlstore"
)

// TestCopyToPostgres grows an embedded DML (SQLite) with a bit of
// everything — trust, an admitted artifact and its evidence, a sealed
// release with its approvals, deploying, OCI manifests, tags and an
// upload — and copies its metadata into a new PostgreSQL database. The
// copy serves the same audit log record for record, with the same tree
// (size and root), the same artifacts and releases, the tokens still
// authenticate; new changes on it append after the copied ones, one log
// with contiguous indexes. Copying again into it is refused.
func TestCopyToPostgres(t *testing.T) {
	pgURL := pgtest.NewDatabase(t)
	ctx := t.Context()
	src := domaintest.NewEnv(t)
	rs := replicas{src}
	deployingRelease(t, rs, "rollout")
	pipeline := src.Principal("oci-pipeline", nil, access.RolePublisher)
	for i, body := range ociManifests(t, rs, pipeline, 3) {
		if err := pushManifest(ctx, src.DML, pipeline, fmt.Sprint("v", i), body); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.DML.Registry.StartUpload(ctx, pipeline, ociRepo); err != nil {
		t.Fatal(err)
	}

	dst, err := sqlstore.OpenPostgres(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	copied, err := src.Meta.CopyTo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, c := range copied {
		rows += int(c.Rows)
	}
	t.Logf("copied %d rows of %d tables", rows, len(copied))

	moved := &domaintest.Env{T: t, Ctx: ctx, DML: domaintest.New(t, dst, src.DML.Blobs.Store()), Meta: dst}
	if moved.Admin, err = moved.DML.Access.Authenticate(ctx, domaintest.AdminSecret); err != nil {
		t.Fatalf("the admin token after the copy: %v", err)
	}
	entries := func(e *domaintest.Env) [][]byte {
		var out [][]byte
		if err := e.DML.Audit.AuditEntries(ctx, e.Admin, 0, 0, func(a audit.AuditEntry) error {
			out = append(out, bytes.Clone(a.Record))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before, after := entries(src), entries(moved)
	if len(before) == 0 || len(before) != len(after) {
		t.Fatalf("%d audit records before the copy, %d after", len(before), len(after))
	}
	for i := range before {
		if !bytes.Equal(before[i], after[i]) {
			t.Fatalf("audit record %d differs:\n%s\n%s", i, before[i], after[i])
		}
	}
	_, cpBefore, err := src.DML.Audit.SignCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, cpAfter, err := moved.DML.Audit.SignCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cpBefore != cpAfter {
		t.Errorf("checkpoint before the copy %+v, after %+v", cpBefore, cpAfter)
	}
	for _, name := range []string{"rollout"} {
		a, err := src.DML.Releases.Release(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := moved.DML.Releases.Release(ctx, name)
		if err != nil || a.State != b.State || a.ManifestDigest != b.ManifestDigest || len(a.Approvals) != len(b.Approvals) || a.Revision != b.Revision {
			t.Errorf("release %s after the copy: %s %s (%d approvals, revision %d), %v; before: %s %s (%d, %d)",
				name, b.State, b.ManifestDigest, len(b.Approvals), b.Revision, err, a.State, a.ManifestDigest, len(a.Approvals), a.Revision)
		}
	}
	if a, err := moved.DML.Catalog.Artifact(ctx, relArtifact, "1.4.2"); err != nil || a.State != catalog.StateAdmitted {
		t.Errorf("%s:1.4.2 after the copy: %s, %v; want admitted", relArtifact, a.State, err)
	}

	// New changes append after the copied ones.
	testReplicaAuditAppend(t, replicas{moved})
	checkOneLog(t, replicas{moved})
	if _, err := src.Meta.CopyTo(ctx, dst); !errors.Is(err, sqlstore.ErrTargetNotEmpty) {
		t.Errorf("a second copy into the same database: %v, want ErrTargetNotEmpty", err)
	}
}
