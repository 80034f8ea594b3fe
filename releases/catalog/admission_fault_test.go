package catalog_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
)

// errDecisionLost is the fault failingDecisions injects.
var errDecisionLost = errors.New("the decision could not be stored")

// failingDecisions is the SQLite store with one fault: storing a decision
// that admits an artifact fails, inside the transaction that records the
// evidence bringing it.
type failingDecisions struct{ *sqlstore.DB }

func (f failingDecisions) Catalog() catalog.Store { return failingCatalog{f.DB.Catalog()} }

type failingCatalog struct{ catalog.Store }

func (c failingCatalog) AddEvidence(ctx context.Context, actor access.Actor, e catalog.Evidence, check func(catalog.ClaimReader, catalog.Artifact) error,
	decide func(catalog.AdmissionReader, catalog.Artifact) (*catalog.Admission, audit.Change, error)) (bool, catalog.Artifact, error) {
	return c.Store.AddEvidence(ctx, actor, e, check, func(tx catalog.AdmissionReader, a catalog.Artifact) (*catalog.Admission, audit.Change, error) {
		adm, change, err := decide(tx, a)
		if err == nil && adm != nil && adm.State == catalog.StateAdmitted {
			return nil, audit.Change{}, errDecisionLost
		}
		return adm, change, err
	})
}

// TestEvidenceNotKeptWithoutItsDecision: when the decision the evidence
// brings cannot be stored, the evidence is not stored either — no row, no
// event, no claim presented — and posting it again once the fault is gone
// admits the artifact.
func TestEvidenceNotKeptWithoutItsDecision(t *testing.T) {
	dir := t.TempDir()
	backend, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	meta, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(dir, "dml.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	blobs := store.New(backend)
	e := &domaintest.Env{T: t, Ctx: t.Context(), DML: domaintest.New(t, failingDecisions{meta}, blobs), Meta: meta}
	if _, err := e.DML.Access.BootstrapAdmin(e.Ctx, domaintest.AdminSecret); err != nil {
		t.Fatal(err)
	}
	if e.Admin, err = e.DML.Access.Authenticate(e.Ctx, domaintest.AdminSecret); err != nil {
		t.Fatal(err)
	}
	e.TrustCI()
	pipeline := e.Principal("pipeline", nil, access.RolePublisher)
	pushTarball(t, e, pipeline, "1.0")
	present := func(d *domaintest.Env, name string) (catalog.Artifact, error) {
		fx := evidenceFixtures[name]
		_, a, err := d.DML.Catalog.AddEvidence(d.Ctx, pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "1.0", Kind: fx.kind, Body: domaintest.Fixture(t, fx.file)})
		return a, err
	}
	if _, err := present(e, "signature"); err != nil {
		t.Fatal(err)
	}
	before := events(t, e)
	if _, err := present(e, "tests passed"); !errors.Is(err, errDecisionLost) {
		t.Fatalf("tests passed with the decision failing: %v; want %v", err, errDecisionLost)
	}
	if got := events(t, e); len(got) != len(before) {
		t.Errorf("the failed step recorded %d events: %v", len(got)-len(before), got[len(before):])
	}
	list, err := e.DML.Catalog.ListEvidence(e.Ctx, "payments/api", "1.0")
	if err != nil || len(list) != 1 || list[0].Kind != catalog.EvidenceSignature {
		t.Fatalf("evidence after the failed step = %+v, %v; want the signature alone", list, err)
	}
	if a, err := e.DML.Catalog.Artifact(e.Ctx, "payments/api", "1.0"); err != nil || a.State != catalog.StateQuarantined {
		t.Fatalf("after the failed step: %s, %v; want quarantined", a.State, err)
	}
	// The same database without the fault: the attestation admits.
	healthy := &domaintest.Env{T: t, Ctx: t.Context(), DML: domaintest.New(t, meta, blobs), Meta: meta, Admin: e.Admin}
	if a, err := present(healthy, "tests passed"); err != nil || a.State != catalog.StateAdmitted {
		t.Fatalf("tests passed again without the fault: %s, %v; want admitted", a.State, err)
	}
}
