package errdef

import "errors"

// The categories. Their messages are part of the errors the API returns,
// so they do not change.
var (
	// ErrNotFound: the thing named does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts the current state (a name
	// taken, a compare-and-set that lost, a blob being collected).
	ErrConflict = errors.New("conflict")
	// ErrInvalidInput: the request itself is malformed or out of bounds.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnauthorized: no valid credential.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied: the principal may not do this.
	ErrDenied = errors.New("denied")
)
