package events

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// SecretKeyPurpose names the key, derived from the server's key
// (signing.ServerSigner.DeriveKey), that encrypts webhook secrets at rest:
// every replica sharing the server key can sign deliveries, and the
// database alone reveals no secret.
const SecretKeyPurpose = "dml webhook secrets v1"

// sealer encrypts webhook secrets with AES-256-GCM; the webhook's id is
// the additional data, so a sealed secret copied to another webhook does
// not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (sealer, error) {
	if len(key) != 32 {
		return sealer{}, errors.New("events: the webhook secret key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead}, nil
}

// seal returns nonce || ciphertext.
func (s sealer) seal(webhookID string, secret []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, secret, []byte(webhookID))
}

func (s sealer) open(webhookID string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("webhook %s: sealed secret too short", webhookID)
	}
	b, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(webhookID))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: its secret does not open with this server's key (was the server key replaced?)", webhookID)
	}
	return b, nil
}
