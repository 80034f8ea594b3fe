package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServeClosesStalledBodies (finding 8): 300 connections to `dml
// serve` that send headers with Content-Length: 200000 and then nothing,
// unauthenticated and authenticated, on REST and /v2/ uploads, are all
// closed by the server. The window is short (--body-timeout 500ms) so the
// test is quick; what is asserted is that each connection is closed, not
// how fast: the read deadline below only keeps a failing test from
// hanging.
func TestServeClosesStalledBodies(t *testing.T) {
	srv := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + crashToken}, "--data-dir", t.TempDir(), "--body-timeout", "500ms")
	targets := []struct{ request, auth string }{
		{"PUT /api/v1/artifacts/slow/app/versions/1.0", ""},
		{"PUT /api/v1/artifacts/slow/app/versions/1.0", "Authorization: Bearer " + crashToken + "\r\n"},
		{"POST /v2/apps/slow/blobs/uploads/?digest=sha256:" + strings.Repeat("0", 64), ""},
		{"POST /v2/apps/slow/blobs/uploads/?digest=sha256:" + strings.Repeat("0", 64), "Authorization: Bearer " + crashToken + "\r\n"},
	}
	const conns = 300
	var wg sync.WaitGroup
	open := make(chan string, conns)
	for i := range conns {
		target := targets[i%len(targets)]
		conn, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer conn.Close()
		if _, err := fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: dml\r\n%sContent-Length: 200000\r\n\r\n", target.request, target.auth); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
			if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
				open <- target.request
			}
		})
	}
	wg.Wait()
	close(open)
	still := map[string]int{}
	for r := range open {
		still[r]++
	}
	if len(still) > 0 {
		t.Errorf("connections the server left open: %v", still)
	}
}
