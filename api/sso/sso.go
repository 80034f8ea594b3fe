package sso

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"golang.org/x/oauth2"
)

// Errors of a sign-in, for the API's error table.
var (
	// ErrUnknownProvider: no provider of that name is configured.
	ErrUnknownProvider = fmt.Errorf("%w: unknown single sign-on provider", errdef.ErrNotFound)
	// ErrInvalidToken: an ID token that does not verify (signature,
	// issuer, audience, expiry, nonce), or a userinfo answer about
	// someone else.
	ErrInvalidToken = errors.New("invalid ID token")
	// ErrProvider: the provider refused (an error redirect, a failed
	// code exchange) or could not be reached.
	ErrProvider = errors.New("single sign-on provider failed")
)

// Providers is the configured providers, by name, in the file's order.
type Providers struct {
	list   []*Provider
	byName map[string]*Provider
}

// New returns the providers of settings. Discovery happens at the first
// use of each provider (and again after a failure), so a provider that
// is down when the server starts does not keep it from starting.
// client is used for every request to the providers; nil: a client with
// a 30 s timeout.
func New(settings []Settings, client *http.Client) *Providers {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	ps := &Providers{byName: map[string]*Provider{}}
	for _, s := range settings {
		p := &Provider{Settings: s, client: client}
		ps.list = append(ps.list, p)
		ps.byName[s.Name] = p
	}
	return ps
}

// List returns every provider, in the configuration's order.
func (ps *Providers) List() []*Provider {
	if ps == nil {
		return nil
	}
	return ps.list
}

// Get returns the provider named, or ErrUnknownProvider.
func (ps *Providers) Get(name string) (*Provider, error) {
	if ps != nil {
		if p, ok := ps.byName[name]; ok {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownProvider, name)
}

// Provider is one OIDC provider: its settings and, once discovered, its
// endpoints and keys.
type Provider struct {
	Settings
	client *http.Client

	mu     sync.Mutex
	oidc   *oidc.Provider
	lastAt time.Time
}

// discoveryRetry is how soon a failed discovery is tried again.
const discoveryRetry = 5 * time.Second

// discover returns the provider's discovery document, read once.
func (p *Provider) discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oidc != nil {
		return p.oidc, nil
	}
	if time.Since(p.lastAt) < discoveryRetry {
		return nil, fmt.Errorf("%w: %s: discovery failed less than %s ago", ErrProvider, p.Name, discoveryRetry)
	}
	p.lastAt = time.Now()
	ctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), p.client), 30*time.Second)
	defer cancel()
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: discovery at %s: %v", ErrProvider, p.Name, p.Issuer, err)
	}
	p.oidc = op
	return op, nil
}

// oauth2 is the console's client configuration (redirect: the console's
// callback), or the CLI's (public: no secret).
func (p *Provider) oauth2(op *oidc.Provider, clientID, secret, redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: op.Endpoint(), RedirectURL: redirect, Scopes: p.Scopes}
}

// Flow is what a browser sign-in keeps between its start and its
// callback: the state it must come back with, the nonce the ID token
// must carry, the PKCE verifier.
type Flow struct {
	State, Nonce, Verifier string
}

// NewFlow returns fresh random values for a sign-in.
func NewFlow() Flow {
	return Flow{State: oauth2.GenerateVerifier(), Nonce: oauth2.GenerateVerifier(), Verifier: oauth2.GenerateVerifier()}
}

// AuthCodeURL is where the console sends the browser: the provider's
// authorization endpoint, for the console's client, with the flow's
// state, nonce and PKCE challenge.
func (p *Provider) AuthCodeURL(ctx context.Context, redirect string, f Flow) (string, error) {
	op, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return p.oauth2(op, p.ClientID, p.ClientSecret, redirect).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), nil
}

// Exchange completes the console's sign-in: it redeems the code (with
// the client secret and the PKCE verifier), verifies the ID token
// (signature, issuer, audience = the console's client, expiry, nonce)
// and reads the identity.
func (p *Provider) Exchange(ctx context.Context, redirect, code string, f Flow) (access.Identity, error) {
	op, err := p.discover(ctx)
	if err != nil {
		return access.Identity{}, err
	}
	ctx = oidc.ClientContext(ctx, p.client)
	tok, err := p.oauth2(op, p.ClientID, p.ClientSecret, redirect).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return access.Identity{}, fmt.Errorf("%w: %s: redeeming the code: %v", ErrProvider, p.Name, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return access.Identity{}, fmt.Errorf("%w: %s answered without an ID token (is openid among the scopes?)", ErrProvider, p.Name)
	}
	return p.identity(ctx, op, raw, tok.AccessToken, f.Nonce, []string{p.ClientID})
}

