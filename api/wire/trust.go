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

// TrustedRoot is a Sigstore trusted_root.json installed under an ID: the
// answer of PUT /trust/roots/{id} (whose body is the document itself)
// and GET /trust/roots/{id}.
type TrustedRoot struct {
	ID string `json:"id"`
	// Version grows by one each time another document is installed under
	// the ID; the document is the current version's.
	Version int64 `json:"version"`
	// SHA256 is the lowercase hex SHA-256 of the document, as the audit
	// log records it.
	SHA256 string `json:"sha256"`
	// Document is the trusted_root.json as installed (JSON re-encoding
	// may change its whitespace; SHA256 is of the bytes installed); absent
	// in the list.
	Document  json.RawMessage `json:"document,omitempty"`
	Summary   RootSummary     `json:"summary"`
	CreatedBy string          `json:"createdBy"`
	CreatedAt time.Time       `json:"createdAt"`
	RevokedAt *time.Time      `json:"revokedAt,omitempty"`
	RevokedBy string          `json:"revokedBy,omitempty"`
}

// RootSummary says what a trusted root trusts.
type RootSummary struct {
	CertificateAuthorities []RootAuthority `json:"certificateAuthorities"`
	TimestampAuthorities   []RootAuthority `json:"timestampAuthorities"`
	RekorLogs              []RootLog       `json:"rekorLogs"`
	CTLogs                 []RootLog       `json:"ctLogs"`
}

// RootAuthority is a Fulcio CA or a timestamp authority of a trusted
// root: its root certificate's subject and the period it is trusted for.
type RootAuthority struct {
	URI        string     `json:"uri,omitempty"`
	Subject    string     `json:"subject"`
	ValidFrom  *time.Time `json:"validFrom,omitempty"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
}

// RootLog is a Rekor or certificate transparency log of a trusted root,
// by its log ID (hex).
type RootLog struct {
	ID         string     `json:"id"`
	BaseURL    string     `json:"baseUrl,omitempty"`
	ValidFrom  *time.Time `json:"validFrom,omitempty"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
}

// TrustedRootList is the answer of GET /trust/roots: the current version
// of every root, revoked ones included, without their documents.
type TrustedRootList struct {
	Roots []TrustedRoot `json:"roots"`
}

// SignerIdentityRequest is the body of POST /trust/identities (admins): a
// keyless signer.
type SignerIdentityRequest struct {
	// ID names the signer in trust policies, as a key's ID does; keys and
	// identities share one namespace of IDs.
	ID string `json:"id"`
	// Root is the ID of the trusted root its certificates chain to.
	Root string `json:"root"`
	// Issuer is the OIDC issuer's URL, e.g.
	// https://token.actions.githubusercontent.com.
	Issuer string `json:"issuer"`
	// Subject, or SubjectRegexp (matched against the whole subject), names
	// the certificate's subject: exactly one of them.
	Subject       string `json:"subject,omitempty"`
	SubjectRegexp string `json:"subjectRegexp,omitempty"`
	// Claims pin Fulcio certificate extensions by sigstore-go's names:
	// sourceRepositoryURI, sourceRepositoryRef, buildSignerURI,
	// githubWorkflowTrigger, runnerEnvironment, …
	Claims map[string]string `json:"claims,omitempty"`
}

// SignerIdentity is a registered keyless signer.
type SignerIdentity struct {
	ID            string            `json:"id"`
	Root          string            `json:"root"`
	Issuer        string            `json:"issuer"`
	Subject       string            `json:"subject,omitempty"`
	SubjectRegexp string            `json:"subjectRegexp,omitempty"`
	Claims        map[string]string `json:"claims"`
	CreatedBy     string            `json:"createdBy"`
	CreatedAt     time.Time         `json:"createdAt"`
	RevokedAt     *time.Time        `json:"revokedAt,omitempty"`
	RevokedBy     string            `json:"revokedBy,omitempty"`
}

// SignerIdentityList is the answer of GET /trust/identities: every identity,
// revoked ones included.
type SignerIdentityList struct {
	Identities []SignerIdentity `json:"identities"`
}
