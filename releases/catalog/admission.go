package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dmlproject/dml/internal/strictjson"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
)

// MaxEvidenceSize bounds one signature, bundle or attestation.
const MaxEvidenceSize = 1 << 20

// Evidence media types, as stored with the evidence bytes.
const (
	MediaTypeSignature = "application/vnd.dev.cosign.signature.v1+base64"
	MediaTypeBundle    = "application/vnd.dev.sigstore.bundle.v0.3+json"
	MediaTypeDSSE      = "application/vnd.dsse.envelope.v1+json"
)

// ErrWrongEvidenceKind refuses a signature posted as an attestation and
// the other way round.
var ErrWrongEvidenceKind = errors.New("wrong kind of evidence")

// ErrEvidenceReplayed refuses evidence whose claims were first presented
// for another artifact by another principal (checkClaims).
var ErrEvidenceReplayed = fmt.Errorf("%w: evidence already presented for another artifact", errdef.ErrConflict)

// EvidenceRequest is evidence posted for an artifact version.
type EvidenceRequest struct {
	Name, Version string
	// Kind is what the evidence must be; empty accepts what it verifies
	// as (a Sigstore bundle pushed as an OCI referrer may be either).
	Kind EvidenceKind
	// Body is a Sigstore bundle, a DSSE envelope, a raw base64 signature,
	// {"keyId","signature"}, or a cosign OCI image signature
	// (signing.CosignOCISignatureEvidence).
	Body []byte
}

// keyedSignature is the {"keyId","signature"} form of a raw signature.
type keyedSignature struct {
	KeyID     string `json:"keyId"`
	Signature string `json:"signature"`
}