// VerifyCLI verifies an ID token `dml login` obtained with the CLI's
// client (or the console's), with the nonce its flow chose, and reads the
// identity; accessToken, when given, reads the claim from the userinfo
// endpoint when the ID token lacks it.
func (p *Provider) VerifyCLI(ctx context.Context, rawIDToken, accessToken, nonce string) (access.Identity, error) {
	if p.CLIClientID == "" {
		return access.Identity{}, fmt.Errorf("%w: provider %s has no cliClientId: the CLI cannot sign in through it", errdef.ErrInvalidInput, p.Name)
	}
	if nonce == "" {
		return access.Identity{}, fmt.Errorf("%w: the nonce of the sign-in is required", ErrInvalidToken)
	}
	op, err := p.discover(ctx)
	if err != nil {
		return access.Identity{}, err
	}
	return p.identity(oidc.ClientContext(ctx, p.client), op, rawIDToken, accessToken, nonce, []string{p.CLIClientID})
}

// identity verifies raw and reads the person's identity and the mapped
// claim from it, or from the userinfo endpoint when it lacks the claim.
func (p *Provider) identity(ctx context.Context, op *oidc.Provider, raw, accessToken, nonce string, audiences []string) (access.Identity, error) {
	// go-oidc checks one audience; the check against the client ids
	// allowed is made below, on the verified token.
	idt, err := op.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, raw)
	if err != nil {
		return access.Identity{}, fmt.Errorf("%w: %s: %v", ErrInvalidToken, p.Name, err)
	}
	if !slices.ContainsFunc(idt.Audience, func(a string) bool { return slices.Contains(audiences, a) }) {
		return access.Identity{}, fmt.Errorf("%w: %s: the token's audience %v is not this server's client %v", ErrInvalidToken, p.Name, idt.Audience, audiences)
	}
	if idt.Nonce != nonce {
		return access.Identity{}, fmt.Errorf("%w: %s: the token's nonce is not the one of this sign-in", ErrInvalidToken, p.Name)
	}
	if accessToken != "" && idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return access.Identity{}, fmt.Errorf("%w: %s: the access token is not the one issued with the ID token: %v", ErrInvalidToken, p.Name, err)
		}
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return access.Identity{}, fmt.Errorf("%w: %s: claims: %v", ErrInvalidToken, p.Name, err)
	}
	// The userinfo endpoint fills in the mapped claim, and the e-mail
	// address that names the person, when the ID token lacks them (many
	// providers put only the subject in an ID token issued with an
	// access token).
	_, hasClaim := claims[p.Mapping.Claim]
	_, hasEmail := claims["email"]
	if (!hasClaim || !hasEmail) && accessToken != "" {
		info, err := op.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken}))
		if err != nil {
			return access.Identity{}, fmt.Errorf("%w: %s: userinfo: %v", ErrProvider, p.Name, err)
		}
		if info.Subject != idt.Subject {
			return access.Identity{}, fmt.Errorf("%w: %s: userinfo describes subject %q, the ID token %q", ErrInvalidToken, p.Name, info.Subject, idt.Subject)
		}
		more := map[string]any{}
		if err := info.Claims(&more); err != nil {
			return access.Identity{}, fmt.Errorf("%w: %s: userinfo claims: %v", ErrProvider, p.Name, err)
		}
		// The ID token's claims win: it is signed, the userinfo answer
		// only fills in what it lacks.
		for k, v := range more {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	id := access.Identity{Provider: p.Name, Issuer: idt.Issuer, Subject: idt.Subject,
		Email: verifiedEmail(claims), Username: str(claims["preferred_username"])}
	id.Values = claimValues(claims[p.Mapping.Claim])
	if p.Mapping.Claim == "email" {
		// An address the provider has not verified (email_verified true)
		// maps to nothing: anyone may type any address into a profile.
		id.Values = nil
		if id.Email != "" {
			id.Values = []string{id.Email}
		}
	}
	return id, nil
}

// verifiedEmail is the email claim when the provider says it verified
// it (email_verified true), and "" otherwise: an address is a name only
// once someone proved they receive mail there.
func verifiedEmail(claims map[string]any) string {
	if v, ok := claims["email_verified"].(bool); !ok || !v {
		return ""
	}
	return str(claims["email"])
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// claimValues reads a claim as a list of strings: a string is one value,
// an array its string members; anything else none.
func claimValues(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
