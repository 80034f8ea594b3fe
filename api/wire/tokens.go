package wire

import "time"

// Identity is the answer of GET /whoami: who the request's token
// authenticates as. (The server sends the keys sorted, as here.)
type Identity struct {
	// Environments a deployer may deploy to; [] for none.
	Environments []string `json:"environments"`
	// Issuer is the single sign-on provider of a person's session;
	// omitted for a machine's token, as Subject is.
	Issuer  string   `json:"issuer,omitempty"`
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Subject string   `json:"subject,omitempty"`
	TokenID string   `json:"tokenId"`
}

// TokenRequest is the body of POST /tokens (admins).
type TokenRequest struct {
	Name string `json:"name"`
	// Roles: admin, publisher, release-manager, approver, deployer, auditor.
	Roles []string `json:"roles"`
	// Environments a deployer token may deploy to.
	Environments []string `json:"environments"`
	// ExpiresIn, when set, is how long the token works: a Go duration
	// such as "720h".
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// IssuedToken answers POST /tokens: the new token, and its secret
// (Token), shown only here. (The server sends the keys sorted, as here.)
type IssuedToken struct {
	CreatedAt time.Time `json:"createdAt"`
	// Environments is null when the request named none.
	Environments []string `json:"environments"`
	// ExpiresAt is null for a token that does not expire.
	ExpiresAt *time.Time `json:"expiresAt"`
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Roles     []string   `json:"roles"`
	Token     string     `json:"token"`
}

// Token is a token as GET /tokens lists it: never its secret. Times that
// are not set are null.
type Token struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Roles        []string   `json:"roles"`
	Environments []string   `json:"environments"`
	CreatedBy    string     `json:"createdBy"`
	CreatedAt    time.Time  `json:"createdAt"`
	LastUsedAt   *time.Time `json:"lastUsedAt"`
	ExpiresAt    *time.Time `json:"expiresAt"`
	RevokedAt    *time.Time `json:"revokedAt"`
}

// TokenList is the answer of GET /tokens: every token, revoked and
// expired ones included, oldest first.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}
