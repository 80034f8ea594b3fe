package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
)

// scenarios is every scenario, in the order of the table.
func scenarios() []scenario {
	always := func(*bencher) string { return "" }
	needsRegistry := func(b *bencher) string {
		if b.cfg.RegistryBin == "" {
			return "no reference registry (--registry-bin)"
		}
		return ""
	}
	needsS3 := func(b *bencher) string {
		if b.cfg.S3.Endpoint == "" {
			return "no S3 server (--s3-endpoint, --s3-bucket, --s3-access-key, --s3-secret-key)"
		}
		return ""
	}
	sqliteOnly := func(b *bencher) string {
		if b.cfg.Database != "" {
			return "the log is built directly in SQLite; not with --database"
		}
		return ""
	}
	return []scenario{
		{"rest large", always, (*bencher).restLarge},
		{"v2 large", always, (*bencher).v2Large},
		{"v2 vs registry", needsRegistry, (*bencher).v2Registry},
		{"admission", always, (*bencher).admission},
		{"concurrent streams", always, (*bencher).streams},
		{"s3", needsS3, (*bencher).s3},
		{"verification", always, (*bencher).verifications},
		{"audit append", always, (*bencher).auditAppend},
		{"audit verify", sqliteOnly, (*bencher).auditVerify},
	}
}

// ScenarioNames are the scenario groups, in the order they run: the
// names --scenario selects from and Row.Group carries.
func ScenarioNames() []string {
	var names []string
	for _, s := range scenarios() {
		names = append(names, s.name)
	}
	return names
}

// dmlServer is a started dml serve and the clients of the scenarios.
type dmlServer struct {
	*proc
	admin     *client.Client
	publisher *client.Client
	token     string // the publisher's
	rest      endpoint
	v2        endpoint
}

// serve starts dml serve and issues a publisher token.
func (b *bencher) serve(ctx context.Context, label string) (*dmlServer, error) {
	p, err := b.startDML(ctx, label)
	if err != nil {
		return nil, err
	}
	s, err := b.clients(ctx, p)
	if err != nil {
		p.close()
		return nil, err
	}
	return s, nil
}

func (b *bencher) clients(ctx context.Context, p *proc) (*dmlServer, error) {
	admin, err := client.New(p.url(), adminToken, client.WithHTTPClient(b.hc))
	if err != nil {
		return nil, err
	}
	issued, err := admin.Tokens().Create(ctx, wire.TokenRequest{Name: fmt.Sprintf("bench-%d", time.Now().UnixNano()), Roles: []string{"publisher"}})
	if err != nil {
		return nil, fmt.Errorf("publisher token: %w", err)
	}
	pub, err := client.New(p.url(), issued.Token, client.WithHTTPClient(b.hc))
	if err != nil {
		return nil, err
	}
	return &dmlServer{proc: p, admin: admin, publisher: pub, token: issued.Token,
		rest: endpoint{base: p.url()}, v2: endpoint{base: p.url(), basic: issued.Token}}, nil
}

// restPush is dml's side of a REST push scenario: each repetition makes
// the payload's bytes new and pushes them as version 1.0.<rep> of name;
// *last is set to the version pushed last, for the pulls that follow.
func (s *dmlServer) restPush(ctx context.Context, p *payload, name string, last *string) timed {
	return func(rep int) (time.Duration, error) {
		if err := p.freshen(); err != nil {
			return 0, err
		}
		f, err := p.open()
		if err != nil {
			return 0, err
		}
		defer f.Close()
		version := fmt.Sprintf("1.0.%d", rep)
		d, err := stopwatch(func() error {
			_, _, err := s.publisher.Artifacts().Push(ctx, client.PushRequest{Name: name, Version: version, Digest: p.digest, Size: p.size, Body: f})
			return err
		})
		*last = version
		return d, err
	}
}

// restPull is dml's side of a REST pull scenario: the content of name's
// version, checked against the payload's digest on the client.
func (s *dmlServer) restPull(ctx context.Context, hc *http.Client, p *payload, name, version string) timed {
	target := "/api/v1/artifacts/" + name + "/versions/" + version + "/content"
	auth := http.Header{"Authorization": {"Bearer " + s.token}}
	return func(int) (time.Duration, error) {
		return stopwatch(func() error { _, err := s.rest.pull(ctx, hc, target, auth, p.digest); return err })
	}
}

