package lifecycle

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
)

// Release-management errors.
var (
	ErrInvalidState         = errors.New("invalid state")
	ErrStaleApproval        = errors.New("stale approval")
	ErrSeparationOfDuties   = errors.New("separation of duties")
	ErrBuildBlocked         = errors.New("build gate blocked")
	ErrDeploymentOutOfOrder = errors.New("deployment out of order")
	// ErrQuorumTooLow: a release asked for fewer approvals than the
	// admin's default for the gate, which is a floor.
	ErrQuorumTooLow = errors.New("quorum below the default")
)

// InvalidStateError says which state a release is in and what it allows.
type InvalidStateError struct {
	Release string
	State   ReleaseState
	Action  string
	Allowed []string
}

func (e *InvalidStateError) Error() string {
	return fmt.Sprintf("release %s is %s: %s is not allowed (allowed: %s)", e.Release, e.State, e.Action, strings.Join(e.Allowed, ", "))
}

// Unwrap makes errors.Is(err, ErrInvalidState) true.
func (e *InvalidStateError) Unwrap() error { return ErrInvalidState }

// Errors of planning and cancelling.
var (
	// ErrArtifactRejected refuses a rejected artifact where a release
	// would include it: it will never be admitted, so it can never pass
	// the build gate.
	ErrArtifactRejected = errors.New("artifact rejected")
	// ErrReasonRequired refuses a cancellation that does not say why.
	ErrReasonRequired = fmt.Errorf("%w: reason required", errdef.ErrInvalidInput)
)

// ArtifactRefusedError refuses an artifact a release names, at once,
// because it cannot ever pass the build gate: it was rejected
// (ErrArtifactRejected) or retired (catalog.ErrArtifactRetired).
type ArtifactRefusedError struct {
	Name, Version string
	// State is "rejected" or "retired".
	State string
	// Reason is why it was rejected, when it was.
	Reason string
	kind   error
}

func (e *ArtifactRefusedError) Error() string {
	msg := fmt.Sprintf("%s:%s is %s", e.Name, e.Version, e.State)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg + " and cannot join a release"
}

// Unwrap makes errors.Is(err, ErrArtifactRejected) or
// errors.Is(err, catalog.ErrArtifactRetired) true.
func (e *ArtifactRefusedError) Unwrap() error { return e.kind }

// ArtifactStatus is where an artifact of a release stands when it is not
// admitted: its state ("quarantined", "rejected", "retired", or "changed"
// when its version now names other bytes) and what it still lacks.
type ArtifactStatus struct {
	Name, Version string
	State         catalog.ArtifactState
	// Unmet lists what the trust policy still needs of a quarantined
	// artifact; Reason says why a rejected one was rejected.
	Unmet  []string
	Reason string
}

// Message says it in a sentence.
func (a ArtifactStatus) Message() string {
	msg := a.Name + ":" + a.Version + " is " + string(a.State)
	switch {
	case len(a.Unmet) > 0:
		msg += ", still unmet: " + strings.Join(a.Unmet, " | ")
	case a.Reason != "":
		msg += ": " + a.Reason
	}
	return msg
}

// BuildBlockedError refuses the build gate and names every artifact that
// is not admitted. It is ErrBuildBlocked.
type BuildBlockedError struct {
	Release string
	// Artifacts are the artifacts that keep the gate shut, in the order
	// of the release; none when the release has no artifacts.
	Artifacts []ArtifactStatus
}

func (e *BuildBlockedError) Error() string {
	if len(e.Artifacts) == 0 {
		return fmt.Sprintf("%s: release %s has no artifacts", ErrBuildBlocked, e.Release)
	}
	msgs := make([]string, len(e.Artifacts))
	for i, a := range e.Artifacts {
		msgs[i] = a.Message()
	}
	return fmt.Sprintf("%s: %d artifact(s) of release %s are not admitted: %s", ErrBuildBlocked, len(e.Artifacts), e.Release, strings.Join(msgs, " | "))
}

// Unwrap makes errors.Is(err, ErrBuildBlocked) true.
func (e *BuildBlockedError) Unwrap() error { return ErrBuildBlocked }