// AddEvidence verifies evidence against the artifact's digest and the
// trusted keys, stores it content-addressed, records it, and re-evaluates
// admission. Invalid evidence stores nothing and records nothing.
func (s *Service) AddEvidence(ctx context.Context, p access.Principal, req EvidenceRequest) (Evidence, Artifact, error) {
	if !p.Has(access.RolePublisher, access.RoleAdmin) {
		return Evidence{}, Artifact{}, fmt.Errorf("%w: adding evidence needs the publisher or admin role", errdef.ErrDenied)
	}
	a, err := s.artifact(ctx, req.Name, req.Version)
	if err != nil {
		return Evidence{}, Artifact{}, err
	}
	if len(req.Body) == 0 {
		return Evidence{}, Artifact{}, fmt.Errorf("%w: empty evidence", errdef.ErrInvalidInput)
	}
	if len(req.Body) > MaxEvidenceSize {
		return Evidence{}, Artifact{}, fmt.Errorf("%w: evidence is larger than %d bytes", store.ErrTooLarge, MaxEvidenceSize)
	}
	current, err := s.trustAt.Load(ctx, s.trust)
	if err != nil {
		return Evidence{}, Artifact{}, err
	}
	trusted, active := current.Signers.Keys, current.Signers.Active
	body := req.Body
	// Ed25519 keys sign the whole message; the content is read lazily and
	// only if such a key has to check a signature.
	content, err := s.blobs.Open(ctx, p.Actor(), a.Digest, a.Size)
	if err != nil {
		return Evidence{}, Artifact{}, err
	}
	defer content.Close()

	var ve signing.VerifiedEvidence
	var ks keyedSignature
	// JSON naming a key twice is no keyed signature; VerifyEvidence
	// refuses it as malformed.
	if signing.IsKeyless(body) {
		ve, err = s.verifyKeyless(ctx, p, current, a, body)
	} else if req.Kind == EvidenceSignature && strictjson.Unmarshal(body, &ks) == nil && ks.KeyID != "" {
		// The raw signature names its key: store the signature text itself,
		// exactly what `cosign sign-blob` writes to a .sig file.
		key := findKey(trusted, ks.KeyID)
		if key == nil || !active[ks.KeyID] {
			return Evidence{}, Artifact{}, &signing.VerificationError{Reason: signing.UntrustedKey, KeyID: ks.KeyID, Format: signing.FormatSignature, Err: fmt.Errorf("key %q is not a trusted, unrevoked key", ks.KeyID)}
		}
		body = []byte(ks.Signature)
		ve, err = signing.VerifyEvidenceWithKey(key, a.Digest, body, content)
	} else {
		ve, err = signing.VerifyEvidence(activeKeys(trusted, active), a.Digest, body, content)
	}
	if err != nil {
		return Evidence{}, Artifact{}, err
	}
	if req.Kind != "" && string(ve.Kind) != string(req.Kind) {
		return Evidence{}, Artifact{}, fmt.Errorf("%w: this is %s evidence; post it to the %ss endpoint", ErrWrongEvidenceKind, ve.Kind, ve.Kind)
	}
	mediaType := map[signing.Format]string{
		signing.FormatSignature:        MediaTypeSignature,
		signing.FormatBundle:           MediaTypeBundle,
		signing.FormatDSSE:             MediaTypeDSSE,
		signing.FormatCosignOCI:        signing.MediaTypeCosignOCISignature,
		signing.FormatCosignOCIKeyless: signing.MediaTypeCosignOCIKeylessSignature,
	}[ve.Format]
	// The claims are checked and recorded under their locks, so that two
	// principals presenting the same claims at once cannot both be first.
	unlock := s.lockClaims(ve.Claims)
	defer unlock()
	if err := s.checkClaims(ctx, s.store, p, a, ve.Claims); err != nil {
		return Evidence{}, Artifact{}, err
	}
	blob, release, err := s.blobs.Ingest(ctx, p.Actor(), bytes.NewReader(body), store.IngestOptions{Digest: ve.Digest, Size: int64(len(body))})
	if err != nil {
		return Evidence{}, Artifact{}, fmt.Errorf("storing evidence: %w", err)
	}
	defer release()
	e := Evidence{
		Digest:          blob.Digest,
		ArtifactName:    a.Name,
		ArtifactVersion: a.Version,
		ArtifactDigest:  a.Digest,
		Kind:            EvidenceKind(ve.Kind),
		Format:          string(ve.Format),
		MediaType:       mediaType,
		Size:            blob.Size,
		KeyID:           ve.KeyID,
		PredicateType:   ve.PredicateType,
		Predicate:       ve.Predicate,
		Keyless:         ve.Keyless,
		CreatedBy:       p.Name,
		CreatedAt:       s.now(),
		Claims:          ve.Claims,
	}
	// The rules that bind evidence to its artifact decide again inside the
	// transaction that records it: the artifact still holds these bytes,
	// and no other principal presented the claims for another artifact
	// meanwhile (another replica, or this one before the lock). Admission
	// is decided again in that transaction too, on the evidence as it
	// stands with this piece: one write for the evidence and what it
	// decides, and nothing written if either fails.
	defer s.LockVersion(a.Name, a.Version)()
	var (
		view    Artifact   // a quarantined artifact with where it stands
		decided *Admission // a decision stored
	)
	_, stored, err := s.store.AddEvidence(ctx, p.Actor(), e, func(tx ClaimReader, cur Artifact) error {
		if err := bindsTo(e, cur); err != nil {
			return err
		}
		return s.checkClaims(ctx, tx, p, cur, ve.Claims)
	}, func(tx AdmissionReader, cur Artifact) (*Admission, audit.Change, error) {
		view, decided = Artifact{}, nil
		adm, change, err := s.decideIn(ctx, tx, cur)
		if err != nil || adm == nil || adm.State != StateQuarantined {
			decided = adm
			return adm, change, err
		}
		view = cur
		view.Admission = adm
		return nil, audit.Change{}, nil
	})
	if err != nil {
		return Evidence{}, Artifact{}, err
	}
	unlock()
	s.log.Info("evidence added", "name", a.Name, "version", a.Version, "kind", e.Kind, "signer", e.KeyID, "predicateType", e.PredicateType, "digest", e.Digest)
	if decided != nil {
		s.log.Info("admission decided", "name", a.Name, "version", a.Version, "state", decided.State, "rule", decided.Rule, "reason", decided.Reason)
	}
	if view.Name != "" {
		return e, view, nil
	}
	return e, stored, nil
}

