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
