package wire

import (
	"encoding/json"
	"time"
)

// TrustKeyRequest is the body of POST /trust/keys (admins): a public key
// that may sign evidence.
type TrustKeyRequest struct {
	// ID names the key in trust policies: letters, digits and . _ : @ / + -.
	ID string `json:"id"`
	// PublicKey is a PEM "PUBLIC KEY", as cosign.pub: ECDSA P-256/384/521,
	// Ed25519 or RSA of 2048 bits or more.
	PublicKey string `json:"publicKey"`
	Comment   string `json:"comment"`
}

// TrustKey is a registered key.
type TrustKey struct {
	ID        string `json:"id"`
	PublicKey string `json:"publicKey"`
	// Algorithm is ecdsa-p256, ecdsa-p384, ecdsa-p521, ed25519 or rsa-BITS.
	Algorithm string     `json:"algorithm"`
	Comment   string     `json:"comment"`
	CreatedBy string     `json:"createdBy"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	RevokedBy string     `json:"revokedBy,omitempty"`
}

// TrustKeyList is the answer of GET /trust/keys: every registered key,
// revoked ones included.
type TrustKeyList struct {
	Keys []TrustKey `json:"keys"`
}

// TrustPolicy is a version of the trust policy: the answer of GET and PUT
// /trust/policy. (The body of the PUT is the policy itself, in JSON or
// YAML.)
type TrustPolicy struct {
	// Version grows by one with every change; the highest is current.
	Version int64 `json:"version"`
	// Policy is the document as the server stored it (canonical JSON).
	Policy    json.RawMessage `json:"policy"`
	CreatedBy string          `json:"createdBy"`
	CreatedAt time.Time       `json:"createdAt"`
}