// verifyKeyless verifies keyless evidence (a bundle signed with a Fulcio
// certificate) against the trusted roots and the active identities. The
// artifact is named by its SHA-256 first; evidence that names it only by
// its SHA-512 (npm provenance does) is verified again with that digest,
// computed from the content as it is read (the read itself checks the
// content against the SHA-256).
func (s *Service) verifyKeyless(ctx context.Context, p access.Principal, current *trust.Current, a Artifact, body []byte) (signing.VerifiedEvidence, error) {
	v, err := current.KeylessVerifier()
	if err != nil {
		return signing.VerifiedEvidence{}, err
	}
	ve, err := v.Verify(signing.ArtifactDigests{SHA256: a.Digest}, body)
	if signing.ReasonOf(err) != signing.SubjectMismatch {
		return ve, err
	}
	sha512, err := s.SHA512(ctx, p.Actor(), a)
	if err != nil {
		return signing.VerifiedEvidence{}, err
	}
	return v.Verify(signing.ArtifactDigests{SHA256: a.Digest, SHA512: sha512}, body)
}

// SHA512 reads the artifact's content for actor, who has been authorised
// to, and returns its SHA-512 digest. The read is verified against the
// SHA-256 the artifact is stored under.
func (s *Service) SHA512(ctx context.Context, actor access.Actor, a Artifact) (digest.Digest, error) {
	r, err := s.blobs.Open(ctx, actor, a.Digest, a.Size)
	if err != nil {
		return "", err
	}
	defer r.Close()
	d, err := digest.SHA512.FromReader(r)
	if err != nil {
		return "", fmt.Errorf("reading %s:%s for its sha512 digest: %w", a.Name, a.Version, err)
	}
	return d, nil
}

// Evidence binds to the artifact it was first presented for. A signature
// made with `cosign sign-blob` covers only the bytes, so the same
// signature would verify for the same bytes pushed under any other name
// or version; counting it there would let one principal relabel what
// another published — old bytes as a new version, one component's bytes
// as another's — and have them admitted on evidence their signer gave for
// something else. So evidence counts for the artifact its claims (what it
// asserts, however encoded: signing.VerifiedEvidence.Claims) were first
// presented for. The principal that first presented them may present them
// again for another artifact — a pipeline publishing the same bytes under
// two names, with one signature — and so may an admin, who could set the
// policy anyway; anyone else is refused with ErrEvidenceReplayed.
// docs/signing.md says the same for users.

// checkClaims refuses claims first presented for another artifact than a
// by another principal than p, unless p is an admin.
func (s *Service) checkClaims(ctx context.Context, claimsOf ClaimReader, p access.Principal, a Artifact, claims []digest.Digest) error {
	if p.Has(access.RoleAdmin) {
		return nil
	}
	for _, c := range claims {
		first, err := claimsOf.ClaimPresentation(ctx, c)
		if errors.Is(err, errdef.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if (first.ArtifactName == a.Name && first.ArtifactVersion == a.Version) || first.PresentedBy == p.Name {
			continue
		}
		return fmt.Errorf("%w: it was first presented for %s:%s by %s (%s); evidence counts only for the artifact it was presented for, unless its presenter or an admin presents it again",
			ErrEvidenceReplayed, first.ArtifactName, first.ArtifactVersion, first.PresentedBy, first.PresentedAt.Format(time.RFC3339))
	}
	return nil
}

// lockClaims locks every claim, in order so that two callers cannot
// deadlock, and returns a function that unlocks them once (later calls do
// nothing).
func (s *Service) lockClaims(claims []digest.Digest) func() {
	sorted := slices.Clone(claims)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	unlocks := make([]func(), 0, len(sorted))
	for _, c := range sorted {
		unlocks = append(unlocks, s.presenting.Lock(c.String()))
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, u := range slices.Backward(unlocks) {
				u()
			}
		})
	}
}

// ListEvidence returns an artifact version's evidence.
func (s *Service) ListEvidence(ctx context.Context, name, version string) ([]Evidence, error) {
	if _, err := s.Artifact(ctx, name, version); err != nil {
		return nil, err
	}
	return s.store.ListEvidence(ctx, name, version)
}

