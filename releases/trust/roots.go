package trust

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/signing"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// ErrRootInvalid refuses a trusted root document that sigstore-go cannot
// load as a trusted_root.json.
var ErrRootInvalid = errors.New("trusted root invalid")

// MaxRootSize bounds a trusted_root.json. The public-good instance's is
// about 10 KiB; a private Sigstore with a long history is not 100 times
// larger.
const MaxRootSize = 1 << 20

// Event actions of trusted roots.
const (
	ActionTrustRootAdded    = "trust.root.added"
	ActionTrustRootReplaced = "trust.root.replaced"
	ActionTrustRootRevoked  = "trust.root.revoked"
)

// TrustedRoot is one version of a Sigstore trusted_root.json installed
// under an ID: the Fulcio certificate authorities, Rekor and CT log keys
// and timestamp authorities that keyless evidence is verified against.
// Installing a different document under the same ID makes its next
// version; the versions before it are kept. RevokedAt and RevokedBy
// belong to the ID, whatever its version.
type TrustedRoot struct {
	ID        string
	Version   int64
	Document  json.RawMessage
	CreatedBy string // who installed this version
	CreatedAt time.Time
	RevokedAt *time.Time
	RevokedBy string
}

// Digest is the lowercase hex SHA-256 of the document as stored: the
// audit log records it, so a root's version can be matched to the event
// that installed it.
func (r TrustedRoot) Digest() string {
	sum := sha256.Sum256(r.Document)
	return hex.EncodeToString(sum[:])
}

// Parse loads the document with sigstore-go, as verification will.
func (r TrustedRoot) Parse() (*root.TrustedRoot, error) {
	return parseRoot(r.Document)
}

func parseRoot(doc []byte) (*root.TrustedRoot, error) {
	tr, err := signing.ParseTrustedRoot(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRootInvalid, err)
	}
	return tr, nil
}

// RootSummary says what a trusted root trusts, for people reading it.
type RootSummary struct {
	CertificateAuthorities []AuthoritySummary
	TimestampAuthorities   []AuthoritySummary
	RekorLogs              []LogSummary
	CTLogs                 []LogSummary
}

// AuthoritySummary describes a Fulcio CA or a timestamp authority: its
// root certificate's subject and the period the trusted root says it may
// be trusted for (a zero end: still valid).
type AuthoritySummary struct {
	URI        string
	Subject    string
	ValidFrom  time.Time
	ValidUntil time.Time
}

// LogSummary describes a Rekor or certificate transparency log: its log
// ID (hex, as entries name it) and validity.
type LogSummary struct {
	ID         string
	BaseURL    string
	ValidFrom  time.Time
	ValidUntil time.Time
}

// Summary describes the document. It parses it again; a stored document
// was parsed when it was installed, so an error here is corruption.
func (r TrustedRoot) Summary() (RootSummary, error) {
	tr, err := r.Parse()
	if err != nil {
		return RootSummary{}, fmt.Errorf("trusted root %s v%d: %w", r.ID, r.Version, err)
	}
	var s RootSummary
	for _, ca := range tr.FulcioCertificateAuthorities() {
		if f, ok := ca.(*root.FulcioCertificateAuthority); ok {
			s.CertificateAuthorities = append(s.CertificateAuthorities, authority(f.URI, f.Root, f.ValidityPeriodStart, f.ValidityPeriodEnd))
		}
	}
	for _, ta := range tr.TimestampingAuthorities() {
		if t, ok := ta.(*root.SigstoreTimestampingAuthority); ok {
			s.TimestampAuthorities = append(s.TimestampAuthorities, authority(t.URI, t.Root, t.ValidityPeriodStart, t.ValidityPeriodEnd))
		}
	}
	s.RekorLogs, s.CTLogs = logs(tr.RekorLogs()), logs(tr.CTLogs())
	return s, nil
}

func authority(uri string, cert *x509.Certificate, from, until time.Time) AuthoritySummary {
	a := AuthoritySummary{URI: uri, ValidFrom: from.UTC(), ValidUntil: until.UTC()}
	if from.IsZero() {
		a.ValidFrom = time.Time{}
	}
	if until.IsZero() {
		a.ValidUntil = time.Time{}
	}
	if cert != nil {
		a.Subject = cert.Subject.String()
	}
	return a
}

