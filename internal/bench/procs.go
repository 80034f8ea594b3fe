package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a server the harness started: dml serve or the reference
// registry.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string
	logs *tail
	done chan struct{}
	// own is a directory the process's data lives in, removed by close.
	own string
}

// tail keeps the last bytes a process wrote, to explain its failure.
type tail struct {
	mu sync.Mutex
	b  []byte
}

const tailSize = 16 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*tailSize {
		t.b = append(t.b[:0], t.b[len(t.b)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b
	if len(b) > tailSize {
		b = b[len(b)-tailSize:]
	}
	return string(b)
}

// startProc runs bin with args and env, and waits until a line of its
// output matches ready, whose first group is the address it listens on.
func startProc(ctx context.Context, name, bin string, args, env []string, ready *regexp.Regexp) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	// Its own process group: a Ctrl-C of the harness reaches the harness,
	// which stops the server itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logs: &tail{}, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(pr, p.logs))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner: keep draining
	}()
	go func() { _ = cmd.Wait(); _ = pw.Close(); close(p.done) }()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	select {
	case p.addr = <-addrc:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening:\n%s", name, p.logs)
	case <-timeout.C:
		p.stop()
		return nil, fmt.Errorf("%s did not start listening in 60s:\n%s", name, p.logs)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

func (p *proc) url() string { return "http://" + p.addr }

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop interrupts the process and waits for it (killing it after 30 s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// close stops the process and removes the data directory it was given
// for itself (own), so that a run does not fill the disk scenario by
// scenario.
func (p *proc) close() {
	p.stop()
	if p.own != "" {
		_ = os.RemoveAll(p.own)
	}
}

// peakRSS is the process's peak resident set since it started or since
// the last resetPeak, in bytes (VmHWM in /proc/PID/status).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseHWM(b)
}

func parseHWM(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmHWM line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM line %q: %w", line, err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

// resetPeak starts a new peak: writing 5 to clear_refs sets VmHWM back to
// the current resident set (Linux ≥ 4.0).
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// dmlListening finds the address in serve's "dml listening" log line.
var dmlListening = regexp.MustCompile(`msg="dml listening" addr=(\S+)`)

// adminToken is the bootstrap admin secret of every server the harness
// starts (DML_BOOTSTRAP_TOKEN); they listen on loopback only and live for
// one scenario.
const adminToken = "dml-bench-admin-0123456789abcdef"

// startDML starts `dml serve` on a free loopback port with a fresh data
// directory under the work directory, on the backend the run was given.
func (b *bencher) startDML(ctx context.Context, label string) (*proc, error) {
	dir, err := os.MkdirTemp(b.work, "dml-"+label+"-")
	if err != nil {
		return nil, err
	}
	p, err := b.startDMLIn(ctx, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p.own = dir
	return p, nil
}

func (b *bencher) startDMLIn(ctx context.Context, dir string) (*proc, error) {
	return b.startServe(ctx, dir, false)
}

// startDMLS3 starts `dml serve` with its blobs in the S3 server.
func (b *bencher) startDMLS3(ctx context.Context) (*proc, error) {
	dir, err := os.MkdirTemp(b.work, "dml-s3-")
	if err != nil {
		return nil, err
	}
	p, err := b.startServe(ctx, dir, true)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p.own = dir
	return p, nil
}

func (b *bencher) startServe(ctx context.Context, dir string, s3 bool) (*proc, error) {
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir,
		// The server's own periodic audit verification would run during
		// the measurements (and at start, over a million records).
		"--audit-verify-interval", "0"}
	env := []string{"DML_BOOTSTRAP_TOKEN=" + adminToken}
	if b.cfg.Database != "" {
		env = append(env, "DML_DATABASE="+b.cfg.Database)
	}
	if s := b.cfg.S3; s3 {
		args = append(args, "--s3-endpoint", s.Endpoint, "--s3-bucket", b.bucket, "--s3-insecure")
		env = append(env, "DML_S3_ACCESS_KEY="+s.AccessKey, "DML_S3_SECRET_KEY="+s.SecretKey)
	}
	return startProc(ctx, "dml serve", b.cfg.DMLBin, args, env, dmlListening)
}

// registryListening finds the address in the reference registry's
// "listening on" log line.
var registryListening = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// startRegistry starts the reference registry (distribution) with
// filesystem storage in a fresh directory, on a free loopback port, with
// no authentication.
func (b *bencher) startRegistry(ctx context.Context) (*proc, error) {
	dir, err := os.MkdirTemp(b.work, "registry-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
`, filepath.Join(dir, "data"), port)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, err
	}
	// OTEL_TRACES_EXPORTER=none: distribution 3 exports traces by default.
	p, err := startProc(ctx, "registry", b.cfg.RegistryBin, []string{"serve", path},
		[]string{"OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none"}, registryListening)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p.own = dir
	return p, nil
}
