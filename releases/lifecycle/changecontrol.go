package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// Change control: the rules an organisation's change process puts around
// releases, set by admins as one setting (ChangePolicy) — whether a plan
// needs a deployment window, the risk levels a plan may name, the pattern
// a change reference must match, and the external change system that must
// confirm a change before the plan gate passes.

// settingChangePolicy holds the admin's ChangePolicy.
const settingChangePolicy = "change.policy"

// DefaultRiskLevels are the risk levels a plan may name when the admin has
// set none.
var DefaultRiskLevels = []string{"low", "medium", "high"}

// ChangeSystemEndpoint is where the external change system is asked about
// a change, and the secret its requests are signed with ("" unsigned).
type ChangeSystemEndpoint struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// ChangePolicy is the admin's change control. The zero value restricts
// nothing but the risk (DefaultRiskLevels).
type ChangePolicy struct {
	// RequireChangeWindow: a plan without a window is refused, and a
	// release stored without one deploys only under an emergency change.
	// False: a release without a window deploys at any time.
	RequireChangeWindow bool `json:"require_change_window"`
	// RiskLevels a plan's risk must be one of; empty: DefaultRiskLevels.
	RiskLevels []string `json:"risk_levels,omitempty"`
	// ChangeRefPattern is a Go regular expression every change reference
	// must match, anchored as written ("" accepts any).
	ChangeRefPattern string `json:"change_ref_pattern,omitempty"`
	// ChangeSystem, when set, must answer "approved" for a release's
	// change before its plan gate can pass.
	ChangeSystem *ChangeSystemEndpoint `json:"change_system,omitempty"`
}

// Risks are the risk levels in force.
func (c ChangePolicy) Risks() []string {
	if len(c.RiskLevels) == 0 {
		return slices.Clone(DefaultRiskLevels)
	}
	return slices.Clone(c.RiskLevels)
}

// ChangePolicyUpdate changes the policy: what is nil stays as it is.
// RiskLevels set to an empty list goes back to DefaultRiskLevels; a
// ChangeSystem with an empty URL removes the change system.
type ChangePolicyUpdate struct {
	RequireChangeWindow *bool
	RiskLevels          *[]string
	ChangeRefPattern    *string
	ChangeSystem        *ChangeSystemEndpoint
}

// Change-control errors.
var (
	// ErrOutsideChangeWindow: a deployment was asked for outside the
	// release's window, without an emergency change in force.
	ErrOutsideChangeWindow = errors.New("outside the change window")
	// ErrChangeRefInvalid: a change reference does not match the admin's
	// pattern.
	ErrChangeRefInvalid = errors.New("change reference invalid")
	// ErrRiskInvalid: a plan names a risk that is not one of the levels.
	ErrRiskInvalid = errors.New("risk invalid")
	// ErrChangeNotApproved: the external change system did not answer
	// "approved" for the approval that would pass the plan gate.
	ErrChangeNotApproved = errors.New("change not approved by the change system")
)

// OutsideWindowError says which window a deployment missed, and when it
// was asked for. Window is nil for a release without one when windows
// are required.
type OutsideWindowError struct {
	Release string
	Window  *Window
	Now     time.Time
}

func (e *OutsideWindowError) Error() string {
	if e.Window == nil {
		return fmt.Sprintf("release %s has no change window and the admin requires one (now %s); record an emergency change to deploy",
			e.Release, e.Now.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("release %s may deploy from %s until %s; now is %s; record an emergency change to deploy outside the window",
		e.Release, e.Window.Start.UTC().Format(time.RFC3339), e.Window.End.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrOutsideChangeWindow) true.
func (e *OutsideWindowError) Unwrap() error { return ErrOutsideChangeWindow }

// ChangeRefError names the pattern a change reference missed.
type ChangeRefError struct {
	ChangeRef, Pattern string
}

func (e *ChangeRefError) Error() string {
	return fmt.Sprintf("change reference %q does not match the required pattern %s", e.ChangeRef, e.Pattern)
}

// Unwrap makes errors.Is(err, ErrChangeRefInvalid) true.
func (e *ChangeRefError) Unwrap() error { return ErrChangeRefInvalid }

// RiskError lists the risk levels a plan may name.
type RiskError struct {
	Risk    string
	Allowed []string
}

func (e *RiskError) Error() string {
	return fmt.Sprintf("risk %q is not one of %s", e.Risk, strings.Join(e.Allowed, ", "))
}

// Unwrap makes errors.Is(err, ErrRiskInvalid) true.
func (e *RiskError) Unwrap() error { return ErrRiskInvalid }

// ChangeNotApprovedError carries the change system's answer: its status
// ("pending", "rejected", or "error" when it did not answer) and message.
type ChangeNotApprovedError struct {
	ChangeRef, Status, Message string
}

func (e *ChangeNotApprovedError) Error() string {
	msg := fmt.Sprintf("the change system answered %q for change %s; the plan gate cannot pass", e.Status, e.ChangeRef)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrChangeNotApproved) true.
func (e *ChangeNotApprovedError) Unwrap() error { return ErrChangeNotApproved }

// ChangeCheck is what the change system is asked about: the change a
// release's plan names, and what the plan gate would authorise.
type ChangeCheck struct {
	ChangeRef  string        `json:"changeRef"`
	Release    string        `json:"release"`
	PlanDigest digest.Digest `json:"planDigest"`
	Risk       string        `json:"risk"`
	Window     *Window       `json:"window"`
}

// ChangeAnswer is the change system's answer. Only Status "approved" lets
// the plan gate pass.
type ChangeAnswer struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// ChangeApproved is the one status that lets the plan gate pass.
const ChangeApproved = "approved"

// ChangeSystem is the port to an external change-management system
// (ITSM). Check asks it whether the change of a release is approved; an
// error is a change system that did not answer (unreachable, too slow, an
// answer that is not one), which approves nothing.
type ChangeSystem interface {
	Check(ctx context.Context, at ChangeSystemEndpoint, c ChangeCheck) (ChangeAnswer, error)
}

// changePolicy reads the policy through r; never set is the zero policy.
func changePolicy(ctx context.Context, r settingReader) (ChangePolicy, Setting, error) {
	st, err := r.Setting(ctx, settingChangePolicy)
	if errors.Is(err, errdef.ErrNotFound) {
		return ChangePolicy{}, Setting{Key: settingChangePolicy}, nil
	}
	if err != nil {
		return ChangePolicy{}, Setting{}, err
	}
	var c ChangePolicy
	if err := json.Unmarshal(st.Value, &c); err != nil {
		return ChangePolicy{}, Setting{}, fmt.Errorf("stored change policy: %w", err)
	}
	return c, st, nil
}

// ChangePolicy returns the admin's change control and when it was set.
func (s *Service) ChangePolicy(ctx context.Context) (ChangePolicy, Setting, error) {
	return changePolicy(ctx, s.store)
}

// maxRiskLevels and maxPatternLen bound the policy.
const (
	maxRiskLevels = 32
	maxPatternLen = 1024
)

// SetChangePolicy changes the admin's change control (admins). It applies
// to plans made afterwards and to every deployment and plan approval from
// then on; plans already stored are not re-checked for their risk or
// change reference.
func (s *Service) SetChangePolicy(ctx context.Context, p access.Principal, upd ChangePolicyUpdate) (ChangePolicy, Setting, error) {
	if err := access.Require(p, "setting the change policy", access.RoleAdmin); err != nil {
		return ChangePolicy{}, Setting{}, err
	}
	if err := validatePolicyUpdate(upd); err != nil {
		return ChangePolicy{}, Setting{}, err
	}
	var out ChangePolicy
	st, err := s.store.ModifySetting(ctx, p.Actor(), settingChangePolicy, func(cur Setting, found bool) (json.RawMessage, error) {
		var c ChangePolicy
		if found {
			if err := json.Unmarshal(cur.Value, &c); err != nil {
				return nil, fmt.Errorf("stored change policy: %w", err)
			}
		}
		if upd.RequireChangeWindow != nil {
			c.RequireChangeWindow = *upd.RequireChangeWindow
		}
		if upd.RiskLevels != nil {
			c.RiskLevels = slices.Clone(*upd.RiskLevels)
			if len(c.RiskLevels) == 0 {
				c.RiskLevels = nil
			}
		}
		if upd.ChangeRefPattern != nil {
			c.ChangeRefPattern = *upd.ChangeRefPattern
		}
		if upd.ChangeSystem != nil {
			c.ChangeSystem = upd.ChangeSystem
			if upd.ChangeSystem.URL == "" {
				c.ChangeSystem = nil
			}
		}
		out = c
		return json.Marshal(c)
	})
	if err != nil {
		return ChangePolicy{}, Setting{}, err
	}
	return out, st, nil
}

func validatePolicyUpdate(upd ChangePolicyUpdate) error {
	if upd.RiskLevels != nil {
		levels := *upd.RiskLevels
		if len(levels) > maxRiskLevels {
			return fmt.Errorf("%w: at most %d risk levels", errdef.ErrInvalidInput, maxRiskLevels)
		}
		for i, l := range levels {
			if l == "" || strings.TrimSpace(l) != l || len(l) > 64 || strings.ContainsFunc(l, isControl) {
				return fmt.Errorf("%w: risk level %q must be a non-empty word without surrounding spaces (at most 64 bytes)", errdef.ErrInvalidInput, l)
			}
			if slices.Contains(levels[:i], l) {
				return fmt.Errorf("%w: risk level %q listed twice", errdef.ErrInvalidInput, l)
			}
		}
	}
	if upd.ChangeRefPattern != nil && *upd.ChangeRefPattern != "" {
		if len(*upd.ChangeRefPattern) > maxPatternLen {
			return fmt.Errorf("%w: change_ref_pattern longer than %d bytes", errdef.ErrInvalidInput, maxPatternLen)
		}
		if _, err := regexp.Compile(*upd.ChangeRefPattern); err != nil {
			return fmt.Errorf("%w: change_ref_pattern is not a Go regular expression: %v", errdef.ErrInvalidInput, err)
		}
	}
	if upd.ChangeSystem != nil && upd.ChangeSystem.URL != "" {
		if err := validateChangeSystemURL(upd.ChangeSystem.URL); err != nil {
			return err
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validateChangeSystemURL accepts https, and http only to a loopback
// address: the request carries the change and, signed, proves the DML
// asked; in clear text over a network anyone on the path could read or
// answer it.
func validateChangeSystemURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: change_system url %q must be an absolute https URL without credentials", errdef.ErrInvalidInput, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("%w: change_system url %q must be https (http only to a loopback address)", errdef.ErrInvalidInput, raw)
}

// checkPlanPolicy refuses a plan that breaks the policy: a change
// reference that misses the pattern, a risk outside the levels (an empty
// risk is "not assessed yet" and passes), a missing window when windows
// are required.
func checkPlanPolicy(c ChangePolicy, p Plan) error {
	if c.ChangeRefPattern != "" {
		re, err := regexp.Compile(c.ChangeRefPattern)
		if err != nil {
			return fmt.Errorf("stored change_ref_pattern: %w", err)
		}
		if !re.MatchString(p.ChangeRef) {
			return &ChangeRefError{ChangeRef: p.ChangeRef, Pattern: c.ChangeRefPattern}
		}
	}
	if p.Risk != "" && !slices.Contains(c.Risks(), p.Risk) {
		return &RiskError{Risk: p.Risk, Allowed: c.Risks()}
	}
	if c.RequireChangeWindow && p.Window == nil {
		return fmt.Errorf("%w: the admin requires every plan to have a change window (start and end)", errdef.ErrInvalidInput)
	}
	return nil
}

// InWindow reports whether now is inside w: from its start (included)
// until its end (excluded).
func (w Window) InWindow(now time.Time) bool {
	return !now.Before(w.Start) && now.Before(w.End)
}

// checkWindow refuses a deployment of r at now outside its window, unless
// an authorised emergency change of r is in force. It returns whether the
// deployment goes under the emergency change.
func checkWindow(c ChangePolicy, r Release, now time.Time) (emergency bool, err error) {
	w := r.Plan.Window
	switch {
	case w != nil && w.InWindow(now):
		return false, nil
	case w == nil && !c.RequireChangeWindow:
		return false, nil
	case r.EmergencyInForce(now):
		return true, nil
	}
	return false, &OutsideWindowError{Release: r.Name, Window: w, Now: now}
}

// changeConfirmation is what the change system answered, before its
// transaction, for a plan approval that may pass the plan gate.
type changeConfirmation struct {
	asked      bool
	url        string
	planDigest digest.Digest
	answer     map[string]any
}

// confirmChangeAhead asks the change system, when the admin configured
// one, about the change of the plan that approval req of p would pass:
// only when req is an approval of the plan gate that can count and would
// complete its quorum as the release stands. A change system that does not
// answer "approved" refuses the approval (ChangeNotApprovedError). What is
// otherwise wrong with the approval is left to the change itself.
func (s *Service) confirmChangeAhead(ctx context.Context, p access.Principal, name string, req ApprovalRequest) (changeConfirmation, error) {
	var none changeConfirmation
	if req.Gate != GatePlan || req.Decision != DecisionApprove {
		return none, nil
	}
	policy, _, err := changePolicy(ctx, s.store)
	if err != nil || policy.ChangeSystem == nil {
		return none, err
	}
	r, err := s.store.GetRelease(ctx, name)
	if err != nil || r.State != ReleasePlanning || req.Digest != r.PlanDigest || SeparationOfDuties(r, p, GatePlan) != nil {
		return none, nil // the change itself reports what is wrong
	}
	approvers := approversOf(r, GatePlan, r.PlanDigest)
	if slices.Contains(approvers, p.Name) || len(approvers)+1 < required(r, GatePlan) {
		return none, nil // changes nothing, or does not pass the gate
	}
	check := ChangeCheck{ChangeRef: r.Plan.ChangeRef, Release: r.Name, PlanDigest: r.PlanDigest, Risk: r.Plan.Risk, Window: r.Plan.Window}
	refuse := func(status, msg string) (changeConfirmation, error) {
		return none, &ChangeNotApprovedError{ChangeRef: check.ChangeRef, Status: status, Message: msg}
	}
	if s.changes == nil {
		return refuse("error", "this server has no client for the change system")
	}
	ans, err := s.changes.Check(ctx, *policy.ChangeSystem, check)
	switch {
	case err != nil:
		s.log.Warn("change system did not answer", "release", r.Name, "changeRef", check.ChangeRef, "err", err)
		return refuse("error", err.Error())
	case ans.Status != ChangeApproved:
		return refuse(ans.Status, ans.Message)
	}
	return changeConfirmation{
		asked: true, url: policy.ChangeSystem.URL, planDigest: r.PlanDigest,
		answer: map[string]any{"url": policy.ChangeSystem.URL, "status": ans.Status, "message": ans.Message},
	}, nil
}

// passes decides, inside the transaction, whether the approval that
// completes the plan gate of r (for planDigest) may pass it under the
// policy as committed: without a change system, always; with one, only if
// it was asked about this very plan and answered "approved". An approval
// that did not expect to complete the quorum, because another came in
// meanwhile, was not confirmed and is refused: deciding again asks.
func (c changeConfirmation) passes(ctx context.Context, tx ReleaseTx, r Release, planDigest digest.Digest) error {
	policy, _, err := changePolicy(ctx, tx)
	if err != nil || policy.ChangeSystem == nil {
		return err
	}
	if !c.asked || c.planDigest != planDigest || c.url != policy.ChangeSystem.URL {
		return &ChangeNotApprovedError{ChangeRef: r.Plan.ChangeRef, Status: "not asked",
			Message: "the release or the change system changed while this approval was on its way; decide again"}
	}
	return nil
}
