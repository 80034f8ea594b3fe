package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// settingGateDefaults holds the admin's default gate quorums.
const settingGateDefaults = "gates.defaults"

// gateAllDeploys in the defaults applies to every deploy gate without a
// default of its own.
const gateAllDeploys = "deploy:*"

// GateDefaults returns the admin's default quorums by gate ("plan",
// "build", "close", "deploy:ENV", or "deploy:*" for every environment).
func (s *Service) GateDefaults(ctx context.Context) (map[string]GateSetting, Setting, error) {
	st, err := s.meta.Setting(ctx, settingGateDefaults)
	if errors.Is(err, ErrNotFound) {
		return map[string]GateSetting{}, Setting{Key: settingGateDefaults}, nil
	}
	if err != nil {
		return nil, Setting{}, err
	}
	out := map[string]GateSetting{}
	if err := json.Unmarshal(st.Value, &out); err != nil {
		return nil, Setting{}, fmt.Errorf("stored gate defaults: %w", err)
	}
	return out, st, nil
}

// SetGateDefaults replaces the default quorums (admins). Releases keep the
// quorums they were created with; the defaults apply to new releases.
func (s *Service) SetGateDefaults(ctx context.Context, p Principal, defaults map[string]GateSetting) (Setting, error) {
	if !p.Has(RoleAdmin) {
		return Setting{}, fmt.Errorf("%w: setting gate defaults needs the admin role", ErrDenied)
	}
	for g, set := range defaults {
		switch {
		case g == GatePlan || g == GateBuild || g == GateClose || g == gateAllDeploys:
		case strings.HasPrefix(g, gateDeployPrefix):
			if err := ValidateEnvironment(strings.TrimPrefix(g, gateDeployPrefix)); err != nil {
				return Setting{}, err
			}
		default:
			return Setting{}, fmt.Errorf("%w: unknown gate %q (plan, build, close, deploy:ENV or deploy:*)", ErrInvalidInput, g)
		}
		if set.Approvals < 1 || set.Approvals > maxApprovals {
			return Setting{}, fmt.Errorf("%w: gate %s needs between 1 and %d approvals", ErrInvalidInput, g, maxApprovals)
		}
	}
	if defaults == nil {
		defaults = map[string]GateSetting{}
	}
	b, err := json.Marshal(defaults)
	if err != nil {
		return Setting{}, err
	}
	return s.meta.SetSetting(ctx, p.Actor(), settingGateDefaults, b)
}

// applyGateDefaults fills the quorum of every gate of plan that the
// release did not set, from the admin's defaults.
func (s *Service) applyGateDefaults(ctx context.Context, plan Plan, gates map[string]int) error {
	defaults, _, err := s.GateDefaults(ctx)
	if err != nil {
		return err
	}
	all := []string{GatePlan, GateBuild, GateClose}
	for _, e := range plan.Environments {
		all = append(all, DeployGate(e))
	}
	for _, g := range all {
		if _, set := gates[g]; set {
			continue
		}
		if d, ok := defaults[g]; ok {
			gates[g] = d.Approvals
		} else if d, ok := defaults[gateAllDeploys]; ok && strings.HasPrefix(g, gateDeployPrefix) {
			gates[g] = d.Approvals
		}
	}
	return nil
}
