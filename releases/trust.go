package releases

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dmlproject/dml/signing"
)

// ErrPolicyInvalid refuses a trust policy document that does not validate.
var ErrPolicyInvalid = signing.ErrInvalidPolicy

// AddTrustKeyRequest registers a public key.
type AddTrustKeyRequest struct {
	ID        string `json:"id"`
	PublicKey string `json:"publicKey"`
	Comment   string `json:"comment"`
}

// AddTrustKey registers a trusted key (admin only) and re-evaluates
// quarantined artifacts, which the new key may now admit.
func (s *Service) AddTrustKey(ctx context.Context, p Principal, req AddTrustKeyRequest) (TrustKey, error) {
	if !p.Has(RoleAdmin) {
		return TrustKey{}, fmt.Errorf("%w: managing trust needs the admin role", ErrDenied)
	}
	if err := signing.ValidateKeyID(req.ID); err != nil {
		return TrustKey{}, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	k, err := signing.LoadPublicKey(req.ID, []byte(req.PublicKey))
	if err != nil {
		return TrustKey{}, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	if len(req.Comment) > 1024 {
		return TrustKey{}, fmt.Errorf("%w: comment longer than 1024 characters", ErrInvalidInput)
	}
	tk := TrustKey{
		ID:           req.ID,
		PublicKeyPEM: strings.TrimSpace(string(k.PEM())) + "\n",
		Algorithm:    k.Algorithm(),
		Comment:      req.Comment,
		CreatedBy:    p.Name,
		CreatedAt:    s.now(),
	}
	if err := s.meta.AddTrustKey(ctx, p.Actor(), tk); err != nil {
		return TrustKey{}, err
	}
	s.log.Info("trust key added", "id", tk.ID, "algorithm", tk.Algorithm, "by", p.Name)
	s.reevaluateAfterChange(ctx, p.Actor())
	return tk, nil
}

// TrustKeys lists the registered keys. Public keys are not secret; any
// authenticated principal may read them.
func (s *Service) TrustKeys(ctx context.Context) ([]TrustKey, error) {
	return s.meta.TrustKeys(ctx)
}

// RevokeTrustKey revokes a key (admin only). Evidence it verified no
// longer counts for new admissions; artifacts already admitted stay so.
func (s *Service) RevokeTrustKey(ctx context.Context, p Principal, id string) error {
	if !p.Has(RoleAdmin) {
		return fmt.Errorf("%w: managing trust needs the admin role", ErrDenied)
	}
	if err := s.meta.RevokeTrustKey(ctx, p.Actor(), id); err != nil {
		return err
	}
	s.log.Info("trust key revoked", "id", id, "by", p.Name)
	return nil
}

// SetTrustPolicy validates and stores a new policy version (admin only),
// then re-evaluates quarantined artifacts. The document may be JSON or
// YAML; it is stored as canonical JSON.
func (s *Service) SetTrustPolicy(ctx context.Context, p Principal, doc []byte) (PolicyVersion, error) {
	if !p.Has(RoleAdmin) {
		return PolicyVersion{}, fmt.Errorf("%w: managing trust needs the admin role", ErrDenied)
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
	pv, err := s.meta.SetTrustPolicy(ctx, p.Actor(), canonical)
	if err != nil {
		return PolicyVersion{}, err
	}
	s.log.Info("trust policy set", "version", pv.Version, "rules", len(policy.Rules), "by", p.Name)
	s.reevaluateAfterChange(ctx, p.Actor())
	return pv, nil
}

// TrustPolicy returns the current policy version; ErrNotFound if none.
func (s *Service) TrustPolicy(ctx context.Context) (PolicyVersion, error) {
	return s.meta.TrustPolicy(ctx)
}

// reevaluateAfterChange re-decides quarantined artifacts after a stored
// trust change. The change itself succeeded, so a failure here is logged,
// not returned: the next evidence or trust change re-evaluates again.
func (s *Service) reevaluateAfterChange(ctx context.Context, actor Actor) {
	if err := s.reevaluateQuarantined(ctx, actor); err != nil {
		s.log.Error("re-evaluating quarantined artifacts after a trust change", "err", err)
	}
}
