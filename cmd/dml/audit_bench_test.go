package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/auditlog"
)

// BenchmarkAuditVerify measures `dml audit verify` (the same code path:
// auditlog.Verify over the HTTP client) against a real server whose log
// holds DML_BENCH_AUDIT_RECORDS records (default 1,000,000), each a real
// change (a token issue) recorded through the service. Building the log is
// setup and is not timed. Run:
//
//	go test -run '^$' -bench BenchmarkAuditVerify -benchtime 3x ./cmd/dml/
func BenchmarkAuditVerify(b *testing.B) {
	n := int64(1_000_000)
	if v := os.Getenv("DML_BENCH_AUDIT_RECORDS"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			b.Fatal(err)
		}
	}
	// The testing package calls a benchmark more than once; build the log
	// once per process.
	benchLogOnce.Do(func() {
		var l benchAuditLog
		if l, benchLogErr = buildBenchLog(n); benchLogErr == nil {
			benchLog = l
		}
	})
	if benchLogErr != nil {
		b.Fatal(benchLogErr)
	}
	ctx := context.Background()
	c, err := client.New(benchLog.srv.URL, benchLog.auditor)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, st, err := auditlog.Verify(ctx, c.Audit(), nil, auditlog.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if res.Checkpoint.Size != n {
			b.Fatalf("verified %d records, want %d", res.Checkpoint.Size, n)
		}
		if i == 0 {
			b.StopTimer()
			// Saving the state is part of a run too; measure it once.
			if err := saveAuditState(filepath.Join(b.TempDir(), "state.json"), st); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(n), "records")
}

type benchAuditLog struct {
	dir     string
	srv     *testserver.Server
	auditor string
}

// close stops the benchmark's server and removes its data (TestMain).
func (l benchAuditLog) close() {
	if l.srv != nil {
		_ = l.srv.Close()
	}
	if l.dir != "" {
		_ = os.RemoveAll(l.dir)
	}
}

var (
	benchLogOnce sync.Once
	benchLog     benchAuditLog
	benchLogErr  error
)

// buildBenchLog starts a server (left running until the process exits)
// whose log holds n records.
func buildBenchLog(n int64) (benchAuditLog, error) {
	dir, err := os.MkdirTemp("", "dml-bench-audit-")
	if err != nil {
		return benchAuditLog{}, err
	}
	srv, err := testserver.Start(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return benchAuditLog{}, err
	}
	benchLog = benchAuditLog{dir: dir, srv: srv} // removed by TestMain even if setup fails below
	ctx := context.Background()
	admin, err := srv.DML.Access.Authenticate(ctx, srv.AdminToken)
	if err != nil {
		return benchAuditLog{}, err
	}
	auditor, err := srv.DML.Access.IssueToken(ctx, admin, access.TokenRequest{Name: "auditor", Roles: []access.Role{access.RoleAuditor}})
	if err != nil {
		return benchAuditLog{}, err
	}
	for i := int64(2); i < n; i++ {
		if _, err := srv.DML.Access.IssueToken(ctx, admin, access.TokenRequest{Name: fmt.Sprintf("svc-%d", i), Roles: []access.Role{access.RolePublisher}}); err != nil {
			return benchAuditLog{}, err
		}
	}
	return benchAuditLog{dir: dir, srv: srv, auditor: auditor.Secret}, nil
}
