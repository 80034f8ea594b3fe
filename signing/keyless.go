package signing

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/dmlproject/dml/internal/strictjson"
)

// PredicateCosignSign is the predicate type of the DSSE statement that
// cosign v3 writes for `cosign sign-blob` in the new bundle format: a
// signature over the artifact, expressed as an attestation with an empty
// predicate. The keyless verifier reports it as KindSignature.
const PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"

// Identity is a workload identity trusted to sign: whoever holds a
// Fulcio certificate from the trusted root Root whose OIDC issuer is
// Issuer, whose subject (the certificate's SAN: an e-mail address or a
// workflow URI) is Subject or wholly matches SubjectRegexp, and whose
// Fulcio extensions carry every value in Claims. ID is a signer ID in the
// same namespace as key IDs, so policies name it like a key.
type Identity struct {
	ID   string `json:"id"`
	Root string `json:"root"`
	// Issuer is compared exactly (e.g.
	// https://token.actions.githubusercontent.com).
	Issuer string `json:"issuer"`
	// Exactly one of Subject and SubjectRegexp is set. SubjectRegexp (RE2)
	// must match the whole subject: it is anchored at both ends, so
	// "https://github.com/acme/app/" does not admit ".../acme/app-fork/".
	Subject       string `json:"subject,omitempty"`
	SubjectRegexp string `json:"subjectRegexp,omitempty"`
	// Claims pin Fulcio certificate extensions by their sigstore-go names
	// (ClaimNames), compared exactly: e.g. "sourceRepositoryURI",
	// "sourceRepositoryRef", "buildSignerURI", "buildTrigger",
	// "runnerEnvironment".
	Claims map[string]string `json:"claims,omitempty"`
}

// KeylessSigner is what a keyless verification proved about the signer,
// recorded with the evidence (VerifiedEvidence.Keyless) so that receipts
// and provenance can name it.
type KeylessSigner struct {
	// Root is the ID of the trusted root the certificate chains to.
	Root    string `json:"root"`
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	// Claims are the pinned claims of the identity, all of which matched.
	Claims map[string]string `json:"claims,omitempty"`
	// LogIndex and IntegratedTime come from the verified Rekor entry
	// (IntegratedTime is zero for a log without integrated time, whose
	// entries are timed by a timestamp authority).
	LogIndex       int64     `json:"logIndex"`
	IntegratedTime time.Time `json:"integratedTime,omitzero"`
}

// Reasons of keyless refusals, in addition to BadSignature (the signature
// does not verify with the certificate's key), SubjectMismatch (the
// evidence names another artifact), Malformed and Unsupported.
const (
	// CertificateUntrusted: the certificate does not chain to the Fulcio
	// CA of any trusted root given to the verifier, or the root has
	// certificate-transparency logs and no valid SCT of theirs is embedded.
	CertificateUntrusted Reason = "certificate_untrusted"
	// CertificateExpiredAtSigning: the certificate chains to a trusted root
	// but was not valid at the time the log entry or timestamp proves.
	CertificateExpiredAtSigning Reason = "certificate_expired_at_signing"
	// TlogEntryMissing: the bundle has no entry in a transparency log of
	// the root.
	TlogEntryMissing Reason = "tlog_entry_missing"
	// TlogProofInvalid: a log entry's inclusion proof or signed entry
	// timestamp does not verify, or the entry is not about this signature
	// and certificate (a tampered or transplanted entry).
	TlogProofInvalid Reason = "tlog_proof_invalid"
	// TimestampMissing: no time of signing is proven: the log entry has no
	// signed integrated time and no RFC 3161 timestamp of the root's
	// timestamp authorities verifies.
	TimestampMissing Reason = "timestamp_missing"
	// IdentityMismatch: the evidence verifies under a trusted root, but no
	// trusted identity of that root matches the certificate (issuer,
	// subject or a pinned claim differs).
	IdentityMismatch Reason = "identity_mismatch"
)

// ArtifactDigests names an artifact by both digests dml holds: evidence may
// name it by either (npm provenance names only sha512).
type ArtifactDigests struct {
	SHA256 digest.Digest
	SHA512 digest.Digest
}

