package provenance

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrInvalid is wrapped by every verification failure.
var ErrInvalid = errors.New("provenance does not verify")

// Options are the trust anchors of an offline verification.
type Options struct {
	// LogKey is the audit log's note verifier key.
	LogKey string
	// ServerKeyPEM is the server's public key (receipts, manifests).
	ServerKeyPEM []byte
	// TrustedKeys, when set, are the only keys evidence may verify with;
	// otherwise the document's trust keys are used, each proven to have
	// been registered by its audit record.
	TrustedKeys []*signing.PublicKey
	// TrustedRoots, when set, are the only Sigstore trusted roots
	// (trusted_root.json by root ID) keyless evidence may verify with;
	// otherwise the document's roots are used, each proven installed by
	// its audit record. The identities are always the document's, each
	// proven added by its audit record.
	TrustedRoots map[string][]byte
	// Content, when set, is the artifact's bytes, checked against its digest.
	Content io.Reader
}

// Report lists what was verified.
type Report struct {
	Checkpoint auditlog.Checkpoint
	Records    int
	Evidence   int
	Releases   int
	Checked    []string

	records map[int64]record
}

func fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Verify checks a document with no server: the checkpoint signature, every
// record's inclusion proof, that every item matches its record, the
// evidence signatures, the admission receipt and the sealed manifests.
func Verify(doc *Document, opts Options) (*Report, error) {
	rep := &Report{}
	if doc.Format != FormatVersion {
		return rep, fail("unknown format %q", doc.Format)
	}
	cp, err := auditlog.Open([]byte(doc.Log.Checkpoint), opts.LogKey)
	if err != nil {
		return rep, fmt.Errorf("%w: checkpoint: %w", ErrInvalid, err)
	}
	rep.Checkpoint = cp
	recs := map[int64]record{}
	for _, e := range doc.Log.Entries {
		r, err := decodeRecord([]byte(e.Record))
		if err != nil {
			return rep, fmt.Errorf("%w: entry %d: %w", ErrInvalid, e.Index, err)
		}
		if r.Index != e.Index {
			return rep, fail("entry %d holds record %d", e.Index, r.Index)
		}
		proof := make(tlog.RecordProof, len(e.Proof))
		for i, s := range e.Proof {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(b) != tlog.HashSize {
				return rep, fail("entry %d: proof hash %d is not a base64 SHA-256", e.Index, i)
			}
			copy(proof[i][:], b)
		}
		if err := tlog.CheckRecord(proof, cp.Size, cp.Root, e.Index, auditlog.LeafHash([]byte(e.Record))); err != nil {
			return rep, fail("record %d is not in the signed log of %d records: %v", e.Index, cp.Size, err)
		}
		recs[e.Index] = r
	}
	rep.Records = len(recs)
	rep.records = recs
	rep.Checked = append(rep.Checked, fmt.Sprintf("checkpoint signed by the log key: %d records", cp.Size),
		fmt.Sprintf("%d audit records proven included", len(recs)))
	get := func(idx int64, action, subject, what string) (record, error) {
		r, ok := recs[idx]
		if !ok {
			return r, fail("%s: audit record %d is not in the document", what, idx)
		}
		if r.Action != action || r.Subject != subject {
			return r, fail("%s: audit record %d is %s of %s, want %s of %s", what, idx, r.Action, r.Subject, action, subject)
		}
		return r, nil
	}
	same := func(what string, got, want any) error {
		if !equal(got, want) {
			return fail("%s: document says %v, the audit log says %v", what, got, want)
		}
		return nil
	}

	// The artifact.
	a := doc.Artifact
	subject := a.Name + ":" + a.Version
	ad, err := digest.Parse(a.Digest)
	if err != nil {
		return rep, fail("artifact digest %q: %v", a.Digest, err)
	}
	r, err := get(a.LogIndex, catalog.ActionArtifactPushed, subject, "artifact")
	if err != nil {
		return rep, err
	}
	for _, err := range []error{
		same("artifact digest", a.Digest, r.d.Digest), same("artifact size", a.Size, r.d.Size),
		same("artifact media type", a.MediaType, r.d.MediaType), same("artifact pushed by", a.PushedBy, r.Actor.Name),
		same("artifact pushed at", a.PushedAt, r.Time),
	} {
		if err != nil {
			return rep, err
		}
	}
	sha512 := digest.Digest(a.SHA512)
	if a.SHA512 != "" {
		if err := sha512.Validate(); err != nil || sha512.Algorithm() != digest.SHA512 {
			return rep, fail("artifact sha512 %q is not a sha512 digest", a.SHA512)
		}
	}
	if opts.Content != nil {
		h, h512 := sha256.New(), digest.SHA512.Digester()
		n, err := io.Copy(io.MultiWriter(h, h512.Hash()), opts.Content)
		if err != nil {
			return rep, err
		}
		if got := digest.NewDigest(digest.SHA256, h); got != ad || n != a.Size {
			return rep, fail("the file is %s (%d bytes), the artifact is %s (%d bytes)", got, n, ad, a.Size)
		}
		if a.SHA512 != "" && h512.Digest() != sha512 {
			return rep, fail("the file's sha512 is %s, the document says %s", h512.Digest(), a.SHA512)
		}
		sha512 = h512.Digest()
		rep.Checked = append(rep.Checked, "artifact bytes match "+a.Digest)
	}
	rep.Checked = append(rep.Checked, fmt.Sprintf("artifact %s pushed by %s (record %d)", subject, a.PushedBy, a.LogIndex))

	// Trust keys.
	keys := opts.TrustedKeys
	fromDoc := keys == nil
	for _, k := range doc.TrustKeys {
		r, err := get(k.LogIndex, trust.ActionTrustKeyAdded, k.ID, "trust key "+k.ID)
		if err != nil {
			return rep, err
		}
		sum := sha256.Sum256([]byte(k.PublicKey))
		if err := same("trust key "+k.ID, hex.EncodeToString(sum[:]), r.d.PublicKeySHA256); err != nil {
			return rep, err
		}
		if err := same("trust key "+k.ID+" added at", k.AddedAt, r.Time); err != nil {
			return rep, err
		}
		if fromDoc {
			pk, err := signing.LoadPublicKey(k.ID, []byte(k.PublicKey))
			if err != nil {
				return rep, fail("trust key %s: %v", k.ID, err)
			}
			keys = append(keys, pk)
		}
	}

	keyless, err := keylessVerifier(doc, opts, rep, get, same)
	if err != nil {
		return rep, err
	}

	// Evidence.
	for _, e := range doc.Evidence {
		what := "evidence " + e.Digest
		r, err := get(e.LogIndex, catalog.ActionEvidenceAdded, subject, what)
		if err != nil {
			return rep, err
		}
		if got := signing.EvidenceDigest(e.Content).String(); got != e.Digest {
			return rep, fail("%s: its content hashes to %s", what, got)
		}
		for _, err := range []error{
			same(what+" digest", e.Digest, r.d.Digest), same(what+" kind", e.Kind, r.d.Kind), same(what+" format", e.Format, r.d.Format),
			same(what+" key", e.KeyID, r.d.KeyID), same(what+" predicate type", e.PredicateType, r.d.PredicateType),
			same(what+" added by", e.AddedBy, r.Actor.Name), same(what+" added at", e.AddedAt, r.Time),
		} {
			if err != nil {
				return rep, err
			}
		}
		if err := sameKeyless(what, e.Keyless, r.d.Keyless); err != nil {
			return rep, err
		}
		var ve signing.VerifiedEvidence
		if e.Keyless != nil {
			ve, err = verifyKeyless(keyless, e, signing.ArtifactDigests{SHA256: ad, SHA512: sha512})
		} else if k := findKey(keys, e.KeyID); k != nil {
			// No content: Ed25519 signatures over the file itself cannot be
			// checked offline from the digest and are reported Unsupported.
			ve, err = signing.VerifyEvidenceWithKey(k, ad, e.Content, nil)
		} else {
			err = fail("%s: signed by key %s, which is not among the trusted keys", what, e.KeyID)
		}
		if err != nil {
			return rep, fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
		}
		if string(ve.Kind) != e.Kind || ve.PredicateType != e.PredicateType || predicateResult(ve.Predicate) != e.Result {
			return rep, fail("%s: the verified content says %s %s %s", what, ve.Kind, ve.PredicateType, predicateResult(ve.Predicate))
		}
		rep.Evidence++
		if e.Keyless != nil {
			rep.Checked = append(rep.Checked, fmt.Sprintf("%s %s verified keyless: identity %s, %s from %s, Rekor entry %d (record %d)",
				e.Kind, e.Digest, e.KeyID, e.Keyless.Subject, e.Keyless.Issuer, e.Keyless.TlogIndex, e.LogIndex))
			continue
		}
		rep.Checked = append(rep.Checked, fmt.Sprintf("%s %s verified with key %s (record %d)", e.Kind, e.Digest, e.KeyID, e.LogIndex))
	}

	// Admission receipt.
	if adm := doc.Admission; adm != nil {
		r, err := get(adm.LogIndex, catalog.ActionAdmissionDecided, subject, "admission")
		if err != nil {
			return rep, err
		}
		if err := same("admission state", adm.State, r.d.State); err != nil {
			return rep, err
		}
		if err := same("admission rule", adm.Rule, r.d.Rule); err != nil {
			return rep, err
		}
		if err := same("admission time", adm.DecidedAt, r.Time); err != nil {
			return rep, err
		}
		if err := same("artifact state", a.State, adm.State); err != nil {
			return rep, err
		}
		if adm.State == string(catalog.StateAdmitted) {
			sum := sha256.Sum256(adm.Receipt)
			if err := same("admission receipt", hex.EncodeToString(sum[:]), r.d.ReceiptSHA256); err != nil {
				return rep, err
			}
			if _, err := signing.VerifyReceipt(opts.ServerKeyPEM, adm.Receipt, ad); err != nil {
				return rep, fmt.Errorf("%w: admission receipt: %w", ErrInvalid, err)
			}
			rep.Checked = append(rep.Checked, "admission receipt signed by the server key")
		}
	}

	// Releases.
	serverKey, err := signing.LoadPublicKey("server", opts.ServerKeyPEM)
	if err != nil {
		return rep, fmt.Errorf("%w: server key: %w", ErrInvalid, err)
	}
	for _, rel := range doc.Releases {
		if err := verifyRelease(rel, subject, ad, serverKey, get, same); err != nil {
			return rep, err
		}
		rep.Releases++
		rep.Checked = append(rep.Checked, fmt.Sprintf("release %s: %d approvals, %d deployments, manifest %s", rel.Name, len(rel.Approvals), len(rel.Deployments), rel.ManifestDigest))
	}
	return rep, nil
}

