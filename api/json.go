package api

import (
	"encoding/json"
	"io"
)

// jsonDecoder refuses unknown fields, so a typo in a request is an error
// rather than a silently ignored setting.
func jsonDecoder(r io.Reader) *json.Decoder {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	return dec
}
