package errdef

import (
	"errors"
	"strings"
)

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

// NotFoundError is ErrNotFound for a thing looked up by name, with the
// names close to it that do exist, so that a typo is answered with the
// name meant ("artifact payments/ap:1.0 not found; did you mean
// payments/api?"). Where to look for close names is the concept's
// business; names.Suggest ranks them.
type NotFoundError struct {
	// What is the kind of thing: "artifact", "release", "token".
	What string
	// Name is the name as it was asked for.
	Name string
	// Suggestions are existing names close to Name, closest first.
	Suggestions []string
}

func (e *NotFoundError) Error() string {
	msg := e.What + " " + e.Name + " " + ErrNotFound.Error()
	if len(e.Suggestions) > 0 {
		msg += "; did you mean " + strings.Join(e.Suggestions, " or ") + "?"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }
