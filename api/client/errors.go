package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dmlproject/dml/api/wire"
)

// Error is an error answer of the server: the first item of its
// wire.ErrorBody, and the HTTP status.
type Error struct {
	Status  int
	Code    string
	Message string
	// Detail is the item's detail, for the codes that have one (for
	// example wire.InvalidStateDetail, wire.VerificationDetail).
	Detail json.RawMessage
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = "HTTP " + fmt.Sprint(e.Status)
	}
	if e.Message == "" {
		return code
	}
	return code + ": " + e.Message
}

// IsCode reports whether err is, or wraps, a server error with the given
// code ("VERSION_EXISTS", "NOT_FOUND", ...).
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// errorFrom builds the *Error for a non-2xx response. Answers that are not
// in the API's error shape (a proxy's HTML page, a HEAD answer without a
// body) keep their status and a short excerpt as the message.
func errorFrom(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode}
	var body wire.ErrorBody
	if json.Unmarshal(data, &body) == nil && len(body.Errors) > 0 {
		first := body.Errors[0]
		e.Code, e.Message, e.Detail = first.Code, first.Message, first.Detail
		return e
	}
	e.Message = http.StatusText(resp.StatusCode)
	if excerpt := strings.TrimSpace(string(data)); excerpt != "" {
		if len(excerpt) > 200 {
			excerpt = excerpt[:200] + "…"
		}
		e.Message += ": " + excerpt
	}
	return e
}
