package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader is the certificate of dml serve --tls-cert/--tls-key,
// read again when either file changes, so that a renewed certificate
// (cert-manager, an ACME client, a deploy tool) is served without a
// restart.
//
// Every handshake stats the two files (GetCertificate): two stat calls
// are cheap next to a handshake, need no watcher goroutine, and follow
// the symlink swaps of Kubernetes' mounted secrets, which a watcher on
// the file names would miss. A pair that does not load — a certificate
// for another key, a file half written, one file renewed before the
// other — keeps the last good pair in service and is logged once, as an
// error; it is tried again as soon as either file changes again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded pairStamp // the files when cert was read
	failed pairStamp // the files when they last failed to load
	// missing: a file could not be stat'ed at the last handshake (logged
	// once until it is back).
	missing bool
}

// pairStamp identifies the version of both files: a file changed when it
// is another file (renamed into place, a new symlink target) or its
// modification time or size changed.
type pairStamp struct{ cert, key os.FileInfo }

func (a pairStamp) same(b pairStamp) bool {
	return sameVersion(a.cert, b.cert) && sameVersion(a.key, b.key)
}

func sameVersion(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// newCertReloader loads the pair once: dml serve refuses to start with
// only one of the two files, or with a pair that does not load.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case keyFile == "":
		return nil, errors.New("--tls-cert needs --tls-key (env DML_TLS_KEY): the certificate's private key")
	case certFile == "":
		return nil, errors.New("--tls-key needs --tls-cert (env DML_TLS_CERT): the certificate, with its chain")
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.loaded = cert, stamp
	return r, nil
}

func (r *certReloader) stat() (pairStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return pairStamp{}, fmt.Errorf("--tls-cert: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return pairStamp{}, fmt.Errorf("--tls-key: %w", err)
	}
	return pairStamp{c, k}, nil
}

func (r *certReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	leaf := cert.Leaf // LoadX509KeyPair parses it, unless GODEBUG x509keypairleaf=0
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", r.certFile, err)
		}
		cert.Leaf = leaf
	}
	attrs := []any{"cert", r.certFile, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"dnsNames", leaf.DNSNames, "ipAddresses", leaf.IPAddresses, "notAfter", leaf.NotAfter.UTC()}
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		r.log.Warn("TLS certificate loaded, but it is not valid now: clients will refuse it", attrs...)
	} else {
		r.log.Info("TLS certificate loaded", attrs...)
	}
	return &cert, nil
}

// GetCertificate is the tls.Config hook: the current pair, read again
// first when a file changed since it was read.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Stamped before reading: a change made while the files are read is
	// seen, and read, at the next handshake.
	stamp, err := r.stat()
	if err != nil {
		// A file missing for a moment (being replaced) keeps the pair in
		// service too; if it stays missing, the next start fails.
		if !r.missing {
			r.log.Error("the TLS certificate files cannot be read; still serving the previous pair", "err", err)
		}
		r.missing = true
		return r.cert, nil
	}
	r.missing = false
	if stamp.same(r.loaded) || stamp.same(r.failed) {
		return r.cert, nil
	}
	cert, err := r.load()
	if err != nil {
		r.failed = stamp
		r.log.Error("the new TLS certificate pair did not load; still serving the previous one", "err", err,
			"serial", r.cert.Leaf.SerialNumber.String())
		return r.cert, nil
	}
	r.cert, r.loaded, r.failed = cert, stamp, pairStamp{}
	return r.cert, nil
}

// tlsConfig is the server's TLS configuration around r.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}
