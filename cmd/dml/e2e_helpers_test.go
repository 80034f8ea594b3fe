package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// These helpers run the real dml binary as a child process, for tests
// that need what only a process can show: kill -9, restart, peak memory.

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// dmlBinary builds ./cmd/dml once per test binary run.
func dmlBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "dml-e2e-bin-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "dml")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildFailure{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatalf("building dml: %v", buildErr)
	}
	return builtBin
}

type buildFailure struct {
	out string
	err error
}

func (b *buildFailure) Error() string { return b.err.Error() + "\n" + b.out }

func TestMain(m *testing.M) {
	code := m.Run()
	benchLog.close()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// serverProc is a running `dml serve`.
type serverProc struct {
	cmd  *exec.Cmd
	addr string
	logs *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listenRE = regexp.MustCompile(`msg="dml listening" addr=(\S+)`)

// startServer runs `dml serve --listen 127.0.0.1:0 ARGS...` and waits for
// its "dml listening" log line.
func startServer(t testing.TB, env []string, args ...string) *serverProc {
	t.Helper()
	bin := dmlBinary(t)
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, logs: &lockedBuffer{}, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, p.logs))
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case p.addr = <-addrc:
	case <-p.done:
		t.Fatalf("dml serve exited before listening:\n%s", p.logs.String())
	case <-ctx.Done():
		t.Fatalf("dml serve did not start listening:\n%s", p.logs.String())
	}
	return p
}

func (p *serverProc) url() string { return "http://" + p.addr }

// kill9 ends the server with SIGKILL: no cleanup runs.
func (p *serverProc) kill9() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *serverProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill9()
	}
}
