package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
)

// settingGateDefaults holds the admin's default gate quorums.
const settingGateDefaults = "gates.defaults"

// gateAllDeploys in the defaults applies to every deploy gate without a
// default of its own.
const gateAllDeploys = "deploy:*"

// GateDefaults returns the admin's default quorums by gate ("plan",
// "build", "close", "deploy:ENV", or "deploy:*" for every environment).
func (s *Service) GateDefaults(ctx context.Context) (map[string]GateSetting, Setting, error) {
	return gateDefaults(ctx, s.store)
}

// settingReader reads settings: the store, or a change's transaction.
type settingReader interface {
	Setting(ctx context.Context, key string) (Setting, error)
}

// gateDefaults reads the default quorums through r.
func gateDefaults(ctx context.Context, r settingReader) (map[string]GateSetting, Setting, error) {
	st, err := r.Setting(ctx, settingGateDefaults)
	if errors.Is(err, errdef.ErrNotFound) {
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

// SetGateDefaults replaces the default quorums (admins). They are floors
// for the gates of new releases and for the deploy gates that a new plan
// adds to an existing release; gates a release already has keep their
// quorums.
func (s *Service) SetGateDefaults(ctx context.Context, p access.Principal, defaults map[string]GateSetting) (Setting, error) {
	if err := access.Require(p, "setting gate defaults", access.RoleAdmin); err != nil {
		return Setting{}, err
	}
	for g, set := range defaults {
		switch {
		case g == GatePlan || g == GateBuild || g == GateClose || g == GateEmergency || g == gateAllDeploys:
		case strings.HasPrefix(g, gateDeployPrefix):
			if err := names.ValidateEnvironment(strings.TrimPrefix(g, gateDeployPrefix)); err != nil {
				return Setting{}, err
			}
		default:
			return Setting{}, fmt.Errorf("%w: unknown gate %q (plan, build, close, emergency, deploy:ENV or deploy:*)", errdef.ErrInvalidInput, g)
		}
		if set.Approvals < 1 || set.Approvals > maxApprovals {
			return Setting{}, fmt.Errorf("%w: gate %s needs between 1 and %d approvals", errdef.ErrInvalidInput, g, maxApprovals)
		}
	}
	if defaults == nil {
		defaults = map[string]GateSetting{}
	}
	b, err := json.Marshal(defaults)
	if err != nil {
		return Setting{}, err
	}
	return s.store.SetSetting(ctx, p.Actor(), settingGateDefaults, b)
}

// quorumFloor is the fewest approvals gate may need: the admin's default
// for it, for a deploy gate without one of its own the deploy:* default,
// for the emergency gate 2 (an emergency bypasses the window, so it needs
// more than one person), and otherwise 1.
func quorumFloor(defaults map[string]GateSetting, gate string) int {
	if d, ok := defaults[gate]; ok {
		return d.Approvals
	}
	if d, ok := defaults[gateAllDeploys]; ok && strings.HasPrefix(gate, gateDeployPrefix) {
		return d.Approvals
	}
	if gate == GateEmergency {
		return defaultEmergencyApprovals
	}
	return 1
}

// gateQuorums is the quorum of every gate of a new release with plan:
// what the release asks for, but never less than the admin's default. The
// defaults are floors a release manager cannot lower, so asking for less
// is refused (ErrQuorumTooLow) rather than silently raised: the request
// names a number, and the release would otherwise not be what was asked.
func gateQuorums(plan Plan, requested, defaults map[string]GateSetting) (map[string]int, error) {
	gates := planGates(plan)
	for g, set := range requested {
		if !slices.Contains(gates, g) {
			return nil, fmt.Errorf("%w: unknown gate %q (gates: plan, build, deploy:ENV for each environment, close)", errdef.ErrInvalidInput, g)
		}
		if set.Approvals < 1 || set.Approvals > maxApprovals {
			return nil, fmt.Errorf("%w: gate %s needs between 1 and %d approvals", errdef.ErrInvalidInput, g, maxApprovals)
		}
		if floor := quorumFloor(defaults, g); set.Approvals < floor {
			return nil, fmt.Errorf("%w: gate %s asks for %d approvals; the admin's default, a minimum, is %d", ErrQuorumTooLow, g, set.Approvals, floor)
		}
	}
	out := make(map[string]int, len(gates))
	for _, g := range gates {
		out[g] = max(quorumFloor(defaults, g), requested[g].Approvals)
	}
	return out, nil
}