// KeylessVerifier verifies Sigstore bundles signed with Fulcio
// certificates (cosign sign-blob/attest-blob without --key, GitHub artifact
// attestations, npm provenance) against trusted roots and identities,
// offline. It is immutable and safe for concurrent use.
//
// The catalogue builds one from the trusted roots and identities that are
// not revoked (a revoked root or identity is simply left out: evidence
// that only it would admit is then refused, as CertificateUntrusted or
// IdentityMismatch), and rebuilds it when they change. It stores the
// returned VerifiedEvidence like keyed evidence: KeyID is the identity's
// ID, which policies name like a key ID; Keyless records the proof of the
// signer for receipts and provenance.
type KeylessVerifier struct {
	roots      []keylessRoot
	identities []identityMatcher
}

type keylessRoot struct {
	id string
	tm root.TrustedMaterial
}

type identityMatcher struct {
	Identity
	subject *regexp.Regexp // anchored SubjectRegexp, or nil
}

// ParseTrustedRoot parses a Sigstore trusted_root.json and checks that it
// can verify keyless evidence: it needs a Fulcio CA, and a transparency
// log or a timestamp authority to prove when signing happened.
func ParseTrustedRoot(data []byte) (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("signing: trusted root: %w", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, errors.New("signing: trusted root has no certificate authority")
	}
	if len(tr.RekorLogs()) == 0 && len(tr.TimestampingAuthorities()) == 0 {
		return nil, errors.New("signing: trusted root has neither a transparency log nor a timestamp authority")
	}
	return tr, nil
}

