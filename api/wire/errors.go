package wire

import "encoding/json"

// ErrorBody is the body of every error answer, of the REST API and of the
// registry (/v2/) alike: the OCI distribution spec's shape. The server
// sends exactly one item.
type ErrorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// ErrorItem is one error: a code clients act on (NOT_FOUND,
// VERSION_EXISTS, STALE_APPROVAL, ...), a message for people, and, for
// some codes, a detail object (for example {"state", "action", "allowed"}
// of an INVALID_STATE, or {"reason", "keyId", "format"} of evidence
// refused).
type ErrorItem struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}