// OpenEvidence opens the stored bytes of one piece of evidence for p.
func (s *Service) OpenEvidence(ctx context.Context, p access.Principal, name, version string, d digest.Digest) (Evidence, *blobs.BlobReader, error) {
	list, err := s.ListEvidence(ctx, name, version)
	if err != nil {
		return Evidence{}, nil, err
	}
	for _, e := range list {
		if e.Digest == d {
			r, err := s.blobs.Open(ctx, p.Actor(), d, e.Size)
			return e, r, err
		}
	}
	return Evidence{}, nil, fmt.Errorf("%w: evidence %s of %s:%s", errdef.ErrNotFound, d, name, version)
}

func findKey(keys []*signing.PublicKey, id string) *signing.PublicKey {
	for _, k := range keys {
		if k.ID() == id {
			return k
		}
	}
	return nil
}

func activeKeys(keys []*signing.PublicKey, active map[string]bool) []*signing.PublicKey {
	out := make([]*signing.PublicKey, 0, len(keys))
	for _, k := range keys {
		if active[k.ID()] {
			out = append(out, k)
		}
	}
	return out
}

// decision is what decide found: the decision, the policy version it
// applied and the evidence it weighed.
type decision struct {
	signing.Decision
	policyVersion int64
	evidence      []Evidence
}

// keyless lists, for the evidence that satisfied the rule, the identities
// that signed it keylessly, as the receipt records them.
func (d decision) keyless() []signing.KeylessEvidence {
	var out []signing.KeylessEvidence
	for _, e := range d.evidence {
		if e.Keyless != nil && slices.Contains(d.Evidence, e.Digest) {
			out = append(out, signing.KeylessEvidence{Evidence: e.Digest, Identity: e.KeyID, KeylessSigner: *e.Keyless})
		}
	}
	return out
}

// decide evaluates the policy for a without changing anything, with the
// trust of the latest revision and a's evidence as stored.
func (s *Service) decide(ctx context.Context, a Artifact) (decision, error) {
	current, err := s.trustAt.Load(ctx, s.trust)
	if err != nil {
		return decision{}, err
	}
	rows, err := s.store.ListEvidence(ctx, a.Name, a.Version)
	if err != nil {
		return decision{}, err
	}
	return evaluate(current, a, rows), nil
}

// evaluate applies the policy of current to a's evidence rows.
func evaluate(current *trust.Current, a Artifact, rows []Evidence) decision {
	if current.Policy == nil {
		msg := "no trust policy is set; nothing is admissible"
		return decision{Decision: signing.Decision{State: signing.Quarantined, Unmet: []string{msg}, Reason: msg}}
	}
	evidence := make([]signing.VerifiedEvidence, len(rows))
	for i, r := range rows {
		evidence[i] = signing.VerifiedEvidence{
			Kind: signing.Kind(r.Kind), Format: signing.Format(r.Format), KeyID: r.KeyID,
			Digest: r.Digest, PredicateType: r.PredicateType, Predicate: r.Predicate, Keyless: r.Keyless,
		}
	}
	return decision{Decision: signing.Evaluate(current.Policy, a.Name, evidence, current.Signers.Active), policyVersion: current.PolicyVersion, evidence: rows}
}

// decideIn decides about cur, as a store's transaction reads it, with the
// trust of the revision and the evidence that transaction reads. A
// quarantined artifact gets the decision to store when it moves it, with
// its event, or else (nil event) where it stands, to show; an admitted or
// rejected artifact nothing (admission is final: see Evaluate).
func (s *Service) decideIn(ctx context.Context, tx AdmissionReader, cur Artifact) (*Admission, audit.Change, error) {
	if cur.State != StateQuarantined {
		return nil, audit.Change{}, nil
	}
	rev, err := tx.TrustRevision(ctx)
	if err != nil {
		return nil, audit.Change{}, err
	}
	current, err := s.trustAt.At(ctx, tx, rev)
	if err != nil {
		return nil, audit.Change{}, err
	}
	rows, err := tx.ListEvidence(ctx, cur.Name, cur.Version)
	if err != nil {
		return nil, audit.Change{}, err
	}
	d := evaluate(current, cur, rows)
	if d.State == signing.Quarantined {
		return &Admission{State: cur.State, Rule: d.Rule, Unmet: nonNil(d.Unmet), Reason: d.Reason, PolicyVersion: d.policyVersion}, audit.Change{}, nil
	}
	adm, err := s.admission(cur, d)
	if err != nil {
		return nil, audit.Change{}, err
	}
	change, err := admissionDecided(StateQuarantined, adm)
	if err != nil {
		return nil, audit.Change{}, err
	}
	return &adm, change, nil
}

