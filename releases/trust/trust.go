package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/defaults"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/signing"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// ErrPolicyInvalid refuses a trust policy document that does not validate.
var ErrPolicyInvalid = signing.ErrInvalidPolicy

// Event actions of trust.
const (
	ActionTrustKeyAdded   = "trust.key.added"
	ActionTrustKeyRevoked = "trust.key.revoked"
	ActionTrustPolicySet  = "trust.policy.set"
)

// TrustKey is a public key that may sign evidence, registered by an admin.
type TrustKey struct {
	ID           string
	PublicKeyPEM string
	Algorithm    string
	Comment      string
	CreatedBy    string
	CreatedAt    time.Time
	RevokedAt    *time.Time
	RevokedBy    string
}

// PolicyVersion is one version of the trust policy document. Every PUT
// makes a new version; the highest is current.
type PolicyVersion struct {
	Version   int64
	Document  json.RawMessage
	CreatedBy string
	CreatedAt time.Time
}

// Store is the persistence of trusted keys and policy versions. Every
// mutating method records exactly one event in the same transaction as its
// change, and none when it changes nothing or fails.
type Store interface {
	Reader
	// AddTrustKey registers a key and records ActionTrustKeyAdded;
	// errdef.ErrConflict if the ID is taken by a key or an identity
	// (revoked IDs stay taken, so an ID always names one signer).
	AddTrustKey(ctx context.Context, actor access.Actor, k TrustKey) error
	// RevokeTrustKey marks a key revoked and records
	// ActionTrustKeyRevoked; errdef.ErrNotFound if unknown; revoking a
	// revoked key is a no-op that records nothing.
	RevokeTrustKey(ctx context.Context, actor access.Actor, id string) error
	// SetTrustPolicy stores a new policy version (the document as given)
	// and records ActionTrustPolicySet.
	SetTrustPolicy(ctx context.Context, actor access.Actor, doc json.RawMessage) (PolicyVersion, error)

	// ModifyTrustedRoot lets fn decide, inside one write transaction, the
	// next document of the root id from its current version (found is
	// false for a new id). A nil document from fn changes and records
	// nothing and returns the current version; otherwise the document is
	// stored byte for byte as the next version (1 for a new id), by actor,
	// and ActionTrustRootAdded (version 1) or ActionTrustRootReplaced is
	// recorded. fn's error is returned as it is.
	ModifyTrustedRoot(ctx context.Context, actor access.Actor, id string, fn func(cur TrustedRoot, found bool) (json.RawMessage, error)) (TrustedRoot, error)
	// RevokeTrustedRoot marks a root revoked and records
	// ActionTrustRootRevoked; errdef.ErrNotFound if unknown; revoking a
	// revoked root records nothing.
	RevokeTrustedRoot(ctx context.Context, actor access.Actor, id string) error
	// AddIdentity stores an identity and records ActionTrustIdentityAdded,
	// after rootOK accepted its root as it is inside the transaction
	// (found is false for a root not installed); errdef.ErrConflict if
	// its ID is any signer's, a key's or an identity's, revoked or not.
	AddIdentity(ctx context.Context, actor access.Actor, id Identity, rootOK func(r TrustedRoot, found bool) error) error
	// RevokeIdentity marks an identity revoked and records
	// ActionTrustIdentityRevoked; errdef.ErrNotFound if unknown; revoking a
	// revoked identity records nothing.
	RevokeIdentity(ctx context.Context, actor access.Actor, id string) error
}

// Reader reads the trust: what admission weighs. A store's transaction
// may offer it too, so that a decision reads the trust it is made with.
type Reader interface {
	// TrustKeys lists every key, revoked ones included, ordered by ID.
	TrustKeys(ctx context.Context) ([]TrustKey, error)
	// TrustPolicy returns the current policy; errdef.ErrNotFound if none
	// was set.
	TrustPolicy(ctx context.Context) (PolicyVersion, error)
	// TrustedRoots lists the current version of every root, revoked ones
	// included, ordered by ID.
	TrustedRoots(ctx context.Context) ([]TrustedRoot, error)
	// Identities lists every identity, revoked ones included, ordered by
	// ID.
	Identities(ctx context.Context) ([]Identity, error)
	// TrustRevision returns a number that every change of the Store raises
	// in the change's own transaction (a call that changes nothing leaves
	// it as it is): what admission keys its parsed policy and loaded
	// verifiers by (Cache).
	TrustRevision(ctx context.Context) (int64, error)
}

