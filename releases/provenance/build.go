package provenance

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"golang.org/x/mod/sumdb/tlog"
)

// details are the event details the document's items are checked against.
type details struct {
	Digest          string   `json:"digest"`
	Size            int64    `json:"size"`
	MediaType       string   `json:"mediaType"`
	Kind            string   `json:"kind"`
	Format          string   `json:"format"`
	KeyID           string   `json:"keyId"`
	PredicateType   string   `json:"predicateType"`
	PublicKeySHA256 string   `json:"publicKeySha256"`
	State           string   `json:"state"`
	Rule            string   `json:"rule"`
	PolicyVersion   int64    `json:"policyVersion"`
	ReceiptSHA256   string   `json:"receiptSha256"`
	PlanDigest      string   `json:"planDigest"`
	Gate            string   `json:"gate"`
	Decision        string   `json:"decision"`
	Sealed          string   `json:"sealed"`
	ID              string   `json:"id"`
	Environment     string   `json:"environment"`
	Target          string   `json:"target"`
	Status          string   `json:"status"`
	Outcome         string   `json:"outcome"`
	ReviewDigest    string   `json:"reviewDigest"`
	Artifacts       []string `json:"artifacts"`
	// Keyless is what an evidence record says of its keyless signer.
	Keyless *signing.KeylessSigner `json:"keyless"`
}

// trustDetails are the details of a trusted root's or an identity's
// record, read only from those (other records use the same names for
// other things).
type trustDetails struct {
	Version        int64             `json:"version"`
	DocumentSHA256 string            `json:"documentSha256"`
	Root           string            `json:"root"`
	Issuer         string            `json:"issuer"`
	Subject        string            `json:"subject"`
	SubjectRegexp  string            `json:"subjectRegexp"`
	Claims         map[string]string `json:"claims"`
}

func (r record) trust() trustDetails {
	var d trustDetails
	if len(r.Details) > 0 {
		_ = json.Unmarshal(r.Details, &d) // unreadable details match nothing
	}
	return d
}

type record struct {
	auditlog.Record
	d details
}

func decodeRecord(b []byte) (record, error) {
	r, err := auditlog.Decode(b)
	if err != nil {
		return record{}, err
	}
	rec := record{Record: r}
	if len(r.Details) > 0 {
		if err := json.Unmarshal(r.Details, &rec.d); err != nil {
			return record{}, fmt.Errorf("record %d details: %w", r.Index, err)
		}
	}
	return rec, nil
}