// admission is the decision d that moves a out of quarantine, with the
// receipt signed when it admits a.
func (s *Service) admission(a Artifact, d decision) (Admission, error) {
	now := s.now()
	adm := Admission{
		State:         ArtifactState(d.State),
		Rule:          d.Rule,
		Unmet:         nonNil(d.Unmet),
		Reason:        d.Reason,
		PolicyVersion: d.policyVersion,
		Evidence:      slices.Clone(d.Evidence),
		DecidedAt:     now,
	}
	if d.State == signing.Admitted {
		receipt, err := s.signer.SignReceipt(a.Name, a.Digest, signing.Admission{
			Name: a.Name, Version: a.Version, Rule: d.Rule, PolicyVersion: d.policyVersion,
			Evidence: nonNilDigests(d.Evidence), Keyless: d.keyless(), AdmittedAt: now.Format("2006-01-02T15:04:05.000000000Z"),
			Server: s.signer.KeyHint(),
		})
		if err != nil {
			return Admission{}, fmt.Errorf("signing the admission receipt: %w", err)
		}
		adm.Receipt = receipt
	}
	return adm, nil
}

// Evaluate re-decides admission for a quarantined artifact and stores a
// decision that changes its state. Admitted and rejected artifacts are
// final: admission is never taken back (a later key revocation affects
// only new admissions).
func (s *Service) Evaluate(ctx context.Context, actor access.Actor, name, version string) (Artifact, error) {
	unlock := s.LockVersion(name, version)
	defer unlock()
	a, err := s.store.GetArtifact(ctx, name, version)
	if err != nil {
		return Artifact{}, err
	}
	if a.State != StateQuarantined {
		return a, nil
	}
	d, err := s.decide(ctx, a)
	if err != nil {
		return Artifact{}, err
	}
	if d.State == signing.Quarantined {
		a.Admission = &Admission{State: a.State, Rule: d.Rule, Unmet: nonNil(d.Unmet), Reason: d.Reason, PolicyVersion: d.policyVersion}
		return a, nil
	}
	adm, err := s.admission(a, d)
	if err != nil {
		return Artifact{}, err
	}
	// Stored only if the artifact is, as the transaction sees it, still
	// quarantined and still the bytes this decision was made on: a tag
	// moved meanwhile (quarantined again, other bytes) must not inherit it.
	updated, err := s.store.SetAdmission(ctx, actor, a.Name, a.Version, func(cur Artifact) (Admission, audit.Change, error) {
		if cur.State != StateQuarantined {
			return Admission{}, audit.Change{}, fmt.Errorf("artifact %s:%s is %s, not %s: %w", a.Name, a.Version, cur.State, StateQuarantined, errdef.ErrConflict)
		}
		if cur.Digest != a.Digest {
			return Admission{}, audit.Change{}, fmt.Errorf("artifact %s:%s is %s now, not %s as decided: %w", a.Name, a.Version, cur.Digest, a.Digest, errdef.ErrConflict)
		}
		change, err := admissionDecided(StateQuarantined, adm)
		return adm, change, err
	})
	if err != nil {
		return Artifact{}, err
	}
	s.log.Info("admission decided", "name", a.Name, "version", a.Version, "state", adm.State, "rule", adm.Rule, "reason", adm.Reason)
	return updated, nil
}

// ReevaluateQuarantined re-decides every quarantined artifact, after the
// policy or the keys changed (trust.Reevaluator).
func (s *Service) ReevaluateQuarantined(ctx context.Context, actor access.Actor) error {
	cursor := ""
	for {
		page, next, err := s.store.ListArtifacts(ctx, ArtifactFilter{State: StateQuarantined, Limit: names.MaxPageSize, Cursor: cursor})
		if err != nil {
			return err
		}
		for _, a := range page {
			if _, err := s.Evaluate(ctx, actor, a.Name, a.Version); err != nil {
				return fmt.Errorf("re-evaluating %s:%s: %w", a.Name, a.Version, err)
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilDigests(s []digest.Digest) []digest.Digest {
	if s == nil {
		return []digest.Digest{}
	}
	return s
}