// logs lists a trusted root's logs ordered by ID (sigstore-go keys them
// in a map).
func logs(m map[string]*root.TransparencyLog) []LogSummary {
	out := make([]LogSummary, 0, len(m))
	for id, l := range m {
		s := LogSummary{ID: id, BaseURL: l.BaseURL}
		if !l.ValidityPeriodStart.IsZero() {
			s.ValidFrom = l.ValidityPeriodStart.UTC()
		}
		if !l.ValidityPeriodEnd.IsZero() {
			s.ValidUntil = l.ValidityPeriodEnd.UTC()
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b LogSummary) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// decideRoot is the rule for installing doc under an ID, run inside the
// store's transaction on what it holds there: a revoked ID stays revoked
// (install under a new ID instead: re-installing must not quietly make
// trusted again what an admin revoked), the same bytes again change
// nothing, anything else is the next version.
func decideRoot(id string, doc []byte) func(cur TrustedRoot, found bool) (json.RawMessage, error) {
	return func(cur TrustedRoot, found bool) (json.RawMessage, error) {
		switch {
		case found && cur.RevokedAt != nil:
			return nil, fmt.Errorf("%w: trusted root %s was revoked by %s; install it under another id", ErrRootRevoked, id, cur.RevokedBy)
		case found && bytes.Equal(cur.Document, doc):
			return nil, nil
		}
		return doc, nil
	}
}

// PutTrustedRoot installs a trusted_root.json under id (admin only): a new
// id is version 1, a different document under an existing id its next
// version, the same document again a no-op. installed reports whether a
// version was written. A root's identities follow it to its new version.
func (s *Service) PutTrustedRoot(ctx context.Context, p access.Principal, id string, doc []byte) (r TrustedRoot, installed bool, err error) {
	if !p.Has(access.RoleAdmin) {
		return TrustedRoot{}, false, fmt.Errorf("%w: managing trust needs the admin role", errdef.ErrDenied)
	}
	if err := validateID("trusted root", id); err != nil {
		return TrustedRoot{}, false, err
	}
	if len(doc) > MaxRootSize {
		return TrustedRoot{}, false, fmt.Errorf("%w: trusted root %s: larger than %d bytes", ErrRootInvalid, id, MaxRootSize)
	}
	if _, err := parseRoot(doc); err != nil {
		return TrustedRoot{}, false, fmt.Errorf("trusted root %s: %w", id, err)
	}
	decide := decideRoot(id, doc)
	r, err = s.store.ModifyTrustedRoot(ctx, p.Actor(), id, func(cur TrustedRoot, found bool) (json.RawMessage, error) {
		next, err := decide(cur, found)
		installed = next != nil
		return next, err
	})
	if err != nil {
		return TrustedRoot{}, false, err
	}
	// No re-evaluation: evidence counts by its signer, and installing a
	// root makes no signer active (an identity needs its root first).
	if installed {
		s.log.Info("trusted root installed", "id", id, "version", r.Version, "sha256", r.Digest(), "by", p.Name)
	}
	return r, installed, nil
}

// TrustedRoots lists the current version of every root, revoked ones
// included, ordered by ID. Like public keys, roots are not secret.
func (s *Service) TrustedRoots(ctx context.Context) ([]TrustedRoot, error) {
	return s.store.TrustedRoots(ctx)
}

// TrustedRoot returns the current version of the root id.
func (s *Service) TrustedRoot(ctx context.Context, id string) (TrustedRoot, error) {
	roots, err := s.store.TrustedRoots(ctx)
	if err != nil {
		return TrustedRoot{}, err
	}
	for _, r := range roots {
		if r.ID == id {
			return r, nil
		}
	}
	return TrustedRoot{}, fmt.Errorf("trusted root %s: %w", id, errdef.ErrNotFound)
}

// RevokeTrustedRoot revokes a root (admin only): every identity bound to
// it stops counting, as if revoked itself. Revoking a revoked root is a
// no-op.
func (s *Service) RevokeTrustedRoot(ctx context.Context, p access.Principal, id string) error {
	if !p.Has(access.RoleAdmin) {
		return fmt.Errorf("%w: managing trust needs the admin role", errdef.ErrDenied)
	}
	if err := s.store.RevokeTrustedRoot(ctx, p.Actor(), id); err != nil {
		return err
	}
	s.log.Info("trusted root revoked", "id", id, "by", p.Name)
	return nil
}

// validateID checks the grammar of an ID of keys, identities and roots.
func validateID(what, id string) error {
	if err := signing.ValidateKeyID(id); err != nil {
		return fmt.Errorf("%w: %s: %v", errdef.ErrInvalidInput, what, err)
	}
	return nil
}
