package s3test

import (
	"context"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dmlproject/dml/store/s3"
)

// Gateway is a private versitygw server that a test owns, so that it can
// stop it (an S3 outage) and start it again on the same port and data.
// The shared server named by DML_TEST_S3_* must never be stopped: other
// tests use it at the same time.
type Gateway struct {
	t         testing.TB
	bin, dir  string
	Endpoint  string // 127.0.0.1:PORT
	AccessKey string
	SecretKey string

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{}
	logs lockedBuilder
}

// StartGateway runs versitygw (posix backend, in a temporary directory) on
// a free loopback port and stops it when the test ends. The binary is
// looked up on PATH, then in $(go env GOPATH)/bin, where scripts/test.sh
// installs it. Without it the test is skipped, unless CI is set: there it
// fails, as storetest.S3FromEnv does.
func StartGateway(t testing.TB) *Gateway {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		bin = filepath.Join(build.Default.GOPATH, "bin", "versitygw")
		if _, serr := os.Stat(bin); serr != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("versitygw is not installed (PATH or %s): CI must run the S3 outage tests", bin)
			}
			t.Skipf("versitygw is not installed (PATH or %s); ./scripts/test.sh installs it", bin)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := ln.Addr().String()
	ln.Close()
	g := &Gateway{
		t: t, bin: bin, dir: t.TempDir(), Endpoint: endpoint,
		AccessKey: "gatewayaccess",
		SecretKey: "gatewaysecret0123456789",
	}
	t.Cleanup(g.Stop)
	g.Start()
	return g
}

// Config returns the configuration of a new, uniquely named bucket on the
// gateway, with CreateBucket set.
func (g *Gateway) Config() s3.Config {
	return s3.Config{
		Endpoint:     g.Endpoint,
		Bucket:       "dmltest-" + strings.ReplaceAll(uuid.NewString(), "-", ""),
		Region:       "us-east-1",
		AccessKey:    g.AccessKey,
		SecretKey:    g.SecretKey,
		Insecure:     true,
		PathStyle:    true,
		CreateBucket: true,
	}
}

// Start starts the server (again) and waits until it accepts connections.
func (g *Gateway) Start() {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd != nil {
		g.t.Fatal("s3test: the gateway is already running")
	}
	cmd := exec.Command(g.bin, "--port", g.Endpoint, "posix", g.dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+g.AccessKey, "ROOT_SECRET_KEY="+g.SecretKey)
	cmd.Stdout = &g.logs
	cmd.Stderr = &g.logs
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("s3test: start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	g.cmd, g.done = cmd, done
	// Bounded: 30 s for a server that starts in well under a second.
	for range 300 {
		select {
		case <-done:
			g.t.Fatalf("s3test: versitygw exited at start:\n%s", g.logs.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", g.Endpoint, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatalf("s3test: versitygw is not listening on %s:\n%s", g.Endpoint, g.logs.String())
}

// Stop kills the server, as an outage would, and waits until it is gone
// and its port refuses connections. Stopping a stopped gateway does nothing.
func (g *Gateway) Stop() {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.cmd = nil
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", g.Endpoint)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Errorf("s3test: %s still accepts connections after versitygw was killed", g.Endpoint)
}

// Logs is what the server wrote so far.
func (g *Gateway) Logs() string { return g.logs.String() }

// lockedBuilder collects the process's output while tests read it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
