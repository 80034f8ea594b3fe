package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
)

// Single sign-on for people: a person signs in at an OIDC provider, the
// provider vouches for who they are (issuer + subject) and for a claim
// (their groups, or their e-mail address); a Mapping turns the claim's
// values into roles and deployer environments, and SignIn issues a
// short-lived session: a token like any other, marked with the identity,
// so every check made of tokens holds for people too. The protocol
// (discovery, code exchange, ID token verification) is the adapter's
// (api/sso); this file decides only what a verified identity is granted.

// ErrNoRoleGranted refuses a sign-in whose claims map to no role.
var ErrNoRoleGranted = errors.New("no role granted")

// Event actions of single sign-on.
const (
	// ActionSessionStarted: a person signed in; details name the
	// provider, the identity, the roles and the expiry.
	ActionSessionStarted = "session.started"
	// ActionSessionEnded: a sign-in ended an earlier session of the same
	// person that held a role or environment the new claims no longer
	// grant.
	ActionSessionEnded = "session.ended"
	// ActionSignInRefused: a verified identity was granted nothing.
	ActionSignInRefused = "session.refused"
)

// MaxSessionTTL bounds a provider's session lifetime: a person signs in
// again at least once a day, which is when a group change takes effect.
const MaxSessionTTL = 24 * time.Hour

// DefaultSessionTTL is a session's lifetime when the provider sets none.
const DefaultSessionTTL = 8 * time.Hour

// Mapping turns the values of one claim into roles and environments.
type Mapping struct {
	// Claim names the claim read ("groups", "email").
	Claim string
	// Roles maps a claim value to the roles it grants.
	Roles map[string][]Role
	// Environments maps a claim value to the environments a deployer
	// may deploy to.
	Environments map[string][]string
}

// Validate checks the mapping: a claim, known roles, valid environment
// names, and at least one value that grants a role.
func (m Mapping) Validate() error {
	if m.Claim == "" {
		return fmt.Errorf("%w: claim must name the claim to map (e.g. groups or email)", errdef.ErrInvalidInput)
	}
	if len(m.Roles) == 0 {
		return fmt.Errorf("%w: roles must map at least one %s value to roles", errdef.ErrInvalidInput, m.Claim)
	}
	for _, v := range slices.Sorted(maps.Keys(m.Roles)) {
		if v == "" {
			return fmt.Errorf("%w: roles: an empty %s value", errdef.ErrInvalidInput, m.Claim)
		}
		if len(m.Roles[v]) == 0 {
			return fmt.Errorf("%w: roles[%q] grants no role", errdef.ErrInvalidInput, v)
		}
		for _, r := range m.Roles[v] {
			if !r.Valid() {
				return fmt.Errorf("%w: roles[%q]: unknown role %q (known: %s)", errdef.ErrInvalidInput, v, r, roleList())
			}
		}
	}
	for _, v := range slices.Sorted(maps.Keys(m.Environments)) {
		for _, e := range m.Environments[v] {
			if err := names.ValidateEnvironment(e); err != nil {
				return fmt.Errorf("environments[%q]: %w", v, err)
			}
		}
	}
	return nil
}

// Grant is what a claim's values grant: the union of their roles and
// environments, sorted. A deployer role without an environment grants
// nothing (a deployer deploys somewhere) and is left out.
func (m Mapping) Grant(values []string) (roles []Role, envs []string) {
	roles, envs = []Role{}, []string{}
	for _, v := range values {
		roles = append(roles, m.Roles[v]...)
		envs = append(envs, m.Environments[v]...)
	}
	slices.Sort(roles)
	roles = slices.Compact(roles)
	slices.Sort(envs)
	envs = slices.Compact(envs)
	if len(envs) == 0 {
		roles = slices.DeleteFunc(roles, func(r Role) bool { return r == RoleDeployer })
	}
	return roles, envs
}

// Identity is a person as a provider vouched for them, after the adapter
// verified the ID token.
type Identity struct {
	// Provider is the configured provider's name; Issuer its issuer URL.
	Provider string
	Issuer   string
	// Subject is the person's stable id at the issuer.
	Subject string
	// Email and Username (preferred_username) name the person, when the
	// provider says; see SessionName.
	Email    string
	Username string
	// Values are the mapped claim's values (a groups claim's groups, or
	// the one e-mail address).
	Values []string
}

// SignInRequest is a verified identity and the rules of its provider.
type SignInRequest struct {
	Identity Identity
	Mapping  Mapping
	// TTL is how long the session lasts; zero: DefaultSessionTTL.
	TTL time.Duration
}

