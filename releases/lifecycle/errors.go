package lifecycle

import (
	"errors"
	"fmt"
	"strings"
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
