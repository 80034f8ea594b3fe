package access

import (
	"errors"
	"time"
)

// Role is what a token may do.
type Role string

const (
	RoleAdmin          Role = "admin"
	RolePublisher      Role = "publisher"
	RoleReleaseManager Role = "release-manager"
	RoleApprover       Role = "approver"
	RoleDeployer       Role = "deployer"
	RoleAuditor        Role = "auditor"
)

// Roles lists every role, in a stable order.
var Roles = []Role{RoleAdmin, RolePublisher, RoleReleaseManager, RoleApprover, RoleDeployer, RoleAuditor}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, k := range Roles {
		if r == k {
			return true
		}
	}
	return false
}

// Principal is who is acting: the token behind a request.
type Principal struct {
	TokenID      string
	Name         string
	Roles        []Role
	Environments []string
	// Issuer and Subject are set for a person signed in through single
	// sign-on: the OIDC provider's issuer URL and its subject (the
	// person's stable id there). Empty for a machine's token.
	Issuer  string
	Subject string
}

// Has reports whether the principal holds any of the roles.
func (p Principal) Has(roles ...Role) bool {
	for _, have := range p.Roles {
		for _, want := range roles {
			if have == want {
				return true
			}
		}
	}
	return false
}

// Actor is how a principal is named in records: "name (token id)".
func (p Principal) Actor() Actor {
	return Actor{TokenID: p.TokenID, Name: p.Name, Issuer: p.Issuer, Subject: p.Subject}
}

// Actor names who made a change, in events. Issuer and Subject are the
// provider identity of a person signed in through single sign-on; they
// are omitted when empty, so records of tokens keep their encoding.
type Actor struct {
	TokenID string `json:"tokenId"`
	Name    string `json:"name"`
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// ServerActor is who acts when the server reads or changes things on its
// own account (importing referrer evidence, assembling provenance).
var ServerActor = Actor{Name: "dml"}

// ErrNotAuthorizedForEnv refuses a deployment agent what concerns an
// environment its token does not cover, or a release not authorised for
// one of its environments.
var ErrNotAuthorizedForEnv = errors.New("not authorized for environment")

// Token is an issued bearer token. The secret itself is never stored, only
// its SHA-256 hash.
type Token struct {
	ID           string
	Name         string
	Roles        []Role
	Environments []string
	CreatedBy    string
	CreatedAt    time.Time
	RevokedAt    *time.Time
	// ExpiresAt, when set, is when the token stops authenticating.
	ExpiresAt *time.Time
	// LastUsedAt is when the token last authenticated, to within a minute
	// (it is written at most once a minute); nil if never.
	LastUsedAt *time.Time
	// Issuer and Subject mark a person's single sign-on session (sso.go):
	// the provider identity it was issued to. Empty for a machine's token.
	Issuer  string
	Subject string
}

// IsSession reports whether t is a single sign-on session.
func (t Token) IsSession() bool { return t.Issuer != "" }

// Event actions of tokens.
const (
	ActionTokenIssued  = "token.issued"
	ActionTokenRevoked = "token.revoked"
	// ActionTokenRecovered is an admin token issued on the server's host
	// (dml admin reset-token) when no admin token is at hand.
	ActionTokenRecovered = "token.recovered"
)
