package trust

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/signing"
)

// Event actions of identities.
const (
	ActionTrustIdentityAdded   = "trust.identity.added"
	ActionTrustIdentityRevoked = "trust.identity.revoked"
)

// Identity is a keyless signer: a workload that signs with a short-lived
// Fulcio certificate chaining to the trusted root Root, issued for its
// OIDC token from Issuer to Subject (or any subject SubjectRegexp matches
// whole), carrying the certificate extensions Claims pins. Its ID shares
// one namespace with the keys', so a policy names either alike.
type Identity struct {
	ID            string
	Root          string
	Issuer        string
	Subject       string
	SubjectRegexp string
	Claims        map[string]string
	CreatedBy     string
	CreatedAt     time.Time
	RevokedAt     *time.Time
	RevokedBy     string
}

// Limits on an identity, so that one cannot fill the database.
const (
	maxIdentityText = 1024
	maxClaims       = 32
)

// ClaimNames are the certificate extensions a claim may pin, by the names
// sigstore-go's certificate.Extensions gives them (as in its
// certificate.Summary and cosign's --certificate-github-workflow-* flags'
// documentation), but the issuer, which Identity.Issuer pins.
var ClaimNames = signing.ClaimNames()

// Signing is the identity as the keyless verifier matches it.
func (id Identity) Signing() signing.Identity {
	return signing.Identity{ID: id.ID, Root: id.Root, Issuer: id.Issuer, Subject: id.Subject, SubjectRegexp: id.SubjectRegexp, Claims: id.Claims}
}

// SubjectPattern is the regular expression a certificate's subject must
// match whole: SubjectRegexp anchored at both ends, so that
// "https://github.com/org/repo/.*" cannot be satisfied by a subject that
// merely starts like it, nor "…@refs/tags/v1" by "…@refs/tags/v1-evil".
// Empty when the identity names one subject.
func (id Identity) SubjectPattern() string {
	if id.SubjectRegexp == "" {
		return ""
	}
	return `^(?:` + id.SubjectRegexp + `)$`
}

// MatchesSubject reports whether subject is the identity's subject, or
// matches its regular expression whole.
func (id Identity) MatchesSubject(subject string) bool {
	if id.SubjectRegexp == "" {
		return subject == id.Subject
	}
	re, err := regexp.Compile(id.SubjectPattern())
	return err == nil && re.MatchString(subject)
}

// validate checks what an admin gives, before it is stored.
func (id Identity) validate() error {
	if err := validateID("identity", id.ID); err != nil {
		return err
	}
	if err := validateID("identity "+id.ID+": root", id.Root); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: identity %s: %s", errdef.ErrInvalidInput, id.ID, fmt.Sprintf(format, args...))
	}
	if u, err := url.Parse(id.Issuer); err != nil || !u.IsAbs() || u.Host == "" || len(id.Issuer) > maxIdentityText {
		return bad("issuer %q: want the OIDC issuer's absolute URL, e.g. https://token.actions.githubusercontent.com", id.Issuer)
	}
	switch {
	case (id.Subject == "") == (id.SubjectRegexp == ""):
		return bad("give exactly one of subject and subjectRegexp")
	case len(id.Subject) > maxIdentityText || len(id.SubjectRegexp) > maxIdentityText:
		return bad("subject longer than %d characters", maxIdentityText)
	}
	if id.SubjectRegexp != "" {
		if _, err := regexp.Compile(id.SubjectPattern()); err != nil {
			return bad("subjectRegexp: %v", err)
		}
	}
	if len(id.Claims) > maxClaims {
		return bad("more than %d claims", maxClaims)
	}
	for name, value := range id.Claims {
		switch {
		case name == "issuer":
			return bad("claim issuer: the issuer is pinned by the identity's issuer")
		case !slices.Contains(ClaimNames, name):
			return bad("unknown claim %q (known: %s)", name, strings.Join(ClaimNames, ", "))
		case value == "" || len(value) > maxIdentityText:
			return bad("claim %s: want a value of 1-%d characters", name, maxIdentityText)
		}
	}
	return nil
}

// rootUsable is the rule, run inside the store's transaction, that an
// identity names an installed, unrevoked root: the root cannot be revoked
// between the check and the identity's insertion.
func rootUsable(id Identity) func(r TrustedRoot, found bool) error {
	return func(r TrustedRoot, found bool) error {
		switch {
		case !found:
			return fmt.Errorf("%w: identity %s: no trusted root %s", ErrRootUnknown, id.ID, id.Root)
		case r.RevokedAt != nil:
			return fmt.Errorf("%w: identity %s: trusted root %s was revoked by %s", ErrRootRevoked, id.ID, id.Root, r.RevokedBy)
		}
		return nil
	}
}

// ErrRootUnknown refuses an identity bound to a root that is not
// installed: it could never verify anything.
var ErrRootUnknown = fmt.Errorf("%w: unknown trusted root", errdef.ErrInvalidInput)

// ErrRootRevoked refuses what would trust a revoked root again: an
// identity bound to it, a new document under its ID.
var ErrRootRevoked = fmt.Errorf("%w: trusted root revoked", errdef.ErrConflict)

// AddIdentity registers a keyless signer (admin only) and re-evaluates
// quarantined artifacts. Its ID must not be a key's or another
// identity's (errdef.ErrConflict).
func (s *Service) AddIdentity(ctx context.Context, p access.Principal, id Identity) (Identity, error) {
	if !p.Has(access.RoleAdmin) {
		return Identity{}, fmt.Errorf("%w: managing trust needs the admin role", errdef.ErrDenied)
	}
	if err := id.validate(); err != nil {
		return Identity{}, err
	}
	if id.Claims == nil {
		id.Claims = map[string]string{}
	}
	id.CreatedBy, id.CreatedAt, id.RevokedAt, id.RevokedBy = p.Name, s.now(), nil, ""
	if err := s.store.AddIdentity(ctx, p.Actor(), id, rootUsable(id)); err != nil {
		return Identity{}, err
	}
	s.log.Info("identity added", "id", id.ID, "root", id.Root, "issuer", id.Issuer, "by", p.Name)
	s.reevaluateAfterChange(ctx, p.Actor())
	return id, nil
}

// Identities lists every identity, revoked ones included, ordered by ID.
func (s *Service) Identities(ctx context.Context) ([]Identity, error) {
	return s.store.Identities(ctx)
}

// RevokeIdentity revokes an identity (admin only): evidence it signed no
// longer counts for new admissions, exactly as a revoked key's.
func (s *Service) RevokeIdentity(ctx context.Context, p access.Principal, id string) error {
	if !p.Has(access.RoleAdmin) {
		return fmt.Errorf("%w: managing trust needs the admin role", errdef.ErrDenied)
	}
	if err := s.store.RevokeIdentity(ctx, p.Actor(), id); err != nil {
		return err
	}
	s.log.Info("identity revoked", "id", id, "by", p.Name)
	return nil
}
