// Package testkeys gives tests their keys from one place: the keys a
// server is built with (the server's signer, for receipts and sealed
// manifests, and the audit log's checkpoint key), and fresh evidence
// signers, as a CI system's. Library constructors take their keys and never
// make stand-ins, so a test asks for fresh ones here.
package testkeys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/signing"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"
)

// LogOrigin is the origin line of test checkpoints.
const LogOrigin = "dml-test"

// New returns a fresh server signer (ECDSA P-256) and a fresh checkpoint
// key named LogOrigin, for callers without a testing.TB (examples).
func New() (*signing.ServerSigner, *auditlog.LogKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: server key: %w", err)
	}
	signer, err := signing.NewServerSigner(key)
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: server signer: %w", err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, LogOrigin)
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: log key: %w", err)
	}
	logKey, err := auditlog.NewLogKey(skey)
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: log key: %w", err)
	}
	return signer, logKey, nil
}

// Keys is New for a test.
func Keys(t testing.TB) (*signing.ServerSigner, *auditlog.LogKey) {
	t.Helper()
	signer, logKey, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return signer, logKey
}

// Signer is a fresh ECDSA P-256 signer of evidence, as a CI system's key
// (its public key: PublicKey()), for a test that needs a key nobody
// trusts yet.
func Signer(t testing.TB) signature.SignerVerifier {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}
