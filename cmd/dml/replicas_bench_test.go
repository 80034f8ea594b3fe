package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/opencontainers/go-digest"
)

// BenchmarkReplicas measures what the shared DML sustains with one and
// with three replicas (newCluster: PostgreSQL, versitygw, `dml serve`s
// behind a balancer, all on this machine): pushes per second — a 4 KiB
// push and its signature, which admits it, from 8 clients for 10 s — and
// approvals per second — ten approvers approving the plan gates of 15
// releases (quorum 10) at once. docs/performance.md records the figures:
//
//	go test -run '^$' -bench BenchmarkReplicas -benchtime 1x ./cmd/dml/
func BenchmarkReplicas(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			cl := newCluster(b, n)
			ctx := context.Background()
			var pushes, approvals, pushSecs, approvalSecs float64
			for i := range b.N {
				const clients, d = 8, 10 * time.Second
				var done, failed atomic.Int64
				deadline := time.Now().Add(d)
				var wg sync.WaitGroup
				for c := range clients {
					o := cl.op.fork()
					wg.Go(func() {
						for k := 0; k < 100_000 && time.Now().Before(deadline); k++ {
							body := fmt.Appendf(nil, "bench %d %d %d %d", i, c, k, time.Now().UnixNano())
							if err := o.push(ctx, fmt.Sprintf("load/bench-%d", c), fmt.Sprintf("%d.%d", i, k), body); err != nil {
								failed.Add(1)
								continue
							}
							done.Add(1)
						}
					})
				}
				wg.Wait()
				if failed.Load() > 0 {
					b.Fatalf("%d pushes failed", failed.Load())
				}
				pushes += float64(done.Load())
				pushSecs += d.Seconds()

				const releases = 15
				var names []string
				for r := range releases {
					rel, err := cl.release(ctx, fmt.Sprintf("bench-%d-%d", i, r), 10)
					if err != nil {
						b.Fatal(err)
					}
					names = append(names, rel.Name)
				}
				expected := map[string]digest.Digest{}
				for _, name := range names {
					rel, err := cl.rm.Releases().Get(ctx, name)
					if err != nil {
						b.Fatal(err)
					}
					for _, g := range rel.Gates {
						if g.Gate == "plan" {
							expected[name] = g.ExpectedDigest
						}
					}
				}
				start := time.Now()
				for a, c := range cl.cab {
					wg.Go(func() {
						for _, name := range names {
							req := wire.ApprovalRequest{Gate: "plan", Decision: "approve", Digest: expected[name], Comment: "ok"}
							if _, err := c.Releases().Decide(ctx, name, req); err != nil {
								b.Errorf("cab-%d approving %s: %v", a, name, err)
							}
						}
					})
				}
				wg.Wait()
				approvals += float64(len(cl.cab) * releases)
				approvalSecs += time.Since(start).Seconds()
			}
			b.ReportMetric(pushes/pushSecs, "pushes/s")
			b.ReportMetric(approvals/approvalSecs, "approvals/s")
			b.Logf("%d replica(s): %s", n, cl.lb.report())
		})
	}
}