// Reevaluator re-decides the admission of every quarantined artifact
// after a trust change, which may admit some (catalog.Service implements
// it; the composition root wires it in).
type Reevaluator interface {
	ReevaluateQuarantined(ctx context.Context, actor access.Actor) error
}

// Service manages the trusted keys and the trust policy (admins), and
// re-evaluates quarantined artifacts after each change.
type Service struct {
	store      Store
	quarantine Reevaluator
	log        *slog.Logger
	now        func() time.Time
}

// New returns the trust service over st; after a change it asks
// quarantine to re-evaluate. A nil log keeps it silent, a nil now is the
// wall clock.
func New(st Store, quarantine Reevaluator, log *slog.Logger, now func() time.Time) (*Service, error) {
	if st == nil || quarantine == nil {
		return nil, errors.New("trust: a store and a reevaluator are required")
	}
	return &Service{store: st, quarantine: quarantine, log: defaults.Logger(log), now: defaults.Clock(now)}, nil
}

// AddTrustKeyRequest registers a public key.
type AddTrustKeyRequest struct {
	ID        string
	PublicKey string
	Comment   string
}

// AddTrustKey registers a trusted key (admin only) and re-evaluates
// quarantined artifacts, which the new key may now admit.
func (s *Service) AddTrustKey(ctx context.Context, p access.Principal, req AddTrustKeyRequest) (TrustKey, error) {
	if !p.Has(access.RoleAdmin) {
		return TrustKey{}, fmt.Errorf("%w: managing trust needs the admin role", errdef.ErrDenied)
	}
	if err := signing.ValidateKeyID(req.ID); err != nil {
		return TrustKey{}, fmt.Errorf("%w: %v", errdef.ErrInvalidInput, err)
	}
	k, err := signing.LoadPublicKey(req.ID, []byte(req.PublicKey))
	if err != nil {
		return TrustKey{}, fmt.Errorf("%w: %v", errdef.ErrInvalidInput, err)
	}
	if len(req.Comment) > 1024 {
		return TrustKey{}, fmt.Errorf("%w: comment longer than 1024 characters", errdef.ErrInvalidInput)
	}
	tk := TrustKey{
		ID:           req.ID,
		PublicKeyPEM: strings.TrimSpace(string(k.PEM())) + "\n",
		Algorithm:    k.Algorithm(),
		Comment:      req.Comment,
		CreatedBy:    p.Name,
		CreatedAt:    s.now(),
	}
	if err := s.store.AddTrustKey(ctx, p.Actor(), tk); err != nil {
		return TrustKey{}, err
	}
	s.log.Info("trust key added", "id", tk.ID, "algorithm", tk.Algorithm, "by", p.Name)
	s.reevaluateAfterChange(ctx, p.Actor())
	return tk, nil
}

// TrustKeys lists the registered keys. Public keys are not secret; any
// authenticated principal may read them.
func (s *Service) TrustKeys(ctx context.Context) ([]TrustKey, error) {
	return s.store.TrustKeys(ctx)
}

// RevokeTrustKey revokes a key (admin only). Evidence it verified no
// longer counts for new admissions; artifacts already admitted stay so.
func (s *Service) RevokeTrustKey(ctx context.Context, p access.Principal, id string) error {
	if !p.Has(access.RoleAdmin) {
		return fmt.Errorf("%w: managing trust needs the admin role", errdef.ErrDenied)
	}
	if err := s.store.RevokeTrustKey(ctx, p.Actor(), id); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return s.keyNotFound(ctx, id)
		}
		return err
	}
	s.log.Info("trust key revoked", "id", id, "by", p.Name)
	return nil
}

