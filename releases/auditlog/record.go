package auditlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrMalformed reports a record, checkpoint or proof that does not parse.
var ErrMalformed = errors.New("malformed audit data")

// Actor names who made a change. Issuer and Subject are a single sign-on
// identity (OIDC issuer and subject); omitted when empty, so that records
// written before they existed keep their canonical bytes.
type Actor struct {
	TokenID string `json:"tokenId"`
	Name    string `json:"name"`
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// Record is one audit log entry. Its canonical encoding (Encode) is what
// the Merkle tree hashes and what the log serves, byte for byte.
type Record struct {
	Index   int64           `json:"index"`
	Time    time.Time       `json:"time"`
	Actor   Actor           `json:"actor"`
	Action  string          `json:"action"`
	Subject string          `json:"subject"`
	Details json.RawMessage `json:"details,omitempty"`
}

// Encode returns the canonical encoding of r: compact JSON with the fields
// in the order above, the time in UTC with nanoseconds, and details
// compacted. It never contains a newline, so records can be streamed one
// per line.
func Encode(r Record) ([]byte, error) {
	r.Time = r.Time.UTC()
	if len(r.Details) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r.Details); err != nil {
			return nil, fmt.Errorf("%w: details of record %d: %v", ErrMalformed, r.Index, err)
		}
		r.Details = buf.Bytes()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: record %d: %v", ErrMalformed, r.Index, err)
	}
	return b, nil
}

// Decode parses a canonical record and checks that it is canonical:
// re-encoding it gives the same bytes.
func Decode(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	again, err := Encode(r)
	if err != nil {
		return Record{}, err
	}
	if !bytes.Equal(again, b) {
		return Record{}, fmt.Errorf("%w: record %d is not in canonical form", ErrMalformed, r.Index)
	}
	return r, nil
}

// LeafHash is the Merkle leaf hash of a record's canonical bytes.
func LeafHash(record []byte) tlog.Hash { return tlog.RecordHash(record) }

var indexPrefix = []byte(`{"index":`)

// ParseIndex reads the index of a canonical record without decoding the
// rest, which keeps verifying a million records cheap.
func ParseIndex(record []byte) (int64, error) {
	if !bytes.HasPrefix(record, indexPrefix) {
		return 0, fmt.Errorf("%w: record does not start with its index", ErrMalformed)
	}
	rest := record[len(indexPrefix):]
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0, fmt.Errorf("%w: record index not terminated", ErrMalformed)
	}
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: record index %q", ErrMalformed, rest[:end])
	}
	return n, nil
}