func verifyRelease(rel Release, subject string, ad digest.Digest, serverKey *signing.PublicKey,
	get func(int64, string, string, string) (record, error), same func(string, any, any) error) error {
	rs := "release:" + rel.Name
	r, err := get(rel.CreatedLogIndex, lifecycle.ActionReleaseCreated, rs, "release "+rel.Name)
	if err != nil {
		return err
	}
	if err := same("release "+rel.Name+" created by", rel.CreatedBy, r.Actor.Name); err != nil {
		return err
	}
	if err := same("release "+rel.Name+" created at", rel.CreatedAt, r.Time); err != nil {
		return err
	}
	if rel.ManifestDigest != "" {
		md, err := digest.Parse(rel.ManifestDigest)
		if err != nil || digest.FromBytes(rel.Manifest) != md {
			return fail("release %s: the manifest does not hash to %s", rel.Name, rel.ManifestDigest)
		}
		if err := signing.VerifyBlobSignature(serverKey, md, []byte(rel.ManifestSignature), bytes.NewReader(rel.Manifest)); err != nil {
			return fmt.Errorf("%w: release %s: manifest signature: %w", ErrInvalid, rel.Name, err)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(rel.Manifest, &idx); err != nil {
			return fail("release %s: manifest: %v", rel.Name, err)
		}
		listed := false
		for _, m := range idx.Manifests {
			if m.Digest == ad && m.Annotations[lifecycle.AnnotationArtifactName]+":"+m.Annotations[lifecycle.AnnotationArtifactVersion] == subject {
				listed = true
			}
		}
		if !listed {
			return fail("release %s: the sealed manifest does not list %s@%s", rel.Name, subject, ad)
		}
		if err := same("release "+rel.Name+" change reference", rel.ChangeRef, idx.Annotations[lifecycle.AnnotationChangeRef]); err != nil {
			return err
		}
		if err := same("release "+rel.Name+" plan digest", rel.PlanDigest, idx.Annotations[lifecycle.AnnotationPlanDigest]); err != nil {
			return err
		}
		sealed := slices.ContainsFunc(rel.Approvals, func(a Approval) bool { return a.Sealed == rel.ManifestDigest })
		if !sealed {
			return fail("release %s: no approval in the log sealed manifest %s", rel.Name, rel.ManifestDigest)
		}
	}
	for _, ap := range rel.Approvals {
		what := fmt.Sprintf("release %s approval %d", rel.Name, ap.LogIndex)
		r, err := get(ap.LogIndex, lifecycle.ActionReleaseApproval, rs, what)
		if err != nil {
			return err
		}
		for _, err := range []error{
			same(what+" gate", ap.Gate, r.d.Gate), same(what+" decision", ap.Decision, r.d.Decision), same(what+" digest", ap.Digest, r.d.Digest),
			same(what+" by", ap.By, r.Actor.Name), same(what+" time", ap.At, r.Time), same(what+" sealed", ap.Sealed, r.d.Sealed),
		} {
			if err != nil {
				return err
			}
		}
	}
	for _, d := range rel.Deployments {
		what := fmt.Sprintf("release %s deployment %s", rel.Name, d.ID)
		r, err := get(d.LogIndex, lifecycle.ActionReleaseDeployment, rs, what)
		if err != nil {
			return err
		}
		for _, err := range []error{
			same(what+" id", d.ID, r.d.ID), same(what+" environment", d.Environment, r.d.Environment), same(what+" status", d.Status, r.d.Status),
			same(what+" by", d.By, r.Actor.Name), same(what+" time", d.At, r.Time),
		} {
			if err != nil {
				return err
			}
		}
		if r.d.Target != "" {
			if err := same(what+" target", d.Target, r.d.Target); err != nil {
				return err
			}
		}
	}
	if rv := rel.Review; rv != nil {
		what := "release " + rel.Name + " review"
		r, err := get(rv.LogIndex, lifecycle.ActionReleaseReview, rs, what)
		if err != nil {
			return err
		}
		d := lifecycle.ReviewDigest(lifecycle.Review{Outcome: rv.Outcome, Summary: rv.Summary, Incidents: rv.Incidents, ObjectivesMet: rv.ObjectivesMet, By: rv.By, At: rv.At})
		if err := same(what+" digest", rv.Digest, d.String()); err != nil {
			return err
		}
		if err := same(what+" digest", rv.Digest, r.d.ReviewDigest); err != nil {
			return err
		}
		if err := same(what+" outcome", rv.Outcome, r.d.Outcome); err != nil {
			return err
		}
	}
	return nil
}

func equal(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return a == b
}

func findKey(keys []*signing.PublicKey, id string) *signing.PublicKey {
	for _, k := range keys {
		if k.ID() == id {
			return k
		}
	}
	return nil
}

// keylessVerifier checks the document's trusted roots and identities
// against their audit records and returns the verifier of its keyless
// evidence (nil when it has none).
func keylessVerifier(doc *Document, opts Options, rep *Report, get func(int64, string, string, string) (record, error), same func(string, any, any) error) (*signing.KeylessVerifier, error) {
	if len(doc.Identities) == 0 && len(doc.TrustedRoots) == 0 {
		return nil, nil
	}
	roots := map[string]root.TrustedMaterial{}
	for _, tr := range doc.TrustedRoots {
		what := fmt.Sprintf("trusted root %s version %d", tr.ID, tr.Version)
		r, ok := rep.records[tr.LogIndex]
		if !ok {
			return nil, fail("%s: audit record %d is not in the document", what, tr.LogIndex)
		}
		if (r.Action != trust.ActionTrustRootAdded && r.Action != trust.ActionTrustRootReplaced) || r.Subject != tr.ID {
			return nil, fail("%s: audit record %d is %s of %s", what, tr.LogIndex, r.Action, r.Subject)
		}
		sum := sha256.Sum256(tr.Document)
		d := r.trust()
		for _, err := range []error{
			same(what+" document", hex.EncodeToString(sum[:]), d.DocumentSHA256), same(what+" version", tr.Version, d.Version),
			same(what+" added by", tr.AddedBy, r.Actor.Name), same(what+" added at", tr.AddedAt, r.Time),
		} {
			if err != nil {
				return nil, err
			}
		}
		if opts.TrustedRoots != nil {
			continue
		}
		parsed, err := signing.ParseTrustedRoot(tr.Document)
		if err != nil {
			return nil, fail("%s: %v", what, err)
		}
		roots[tr.ID] = parsed
		rep.Checked = append(rep.Checked, fmt.Sprintf("%s installed by %s (record %d)", what, tr.AddedBy, tr.LogIndex))
	}
	for _, id := range slices.Sorted(maps.Keys(opts.TrustedRoots)) {
		parsed, err := signing.ParseTrustedRoot(opts.TrustedRoots[id])
		if err != nil {
			return nil, fmt.Errorf("%w: given trusted root %s: %w", ErrInvalid, id, err)
		}
		roots[id] = parsed
		rep.Checked = append(rep.Checked, fmt.Sprintf("trusted root %s given for keyless evidence", id))
	}
	var ids []signing.Identity
	for _, id := range doc.Identities {
		what := "identity " + id.ID
		r, err := get(id.LogIndex, trust.ActionTrustIdentityAdded, id.ID, what)
		if err != nil {
			return nil, err
		}
		d := r.trust()
		for _, err := range []error{
			same(what+" root", id.Root, d.Root), same(what+" issuer", id.Issuer, d.Issuer), same(what+" subject", id.Subject, d.Subject),
			same(what+" subject regexp", id.SubjectRegexp, d.SubjectRegexp), same(what+" claims", fmt.Sprint(id.Claims), fmt.Sprint(d.Claims)),
			same(what+" added by", id.AddedBy, r.Actor.Name), same(what+" added at", id.AddedAt, r.Time),
		} {
			if err != nil {
				return nil, err
			}
		}
		if roots[id.Root] == nil {
			// Its root is not trusted here: evidence only it signed is
			// refused as untrusted when it is verified.
			continue
		}
		ids = append(ids, signing.Identity{ID: id.ID, Root: id.Root, Issuer: id.Issuer, Subject: id.Subject, SubjectRegexp: id.SubjectRegexp, Claims: id.Claims})
		rep.Checked = append(rep.Checked, fmt.Sprintf("%s (%s from %s) added by %s (record %d)", what, cmp.Or(id.Subject, id.SubjectRegexp), id.Issuer, id.AddedBy, id.LogIndex))
	}
	kv, err := signing.NewKeylessVerifier(roots, ids)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return kv, nil
}

// sameKeyless compares what the document says of a keyless signer with
// what the evidence's audit record says.
func sameKeyless(what string, doc *Keyless, rec *signing.KeylessSigner) error {
	switch {
	case doc == nil && rec == nil:
		return nil
	case doc == nil || rec == nil:
		return fail("%s: the document and the audit log disagree on whether it is keyless", what)
	}
	if doc.Root != rec.Root || doc.Issuer != rec.Issuer || doc.Subject != rec.Subject || !maps.Equal(doc.Claims, rec.Claims) ||
		doc.TlogIndex != rec.LogIndex || !doc.IntegratedTime.Equal(rec.IntegratedTime) {
		return fail("%s: the document says it was signed by %+v, the audit log says %+v", what, *doc, *rec)
	}
	return nil
}

// verifyKeyless re-verifies keyless evidence and checks that it proves
// what the document says of its signer.
func verifyKeyless(kv *signing.KeylessVerifier, e Evidence, artifact signing.ArtifactDigests) (signing.VerifiedEvidence, error) {
	what := "evidence " + e.Digest
	if kv == nil {
		return signing.VerifiedEvidence{}, fail("%s: keyless, but the document has no trusted root or identity", what)
	}
	ve, err := kv.Verify(artifact, e.Content)
	if err != nil {
		return ve, err
	}
	k := ve.Keyless
	if ve.KeyID != e.KeyID || k.Root != e.Keyless.Root || k.Issuer != e.Keyless.Issuer || k.Subject != e.Keyless.Subject ||
		k.LogIndex != e.Keyless.TlogIndex || !k.IntegratedTime.Equal(e.Keyless.IntegratedTime) {
		return ve, fail("%s: it verifies as signed by identity %s (%s from %s, Rekor entry %d), not as the document says", what, ve.KeyID, k.Subject, k.Issuer, k.LogIndex)
	}
	return ve, nil
}