// ClaimNames lists the Fulcio certificate extensions an Identity may pin,
// by the names sigstore-go gives them (the issuer has its own field), in
// order.
func ClaimNames() []string {
	t := reflect.TypeFor[certificate.Extensions]()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && name != "issuer" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// ValidateIdentity reports whether id is well formed: a valid signer ID,
// a root, an issuer, exactly one of Subject and SubjectRegexp (which must
// compile), and claims that name known extensions with non-empty values.
func ValidateIdentity(id Identity) error {
	_, err := newIdentityMatcher(id)
	return err
}

func newIdentityMatcher(id Identity) (identityMatcher, error) {
	m := identityMatcher{Identity: id}
	if err := ValidateKeyID(id.ID); err != nil {
		return m, fmt.Errorf("signing: identity: %w", err)
	}
	switch {
	case id.Root == "":
		return m, fmt.Errorf("signing: identity %q names no trusted root", id.ID)
	case id.Issuer == "":
		return m, fmt.Errorf("signing: identity %q has no issuer", id.ID)
	case (id.Subject == "") == (id.SubjectRegexp == ""):
		return m, fmt.Errorf("signing: identity %q needs exactly one of subject and subjectRegexp", id.ID)
	}
	if id.SubjectRegexp != "" {
		re, err := regexp.Compile(`^(?:` + id.SubjectRegexp + `)$`)
		if err != nil {
			return m, fmt.Errorf("signing: identity %q: subjectRegexp: %w", id.ID, err)
		}
		m.subject = re
	}
	known := ClaimNames()
	for k, v := range id.Claims {
		if !slices.Contains(known, k) {
			return m, fmt.Errorf("signing: identity %q: unknown claim %q (known: %s)", id.ID, k, strings.Join(known, ", "))
		}
		if v == "" {
			return m, fmt.Errorf("signing: identity %q: claim %q has no value", id.ID, k)
		}
	}
	return m, nil
}

// NewKeylessVerifier returns a verifier that trusts the given roots (by
// ID) and identities. Every identity must name one of the roots. Roots
// without identities verify nothing: evidence that chains to them is
// refused as IdentityMismatch. When several identities match a
// certificate, the first in the order given is the signer.
func NewKeylessVerifier(roots map[string]root.TrustedMaterial, identities []Identity) (*KeylessVerifier, error) {
	v := &KeylessVerifier{}
	for _, id := range slices.Sorted(maps.Keys(roots)) {
		if roots[id] == nil {
			return nil, fmt.Errorf("signing: trusted root %q is nil", id)
		}
		v.roots = append(v.roots, keylessRoot{id: id, tm: roots[id]})
	}
	seen := map[string]bool{}
	for _, id := range identities {
		m, err := newIdentityMatcher(id)
		if err != nil {
			return nil, err
		}
		if roots[id.Root] == nil {
			return nil, fmt.Errorf("signing: identity %q names trusted root %q, which was not given", id.ID, id.Root)
		}
		if seen[id.ID] {
			return nil, fmt.Errorf("signing: identity %q given twice", id.ID)
		}
		seen[id.ID] = true
		v.identities = append(v.identities, m)
	}
	return v, nil
}

// IsKeyless reports whether evidence is a Sigstore bundle whose
// verification material is a certificate (or chain), or a keyless cosign
// image signature (MediaTypeCosignOCIKeylessSignature): evidence for
// KeylessVerifier.Verify rather than VerifyEvidence.
func IsKeyless(evidence []byte) bool {
	if isCosignOCIKeyless(evidence) {
		return true
	}
	if f, err := detectFormat(evidence); err != nil || f != FormatBundle {
		return false
	}
	var b bundle0
	if json.Unmarshal(evidence, &b) != nil || b.VerificationMaterial == nil {
		return false
	}
	return len(b.VerificationMaterial.Certificate) > 0 || len(b.VerificationMaterial.X509CertificateChain) > 0
}

// bundle0 is the part of a bundle IsKeyless looks at.
type bundle0 struct {
	VerificationMaterial *struct {
		Certificate          json.RawMessage `json:"certificate"`
		X509CertificateChain json.RawMessage `json:"x509CertificateChain"`
	} `json:"verificationMaterial"`
}

// Verify verifies a keyless Sigstore bundle (v0.1 to v0.3, a message
// signature or a DSSE envelope) about the artifact, without network
// access, in the order Sigstore's client specification gives:
//
//  1. the certificate chains to the Fulcio CA of a trusted root
//     (CertificateUntrusted);
//  2. the bundle has an entry in a transparency log of that root
//     (TlogEntryMissing) whose inclusion proof or signed entry timestamp
//     verifies and which is about this signature and certificate
//     (TlogProofInvalid);
//  3. the certificate was valid at every time proven by the log's signed
//     integrated time or an RFC 3161 timestamp of the root's TSAs
//     (TimestampMissing, CertificateExpiredAtSigning), and, if the root has
//     CT logs, carries a valid SCT (CertificateUntrusted);
//  4. the signature verifies with the certificate's key (BadSignature);
//  5. it is about the artifact: the message digest, or a subject of the
//     in-toto statement, is its sha256 or sha512 (SubjectMismatch);
//  6. a trusted identity of that root matches (IdentityMismatch).
//
// A DSSE statement of predicate type PredicateCosignSign is reported as a
// signature, without a predicate; any other as an attestation.
//
// A keyless cosign image signature taken out of a registry
// (MediaTypeCosignOCIKeylessSignature, see CosignOCIKeylessEvidence) is
// verified as the bundle it holds, about the simple-signing payload it
// carries, which must then name the artifact (SubjectMismatch).
func (v *KeylessVerifier) Verify(artifact ArtifactDigests, evidence []byte) (VerifiedEvidence, error) {
	if err := checkArtifactDigests(artifact); err != nil {
		return VerifiedEvidence{}, err
	}
	if isCosignOCIKeyless(evidence) {
		return v.verifyCosignOCIKeyless(artifact, evidence)
	}
	b := &sgbundle.Bundle{}
	if err := b.UnmarshalJSON(evidence); err != nil {
		if errors.Is(err, sgbundle.ErrUnsupportedMediaType) {
			return VerifiedEvidence{}, verr(Unsupported, FormatBundle, "", "%w", err)
		}
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "%w", err)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, FormatBundle, "", "%w", err)
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return VerifiedEvidence{}, verr(Unsupported, FormatBundle, "", "the bundle is signed with a public key, not a certificate: verify it with trusted keys")
	}

	// The roots whose Fulcio CA issued the certificate. Time is checked
	// later, against proven times; here the question is only whose CA.
	// Two roots may share a CA (the same instance installed twice): the
	// first under which the evidence verifies counts.
	var firstErr error
	for i := range v.roots {
		if !chainsTo(leaf, v.roots[i].tm) {
			continue
		}
		ev, err := v.verifyWithRoot(&v.roots[i], b, leaf, artifact)
		if err == nil {
			ev.Format = FormatBundle
			ev.Digest = EvidenceDigest(evidence)
			return ev, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return VerifiedEvidence{}, firstErr
	}
	return VerifiedEvidence{}, verr(CertificateUntrusted, FormatBundle, "", "certificate (issuer %q) does not chain to the certificate authority of any trusted root (%s)", leaf.Issuer, v.rootIDs())
}

