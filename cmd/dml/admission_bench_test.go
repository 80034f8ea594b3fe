package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// BenchmarkAdmissionHTTP measures end-to-end admission against one
// `dml serve` on the embedded default (a directory and SQLite), over
// loopback: 8 clients, each pushing a 4 KiB artifact, posting its
// signature and a passing test-result attestation, after which the policy
// admits it. It reports admitted/s over 10 s per iteration:
//
//	go test -run '^$' -bench BenchmarkAdmissionHTTP -benchtime 1x ./cmd/dml/
//
// DML_BENCH_LOGS=1 logs what the server wrote.
func BenchmarkAdmissionHTTP(b *testing.B) {
	const adminToken = "admission-bench-admin-token-0123456789"
	srv := startServer(b, []string{"DML_BOOTSTRAP_TOKEN=" + adminToken}, "--data-dir", b.TempDir())
	ctx := context.Background()
	admin, err := client.New(srv.url(), adminToken)
	if err != nil {
		b.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ci, err := signing.NewServerSigner(priv)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "ci", PublicKey: string(ci.PublicKeyPEM())}); err != nil {
		b.Fatal(err)
	}
	const testResult = "https://in-toto.io/attestation/test-result/v0.1"
	if _, err := admin.Trust().SetPolicy(ctx, []byte(`{"rules":[{"match":"load/*","signatures":{"keys":["ci"]},`+
		`"attestations":[{"predicateType":"`+testResult+`","keys":["ci"]}]}]}`)); err != nil {
		b.Fatal(err)
	}
	issued, err := admin.Tokens().Create(ctx, wire.TokenRequest{Name: "pipeline", Roles: []string{"publisher"}})
	if err != nil {
		b.Fatal(err)
	}
	admit := func(c *client.Client, name, version string, body []byte) error {
		d := digest.FromBytes(body)
		if _, _, err := c.Artifacts().Push(ctx, client.PushRequest{Name: name, Version: version, Digest: d, Size: int64(len(body)), Body: bytes.NewReader(body)}); err != nil {
			return fmt.Errorf("push %s:%s: %w", name, version, err)
		}
		sig, err := ci.SignBlob(body)
		if err != nil {
			return err
		}
		if _, _, err := c.Evidence().AddSignature(ctx, name, version, []byte(`{"keyId":"ci","signature":"`+sig+`"}`)); err != nil {
			return fmt.Errorf("signature of %s:%s: %w", name, version, err)
		}
		att, err := ci.SignStatement(testResult, map[string]any{"result": "PASSED", "configuration": []any{}, "passedTests": []string{"all"}},
			signing.SubjectFor(name, d))
		if err != nil {
			return err
		}
		_, a, err := c.Evidence().AddAttestation(ctx, name, version, att)
		if err != nil {
			return fmt.Errorf("attestation of %s:%s: %w", name, version, err)
		}
		if a.State != "admitted" {
			return fmt.Errorf("%s:%s is %s after its evidence, want admitted", name, version, a.State)
		}
		return nil
	}
	var admitted, secs float64
	for i := range b.N {
		const clients, d = 8, 10 * time.Second
		var done, failed atomic.Int64
		var firstErr atomic.Value
		deadline := time.Now().Add(d)
		start := time.Now()
		var wg sync.WaitGroup
		for c := range clients {
			cl, err := client.New(srv.url(), issued.Token)
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				for k := 0; k < 100_000 && time.Now().Before(deadline); k++ {
					body := bytes.Repeat(fmt.Appendf(nil, "admission %d %d %d %d ", i, c, k, time.Now().UnixNano()), 4096/40)
					if err := admit(cl, fmt.Sprintf("load/app-%d", c), fmt.Sprintf("%d.%d", i, k), body); err != nil {
						firstErr.CompareAndSwap(nil, err)
						failed.Add(1)
						continue
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d admissions failed; the first: %v", failed.Load(), firstErr.Load())
		}
		admitted += float64(done.Load())
		secs += time.Since(start).Seconds()
	}
	b.ReportMetric(admitted/secs, "admitted/s")
	if os.Getenv("DML_BENCH_LOGS") != "" {
		b.Log(srv.logs.String())
	}
}