// Build turns what the service gathered into a document. Item times are
// the times of their audit records.
func Build(src Sources) (*Document, error) {
	recs := make([]record, 0, len(src.Entries))
	for _, e := range src.Entries {
		if e.Index >= src.CheckpointState.Size {
			continue // appended after the checkpoint was taken
		}
		r, err := decodeRecord(e.Record)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	find := func(pred func(record) bool) (record, bool) {
		for _, r := range recs {
			if pred(r) {
				return r, true
			}
		}
		return record{}, false
	}
	findLast := func(pred func(record) bool) (record, bool) {
		for i := len(recs) - 1; i >= 0; i-- {
			if pred(recs[i]) {
				return recs[i], true
			}
		}
		return record{}, false
	}
	used := map[int64]bool{}
	use := func(r record) int64 { used[r.Index] = true; return r.Index }

	a := src.Artifact
	subject := a.Name + ":" + a.Version
	// The latest push names the current bytes: over OCI a quarantined tag
	// may have been moved (or deleted and pushed again) before admission.
	pushed, ok := findLast(func(r record) bool { return r.Action == catalog.ActionArtifactPushed && r.Subject == subject })
	if !ok {
		return nil, fmt.Errorf("no audit record of the push of %s", subject)
	}
	doc := &Document{
		Format: FormatVersion,
		Artifact: Artifact{Name: a.Name, Version: a.Version, Digest: a.Digest.String(), Size: a.Size, MediaType: a.MediaType,
			State: string(a.State), PushedBy: pushed.Actor.Name, PushedAt: pushed.Time, LogIndex: use(pushed)},
		TrustKeys: []TrustKey{}, Evidence: []Evidence{}, Releases: []Release{},
	}
	for _, k := range src.TrustKeys {
		r, ok := find(func(r record) bool { return r.Action == trust.ActionTrustKeyAdded && r.Subject == k.ID })
		if !ok {
			return nil, fmt.Errorf("no audit record of trust key %s", k.ID)
		}
		doc.TrustKeys = append(doc.TrustKeys, TrustKey{ID: k.ID, PublicKey: k.PublicKeyPEM, AddedBy: r.Actor.Name, AddedAt: r.Time, LogIndex: use(r)})
	}
	if err := addKeyless(doc, src, find, findLast, use); err != nil {
		return nil, err
	}
	for _, e := range src.Evidence {
		r, ok := find(func(r record) bool {
			return r.Action == catalog.ActionEvidenceAdded && r.Subject == subject && r.d.Digest == e.Digest.String()
		})
		if !ok {
			continue // added after the checkpoint
		}
		doc.Evidence = append(doc.Evidence, Evidence{
			Digest: e.Digest.String(), Kind: string(e.Kind), Format: e.Format, KeyID: e.KeyID, Keyless: toKeyless(e.Keyless), PredicateType: e.PredicateType,
			Result: predicateResult(e.Predicate), Content: src.Contents[e.Digest], AddedBy: r.Actor.Name, AddedAt: r.Time, LogIndex: use(r),
		})
	}
	if adm := a.Admission; adm != nil && (a.State == catalog.StateAdmitted || a.State == catalog.StateRejected) {
		if r, ok := findLast(func(r record) bool { return r.Action == catalog.ActionAdmissionDecided && r.Subject == subject }); ok {
			doc.Admission = &Admission{State: string(adm.State), Rule: adm.Rule, PolicyVersion: adm.PolicyVersion, Receipt: adm.Receipt, DecidedAt: r.Time, LogIndex: use(r)}
		}
	}
	for _, rel := range src.Releases {
		rs := "release:" + rel.Name
		created, ok := find(func(r record) bool { return r.Action == lifecycle.ActionReleaseCreated && r.Subject == rs })
		if !ok {
			continue
		}
		out := Release{Name: rel.Name, State: string(rel.State), ChangeRef: rel.Plan.ChangeRef, PlanDigest: rel.PlanDigest.String(),
			CreatedBy: created.Actor.Name, CreatedAt: created.Time, CreatedLogIndex: use(created), Approvals: []Approval{}, Deployments: []Deployment{}}
		if rel.ManifestDigest != "" {
			out.Manifest = src.Manifests[rel.ManifestDigest]
			out.ManifestDigest = rel.ManifestDigest.String()
			out.ManifestSignature = rel.ManifestSignature
		}
		for _, r := range recs {
			if r.Subject != rs || r.Action != lifecycle.ActionReleaseApproval {
				continue
			}
			out.Approvals = append(out.Approvals, Approval{Gate: r.d.Gate, Decision: r.d.Decision, Digest: r.d.Digest, By: r.Actor.Name, At: r.Time, Sealed: r.d.Sealed, LogIndex: use(r)})
		}
		for _, d := range rel.Deployments {
			r, ok := findLast(func(r record) bool {
				return r.Subject == rs && r.Action == lifecycle.ActionReleaseDeployment && r.d.ID == d.ID
			})
			if !ok {
				continue
			}
			out.Deployments = append(out.Deployments, Deployment{ID: d.ID, Environment: r.d.Environment, Target: d.Target, Status: r.d.Status, By: r.Actor.Name, At: r.Time, LogIndex: use(r)})
		}
		if rv := rel.Review; rv != nil {
			if r, ok := findLast(func(r record) bool { return r.Subject == rs && r.Action == lifecycle.ActionReleaseReview }); ok {
				out.Review = &Review{Outcome: rv.Outcome, Summary: rv.Summary, Incidents: rv.Incidents, ObjectivesMet: rv.ObjectivesMet,
					By: rv.By, At: rv.At, Digest: rel.ReviewDigest.String(), LogIndex: use(r)}
			}
		}
		doc.Releases = append(doc.Releases, out)
	}
	doc.Log.Checkpoint = string(src.Checkpoint)
	indexes := make([]int64, 0, len(used))
	for i := range used {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	for _, i := range indexes {
		var raw []byte
		for _, e := range src.Entries {
			if e.Index == i {
				raw = e.Record
			}
		}
		proof, err := tlog.ProveRecord(src.CheckpointState.Size, i, src.Hashes)
		if err != nil {
			return nil, fmt.Errorf("inclusion proof of record %d: %w", i, err)
		}
		hs := make([]string, len(proof))
		for j, h := range proof {
			hs[j] = base64.StdEncoding.EncodeToString(h[:])
		}
		doc.Log.Entries = append(doc.Log.Entries, Entry{Index: i, Record: string(raw), Proof: hs})
	}
	return doc, nil
}

// addKeyless adds the trusted roots and identities of the keyless
// evidence, each with the audit record that installed it: for a root, the
// record of its current version.
func addKeyless(doc *Document, src Sources, find, findLast func(func(record) bool) (record, bool), use func(record) int64) error {
	if src.SHA512 != "" {
		doc.Artifact.SHA512 = src.SHA512.String()
	}
	for _, r := range src.Roots {
		rec, ok := findLast(func(rec record) bool {
			return (rec.Action == trust.ActionTrustRootAdded || rec.Action == trust.ActionTrustRootReplaced) && rec.Subject == r.ID && rec.trust().Version == r.Version
		})
		if !ok {
			return fmt.Errorf("no audit record of trusted root %s version %d", r.ID, r.Version)
		}
		doc.TrustedRoots = append(doc.TrustedRoots, TrustedRoot{ID: r.ID, Version: r.Version, Document: r.Document, AddedBy: rec.Actor.Name, AddedAt: rec.Time, LogIndex: use(rec)})
	}
	for _, id := range src.Identities {
		rec, ok := find(func(rec record) bool { return rec.Action == trust.ActionTrustIdentityAdded && rec.Subject == id.ID })
		if !ok {
			return fmt.Errorf("no audit record of identity %s", id.ID)
		}
		doc.Identities = append(doc.Identities, Identity{ID: id.ID, Root: id.Root, Issuer: id.Issuer, Subject: id.Subject, SubjectRegexp: id.SubjectRegexp,
			Claims: id.Claims, AddedBy: rec.Actor.Name, AddedAt: rec.Time, LogIndex: use(rec)})
	}
	return nil
}

func toKeyless(k *signing.KeylessSigner) *Keyless {
	if k == nil {
		return nil
	}
	return &Keyless{Root: k.Root, Issuer: k.Issuer, Subject: k.Subject, Claims: k.Claims, TlogIndex: k.LogIndex, IntegratedTime: k.IntegratedTime}
}

func predicateResult(p json.RawMessage) string {
	var v struct {
		Result string `json:"result"`
	}
	if len(p) == 0 || json.Unmarshal(p, &v) != nil {
		return ""
	}
	return v.Result
}