func (v *KeylessVerifier) rootIDs() string {
	if len(v.roots) == 0 {
		return "none is trusted"
	}
	ids := make([]string, len(v.roots))
	for i, r := range v.roots {
		ids[i] = r.id
	}
	return "tried " + strings.Join(ids, ", ")
}

func checkArtifactDigests(a ArtifactDigests) error {
	if err := checkSHA256(a.SHA256); err != nil {
		return err
	}
	if a.SHA512 != "" {
		if err := a.SHA512.Validate(); err != nil || a.SHA512.Algorithm() != digest.SHA512 {
			return verr(Malformed, "", "", "artifact digest %q is not a sha512 digest", a.SHA512)
		}
	}
	return nil
}

// chainsTo reports whether leaf chains to one of tm's Fulcio CAs at some
// time within the leaf's validity.
func chainsTo(leaf *x509.Certificate, tm root.TrustedMaterial) bool {
	_, err := verify.VerifyLeafCertificate(leaf.NotBefore, withoutOtherNameSAN(leaf), tm)
	return err == nil
}

// withoutOtherNameSAN returns leaf without the critical SAN extension Go
// cannot parse when Fulcio issues an OtherName SAN (sigstore-go's
// certificate summary reads it instead), so that path validation does not
// reject it as unhandled.
func withoutOtherNameSAN(leaf *x509.Certificate) *x509.Certificate {
	if len(leaf.UnhandledCriticalExtensions) == 0 {
		return leaf
	}
	c := *leaf
	c.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(leaf.UnhandledCriticalExtensions), func(oid asn1.ObjectIdentifier) bool {
		return oid.Equal(cryptoutils.SANOID)
	})
	return &c
}

func (v *KeylessVerifier) verifyWithRoot(r *keylessRoot, b *sgbundle.Bundle, leaf *x509.Certificate, artifact ArtifactDigests) (VerifiedEvidence, error) {
	const f = FormatBundle
	entry, times, err := verifyLogEntry(r, b, leaf)
	if err != nil {
		return VerifiedEvidence{}, err
	}
	signed, _, err := verify.VerifySignedTimestamp(b, r.tm)
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "signed timestamps: %w", err)
	}
	for _, ts := range signed {
		times = append(times, ts.Time)
	}
	if len(times) == 0 {
		return VerifiedEvidence{}, verr(TimestampMissing, f, "", "neither the log entry nor a timestamp of root %q proves when the bundle was signed", r.id)
	}
	leafForPath := withoutOtherNameSAN(leaf)
	var chains [][]*x509.Certificate
	for _, t := range times {
		if t.Before(leaf.NotBefore) || t.After(leaf.NotAfter) {
			return VerifiedEvidence{}, verr(CertificateExpiredAtSigning, f, "", "signed at %s, outside the certificate's validity %s to %s", t.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if chains, err = verify.VerifyLeafCertificate(t, leafForPath, r.tm); err != nil {
			return VerifiedEvidence{}, verr(CertificateExpiredAtSigning, f, "", "at %s the certificate did not chain to a certificate authority of root %q valid then: %w", t.UTC().Format(time.RFC3339), r.id, err)
		}
	}
	if len(r.tm.CTLogs()) > 0 {
		if err := verify.VerifySignedCertificateTimestamp(chains, 1, r.tm); err != nil {
			return VerifiedEvidence{}, verr(CertificateUntrusted, f, "", "no valid SCT from a CT log of root %q: %w", r.id, err)
		}
	}

	ev, err := verifyKeylessSignature(r, b, leaf, artifact)
	if err != nil {
		return VerifiedEvidence{}, err
	}

	summary, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "certificate: %w", err)
	}
	id, err := v.matchIdentity(r.id, summary)
	if err != nil {
		return VerifiedEvidence{}, err
	}
	ev.KeyID = id.ID
	ev.Keyless = &KeylessSigner{
		Root:     r.id,
		Issuer:   summary.Extensions.Issuer,
		Subject:  summary.SubjectAlternativeName,
		Claims:   maps.Clone(id.Claims),
		LogIndex: entry.LogIndex(),
	}
	if tle := entry.TransparencyLogEntry(); tle.GetIntegratedTime() != 0 && entry.HasInclusionPromise() {
		ev.Keyless.IntegratedTime = entry.IntegratedTime().UTC()
	}
	return ev, nil
}

