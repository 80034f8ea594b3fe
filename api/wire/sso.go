package wire

import "time"

// SSOProvider is a configured single sign-on provider, as
// GET /sso/providers lists it (unauthenticated: nothing in it is secret).
type SSOProvider struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Issuer      string `json:"issuer"`
	// CLIClientID is the public client `dml login` uses; "" when the
	// CLI cannot sign in through this provider.
	CLIClientID string   `json:"cliClientId"`
	Scopes      []string `json:"scopes"`
}

// SSOProviderList answers GET /sso/providers.
type SSOProviderList struct {
	Providers []SSOProvider `json:"providers"`
}

// SSOSessionRequest is the body of POST /sso/sessions: what `dml login`
// got from the provider, and the nonce its sign-in asked for.
type SSOSessionRequest struct {
	Provider string `json:"provider"`
	IDToken  string `json:"idToken"`
	// AccessToken, when given, lets the server read the mapped claim at
	// the provider's userinfo endpoint if the ID token lacks it.
	AccessToken string `json:"accessToken,omitempty"`
	Nonce       string `json:"nonce"`
}

// SSOSession answers POST /sso/sessions: a person's session, whose
// secret (Token) is shown only here. (The server sends the keys sorted,
// as here.)
type SSOSession struct {
	Environments []string  `json:"environments"`
	ExpiresAt    time.Time `json:"expiresAt"`
	Issuer       string    `json:"issuer"`
	Name         string    `json:"name"`
	Provider     string    `json:"provider"`
	Roles        []string  `json:"roles"`
	Subject      string    `json:"subject"`
	Token        string    `json:"token"`
	TokenID      string    `json:"tokenId"`
}