// SessionName is the principal name of a person's session: their
// verified e-mail address, else USERNAME@PROVIDER, else SUBJECT@PROVIDER,
// whichever first is a valid token name; else a name derived from the
// identity. The name is what separation of duties and ownership compare,
// so it must be one per person and must not be a machine's: a bare user
// name such as "pipeline" could be a token's name, a name with an "@" is
// one only if an admin chose it so.
func SessionName(id Identity) string {
	candidates := []string{id.Email}
	for _, n := range []string{id.Username, id.Subject} {
		if n != "" && !strings.Contains(n, "@") {
			n += "@" + id.Provider
		}
		candidates = append(candidates, n)
	}
	for _, n := range candidates {
		if tokenNameRE.MatchString(n) {
			return n
		}
	}
	h := sha256.Sum256([]byte(id.Issuer + "\x00" + id.Subject))
	return "sso-" + hex.EncodeToString(h[:8])
}

// SignIn starts a person's session: it maps the identity's claim values
// to roles and environments, refuses (ErrNoRoleGranted, recorded as
// ActionSignInRefused) when they grant no role, ends the person's earlier
// sessions that hold a role or an environment the new grant lacks (so a
// group change takes effect at the next sign-in), and issues a session
// token that expires after the TTL. The session's secret is returned
// once, like a token's.
func (s *Service) SignIn(ctx context.Context, req SignInRequest) (IssuedToken, error) {
	id := req.Identity
	if id.Issuer == "" || id.Subject == "" || id.Provider == "" {
		return IssuedToken{}, fmt.Errorf("%w: a sign-in needs the provider, the issuer and the subject", errdef.ErrInvalidInput)
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	if ttl < 0 || ttl > MaxSessionTTL {
		return IssuedToken{}, fmt.Errorf("%w: session lifetime %s must be positive and at most %s", errdef.ErrInvalidInput, ttl, MaxSessionTTL)
	}
	name := SessionName(id)
	actor := Actor{Name: name, Issuer: id.Issuer, Subject: id.Subject}
	roles, envs := req.Mapping.Grant(id.Values)
	if len(roles) == 0 {
		refusal := SignInRefusal{Provider: id.Provider, Claim: req.Mapping.Claim, Values: nonNilStrings(id.Values)}
		if err := s.store.RecordRefusedSignIn(ctx, actor, refusal); err != nil {
			return IssuedToken{}, err
		}
		s.log.Info("sign-in refused: no role granted", "provider", id.Provider, "subject", id.Subject, "claim", req.Mapping.Claim, "values", id.Values)
		return IssuedToken{}, fmt.Errorf("%w: the %s claim of %s at %s (%v) maps to no dml role; ask an admin to add you to a group the provider %s maps",
			ErrNoRoleGranted, req.Mapping.Claim, name, id.Provider, id.Values, id.Provider)
	}
	earlier, err := s.store.Sessions(ctx, id.Issuer, id.Subject)
	if err != nil {
		return IssuedToken{}, err
	}
	now := s.now()
	var end []string
	for _, t := range earlier {
		live := t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
		if live && !grants(roles, envs, t) {
			end = append(end, t.ID)
		}
	}
	secret := NewSecret()
	expires := now.Add(ttl)
	t := Token{
		ID: newTokenID(), Name: name, Roles: roles, Environments: envs, CreatedBy: name,
		CreatedAt: now, ExpiresAt: &expires, Issuer: id.Issuer, Subject: id.Subject,
	}
	actor.TokenID = t.ID
	if err := s.store.StartSession(ctx, actor, t, HashSecret(secret), id.Provider, end); err != nil {
		return IssuedToken{}, err
	}
	s.log.Info("session started", "id", t.ID, "name", name, "provider", id.Provider, "subject", id.Subject, "roles", roles, "ended", end)
	return IssuedToken{Token: t, Secret: secret}, nil
}

// grants reports whether roles and envs cover everything t holds.
func grants(roles []Role, envs []string, t Token) bool {
	for _, r := range t.Roles {
		if !slices.Contains(roles, r) {
			return false
		}
	}
	for _, e := range t.Environments {
		if !slices.Contains(envs, e) {
			return false
		}
	}
	return true
}

// SignInRefusal is what a refused sign-in records.
type SignInRefusal struct {
	Provider string   `json:"provider"`
	Claim    string   `json:"claim"`
	Values   []string `json:"values"`
}

// EndSession ends the principal's own single sign-on session (sign-out).
// A token that is not a session is refused: machines' tokens are revoked
// by an admin.
func (s *Service) EndSession(ctx context.Context, p Principal) error {
	if p.Issuer == "" {
		return fmt.Errorf("%w: token %s is not a single sign-on session; an admin revokes tokens", errdef.ErrInvalidInput, p.TokenID)
	}
	if err := s.store.RevokeToken(ctx, p.Actor(), p.TokenID); err != nil {
		return err
	}
	s.log.Info("session ended", "id", p.TokenID, "name", p.Name)
	return nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
