package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dmlproject/dml/internal/strictjson"
	"github.com/gin-gonic/gin"
)

// bindJSON is the one way a JSON request body is read: bounded by
// maxJSONBody, then decoded by decodeJSON. It writes the error itself.
func (s *Server) bindJSON(c *gin.Context, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(c, fmt.Errorf("%w: at most %d bytes", errBodyTooLarge, maxJSONBody), nil)
			return false
		}
		// Wrapped, so that a client gone or too slow is told apart
		// from a malformed body by whatever recognises those.
		s.writeError(c, fmt.Errorf("%w: reading the body: %w", errMalformed, err), nil)
		return false
	}
	if err := decodeJSON(body, v); err != nil {
		s.writeError(c, err, jsonDetail(err))
		return false
	}
	return true
}

// decodeJSON decodes a request body into v. The body must be one JSON
// value that every parser reads the same way (strictjson: nothing after
// it, no key twice, bounded depth), and unknown fields are refused, so a
// typo in a request is an error rather than a silently ignored setting.
func decodeJSON(body []byte, v any) error {
	if err := strictjson.Check(body); err != nil {
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	return nil
}

// jsonDetail names what is wrong with a body decodeJSON refused, for the
// error's detail: {"problem":"duplicate_key","at":"/plan/title"}.
func jsonDetail(err error) any {
	var se *strictjson.Error
	if errors.As(err, &se) {
		d := map[string]any{"problem": se.Problem(), "offset": se.Offset}
		if se.Pointer != "" {
			d["at"] = se.Pointer
		}
		return d
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return map[string]any{"problem": "wrong_type", "field": te.Field, "got": te.Value, "want": te.Type.String()}
	}
	return nil
}

// convert maps the domain's list in to its wire form with f, keeping nil
// nil: where the domain holds nil the server sends null, and [] where it
// holds an empty list, as it always has.
func convert[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// convertMap is convert for maps: each value mapped with f, nil kept nil.
func convertMap[K comparable, T, U any](in map[K]T, f func(T) U) map[K]U {
	if in == nil {
		return nil
	}
	out := make(map[K]U, len(in))
	for k, v := range in {
		out[k] = f(v)
	}
	return out
}

// plain and named convert between the domain's named strings (roles,
// states) and the wire's plain ones, keeping nil nil (convert).
func plain[T ~string](in []T) []string { return convert(in, func(v T) string { return string(v) }) }
func named[T ~string](in []string) []T { return convert(in, func(v string) T { return T(v) }) }
