// Package sso is the OIDC side of single sign-on: the provider
// configuration file (dml serve --oidc-config), discovery, the
// authorization code flow with PKCE, state and nonce (for the console),
// and ID token verification (for the console and for `dml login`), with
// the userinfo endpoint filling in a claim the ID token lacks. It turns a
// provider's answer into an access.Identity; what that identity is
// granted is the domain's (releases/access: Mapping, SignIn).
package sso
