package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test, on loopback only.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM (what --ca-cert takes)
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dml test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ca.pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a server certificate with serial for hosts (IP addresses
// or DNS names) and its key as PREFIX.crt and PREFIX.key in dir.
func (ca *testCA) issue(t *testing.T, dir, prefix string, serial int64, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, prefix+".crt"), filepath.Join(dir, prefix+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial connects to addr trusting only ca and returns the serial
// of the certificate the server presents.
func (ca *testCA) servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestServeTLS: dml serve --tls-cert/--tls-key serves HTTPS; a CLI
// command trusts the server with --ca-cert (or DML_CA_CERT) and fails
// with a message that names --ca-cert without it; a rotated pair is
// served from the next handshake on, without a restart, and a bad new
// pair keeps the old one and is logged.
func TestServeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dml binary")
	}
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := ca.issue(t, dir, "server", 1001, "127.0.0.1")
	const admin = "tls-admin-token-0123456789"
	srv := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + admin}, "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", certFile, "--tls-key", keyFile)
	isolateCLI(t)
	server := "https://" + srv.addr

	// Without the CA: refused, and the message says what to do.
	_, _, err := runCLI(t, "whoami", "--server", server, "--token", admin)
	if err == nil || !strings.Contains(err.Error(), "--ca-cert") || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("whoami without --ca-cert: %v, want a certificate error that names --ca-cert", err)
	}
	t.Logf("without --ca-cert: %v", err)
	// With it, as a flag, from the environment and from the config file.
	if out := mustRunCLI(t, "whoami", "--server", server, "--token", admin, "--ca-cert", ca.file); !strings.Contains(out, "bootstrap-admin") {
		t.Errorf("whoami --ca-cert printed %q", out)
	}
	t.Setenv("DML_CA_CERT", ca.file)
	if out := mustRunCLI(t, "whoami", "--server", server, "--token", admin); !strings.Contains(out, "bootstrap-admin") {
		t.Errorf("whoami with DML_CA_CERT printed %q", out)
	}
	os.Unsetenv("DML_CA_CERT")
	t.Setenv("DML_CONFIG", writeTemp(t, "config.yaml", "ca-cert: "+ca.file+"\n"))
	if out := mustRunCLI(t, "whoami", "--server", server, "--token", admin); !strings.Contains(out, "bootstrap-admin") {
		t.Errorf("whoami with ca-cert in the config file printed %q", out)
	}
	if _, _, err := runCLI(t, "whoami", "--server", server, "--token", admin, "--ca-cert", filepath.Join(dir, "missing.pem")); err == nil ||
		!strings.Contains(err.Error(), "--ca-cert") {
		t.Errorf("whoami --ca-cert with a missing file: %v", err)
	}

	if got := ca.servedSerial(t, srv.addr); got != 1001 {
		t.Fatalf("served serial %d, want 1001", got)
	}
	// Rotation: the new pair replaces the old one the way cert-manager or
	// a deploy tool does it, by renaming into place.
	newCert, newKey := ca.issue(t, dir, "rotated", 1002, "127.0.0.1")
	if err := os.Rename(newKey, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(newCert, certFile); err != nil {
		t.Fatal(err)
	}
	if got := ca.servedSerial(t, srv.addr); got != 1002 {
		t.Fatalf("after the rotation the server presents serial %d, want 1002 (without a restart)", got)
	}
	if out := mustRunCLI(t, "whoami", "--server", server, "--token", admin, "--ca-cert", ca.file); !strings.Contains(out, "bootstrap-admin") {
		t.Errorf("whoami after the rotation printed %q", out)
	}
	// A bad new pair (a certificate for another key): the old pair stays,
	// and the log says why.
	otherCert, _ := ca.issue(t, dir, "other", 1003, "127.0.0.1")
	if err := os.Rename(otherCert, certFile); err != nil {
		t.Fatal(err)
	}
	if got := ca.servedSerial(t, srv.addr); got != 1002 {
		t.Fatalf("after a bad new pair the server presents serial %d, want 1002 (the last good pair)", got)
	}
	// The server logged it during the handshake; its stderr reaches
	// srv.logs through a pipe a moment later.
	logged := func(logs string) bool {
		return strings.Contains(logs, "level=ERROR") && strings.Contains(logs, "private key does not match public key")
	}
	deadline := time.Now().Add(30 * time.Second)
	for !logged(srv.logs.String()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if logs := srv.logs.String(); !logged(logs) {
		t.Errorf("the bad pair was not logged as an error:\n%s", logs)
	}
}

// TestServeTLSRefusesBadFlags: dml serve refuses to start with only one
// of --tls-cert and --tls-key, with an unreadable file, or with a
// certificate that is not the key's.
func TestServeTLSRefusesBadFlags(t *testing.T) {
	isolateCLI(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := ca.issue(t, dir, "server", 7, "127.0.0.1")
	otherCert, _ := ca.issue(t, dir, "other", 8, "127.0.0.1")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"cert only", []string{"--tls-cert", certFile}, "--tls-key"},
		{"key only", []string{"--tls-key", keyFile}, "--tls-cert"},
		{"missing file", []string{"--tls-cert", filepath.Join(dir, "nope.crt"), "--tls-key", keyFile}, "no such file"},
		{"mismatched pair", []string{"--tls-cert", otherCert, "--tls-key", keyFile}, "does not match"},
		{"key as certificate", []string{"--tls-cert", keyFile, "--tls-key", keyFile}, "failed to find certificate PEM data"},
	} {
		args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data-"+strings.ReplaceAll(tt.name, " ", "-"))}, tt.args...)
		_, _, err := runCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: dml serve %v: %v, want an error that says %q", tt.name, tt.args, err, tt.want)
			continue
		}
		t.Logf("%s: %v", tt.name, err)
	}
}

// TestCertReloaderConcurrent: handshakes that run while the pair is
// replaced each get a whole pair, the old or the new, never a mix or
// nothing (run under -race: the reloader's state is shared by every
// handshake); the handshake after the replacement gets the new one.
func TestCertReloaderConcurrent(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := ca.issue(t, dir, "server", 1, "127.0.0.1")
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	newCert, newKey := ca.issue(t, dir, "rotated", 2, "127.0.0.1")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				c, err := r.GetCertificate(nil)
				if err != nil || c == nil || c.Leaf == nil {
					t.Errorf("GetCertificate = %v, %v", c, err)
					return
				}
				if s := c.Leaf.SerialNumber.Int64(); s != 1 && s != 2 {
					t.Errorf("served serial %d", s)
					return
				}
			}
		}()
	}
	if err := os.Rename(newKey, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(newCert, certFile); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	c, err := r.GetCertificate(nil)
	if err != nil || c.Leaf.SerialNumber.Int64() != 2 {
		t.Fatalf("after the replacement: %v, %v; want serial 2", c.Leaf.SerialNumber, err)
	}
	if _, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), mustRead(t, keyFile)); err != nil {
		t.Errorf("the served certificate is not the key's: %v", err)
	}
}
