package lifecycle

import (
	"context"
	"time"
)

// OpenGate is a gate waiting for a decision, and since when it waits.
type OpenGate struct {
	Release string
	Gate    string
	Since   time.Time
}

// gateHoldingStates are the states in which a release has open gates
// (openGates).
var gateHoldingStates = []ReleaseState{ReleasePlanning, ReleaseBuilding, ReleaseReleased, ReleaseDeploying, ReleaseReview}

// OpenGates lists every gate of every release that waits for a decision,
// for monitoring (how many wait, and the oldest).
func (s *Service) OpenGates(ctx context.Context) ([]OpenGate, error) {
	var out []OpenGate
	for _, st := range gateHoldingStates {
		cursor := ""
		for {
			page, next, err := s.store.ListReleases(ctx, ReleaseFilter{State: st, Cursor: cursor})
			if err != nil {
				return nil, err
			}
			for _, r := range page {
				for _, g := range openGates(r) {
					out = append(out, OpenGate{Release: r.Name, Gate: g, Since: gateOpenedAt(r, g)})
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return out, nil
}

// gateOpenedAt is when gate g of r, open now, began to wait: the plan
// gate at the release's creation, the build gate when the plan gate
// passed, the deploy gates at the seal, the emergency gate at its
// request, the close gate when the review was filed — or, when a
// rejection sent the release back to the phase the gate leaves, at that
// rejection.
func gateOpenedAt(r Release, g string) time.Time {
	since := r.CreatedAt
	later := func(t time.Time) {
		if t.After(since) {
			since = t
		}
	}
	switch {
	case g == GatePlan:
	case g == GateBuild:
		for _, a := range r.Approvals {
			if a.Gate == GatePlan && !a.Discarded {
				later(a.At)
			}
		}
	case g == GateEmergency && r.Emergency != nil:
		return r.Emergency.RequestedAt
	case g == GateClose && r.Review != nil:
		later(r.Review.At)
	default: // deploy:ENV
		if r.SealedAt != nil {
			later(*r.SealedAt)
		}
	}
	if l := r.LastRejection; l != nil && l.Gate == g {
		later(l.At)
	}
	return since
}
