package signing

import (
	"errors"
	"fmt"
)

// Reason says why a piece of evidence was refused. The API layer maps it to
// an error code; the string values are stable.
type Reason string

const (
	// BadSignature: the signature does not verify with the one key the
	// caller named, or (keyless) with the key of the bundle's certificate. (When every trusted key is tried and none verifies, the
	// reason is UntrustedKey instead: the signature may be perfectly valid,
	// just not by anyone we trust.)
	BadSignature Reason = "bad_signature"
	// UntrustedKey: the evidence is well formed but no trusted key verifies it.
	UntrustedKey Reason = "untrusted_key"
	// SubjectMismatch: the evidence is about something else: the bundle's
	// messageDigest, the in-toto subjects or a cosign simple-signing
	// payload's docker-manifest-digest name another digest (for DSSE and
	// cosign OCI signatures, found after the signature verified), or
	// content supplied for an Ed25519 check does not hash to the artifact
	// digest.
	SubjectMismatch Reason = "subject_mismatch"
	// Malformed: the evidence cannot be parsed (bad JSON, bad base64,
	// missing fields).
	Malformed Reason = "malformed"
	// Unsupported: the evidence is well formed but uses something this
	// package deliberately does not verify (keyless certificates given to
	// VerifyEvidence, key-signed bundles given to KeylessVerifier, digests
	// other than SHA-256, Ed25519 without the content, unknown statement
	// types). It is refused rather than guessed at.
	Unsupported Reason = "unsupported"
)

// VerificationError is the error of every verification in this package.
// Use errors.As to read the Reason.
type VerificationError struct {
	Reason Reason
	// KeyID names the key involved, when there is one: the key the caller
	// asked for (BadSignature) or the key that verified a signature over the
	// wrong subject (SubjectMismatch).
	KeyID string
	// Format is the evidence format being verified, when it was recognised.
	Format Format
	// Err is the underlying cause; it is what the message says after the
	// reason.
	Err error
}

func (e *VerificationError) Error() string {
	msg := "signing: " + string(e.Reason)
	if e.Format != "" {
		msg += " " + string(e.Format)
	}
	if e.KeyID != "" {
		msg += fmt.Sprintf(" (key %q)", e.KeyID)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *VerificationError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of a *VerificationError in err's chain, or ""
// when err is not a verification error.
func ReasonOf(err error) Reason {
	var ve *VerificationError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

// ErrInvalidPolicy is wrapped by every policy validation error.
var ErrInvalidPolicy = errors.New("invalid trust policy")

// verr builds a *VerificationError whose cause is fmt.Errorf(msg, args...).
func verr(reason Reason, f Format, keyID string, msg string, args ...any) *VerificationError {
	return &VerificationError{Reason: reason, Format: f, KeyID: keyID, Err: fmt.Errorf(msg, args...)}
}
