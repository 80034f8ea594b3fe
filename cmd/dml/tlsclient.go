package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// httpClient is the HTTP client of every command that talks to a server
// (through cli.clientFor): it trusts the system's CAs and the one of
// --ca-cert, and its certificate errors say what to do about them.
//
// pinned certificates are trusted as they are, by their bytes, without a
// name check (dml healthcheck: the server's own certificate, reached on
// loopback, where the name it is issued for does not apply); any other
// certificate is verified as usual.
func (a *cli) httpClient(pinned []*x509.Certificate) (*http.Client, error) {
	transport := http.DefaultTransport
	if a.caCert != "" || len(pinned) > 0 {
		cfg, err := clientTLSConfig(a.caCert, pinned)
		if err != nil {
			return nil, err
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg
		transport = t
	}
	return &http.Client{Transport: explainTLS{transport, a.caCert}}, nil
}

func clientTLSConfig(caFile string, pinned []*x509.Certificate) (*tls.Config, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool() // no system pool (some platforms): only --ca-cert
	}
	if caFile != "" {
		data, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		if !roots.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("--ca-cert %s: no PEM certificate in it", caFile)
		}
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if len(pinned) == 0 {
		return cfg, nil
	}
	// Go's verification runs in VerifyConnection instead, because it must
	// also accept the pinned certificates: it is skipped here only to be
	// done there, for every certificate that is not pinned.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		for _, p := range pinned {
			if leaf.Equal(p) {
				return nil
			}
		}
		intermediates := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			intermediates.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: intermediates})
		return err
	}
	return cfg, nil
}

// readCertificates reads the certificates of a PEM file.
func readCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return out, nil
}

// explainTLS adds to a certificate error what the person can do about it.
type explainTLS struct {
	next   http.RoundTripper
	caCert string
}

func (e explainTLS) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := e.next.RoundTrip(r)
	if err != nil {
		return nil, explainTLSError(err, e.caCert)
	}
	return resp, nil
}

func explainTLSError(err error, caCert string) error {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case errors.As(err, &unknown) && caCert == "":
		return fmt.Errorf("%w: the server's certificate is signed by a CA this machine does not trust; give that CA's certificate with --ca-cert FILE (env DML_CA_CERT)", err)
	case errors.As(err, &unknown):
		return fmt.Errorf("%w: the server's certificate is signed neither by the CA of --ca-cert %s nor by one this machine trusts", err, caCert)
	case errors.As(err, &host):
		return fmt.Errorf("%w: use in --server a name the certificate holds", err)
	}
	return err
}