// keyNotFound is the answer for a key id that does not exist: an
// *errdef.NotFoundError suggesting the close ids of the keys that do.
func (s *Service) keyNotFound(ctx context.Context, id string) error {
	nf := &errdef.NotFoundError{What: "key", Name: id}
	keys, err := s.store.TrustKeys(ctx)
	if err != nil {
		return nf
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	nf.Suggestions = names.Suggest(id, ids)
	return nf
}

// SetTrustPolicy validates and stores a new policy version (admin only),
// then re-evaluates quarantined artifacts. The document may be JSON or
// YAML; it is stored as canonical JSON.
func (s *Service) SetTrustPolicy(ctx context.Context, p access.Principal, doc []byte) (PolicyVersion, error) {
	if !p.Has(access.RoleAdmin) {
		return PolicyVersion{}, fmt.Errorf("%w: managing trust needs the admin role", errdef.ErrDenied)
	}
	policy, err := signing.ParsePolicy(doc)
	if err != nil {
		return PolicyVersion{}, err
	}
	if err := policy.Validate(); err != nil {
		return PolicyVersion{}, err
	}
	canonical, err := json.Marshal(policy)
	if err != nil {
		return PolicyVersion{}, err
	}
	pv, err := s.store.SetTrustPolicy(ctx, p.Actor(), canonical)
	if err != nil {
		return PolicyVersion{}, err
	}
	s.log.Info("trust policy set", "version", pv.Version, "rules", len(policy.Rules), "by", p.Name)
	s.reevaluateAfterChange(ctx, p.Actor())
	return pv, nil
}

// TrustPolicy returns the current policy version; ErrNotFound if none.
func (s *Service) TrustPolicy(ctx context.Context) (PolicyVersion, error) {
	return s.store.TrustPolicy(ctx)
}

// reevaluateAfterChange re-decides quarantined artifacts after a stored
// trust change. The change itself succeeded, so a failure here is logged,
// not returned: the next evidence or trust change re-evaluates again.
func (s *Service) reevaluateAfterChange(ctx context.Context, actor access.Actor) {
	if err := s.quarantine.ReevaluateQuarantined(ctx, actor); err != nil {
		s.log.Error("re-evaluating quarantined artifacts after a trust change", "err", err)
	}
}

// Signers is what admission reads of the signers: every registered key,
// every identity with the current version of every root, and which signer
// IDs count.
type Signers struct {
	Keys       []*signing.PublicKey
	Identities []Identity
	Roots      map[string]TrustedRoot
	// Active holds every signer ID, key or identity: true for a key not
	// revoked, and for an identity neither revoked itself nor bound to a
	// revoked root. Evidence whose signer is not active does not count.
	Active map[string]bool
}

// LoadSigners reads the signers from st.
func LoadSigners(ctx context.Context, st Reader) (Signers, error) {
	rows, err := st.TrustKeys(ctx)
	if err != nil {
		return Signers{}, err
	}
	s := Signers{Keys: make([]*signing.PublicKey, 0, len(rows)), Active: make(map[string]bool, len(rows)), Roots: map[string]TrustedRoot{}}
	for _, r := range rows {
		k, err := signing.LoadPublicKey(r.ID, []byte(r.PublicKeyPEM))
		if err != nil {
			// Keys were validated when added; a bad row is corruption.
			return Signers{}, fmt.Errorf("trust key %s: %w", r.ID, err)
		}
		s.Keys = append(s.Keys, k)
		s.Active[r.ID] = r.RevokedAt == nil
	}
	roots, err := st.TrustedRoots(ctx)
	if err != nil {
		return Signers{}, err
	}
	for _, r := range roots {
		s.Roots[r.ID] = r
	}
	if s.Identities, err = st.Identities(ctx); err != nil {
		return Signers{}, err
	}
	for _, id := range s.Identities {
		r, ok := s.Roots[id.Root]
		s.Active[id.ID] = id.RevokedAt == nil && ok && r.RevokedAt == nil
	}
	return s, nil
}

// KeylessVerifier returns the verifier of keyless evidence these signers
// make: every root not revoked, and every active identity. A revoked
// root or identity is left out, so evidence only it would admit is
// refused (CertificateUntrusted, IdentityMismatch).
func (s Signers) KeylessVerifier() (*signing.KeylessVerifier, error) {
	roots := map[string]root.TrustedMaterial{}
	for id, r := range s.Roots {
		if r.RevokedAt != nil {
			continue
		}
		tr, err := r.Parse()
		if err != nil {
			// Roots were validated when installed; a bad row is corruption.
			return nil, fmt.Errorf("trusted root %s: %w", id, err)
		}
		roots[id] = tr
	}
	var ids []signing.Identity
	for _, id := range s.Identities {
		if s.Active[id.ID] {
			ids = append(ids, id.Signing())
		}
	}
	return signing.NewKeylessVerifier(roots, ids)
}

// Keys loads every registered key and the set of active signer IDs, keys
// and identities (Signers.Active).
func Keys(ctx context.Context, st Reader) ([]*signing.PublicKey, map[string]bool, error) {
	s, err := LoadSigners(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	return s.Keys, s.Active, nil
}

// CurrentPolicy returns the parsed current policy, or nil and version 0
// when none is set.
func CurrentPolicy(ctx context.Context, st Reader) (*signing.Policy, int64, error) {
	pv, err := st.TrustPolicy(ctx)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	p, err := signing.ParsePolicy(pv.Document)
	if err != nil {
		return nil, 0, fmt.Errorf("stored trust policy v%d: %w", pv.Version, err)
	}
	return p, pv.Version, nil
}
