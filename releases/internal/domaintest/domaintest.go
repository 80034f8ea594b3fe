// Package domaintest holds what the domain's tests share across the
// concept packages: the domain built over real stores with fresh test
// keys (New), the repository's signing fixtures (real cosign output,
// testdata/cosign and testdata/cosign-oci) and the trust policy they
// satisfy.
package domaintest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/store"
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
