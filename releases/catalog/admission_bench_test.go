package catalog_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// benchSigner is a signing key registered as "ci", with a policy that
// needs its signature and its passing test result for load/*, and nkeys-1
// more keys trusted (and listed by the rule) beside it.
func benchSigner(b *testing.B, e *domaintest.Env, nkeys int) *signing.ServerSigner {
	b.Helper()
	newKey := func() *signing.ServerSigner {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		s, err := signing.NewServerSigner(priv)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	ci := newKey()
	keys := `"ci"`
	if _, err := e.DML.Trust.AddTrustKey(e.Ctx, e.Admin, trust.AddTrustKeyRequest{ID: "ci", PublicKey: string(ci.PublicKeyPEM())}); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < nkeys; i++ {
		id := fmt.Sprintf("key-%d", i)
		if _, err := e.DML.Trust.AddTrustKey(e.Ctx, e.Admin, trust.AddTrustKeyRequest{ID: id, PublicKey: string(newKey().PublicKeyPEM())}); err != nil {
			b.Fatal(err)
		}
		keys += `,"` + id + `"`
	}
	policy := `{"rules":[{"match":"load/*","signatures":{"keys":[` + keys + `]},"attestations":[{"predicateType":"` +
		domaintest.TestResult + `","keys":[` + keys + `]}]}]}`
	if _, err := e.DML.Trust.SetTrustPolicy(e.Ctx, e.Admin, []byte(policy)); err != nil {
		b.Fatal(err)
	}
	return ci
}

// benchArtifact is the content of the i-th artifact of a benchmark: 4 KiB,
// different for each i.
func benchArtifact(i int64) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "artifact %16d ", i), 4096/26)
}

// admitOne pushes content as load/app:version, posts its signature and its
// passing test result, and fails unless that admitted it.
func admitOne(b *testing.B, e *domaintest.Env, p access.Principal, ci *signing.ServerSigner, version string, content []byte) {
	d := digest.FromBytes(content)
	if _, _, err := e.DML.Catalog.Push(e.Ctx, p, catalog.PushRequest{Name: "load/app", Version: version, Size: int64(len(content)), Body: bytes.NewReader(content)}); err != nil {
		b.Error(err)
		return
	}
	sig, err := ci.SignBlob(content)
	if err != nil {
		b.Error(err)
		return
	}
	if _, _, err := e.DML.Catalog.AddEvidence(e.Ctx, p, catalog.EvidenceRequest{Name: "load/app", Version: version, Kind: catalog.EvidenceSignature,
		Body: []byte(`{"keyId":"ci","signature":"` + sig + `"}`)}); err != nil {
		b.Error(err)
		return
	}
	att, err := ci.SignStatement(domaintest.TestResult, map[string]any{"result": "PASSED", "configuration": []any{}}, signing.SubjectFor("load/app", d))
	if err != nil {
		b.Error(err)
		return
	}
	_, a, err := e.DML.Catalog.AddEvidence(e.Ctx, p, catalog.EvidenceRequest{Name: "load/app", Version: version, Kind: catalog.EvidenceAttestation, Body: att})
	if err != nil {
		b.Error(err)
		return
	}
	if a.State != catalog.StateAdmitted {
		b.Errorf("load/app:%s is %s after its evidence; want admitted", version, a.State)
	}
}

// BenchmarkAdmitEndToEnd is one admission through the domain on the
// embedded default (SQLite, a directory): a 4 KiB push, its signature,
// its passing test result, admitted. parallel=8 runs eight at once.
func BenchmarkAdmitEndToEnd(b *testing.B) {
	for _, parallel := range []int{1, 8} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			e := domaintest.NewEnv(b)
			ci := benchSigner(b, e, 1)
			p := e.Principal("pipeline", nil, access.RolePublisher)
			var n atomic.Int64
			// RunParallel runs parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, parallel/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			if parallel == 1 {
				for b.Loop() {
					i := n.Add(1)
					admitOne(b, e, p, ci, fmt.Sprint("1.", i), benchArtifact(i))
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						admitOne(b, e, p, ci, fmt.Sprint("8.", i), benchArtifact(i))
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admitted/s")
		})
	}
}

// BenchmarkAdmissionDecision is one decision about a quarantined artifact
// as a read of it answers (what is still missing), with keys trusted keys
// all listed by the policy's rule: the policy, the keys and the evidence
// as they stand, evaluated.
func BenchmarkAdmissionDecision(b *testing.B) {
	for _, keys := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			e := domaintest.NewEnv(b)
			ci := benchSigner(b, e, keys)
			p := e.Principal("pipeline", nil, access.RolePublisher)
			content := benchArtifact(0)
			if _, _, err := e.DML.Catalog.Push(e.Ctx, p, catalog.PushRequest{Name: "load/app", Version: "1", Size: int64(len(content)), Body: bytes.NewReader(content)}); err != nil {
				b.Fatal(err)
			}
			sig, err := ci.SignBlob(content)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := e.DML.Catalog.AddEvidence(e.Ctx, p, catalog.EvidenceRequest{Name: "load/app", Version: "1", Kind: catalog.EvidenceSignature,
				Body: []byte(`{"keyId":"ci","signature":"` + sig + `"}`)}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				a, err := e.DML.Catalog.Artifact(e.Ctx, "load/app", "1")
				if err != nil || a.State != catalog.StateQuarantined || a.Admission == nil || len(a.Admission.Unmet) != 1 {
					b.Fatalf("load/app:1 = %+v, %v; want quarantined, the test result missing", a.Admission, err)
				}
			}
		})
	}
}