// measure runs the two sides alternately into row, with the servers'
// peak memory over the scenario (srv is the dml server, base the
// baseline's server; either may be nil).
func (b *bencher) measure(row *Row, srv, base *proc, dml, baseline timed) error {
	for _, p := range []*proc{srv, base} {
		if p != nil {
			if err := resetPeak(p.pid()); err != nil {
				return fmt.Errorf("resetting %s's peak memory: %w", p.name, err)
			}
		}
	}
	sa, sb, err := alternate(b.cfg.Reps, dml, baseline)
	if err != nil {
		return fmt.Errorf("%s: %w", row.Scenario, err)
	}
	row.DML = sa
	if baseline != nil {
		row.Base = &sb
	}
	if srv != nil {
		if row.PeakRSS, err = peakRSS(srv.pid()); err != nil {
			return err
		}
	}
	if base != nil {
		if row.BasePeakRSS, err = peakRSS(base.pid()); err != nil {
			return err
		}
	}
	return nil
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// fileServer serves dir with net/http's FileServer on a loopback port:
// sendfile from the page cache, the most a pull over HTTP can do.
func fileServer(dir string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// restLarge: one large artifact pushed and pulled over /api/v1, against
// the disk (write+fsync, read) and net/http's file server.
func (b *bencher) restLarge(ctx context.Context) ([]Row, error) {
	s, err := b.serve(ctx, "rest")
	if err != nil {
		return nil, err
	}
	defer s.close()
	n := b.cfg.LargeSize
	dir, p, err := b.newPayloadDir("large", n)
	if err != nil {
		return nil, err
	}
	defer removeAll(dir)
	const name = "bench/large"
	var last string
	push := Row{Scenario: "REST push " + size(n), Baseline: "write+fsync (dd bs=4M conv=fsync)", Bytes: n,
		Note: "target: ≥ 0.85× of write+fsync (ratio ≤ 1.18); peak RSS ≤ 64 MiB for one stream"}
	err = b.measure(&push, s.proc, nil, s.restPush(ctx, p, name, &last), ddTimed(p.path, dir))
	if err != nil {
		return nil, err
	}
	pullDML := s.restPull(ctx, b.hc, p, name, last)
	pull := Row{Scenario: "REST pull " + size(n), Baseline: "read the file (cat)", Bytes: n}
	if err := b.measure(&pull, s.proc, nil, pullDML, func(int) (time.Duration, error) {
		return stopwatch(func() error { return readFile(p.path) })
	}); err != nil {
		return nil, err
	}
	fsURL, stop, err := fileServer(dir)
	if err != nil {
		return nil, err
	}
	defer stop()
	files := endpoint{base: fsURL}
	pullFS := Row{Scenario: "REST pull " + size(n) + " (vs HTTP)", Baseline: "net/http FileServer (sendfile)", Bytes: n,
		Note: "target: a verified pull ≥ 0.5× of sendfile (ratio ≤ 2)"}
	if err := b.measure(&pullFS, s.proc, nil, pullDML, func(int) (time.Duration, error) {
		return stopwatch(func() error { _, err := files.pull(ctx, b.hc, "/large", nil, p.digest); return err })
	}); err != nil {
		return nil, err
	}
	return []Row{push, pull, pullFS}, nil
}

// ociPushes are the three ways a blob is pushed over /v2/.
func (b *bencher) ociPushes() []struct {
	label string
	push  func(ctx context.Context, e endpoint, repo string, p *payload) error
} {
	chunk := b.cfg.ChunkSize
	return []struct {
		label string
		push  func(ctx context.Context, e endpoint, repo string, p *payload) error
	}{
		{"monolithic (POST, PUT)", func(ctx context.Context, e endpoint, repo string, p *payload) error {
			f, err := p.open()
			if err != nil {
				return err
			}
			defer f.Close()
			return e.pushMonolithic(ctx, b.hc, repo, f, p.size, p.digest)
		}},
		{"streamed (POST, PATCH, PUT: crane)", func(ctx context.Context, e endpoint, repo string, p *payload) error {
			f, err := p.open()
			if err != nil {
				return err
			}
			defer f.Close()
			return e.pushStreamed(ctx, b.hc, repo, f, p.digest)
		}},
		{fmt.Sprintf("in %s chunks (PATCH Content-Range)", size(chunk)), func(ctx context.Context, e endpoint, repo string, p *payload) error {
			f, err := p.open()
			if err != nil {
				return err
			}
			defer f.Close()
			return e.pushChunks(ctx, b.hc, repo, f, p.size, chunk, p.digest)
		}},
	}
}

// v2Large: one blob pushed over /v2/ three ways against write+fsync, and
// pulled against net/http's file server.
func (b *bencher) v2Large(ctx context.Context) ([]Row, error) {
	s, err := b.serve(ctx, "v2")
	if err != nil {
		return nil, err
	}
	defer s.close()
	n := b.cfg.OCISize
	dir, p, err := b.newPayloadDir("blob", n)
	if err != nil {
		return nil, err
	}
	defer removeAll(dir)
	const repo = "bench/oci"
	var rows []Row
	for _, way := range b.ociPushes() {
		row := Row{Scenario: "/v2/ push " + size(n) + " " + way.label, Baseline: "write+fsync (dd bs=4M conv=fsync)", Bytes: n}
		err := b.measure(&row, s.proc, nil, func(int) (time.Duration, error) {
			if err := p.freshen(); err != nil {
				return 0, err
			}
			return stopwatch(func() error { return way.push(ctx, s.v2, repo, p) })
		}, ddTimed(p.path, dir))
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	fsURL, stop, err := fileServer(dir)
	if err != nil {
		return nil, err
	}
	defer stop()
	files := endpoint{base: fsURL}
	pull := Row{Scenario: "/v2/ pull " + size(n), Baseline: "net/http FileServer (sendfile)", Bytes: n}
	err = b.measure(&pull, s.proc, nil, func(int) (time.Duration, error) {
		return stopwatch(func() error {
			_, err := s.v2.pull(ctx, b.hc, "/v2/"+repo+"/blobs/"+p.digest.String(), nil, p.digest)
			return err
		})
	}, func(int) (time.Duration, error) {
		return stopwatch(func() error { _, err := files.pull(ctx, b.hc, "/blob", nil, p.digest); return err })
	})
	if err != nil {
		return nil, err
	}
	return append(rows, pull), nil
}

// v2Registry: the same /v2/ client code against dml and the reference
// registry: the three pushes, a pull, and small artifacts from many
// clients.
func (b *bencher) v2Registry(ctx context.Context) ([]Row, error) {
	s, err := b.serve(ctx, "v2reg")
	if err != nil {
		return nil, err
	}
	defer s.close()
	reg, err := b.startRegistry(ctx)
	if err != nil {
		return nil, err
	}
	defer reg.close()
	ref := endpoint{base: reg.url()}
	n := b.cfg.OCISize
	dir, p, err := b.newPayloadDir("blob", n)
	if err != nil {
		return nil, err
	}
	defer removeAll(dir)
	const repo = "bench/oci"
	const baseline = "distribution v3 registry"
	var rows []Row
	for _, way := range b.ociPushes() {
		row := Row{Scenario: "/v2/ push " + size(n) + " " + way.label, Baseline: baseline, Bytes: n}
		if strings.Contains(way.label, "crane") {
			row.Note = "target: ≥ 1.0× the registry's speed (ratio ≤ 1)"
		}
		// Both sides push the same new bytes in a repetition: dml first,
		// after freshening them.
		err := b.measure(&row, s.proc, reg, func(int) (time.Duration, error) {
			if err := p.freshen(); err != nil {
				return 0, err
			}
			return stopwatch(func() error { return way.push(ctx, s.v2, repo, p) })
		}, func(int) (time.Duration, error) {
			return stopwatch(func() error { return way.push(ctx, ref, repo, p) })
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	blob := "/v2/" + repo + "/blobs/" + p.digest.String()
	pull := Row{Scenario: "/v2/ pull " + size(n) + " (vs registry)", Baseline: baseline, Bytes: n,
		Note: "target: a verified pull ≥ 1.0× the registry's (ratio ≤ 1)"}
	err = b.measure(&pull, s.proc, reg, func(int) (time.Duration, error) {
		return stopwatch(func() error { _, err := s.v2.pull(ctx, b.hc, blob, nil, p.digest); return err })
	}, func(int) (time.Duration, error) {
		return stopwatch(func() error { _, err := ref.pull(ctx, b.hc, blob, nil, p.digest); return err })
	})
	if err != nil {
		return nil, err
	}
	rows = append(rows, pull)

	clients, ops := b.cfg.Clients, b.cfg.SmallOps
	small := Row{Scenario: fmt.Sprintf("/v2/ push %s artifacts, %d clients", size(b.cfg.SmallSize), clients), Baseline: baseline, Ops: int64(ops)}
	pushAll := func(e endpoint, side string) timed {
		return func(rep int) (time.Duration, error) {
			return b.parallel(clients, ops, func(c, i int) error {
				data := smallData(b.cfg.SmallSize, side, rep, c, i)
				return e.pushArtifact(ctx, b.hc, fmt.Sprintf("bench/small-%d", c), fmt.Sprintf("r%d-%d", rep, i), data)
			})
		}
	}
	if err := b.measure(&small, s.proc, reg, pushAll(s.v2, "dml"), pushAll(ref, "registry")); err != nil {
		return nil, err
	}
	return append(rows, small), nil
}

// smallData is a small push's bytes, unlike any other push's.
func smallData(n int64, side string, rep, c, i int) []byte {
	data := make([]byte, n)
	copy(data, fmt.Sprintf("%s %d %d %d %d\n", side, rep, c, i, time.Now().UnixNano()))
	for k := 64; k < len(data); k++ {
		data[k] = byte(k*7 + i)
	}
	return data
}

// parallel runs ops operations over clients goroutines (client c does
// operations i = c, c+clients, …) and times them all; the first error is
// returned once all have stopped.
func (b *bencher) parallel(clients, ops int, op func(c, i int) error) (time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := c; i < ops; i += clients {
				if err := op(c, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

// streams: many large pushes at once, for the server's peak memory.
func (b *bencher) streams(ctx context.Context) ([]Row, error) {
	s, err := b.serve(ctx, "streams")
	if err != nil {
		return nil, err
	}
	defer s.close()
	k, n := b.cfg.Streams, b.cfg.StreamSize
	dir, err := os.MkdirTemp(b.work, "payload-")
	if err != nil {
		return nil, err
	}
	defer removeAll(dir)
	payloads := make([]*payload, k)
	for i := range payloads {
		if payloads[i], err = newPayload(dir, fmt.Sprintf("stream-%d", i), n); err != nil {
			return nil, err
		}
	}
	row := Row{Scenario: fmt.Sprintf("REST push %d × %s at once", k, size(n)), Baseline: fmt.Sprintf("%d × write+fsync at once", k), Bytes: int64(k) * n,
		Note: "target: peak RSS ≤ 128 MiB with 16 × 256 MiB"}
	err = b.measure(&row, s.proc, nil, func(rep int) (time.Duration, error) {
		for _, p := range payloads {
			if err := p.freshen(); err != nil {
				return 0, err
			}
		}
		return b.parallel(k, k, func(c, _ int) error {
			f, err := payloads[c].open()
			if err != nil {
				return err
			}
			defer f.Close()
			_, _, err = s.publisher.Artifacts().Push(ctx, client.PushRequest{Name: fmt.Sprintf("bench/stream-%d", c),
				Version: fmt.Sprintf("1.0.%d", rep), Digest: payloads[c].digest, Size: n, Body: f})
			return err
		})
	}, func(int) (time.Duration, error) {
		var copies []string
		var mu sync.Mutex
		d, err := b.parallel(k, k, func(c, _ int) error {
			path, err := writeFsync(payloads[c].path, dir)
			mu.Lock()
			copies = append(copies, path)
			mu.Unlock()
			return err
		})
		for _, c := range copies {
			_ = os.Remove(c)
		}
		return d, err
	})
	if err != nil {
		return nil, err
	}
	return []Row{row}, nil
}

// auditAppend: audited writes (token issues, each one audit record in
// its transaction) from many clients, against as many plain reads.
func (b *bencher) auditAppend(ctx context.Context) ([]Row, error) {
	s, err := b.serve(ctx, "audit")
	if err != nil {
		return nil, err
	}
	defer s.close()
	clients, ops := b.cfg.Clients, b.cfg.AdmitOps
	row := Row{Scenario: fmt.Sprintf("audited writes (token issue), %d clients", clients), Baseline: "GET /api/v1/whoami", Ops: int64(ops)}
	err = b.measure(&row, s.proc, nil, func(rep int) (time.Duration, error) {
		return b.parallel(clients, ops, func(c, i int) error {
			_, err := s.admin.Tokens().Create(ctx, wire.TokenRequest{Name: fmt.Sprintf("svc-%d-%d", rep, i), Roles: []string{"publisher"}})
			return err
		})
	}, func(int) (time.Duration, error) {
		return b.parallel(clients, ops, func(c, i int) error {
			req, err := s.rest.request(ctx, http.MethodGet, "/api/v1/whoami", nil, 0)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+adminToken)
			_, err = send(b.hc, req, http.StatusOK)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return []Row{row}, nil
}

var errNotAdmitted = errors.New("not admitted")

// removeAll removes what a scenario left in the work directory.
func removeAll(dir string) { _ = os.RemoveAll(dir) }
