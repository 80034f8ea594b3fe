package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// S3Config names an S3 server for the S3 scenarios: dml with its blobs
// there, against minio-go talking to the same server.
type S3Config struct {
	Endpoint, Bucket, AccessKey, SecretKey string
}

// Config is one run of the harness. Zero sizes take the defaults
// (Defaults, or ShortDefaults with Short).
type Config struct {
	// DMLBin is the dml executable whose `dml serve` is measured.
	DMLBin string
	// RegistryBin is the reference registry (distribution's `registry`);
	// empty skips the scenarios against it.
	RegistryBin string
	// S3 enables the S3 scenarios; Database (a postgres:// URL) keeps the
	// servers' metadata there instead of SQLite.
	S3       S3Config
	Database string
	Reps     int
	Short    bool
	Clients  int
	// LargeSize is the REST and S3 push/pull size; OCISize the /v2/ blob
	// size; ChunkSize the PATCH size of the many-chunk upload; SmallSize
	// the small pushes' size and SmallOps how many of them one repetition
	// makes (all clients together); AdmitOps the same for admissions.
	LargeSize, OCISize, ChunkSize, SmallSize int64
	SmallOps, AdmitOps                       int
	// Streams concurrent pushes of StreamSize each.
	Streams    int
	StreamSize int64
	// AuditRecords in the log that `dml audit verify` verifies.
	AuditRecords int64
	// VerifyOps evidence verifications per repetition.
	VerifyOps int
	// Scenarios, when set, runs only the scenarios whose name contains one
	// of these strings.
	Scenarios []string
	// WorkDir is where data directories and files go (a temporary
	// directory under it, removed at the end); empty: os.TempDir.
	WorkDir string
	// Progress receives a line per scenario as it runs; nil: silent.
	Progress io.Writer
}

// Defaults are the sizes of a full run (the table).
var Defaults = Config{
	Reps: 3, Clients: 8,
	LargeSize: 1 << 30, OCISize: 256 << 20, ChunkSize: 8 << 20, SmallSize: 4 << 10,
	SmallOps: 1000, AdmitOps: 400, Streams: 16, StreamSize: 256 << 20,
	AuditRecords: 1_000_000, VerifyOps: 20_000,
}

// ShortDefaults are the sizes of --short: every scenario, quickly.
var ShortDefaults = Config{
	Reps: 1, Clients: 8,
	LargeSize: 16 << 20, OCISize: 8 << 20, ChunkSize: 1 << 20, SmallSize: 4 << 10,
	SmallOps: 40, AdmitOps: 40, Streams: 16, StreamSize: 2 << 20,
	AuditRecords: 10_000, VerifyOps: 500,
}

// withDefaults fills what c leaves zero.
func (c Config) withDefaults() Config {
	d := Defaults
	if c.Short {
		d = ShortDefaults
	}
	fill := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	filli := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	filli(&c.Reps, d.Reps)
	filli(&c.Clients, d.Clients)
	fill(&c.LargeSize, d.LargeSize)
	fill(&c.OCISize, d.OCISize)
	fill(&c.ChunkSize, d.ChunkSize)
	fill(&c.SmallSize, d.SmallSize)
	filli(&c.SmallOps, d.SmallOps)
	filli(&c.AdmitOps, d.AdmitOps)
	filli(&c.Streams, d.Streams)
	fill(&c.StreamSize, d.StreamSize)
	fill(&c.AuditRecords, d.AuditRecords)
	filli(&c.VerifyOps, d.VerifyOps)
	return c
}

// bencher is one run in progress.
type bencher struct {
	cfg    Config
	work   string
	bucket string // the dml servers' bucket in the S3 scenarios
	hc     *http.Client
	report *Report
}

// scenario is a group of rows measured together (one server).
type scenario struct {
	name string
	// needs says what is missing to run it ("" when nothing is).
	needs func(*bencher) string
	run   func(*bencher, context.Context) ([]Row, error)
}

// Run runs the scenarios cfg selects and returns the report. A scenario
// that fails stops the run: a harness that skipped a broken scenario
// would print a table that hides it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if cfg.DMLBin == "" {
		return nil, errors.New("bench: no dml binary")
	}
	work, err := os.MkdirTemp(cfg.WorkDir, "dml-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: work directory: %w", err)
	}
	defer os.RemoveAll(work)
	b := &bencher{
		cfg: cfg, work: work, hc: newHTTPClient(),
		bucket: fmt.Sprintf("dml-bench-%d", time.Now().UnixNano()),
		report: &Report{Started: time.Now().UTC(), Reps: cfg.Reps, Backend: describe(cfg)},
	}
	for _, s := range scenarios() {
		if !cfg.selected(s.name) {
			continue
		}
		if why := s.needs(b); why != "" {
			b.report.Skipped = append(b.report.Skipped, s.name+": "+why)
			b.progress("skip %s: %s", s.name, why)
			continue
		}
		b.progress("run %s", s.name)
		start := time.Now()
		rows, err := s.run(b, ctx)
		if err != nil {
			return b.report, fmt.Errorf("bench: %s: %w", s.name, err)
		}
		for i := range rows {
			rows[i].Group = s.name
			rows[i].finish()
		}
		b.report.Rows = append(b.report.Rows, rows...)
		b.progress("done %s in %s", s.name, time.Since(start).Round(time.Millisecond))
	}
	return b.report, nil
}

func (c Config) selected(name string) bool {
	if len(c.Scenarios) == 0 {
		return true
	}
	for _, s := range c.Scenarios {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

func describe(c Config) string {
	meta := "SQLite"
	if c.Database != "" {
		meta = "PostgreSQL"
	}
	s := "blobs on the local filesystem, metadata in " + meta
	if c.S3.Endpoint != "" {
		s += "; S3 scenarios on " + c.S3.Endpoint
	}
	return s
}

func (b *bencher) progress(format string, args ...any) {
	if b.cfg.Progress != nil {
		fmt.Fprintf(b.cfg.Progress, "bench: "+format+"\n", args...)
	}
}

// newHTTPClient is the one HTTP client of every side: the same buffers and
// connection reuse for dml and for its baselines.
func newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever HTTP_PROXY says
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}
	return &http.Client{Transport: tr}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
