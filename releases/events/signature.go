package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook delivery.
const (
	HeaderEvent     = "X-DML-Event"     // the event's type
	HeaderDelivery  = "X-DML-Delivery"  // the delivery's id (a redelivery has its own)
	HeaderSignature = "X-DML-Signature" // t=UNIX,v1=HEX
)

// Sign is the X-DML-Signature of body sent at t: "t=UNIX,v1=HEX", HEX the
// lowercase hex HMAC-SHA256 with secret over the decimal UNIX time, ".",
// and the body's bytes. The time is signed so that a receiver can refuse
// replays of old deliveries.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// ErrBadSignature: a delivery's signature does not verify.
var ErrBadSignature = errors.New("bad webhook signature")

// Verify checks an X-DML-Signature header as a receiver must: one of its
// v1 values is the HMAC of its t and body, compared in constant time, and
// t is within tolerance of now (0: any time). It is what docs/events.md
// tells receivers to do, in Go.
func Verify(header string, secret, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: header %q is not t=UNIX,v1=HEX", ErrBadSignature, header)
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: signed at %d, more than %s from now", ErrBadSignature, unix, tolerance)
		}
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches the body", ErrBadSignature)
}