// verifyLogEntry verifies the bundle's entries in the root's logs and
// returns one that verified, with the integrated times that signed entry
// timestamps prove.
func verifyLogEntry(r *keylessRoot, b *sgbundle.Bundle, leaf *x509.Certificate) (*tlog.Entry, []time.Time, error) {
	const f = FormatBundle
	entries, err := b.TlogEntries()
	if err != nil {
		return nil, nil, verr(Malformed, f, "", "transparency log entries: %w", err)
	}
	var ours []*tlog.Entry
	for _, e := range entries {
		if _, ok := r.tm.RekorLogs()[hex.EncodeToString([]byte(e.LogKeyID()))]; ok {
			ours = append(ours, e)
		}
	}
	if len(ours) == 0 {
		return nil, nil, verr(TlogEntryMissing, f, "", "the bundle has no entry in a transparency log of root %q (it has %d entries)", r.id, len(entries))
	}
	proven, err := verify.VerifyTlogEntry(b, r.tm, 1, true)
	if err != nil {
		// sigstore-go also refuses an entry whose integrated time is
		// outside the certificate's validity; when that time is signed
		// (the SET verifies), the certificate had expired.
		for _, e := range ours {
			t := e.IntegratedTime()
			if e.HasInclusionPromise() && tlog.VerifySET(e, r.tm.RekorLogs()) == nil && (t.Before(leaf.NotBefore) || t.After(leaf.NotAfter)) {
				return nil, nil, verr(CertificateExpiredAtSigning, f, "", "logged at %s, outside the certificate's validity %s to %s", t.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		for _, e := range ours {
			if e.HasInclusionPromise() && tlog.VerifySET(e, r.tm.RekorLogs()) != nil {
				return nil, nil, verr(TlogProofInvalid, f, "", "the signed entry timestamp of log entry %d does not verify with the log key of root %q", e.LogIndex(), r.id)
			}
		}
		return nil, nil, verr(TlogProofInvalid, f, "", "transparency log entry of root %q: %w", r.id, err)
	}
	times := make([]time.Time, 0, len(proven))
	for _, ts := range proven {
		times = append(times, ts.Time)
	}
	// sigstore-go skips entries whose signed entry timestamp does not
	// verify; report one it counted.
	for _, e := range ours {
		if !e.HasInclusionPromise() || tlog.VerifySET(e, r.tm.RekorLogs()) == nil {
			return e, times, nil
		}
	}
	return ours[0], times, nil
}

// verifyKeylessSignature checks the signature with the certificate's key,
// then that the evidence is about the artifact.
func verifyKeylessSignature(r *keylessRoot, b *sgbundle.Bundle, leaf *x509.Certificate, artifact ArtifactDigests) (VerifiedEvidence, error) {
	const f = FormatBundle
	sc, err := b.SignatureContent()
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "%w", err)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "%w", err)
	}
	key, err := newPublicKey("keyless", leaf.PublicKey)
	if err != nil {
		return VerifiedEvidence{}, verr(Unsupported, f, "", "certificate key: %w", err)
	}

	if ms := sc.MessageSignatureContent(); ms != nil {
		var want digest.Digest
		var alg string
		switch ms.DigestAlgorithm() {
		case "SHA2_256":
			want, alg = artifact.SHA256, "sha256"
		case "SHA2_512":
			want, alg = artifact.SHA512, "sha512"
		default:
			return VerifiedEvidence{}, verr(Unsupported, f, "", "message digest algorithm %q", ms.DigestAlgorithm())
		}
		if want == "" {
			return VerifiedEvidence{}, verr(SubjectMismatch, f, "", "bundle signs %s:%x; the artifact's %s digest was not given", alg, ms.Digest(), alg)
		}
		if hex.EncodeToString(ms.Digest()) != want.Encoded() {
			return VerifiedEvidence{}, verr(SubjectMismatch, f, "", "bundle signs %s:%x, not the artifact %s", alg, ms.Digest(), want)
		}
		if err := verify.VerifySignatureWithArtifactDigests(sc, vc, r.tm, []verify.ArtifactDigest{{Algorithm: alg, Digest: ms.Digest()}}); err != nil {
			return VerifiedEvidence{}, verr(BadSignature, f, "", "the signature does not verify with the certificate's key: %w", err)
		}
		return VerifiedEvidence{Kind: KindSignature, Claims: []digest.Digest{claimOf(key, claimArtifact, []byte(want.String()))}}, nil
	}

	env := sc.EnvelopeContent().RawEnvelope()
	if env.PayloadType != InTotoPayloadType {
		return VerifiedEvidence{}, verr(Unsupported, f, "", "DSSE payloadType %q, want %q", env.PayloadType, InTotoPayloadType)
	}
	if err := verify.VerifySignature(sc, vc, r.tm); err != nil {
		return VerifiedEvidence{}, verr(BadSignature, f, "", "the DSSE signature does not verify with the certificate's key: %w", err)
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "DSSE payload is not base64: %w", err)
	}
	var st Statement
	if err := strictjson.Unmarshal(payload, &st); err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "in-toto statement: %w", err)
	}
	switch {
	case st.Type != StatementV01 && st.Type != StatementV1:
		return VerifiedEvidence{}, verr(Unsupported, f, "", "statement type %q, want %s or %s", st.Type, StatementV1, StatementV01)
	case st.PredicateType == "":
		return VerifiedEvidence{}, verr(Malformed, f, "", "statement has no predicateType")
	case !st.Names(artifact.SHA256) && (artifact.SHA512 == "" || !st.Names(artifact.SHA512)):
		return VerifiedEvidence{}, verr(SubjectMismatch, f, "", "statement subjects %s do not include %s or its sha512", describeSubjects(st.Subject), artifact.SHA256)
	}
	ev := statementEvidence(&st)
	ev.Claims = []digest.Digest{claimOf(key, claimDSSE, ssldsse.PAE(env.PayloadType, payload))}
	return ev, nil
}

