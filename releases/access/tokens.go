package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/defaults"
	"github.com/dmlproject/dml/releases/names"
)

// tokenPrefix marks dml secrets so secret scanners can find leaked ones.
const tokenPrefix = "dml_"

// NewSecret returns a fresh random bearer token.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is what is stored for a secret: its SHA-256.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newTokenID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "tok_" + hex.EncodeToString(b)
}

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// TokenRequest asks for a new token.
type TokenRequest struct {
	Name         string
	Roles        []Role
	Environments []string
	// ExpiresIn, when set, is how long the token authenticates: a Go
	// duration such as "720h" (at most MaxTokenLifetime).
	ExpiresIn string
}

// MaxTokenLifetime bounds ExpiresIn. A longer-lived credential is one
// without an expiry, which an admin may still issue deliberately.
const MaxTokenLifetime = 10 * 365 * 24 * time.Hour

// expiry parses ExpiresIn into the expiry of a token issued at now.
func (req TokenRequest) expiry(now time.Time) (*time.Time, error) {
	if req.ExpiresIn == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(req.ExpiresIn)
	if err != nil || d <= 0 || d > MaxTokenLifetime {
		return nil, fmt.Errorf("%w: expiresIn %q must be a positive duration such as 720h, at most %s", errdef.ErrInvalidInput, req.ExpiresIn, MaxTokenLifetime)
	}
	at := now.Add(d)
	return &at, nil
}

// Service issues, lists, revokes and authenticates tokens.
type Service struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
	// use throttles the writes of tokens' last use.
	use tokenUse
}

// New returns the token service over st. A nil log keeps it silent, a nil
// now is the wall clock.
func New(st Store, log *slog.Logger, now func() time.Time) *Service {
	return &Service{store: st, log: defaults.Logger(log), now: defaults.Clock(now)}
}

// IssuedToken is a new token and its secret, shown once.
type IssuedToken struct {
	Token  Token
	Secret string
}

// IssueToken creates a token (admin only). The principal name is the token
// name: several tokens with one name are one principal (rotation).
func (s *Service) IssueToken(ctx context.Context, p Principal, req TokenRequest) (IssuedToken, error) {
	if !p.Has(RoleAdmin) {
		return IssuedToken{}, fmt.Errorf("%w: issuing tokens needs the admin role", errdef.ErrDenied)
	}
	return s.issueToken(ctx, p.Actor(), p.Name, req, NewSecret())
}

func (s *Service) issueToken(ctx context.Context, actor Actor, createdBy string, req TokenRequest, secret string) (IssuedToken, error) {
	t, err := s.newToken(createdBy, req)
	if err != nil {
		return IssuedToken{}, err
	}
	if err := s.store.CreateToken(ctx, actor, t, HashSecret(secret)); err != nil {
		return IssuedToken{}, err
	}
	s.log.Info("token issued", "id", t.ID, "name", t.Name, "roles", t.Roles, "expiresAt", t.ExpiresAt, "by", createdBy)
	return IssuedToken{Token: t, Secret: secret}, nil
}

// newToken checks req and returns the token it asks for, not yet stored.
func (s *Service) newToken(createdBy string, req TokenRequest) (Token, error) {
	if !tokenNameRE.MatchString(req.Name) {
		return Token{}, fmt.Errorf("%w: token name %q must be 1-128 characters of letters, digits, '.', '_', '@', '-'", errdef.ErrInvalidInput, req.Name)
	}
	if len(req.Roles) == 0 {
		return Token{}, fmt.Errorf("%w: a token needs at least one role (%s)", errdef.ErrInvalidInput, roleList())
	}
	roles := slices.Clone(req.Roles)
	for _, r := range roles {
		if !r.Valid() {
			return Token{}, fmt.Errorf("%w: unknown role %q (known: %s)", errdef.ErrInvalidInput, r, roleList())
		}
	}
	slices.Sort(roles)
	roles = slices.Compact(roles)
	envs := slices.Clone(req.Environments)
	for _, e := range envs {
		if err := names.ValidateEnvironment(e); err != nil {
			return Token{}, err
		}
	}
	slices.Sort(envs)
	envs = slices.Compact(envs)
	if envs == nil {
		envs = []string{}
	}
	if slices.Contains(roles, RoleDeployer) && len(envs) == 0 {
		return Token{}, fmt.Errorf("%w: a deployer token must name the environments it deploys to", errdef.ErrInvalidInput)
	}
	now := s.now()
	expires, err := req.expiry(now)
	if err != nil {
		return Token{}, err
	}
	return Token{
		ID:           newTokenID(),
		Name:         req.Name,
		Roles:        roles,
		Environments: envs,
		CreatedBy:    createdBy,
		CreatedAt:    now,
		ExpiresAt:    expires,
	}, nil
}

