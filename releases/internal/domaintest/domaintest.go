// Package domaintest holds what the domain's tests share across the
// concept packages: the domain built over real stores with fresh test
// keys (New), the repository's signing fixtures (real cosign output,
// testdata/cosign and testdata/cosign-oci) and the trust policy they
// satisfy.
package domaintest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
)

// TestResult is the in-toto test-result predicate type.
const TestResult = "https://in-toto.io/attestation/test-result/v0.1"

// CIPolicy requires a signature by "ci" and a test-result attestation by
// "ci" of every payments/* artifact; testdata/cosign/cosign.pub is "ci".
const CIPolicy = `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]},
  "attestations":[{"predicateType":"` + TestResult + `","keys":["ci"]}]}]}`

// Fixture reads testdata/name of the repository.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repoRoot is three directories above this file (releases/internal/domaintest).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// New builds the domain over meta and blobs with fresh test keys
// (internal/testkeys); opts adjust the configuration first (a logger, a
// clock).
func New(t testing.TB, meta releases.Metadata, blobs *store.Store, opts ...func(*releases.Config)) *releases.DML {
	t.Helper()
	signer, logKey := testkeys.Keys(t)
	return newDML(t, meta, blobs, signer, logKey, opts...)
}

func newDML(t testing.TB, meta releases.Metadata, blobs *store.Store, signer *signing.ServerSigner, logKey *auditlog.LogKey, opts ...func(*releases.Config)) *releases.DML {
	t.Helper()
	cfg := releases.Config{Metadata: meta, Blobs: blobs, Signer: signer, LogKey: logKey, LogOrigin: testkeys.LogOrigin}
	for _, o := range opts {
		o(&cfg)
	}
	d, err := releases.New(cfg)
	if err != nil {
		t.Fatalf("releases.New: %v", err)
	}
	return d
}

// AdminSecret is the bootstrap admin's secret in an Env.
const AdminSecret = "bootstrap-secret-123456"

// Env is the domain over real storage in a test's temporary directory —
// SQLite in a file, blobs in a directory — with the bootstrap admin
// authenticated.
type Env struct {
	T     testing.TB
	Ctx   context.Context
	DML   *releases.DML
	Meta  *sqlstore.DB
	Admin access.Principal
}

// NewEnv builds an Env; opts adjust the domain's configuration (New).
func NewEnv(t testing.TB, opts ...func(*releases.Config)) *Env { return NewEnvOver(t, nil, opts...) }

// NewEnvOver is NewEnv with the blob backend wrapped by wrap (nil: the
// directory backend as it is), for tests that inject faults or pauses.
func NewEnvOver(t testing.TB, wrap func(*fs.Backend) store.Backend, opts ...func(*releases.Config)) *Env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	fsBackend, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsBackend.Close() })
	var backend store.Backend = fsBackend
	if wrap != nil {
		backend = wrap(fsBackend)
	}
	meta, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "dml.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	e := &Env{T: t, Ctx: ctx, DML: New(t, meta, store.New(backend), opts...), Meta: meta}
	e.bootstrap()
	return e
}

// bootstrap creates the admin token (once per database) and authenticates
// it.
func (e *Env) bootstrap() {
	e.T.Helper()
	if _, err := e.DML.Access.BootstrapAdmin(e.Ctx, AdminSecret); err != nil {
		e.T.Fatal(err)
	}
	var err error
	if e.Admin, err = e.DML.Access.Authenticate(e.Ctx, AdminSecret); err != nil {
		e.T.Fatal(err)
	}
}

// NewReplicas builds n Envs that are replicas of one DML, as n `dml serve`
// processes behind a load balancer are: each over its own handle onto one
// database (open is called once per replica, its handle closed by the
// caller), all over one blob backend (as replicas share a bucket; a
// directory admits one process) and with one set of keys. The admin is
// bootstrapped once, by the first.
func NewReplicas(t testing.TB, n int, open func() *sqlstore.DB, opts ...func(*releases.Config)) []*Env {
	t.Helper()
	backend, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	signer, logKey := testkeys.Keys(t)
	out := make([]*Env, n)
	for i := range out {
		meta := open()
		out[i] = &Env{T: t, Ctx: t.Context(), DML: newDML(t, meta, store.New(backend), signer, logKey, opts...), Meta: meta}
		out[i].bootstrap()
	}
	return out
}

// Principal issues a token (as the admin) and returns its principal.
func (e *Env) Principal(name string, envs []string, roles ...access.Role) access.Principal {
	e.T.Helper()
	issued, err := e.DML.Access.IssueToken(e.Ctx, e.Admin, access.TokenRequest{Name: name, Roles: roles, Environments: envs})
	if err != nil {
		e.T.Fatalf("issue token %s: %v", name, err)
	}
	p, err := e.DML.Access.Authenticate(e.Ctx, issued.Secret)
	if err != nil {
		e.T.Fatal(err)
	}
	return p
}

// TrustCI registers testdata/cosign/cosign.pub as the trusted key "ci"
// and sets CIPolicy.
func (e *Env) TrustCI() {
	e.T.Helper()
	if _, err := e.DML.Trust.AddTrustKey(e.Ctx, e.Admin, trust.AddTrustKeyRequest{ID: "ci", PublicKey: string(Fixture(e.T, "cosign/cosign.pub"))}); err != nil {
		e.T.Fatal(err)
	}
	if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(CIPolicy)); err != nil {
		e.T.Fatal(err)
	}
}

// Quorum sums up how a release's gates were approved: the approvals on
// record per gate (not discarded), from the release; and, from its events,
// how many approvals authorised each gate and how many sealed it.
func Quorum(t testing.TB, r lifecycle.Release, events []audit.Event) (onRecord, authorized map[string]int, sealed int) {
	t.Helper()
	onRecord, authorized = map[string]int{}, map[string]int{}
	for _, a := range r.Approvals {
		if !a.Discarded {
			onRecord[a.Gate]++
		}
	}
	for _, ev := range events {
		var d struct {
			Gate       string `json:"gate"`
			Authorized bool   `json:"authorized"`
			Sealed     string `json:"sealed"`
		}
		if ev.Action != lifecycle.ActionReleaseApproval {
			continue
		}
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			t.Fatal(err)
		}
		if d.Authorized {
			authorized[d.Gate]++
		}
		if d.Sealed != "" {
			sealed++
		}
	}
	return onRecord, authorized, sealed
}