// matchIdentity returns the first identity of the root that matches the
// certificate, or an IdentityMismatch saying why the closest did not.
func (v *KeylessVerifier) matchIdentity(rootID string, s certificate.Summary) (Identity, error) {
	got, err := certificateClaims(s.Extensions)
	if err != nil {
		return Identity{}, verr(Malformed, FormatBundle, "", "certificate extensions: %w", err)
	}
	var reasons []string
	for _, m := range v.identities {
		if m.Root != rootID {
			continue
		}
		if why := m.mismatch(s, got); why != "" {
			reasons = append(reasons, fmt.Sprintf("%s: %s", m.ID, why))
			continue
		}
		return m.Identity, nil
	}
	if len(reasons) == 0 {
		return Identity{}, verr(IdentityMismatch, FormatBundle, "", "no trusted identity uses root %q (certificate issuer %q, subject %q)", rootID, s.Extensions.Issuer, s.SubjectAlternativeName)
	}
	return Identity{}, verr(IdentityMismatch, FormatBundle, "", "certificate issuer %q, subject %q matches no trusted identity of root %q (%s)", s.Extensions.Issuer, s.SubjectAlternativeName, rootID, strings.Join(reasons, "; "))
}

// mismatch says why the certificate is not this identity's, or "".
func (m identityMatcher) mismatch(s certificate.Summary, claims map[string]string) string {
	if s.Extensions.Issuer != m.Issuer {
		return fmt.Sprintf("issuer is not %q", m.Issuer)
	}
	if m.subject != nil {
		if !m.subject.MatchString(s.SubjectAlternativeName) {
			return fmt.Sprintf("subject does not wholly match %q", m.SubjectRegexp)
		}
	} else if s.SubjectAlternativeName != m.Subject {
		return fmt.Sprintf("subject is not %q", m.Subject)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Claims)) {
		if claims[k] != m.Claims[k] {
			return fmt.Sprintf("claim %s is %q, not %q", k, claims[k], m.Claims[k])
		}
	}
	return ""
}

// certificateClaims names the certificate's Fulcio extensions as
// ClaimNames does.
func certificateClaims(ext certificate.Extensions) (map[string]string, error) {
	raw, err := json.Marshal(ext)
	if err != nil {
		return nil, err
	}
	claims := map[string]string{}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&claims); err != nil {
		return nil, err
	}
	return claims, nil
}