func roleList() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// RevokeToken revokes a token (admin only).
func (s *Service) RevokeToken(ctx context.Context, p Principal, id string) error {
	if !p.Has(RoleAdmin) {
		return fmt.Errorf("%w: revoking tokens needs the admin role", errdef.ErrDenied)
	}
	if err := s.store.RevokeToken(ctx, p.Actor(), id); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return s.tokenNotFound(ctx, id)
		}
		return err
	}
	s.log.Info("token revoked", "id", id, "by", p.Name)
	return nil
}

// tokenNotFound is the answer for a token id that does not exist: an
// *errdef.NotFoundError suggesting the ids of the tokens named so (people
// type the name where the id is wanted), else the ids close to it.
func (s *Service) tokenNotFound(ctx context.Context, id string) error {
	nf := &errdef.NotFoundError{What: "token", Name: id}
	tokens, err := s.store.ListTokens(ctx)
	if err != nil {
		return nf
	}
	ids := make([]string, 0, len(tokens))
	for _, t := range tokens {
		if t.Name == id && t.RevokedAt == nil {
			nf.Suggestions = append(nf.Suggestions, t.ID)
		}
		ids = append(ids, t.ID)
	}
	if len(nf.Suggestions) == 0 {
		nf.Suggestions = names.Suggest(id, ids)
	}
	return nf
}

// Tokens lists every token, revoked and expired ones included (admins).
// A Token never holds its secret nor the secret's hash.
func (s *Service) Tokens(ctx context.Context, p Principal) ([]Token, error) {
	if !p.Has(RoleAdmin) {
		return nil, fmt.Errorf("%w: listing tokens needs the admin role", errdef.ErrDenied)
	}
	return s.store.ListTokens(ctx)
}

// Authenticate resolves a bearer secret to its principal. Revoked and
// expired tokens are errdef.ErrUnauthorized, with a message naming the token and
// why (the token's id is no secret).
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, fmt.Errorf("%w: no token", errdef.ErrUnauthorized)
	}
	t, err := s.store.TokenByHash(ctx, HashSecret(secret))
	if errors.Is(err, errdef.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: unknown token", errdef.ErrUnauthorized)
	}
	if err != nil {
		return Principal{}, err
	}
	if t.RevokedAt != nil {
		return Principal{}, fmt.Errorf("%w: token %s was revoked", errdef.ErrUnauthorized, t.ID)
	}
	now := s.now()
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return Principal{}, fmt.Errorf("%w: token %s expired at %s; ask an admin for a new one", errdef.ErrUnauthorized, t.ID, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	s.use.note(ctx, s, t, now)
	return Principal{TokenID: t.ID, Name: t.Name, Roles: t.Roles, Environments: t.Environments, Issuer: t.Issuer, Subject: t.Subject}, nil
}

// lastUseInterval is how often, at most, a token's last use is written:
// authentication reads the database on every request but writes it only
// when a token's recorded last use is older than this.
const lastUseInterval = time.Minute

// tokenUse remembers when each token's last use was last written, so that
// concurrent requests with one token write it once, not once each. It
// saves writes only: last use is bookkeeping, and each replica writes it
// at most once a minute per token. Whether a token is valid (revoked,
// expired) is read from the database on every request, never cached, so
// a revocation through one replica is refused by all at once.
type tokenUse struct {
	mu      sync.Mutex
	written map[string]time.Time
}

