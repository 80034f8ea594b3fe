package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// quickstartTools are the programs docs/quickstart.md uses besides dml.
var quickstartTools = []string{"bash", "cosign", "curl", "jq", "openssl"}

// TestQuickstart runs docs/quickstart.md: its ```sh blocks, in order, in
// one bash, in an empty directory, with the freshly built dml first on
// PATH and DML_LISTEN / DML_DATA_DIR pointing the page's server at a free
// loopback port and a temporary data directory. Any command that exits
// non-zero fails the test, and every command is logged with its output,
// so the page cannot drift from what the CLI does.
func TestQuickstart(t *testing.T) {
	for _, tool := range quickstartTools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not on PATH; the quickstart needs it (./scripts/test.sh installs cosign)", tool)
			}
			t.Skipf("%s is not on PATH (the quickstart needs %s)", tool, strings.Join(quickstartTools, ", "))
		}
	}
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "quickstart.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(string(page))
	var commands []string
	for _, b := range blocks {
		commands = append(commands, shellCommands(b)...)
	}
	// The page walks the whole flow: losing a step is a failure too.
	for _, step := range []string{
		"dml serve", "dml token create", "cosign generate-key-pair", "dml trust key add", "dml trust policy set",
		"dml push", "--sign-key", "--attest", "dml release create", "dml release approve 2026.11-payments --gate plan",
		"--gate build", "dml release manifest", "--gate deploy:staging", "--env staging", "--gate deploy:production",
		"--env production", "dml release review", "--gate close", "dml audit verify", "dml provenance export",
		"dml provenance verify",
	} {
		if !strings.Contains(strings.Join(commands, "\n"), step) {
			t.Errorf("docs/quickstart.md has no command with %q", step)
		}
	}
	if t.Failed() {
		return
	}

	bin := dmlBinary(t)
	dir, home := t.TempDir(), t.TempDir()
	env := []string{
		"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home, // cosign's cache, dml's config file: not the user's
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"DML_LISTEN=" + freeLoopbackAddr(t),
		"DML_DATA_DIR=" + filepath.Join(dir, "dml-data"),
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "HOME" || k == "XDG_CONFIG_HOME" || strings.HasPrefix(k, "DML_") || strings.HasPrefix(k, "COSIGN_") {
			continue
		}
		env = append(env, kv)
	}

	results, err := runShellCommands(t, dir, env, commands)
	for _, r := range results {
		t.Logf("$ %s\n%s", r.command, r.output)
	}
	if err != nil {
		if b, rerr := os.ReadFile(filepath.Join(dir, "dml-serve.log")); rerr == nil {
			t.Logf("dml-serve.log:\n%s", b)
		}
		t.Fatal(err)
	}
	if len(results) != len(commands) {
		t.Fatalf("ran %d of the page's %d commands", len(results), len(commands))
	}
}

// shellBlocks returns the bodies of the ```sh fenced blocks of a Markdown
// page, in order.
func shellBlocks(page string) []string {
	var (
		blocks []string
		cur    *strings.Builder
	)
	for line := range strings.Lines(page) {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```sh":
			cur = &strings.Builder{}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line)
		}
	}
	return blocks
}

var heredocRE = regexp.MustCompile(`<<-?\s*'?"?([A-Za-z_]+)'?"?`)

// shellCommands splits a block into its commands: a line with its
// backslash continuations, or a line that opens a here-document with the
// document up to its terminator. Blank lines and comment lines go.
func shellCommands(block string) []string {
	var (
		out  []string
		cur  []string
		term string // the here-document's terminator while inside one
	)
	for line := range strings.Lines(block) {
		line = strings.TrimRight(line, "\n")
		if term != "" {
			cur = append(cur, line)
			if strings.TrimSpace(line) == term {
				out, cur, term = append(out, strings.Join(cur, "\n")), nil, ""
			}
			continue
		}
		if len(cur) == 0 && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")) {
			continue
		}
		cur = append(cur, line)
		if strings.HasSuffix(line, "\\") {
			continue
		}
		if m := heredocRE.FindStringSubmatch(line); m != nil {
			term = m[1]
			continue
		}
		out, cur = append(out, strings.Join(cur, "\n")), nil
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, "\n"))
	}
	return out
}

type shellResult struct {
	command, output string
	status          int
}

// runShellCommands runs commands one after the other in a single bash (so
// variables, functions and background jobs carry over), stopping at the
// first that exits non-zero; each command's output (stdout and stderr)
// is cut out of the stream by a marker line the script prints after it.
// Background jobs are ended when the script exits, however it exits.
func runShellCommands(t *testing.T, dir string, env []string, commands []string) ([]shellResult, error) {
	t.Helper()
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	marker := "__dml_quickstart_" + hex.EncodeToString(nonce)
	var script strings.Builder
	script.WriteString("set -o pipefail\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n")
	for _, c := range commands {
		fmt.Fprintf(&script, "%s\n__rc=$?; printf '\\n%s %%d\\n' \"$__rc\"; [ \"$__rc\" -eq 0 ] || exit \"$__rc\"\n", c, marker)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 10 * time.Second // a stray background process holding the pipe cannot hang the test
	var buf lockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	runErr := cmd.Run()

	var (
		results []shellResult
		out     strings.Builder
	)
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, marker+" "); ok && len(results) < len(commands) {
			status, _ := strconv.Atoi(rest)
			results = append(results, shellResult{command: commands[len(results)], output: strings.TrimSpace(out.String()), status: status})
			out.Reset()
			continue
		}
		out.WriteString(line + "\n")
	}
	if rest := strings.TrimSpace(out.String()); rest != "" {
		results = append(results, shellResult{command: "(after the last command)", output: rest})
	}
	if runErr != nil {
		failed := "the script"
		if n := len(results); n > 0 && results[n-1].status != 0 {
			failed = strconv.Quote(results[n-1].command)
		}
		return results, fmt.Errorf("%s failed: %w", failed, runErr)
	}
	return results, nil
}

// freeLoopbackAddr returns a loopback address with a port nothing listens
// on now, for a server the test does not start itself.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
