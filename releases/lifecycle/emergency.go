package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// An emergency change lets a release deploy outside its change window:
// a release manager asks for it with a reason and an end (Until), which
// opens the release's "emergency" gate. The gate needs its own quorum
// (the admin's default for "emergency", 2 when unset), binds approvals
// to the digest of the request (a new request makes older approvals
// stale) and keeps separation of duties: neither the release's creator,
// the publishers of its artifacts nor the requester decide it. Once the
// gate is authorised, deployments outside the window are recorded until
// Until, each marked as an emergency deployment.

// GateEmergency is the gate an emergency change opens.
const GateEmergency = "emergency"

// PartEmergency is the emergency request, approved by GateEmergency.
const PartEmergency = "emergency"

// Emergency event actions.
const (
	ActionEmergencyRequested = "release.emergency.requested"
	ActionEmergencyApproved  = "release.emergency.approved"
	ActionEmergencyRejected  = "release.emergency.rejected"
)

// Emergency default and bounds.
const (
	// defaultEmergencyApprovals is the emergency gate's quorum when the
	// admin set no default for it.
	defaultEmergencyApprovals = 2
	// DefaultEmergencyDuration is how long an emergency change lasts when
	// its request names no end; MaxEmergencyDuration bounds any.
	DefaultEmergencyDuration = 24 * time.Hour
	MaxEmergencyDuration     = 72 * time.Hour
)

// Emergency status.
const (
	EmergencyRequested  = "requested"
	EmergencyAuthorized = "authorized"
	EmergencyRejected   = "rejected"
)

// Emergency is a release's emergency change: the request, and where its
// gate stands. A release keeps its latest one; earlier ones stay in the
// audit log and in the (discarded) approvals.
type Emergency struct {
	Reason      string    `json:"reason"`
	Until       time.Time `json:"until"`
	RequestedBy string    `json:"requestedBy"`
	TokenID     string    `json:"tokenId"`
	RequestedAt time.Time `json:"requestedAt"`
	// Digest is the digest of the request (EmergencyDigest): what the
	// emergency gate's approvals bind to.
	Digest digest.Digest `json:"digest"`
	// Status is requested, authorized or rejected.
	Status       string     `json:"status"`
	AuthorizedAt *time.Time `json:"authorizedAt,omitempty"`
}

// EmergencyRequest asks for an emergency change; a zero Until is
// DefaultEmergencyDuration from now.
type EmergencyRequest struct {
	Reason string
	Until  time.Time
}

// emergencyDocument is what the emergency gate approves: the request, and
// what it would let deploy (the sealed release).
type emergencyDocument struct {
	Release        string        `json:"release"`
	ManifestDigest digest.Digest `json:"manifestDigest"`
	Reason         string        `json:"reason"`
	Until          time.Time     `json:"until"`
	RequestedBy    string        `json:"requestedBy"`
	RequestedAt    time.Time     `json:"requestedAt"`
}

// EmergencyDigest is the digest of the emergency request em of release r.
func EmergencyDigest(r Release, em Emergency) digest.Digest {
	d, _, _ := canonicalDigest(emergencyDocument{
		Release: r.Name, ManifestDigest: r.ManifestDigest, Reason: em.Reason,
		Until: em.Until.UTC(), RequestedBy: em.RequestedBy, RequestedAt: em.RequestedAt.UTC(),
	})
	return d
}

// EmergencyInForce reports whether an authorised emergency change lets r
// deploy outside its window at now.
func (r Release) EmergencyInForce(now time.Time) bool {
	em := r.Emergency
	return em != nil && em.Status == EmergencyAuthorized && now.Before(em.Until) &&
		authorized(r, GateEmergency, em.Digest)
}

// emergencyOpen reports whether the emergency gate can be decided now.
func emergencyOpen(r Release, now time.Time) bool {
	em := r.Emergency
	return em != nil && em.Status == EmergencyRequested && now.Before(em.Until) &&
		(r.State == ReleaseReleased || r.State == ReleaseDeploying)
}