// note writes t's last use as now, unless it was written (by this process
// or, as t.LastUsedAt shows, by another) less than lastUseInterval ago.
// A failure is logged, never the request's: last use is bookkeeping.
func (u *tokenUse) note(ctx context.Context, s *Service, t Token, now time.Time) {
	u.mu.Lock()
	last := u.written[t.ID]
	if t.LastUsedAt != nil && t.LastUsedAt.After(last) {
		last = *t.LastUsedAt
	}
	if !last.IsZero() && now.Sub(last) < lastUseInterval {
		u.mu.Unlock()
		return
	}
	if u.written == nil {
		u.written = map[string]time.Time{}
	}
	u.written[t.ID] = now
	u.mu.Unlock()
	// The request may be cancelled as soon as it is answered; the write
	// is the token's, not the request's.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.TouchToken(ctx, t.ID, now); err != nil {
		s.log.Warn("recording a token's last use failed", "token", t.ID, "err", err)
	}
}

// Recovery is who issues an admin token on the server's host, and where:
// the operating-system user that ran dml admin reset-token, which reads
// the server's database directly, and the host's name.
type Recovery struct {
	HostUser string `json:"hostUser"`
	Host     string `json:"host"`
}

// RecoveryTokenName is the name of the tokens RecoverAdmin issues.
const RecoveryTokenName = "recovered-admin"

// RecoverAdmin issues a new admin token when every admin token is lost.
// It needs no principal: whoever can write the server's database (its
// data directory, or its PostgreSQL credentials) holds every token
// already; what it adds is a record, ActionTokenRecovered, naming the
// host user, so that the recovery is as visible in the audit log as any
// other token issued. Tokens issued before are left as they are: revoke
// the lost one with the new one.
func (s *Service) RecoverAdmin(ctx context.Context, r Recovery) (IssuedToken, error) {
	if strings.TrimSpace(r.HostUser) == "" {
		return IssuedToken{}, fmt.Errorf("%w: a recovery names the host user who made it", errdef.ErrInvalidInput)
	}
	actor := Actor{Name: r.HostUser + "@" + r.Host}
	if r.Host == "" {
		actor.Name = r.HostUser
	}
	t, err := s.newToken(actor.Name, TokenRequest{Name: RecoveryTokenName, Roles: []Role{RoleAdmin}})
	if err != nil {
		return IssuedToken{}, err
	}
	secret := NewSecret()
	if err := s.store.CreateRecoveryToken(ctx, actor, t, HashSecret(secret), r); err != nil {
		return IssuedToken{}, err
	}
	s.log.Info("admin token recovered", "id", t.ID, "hostUser", r.HostUser, "host", r.Host)
	return IssuedToken{Token: t, Secret: secret}, nil
}

// BootstrapAdmin makes sure an admin can log in on first start. When no
// token has ever been issued it creates an admin token "bootstrap-admin"
// whose secret is the given one, or a generated one. It returns the secret
// only when it generated it (so the caller prints it once), and "" when
// tokens already existed or the secret was supplied.
func (s *Service) BootstrapAdmin(ctx context.Context, secret string) (generated string, err error) {
	// A quick answer for the usual restart; the decision that counts is
	// CreateFirstToken's, which replicas starting together share.
	n, err := s.store.CountTokens(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	supplied := secret != ""
	if !supplied {
		secret = NewSecret()
	} else if len(secret) < 16 {
		return "", fmt.Errorf("%w: DML_BOOTSTRAP_TOKEN must be at least 16 characters", errdef.ErrInvalidInput)
	}
	system := Actor{Name: "dml-bootstrap"}
	t, err := s.newToken(system.Name, TokenRequest{Name: "bootstrap-admin", Roles: []Role{RoleAdmin}})
	if err != nil {
		return "", err
	}
	created, err := s.store.CreateFirstToken(ctx, system, t, HashSecret(secret))
	if err != nil || !created {
		// Not created: another server, starting at the same time, issued
		// the first token; its secret is the one to use.
		return "", err
	}
	s.log.Info("token issued", "id", t.ID, "name", t.Name, "roles", t.Roles, "by", system.Name)
	if supplied {
		return "", nil
	}
	return secret, nil
}