// RequestEmergency records an emergency change on a sealed release that is
// not yet deployed everywhere (release managers). It replaces an earlier
// emergency change of the release: approvals of that one no longer count.
func (s *Service) RequestEmergency(ctx context.Context, p access.Principal, name string, req EmergencyRequest) (Release, error) {
	if err := access.Require(p, "requesting an emergency change", access.RoleReleaseManager); err != nil {
		return Release{}, err
	}
	reason := strings.TrimSpace(req.Reason)
	switch {
	case reason == "":
		return Release{}, fmt.Errorf("%w: an emergency change needs a reason", errdef.ErrInvalidInput)
	case len(reason) > 4096:
		return Release{}, fmt.Errorf("%w: reason longer than 4096 bytes", errdef.ErrInvalidInput)
	}
	return s.change(ctx, p, name, func(tx ReleaseTx, r *Release) (ReleaseChange, error) {
		if r.State != ReleaseReleased && r.State != ReleaseDeploying {
			return ReleaseChange{}, invalidState(*r, "emergency")
		}
		now := s.now()
		until := req.Until
		if until.IsZero() {
			until = now.Add(DefaultEmergencyDuration)
		}
		if !until.After(now) || until.Sub(now) > MaxEmergencyDuration {
			return ReleaseChange{}, fmt.Errorf("%w: until must be after now (%s) and at most %s later (%s is not)",
				errdef.ErrInvalidInput, now.UTC().Format(time.RFC3339), MaxEmergencyDuration, until.UTC().Format(time.RFC3339))
		}
		defaults, _, err := gateDefaults(ctx, tx)
		if err != nil {
			return ReleaseChange{}, err
		}
		em := Emergency{Reason: reason, Until: until.UTC(), RequestedBy: p.Name, TokenID: p.TokenID, RequestedAt: now, Status: EmergencyRequested}
		em.Digest = EmergencyDigest(*r, em)
		discarded := 0
		for i := range r.Approvals {
			if r.Approvals[i].Gate == GateEmergency && !r.Approvals[i].Discarded {
				r.Approvals[i].Discarded = true
				discarded++
			}
		}
		if r.Gates == nil {
			r.Gates = map[string]int{}
		}
		// Like every gate's, the quorum only ever rises.
		r.Gates[GateEmergency] = max(r.Gates[GateEmergency], quorumFloor(defaults, GateEmergency))
		r.Emergency = &em
		r.Edits = append(r.Edits, edit(PartEmergency, em.Digest, p, now))
		return change(ActionEmergencyRequested, map[string]any{
			"emergency": true, "reason": em.Reason, "until": em.Until, "digest": em.Digest,
			"required": r.Gates[GateEmergency], "discardedApprovals": discarded, "state": r.State,
		})
	})
}

// decideEmergency finishes a decision on the emergency gate that Decide
// checked (open gate, separation of duties, digest): it records ap and
// returns the change.
func decideEmergency(r *Release, ap Approval, now time.Time) (ReleaseChange, error) {
	em := r.Emergency
	det := map[string]any{
		"emergency": true, "gate": GateEmergency, "decision": ap.Decision, "digest": ap.Digest,
		"comment": ap.Comment, "reason": em.Reason, "until": em.Until,
	}
	if ap.Decision == DecisionReject {
		for i := range r.Approvals {
			if r.Approvals[i].Gate == GateEmergency && !r.Approvals[i].Discarded {
				r.Approvals[i].Discarded = true
			}
		}
		ap.Discarded = true
		r.Approvals = append(r.Approvals, ap)
		r.LastRejection = &ap
		em.Status = EmergencyRejected
		return change(ActionEmergencyRejected, det)
	}
	if slices.Contains(approversOf(*r, GateEmergency, em.Digest), ap.By) {
		return ReleaseChange{}, nil // one principal counts once
	}
	r.Approvals = append(r.Approvals, ap)
	det["authorized"] = authorized(*r, GateEmergency, em.Digest)
	if det["authorized"] == true {
		em.Status, em.AuthorizedAt = EmergencyAuthorized, &now
	}
	return change(ActionEmergencyApproved, det)
}
