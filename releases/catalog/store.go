package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/opencontainers/go-digest"
)

// Store is the persistence of the catalogue: artifacts, their evidence and
// their admission decisions. Every mutating method records exactly one
// event in the same transaction as its change, and none when it changes
// nothing or fails.
//
// The store decides nothing about the domain: where a change is guarded
// by a rule, the rule runs inside the store's transaction as a function
// the domain hands it (decide, check), on the state as stored, so that
// what the rule checked is what the change commits on — on any database
// and any number of replicas. The rules themselves are this package's
// (CreateArtifact, SetAdmission, AddEvidence below, and the Service's).
type Store interface {
	// InsertArtifact inserts a and records ActionArtifactPushed, unless
	// name+version exists: then it returns the stored artifact and
	// created=false and records nothing.
	InsertArtifact(ctx context.Context, actor access.Actor, a Artifact) (stored Artifact, created bool, err error)
	// InsertArtifactWithin is InsertArtifact with check: when the version
	// does not exist, check runs first in the insert's transaction with
	// the quotas and usage as that transaction reads them (and, on a
	// dialect with several writers, holds the prefixes it counts until the
	// commit); its error is returned as it is and stores nothing.
	InsertArtifactWithin(ctx context.Context, actor access.Actor, a Artifact, check func(quota.Reader) error) (stored Artifact, created bool, err error)
	// GetArtifact returns errdef.ErrNotFound when name+version is unknown.
	GetArtifact(ctx context.Context, name, version string) (Artifact, error)
	// ListArtifacts returns one page and the cursor of the next ("" at the end).
	ListArtifacts(ctx context.Context, f ArtifactFilter) ([]Artifact, string, error)
	// ArtifactNames lists, in order, at most limit distinct artifact
	// names that begin with prefix: the candidates of a not-found
	// answer's suggestions.
	ArtifactNames(ctx context.Context, prefix string, limit int) ([]string, error)
	// RetireArtifact marks an artifact retired and records
	// ActionArtifactRetired; errdef.ErrNotFound if unknown; retiring a
	// retired artifact is a no-op that records nothing.
	RetireArtifact(ctx context.Context, actor access.Actor, name, version string) (Artifact, error)
	// AddEvidence records verified evidence for an artifact version and
	// ActionEvidenceAdded, and in the same transaction, for each of
	// e.Claims presented nowhere yet, its ClaimPresentation (e's artifact,
	// e.CreatedBy, e.CreatedAt). check, when set, runs first in that
	// transaction with the artifact as stored and the claims read through
	// it; its error is returned as it is and nothing is stored. Adding the
	// same evidence digest to the same version again returns created=false
	// and records nothing for it. errdef.ErrNotFound if the artifact is
	// unknown.
	//
	// decide, when set, then runs in the same transaction, whether the
	// evidence was created or was there already, with the artifact as
	// check saw it and what a decision weighs read through the
	// transaction (the new evidence included). A decision it returns is
	// stored as SetAdmission stores one, its event recorded after
	// ActionEvidenceAdded; nil stores none. Its error is returned as it is
	// and nothing is stored, the evidence neither. stored is the artifact
	// as the transaction leaves it.
	AddEvidence(ctx context.Context, actor access.Actor, e Evidence, check func(tx ClaimReader, a Artifact) error,
		decide func(tx AdmissionReader, a Artifact) (*Admission, audit.Change, error)) (created bool, stored Artifact, err error)
	// ClaimPresentation returns where a claim was first presented;
	// errdef.ErrNotFound if it never was.
	ClaimReader
	// ListEvidence returns the evidence of one version, oldest first.
	ListEvidence(ctx context.Context, name, version string) ([]Evidence, error)
	// SetAdmission loads name:version in a write transaction and calls
	// decide with it; decide returns the decision to store (the artifact
	// moves to its State) and the event to record with it, or an error,
	// which is returned as it is and stores nothing. errdef.ErrNotFound if
	// the artifact is unknown.
	SetAdmission(ctx context.Context, actor access.Actor, name, version string, decide func(a Artifact) (Admission, audit.Change, error)) (Artifact, error)
}

// AdmissionReader reads, inside the transaction that records evidence,
// what an admission decision weighs: the trust (its revision first, which
// says whether the trust.Cache holds it) and the evidence.
type AdmissionReader interface {
	trust.Reader
	// ListEvidence is Store.ListEvidence as the transaction reads it.
	ListEvidence(ctx context.Context, name, version string) ([]Evidence, error)
}

// ClaimReader reads where claims were first presented.
type ClaimReader interface {
	// ClaimPresentation returns where a claim was first presented;
	// errdef.ErrNotFound if it never was.
	ClaimPresentation(ctx context.Context, claim digest.Digest) (ClaimPresentation, error)
}

// CreateArtifact records a new version through st; one given no State
// starts quarantined, as every artifact does. A version is immutable: one
// that exists stands for the same bytes only — the stored artifact,
// created=false — and other bytes are ErrVersionExists, with the stored
// artifact. Nothing is written then (st.InsertArtifact writes only what
// does not exist), so the rule needs no transaction of its own.
func CreateArtifact(ctx context.Context, st Store, actor access.Actor, a Artifact) (Artifact, bool, error) {
	return createArtifact(ctx, st, actor, a, nil)
}

// CreateArtifactWithinQuota is CreateArtifact for a push: a new version
// must also fit every quota on its name (quota.Check, one version of
// a.Size bytes), decided in the transaction that records it, so that two
// pushes racing for the end of a budget cannot both pass.
func CreateArtifactWithinQuota(ctx context.Context, st Store, actor access.Actor, a Artifact) (Artifact, bool, error) {
	return createArtifact(ctx, st, actor, a, func(r quota.Reader) error {
		return quota.Check(ctx, r, a.Name, a.Size, 1)
	})
}

func createArtifact(ctx context.Context, st Store, actor access.Actor, a Artifact, check func(quota.Reader) error) (Artifact, bool, error) {
	if a.State == "" {
		a.State = StateQuarantined
	}
	var (
		stored  Artifact
		created bool
		err     error
	)
	if check == nil {
		stored, created, err = st.InsertArtifact(ctx, actor, a)
	} else {
		stored, created, err = st.InsertArtifactWithin(ctx, actor, a, check)
	}
	if err != nil || created {
		return stored, created, err
	}
	if stored.Digest != a.Digest {
		return stored, false, fmt.Errorf("artifact %s:%s is %s, not %s: %w", a.Name, a.Version, stored.Digest, a.Digest, ErrVersionExists)
	}
	return stored, false, nil
}

// SetAdmission stores adm as the latest decision about name:version and
// moves the artifact to adm.State, provided the artifact is still in state
// from when the store's transaction decides (a compare-and-set; otherwise
// errdef.ErrConflict naming the state it is in). Every stored decision is
// recorded as ActionAdmissionDecided, also one that keeps the state.
func SetAdmission(ctx context.Context, st Store, actor access.Actor, name, version string, from ArtifactState, adm Admission) (Artifact, error) {
	ref := name + ":" + version
	if !from.Valid() {
		return Artifact{}, fmt.Errorf("%w: admission of %s: unknown state %q to move from", errdef.ErrInvalidInput, ref, from)
	}
	return st.SetAdmission(ctx, actor, name, version, func(a Artifact) (Admission, audit.Change, error) {
		if a.State != from {
			return Admission{}, audit.Change{}, fmt.Errorf("artifact %s is %s, not %s: %w", ref, a.State, from, errdef.ErrConflict)
		}
		change, err := admissionDecided(from, adm)
		return adm, change, err
	})
}

// admissionDecided is the event of a decision moving an artifact from
// from: the decision, with the receipt named by its SHA-256 (the log
// commits to it without repeating it).
func admissionDecided(from ArtifactState, adm Admission) (audit.Change, error) {
	var receiptSHA256 string
	if len(adm.Receipt) > 0 {
		sum := sha256.Sum256(adm.Receipt)
		receiptSHA256 = hex.EncodeToString(sum[:])
	}
	b, err := json.Marshal(struct {
		From          ArtifactState   `json:"from"`
		State         ArtifactState   `json:"state"`
		Rule          string          `json:"rule"`
		Unmet         []string        `json:"unmet"`
		Reason        string          `json:"reason"`
		PolicyVersion int64           `json:"policyVersion"`
		Evidence      []digest.Digest `json:"evidence"`
		ReceiptSHA256 string          `json:"receiptSha256,omitempty"`
	}{from, adm.State, adm.Rule, nonNil(adm.Unmet), adm.Reason, adm.PolicyVersion, nonNilDigests(adm.Evidence), receiptSHA256})
	if err != nil {
		return audit.Change{}, fmt.Errorf("admission of %s: %w", adm.State, err)
	}
	return audit.Change{Action: ActionAdmissionDecided, Details: b}, nil
}

// AddEvidence records e through st, if it still binds to the artifact as
// stored when the store's transaction decides: evidence vouches for the
// bytes of e.ArtifactDigest, so for another digest it is
// errdef.ErrInvalidInput.
func AddEvidence(ctx context.Context, st Store, actor access.Actor, e Evidence) (bool, error) {
	created, _, err := st.AddEvidence(ctx, actor, e, func(_ ClaimReader, a Artifact) error { return bindsTo(e, a) }, nil)
	return created, err
}

// bindsTo refuses evidence about other bytes than a's.
func bindsTo(e Evidence, a Artifact) error {
	if a.Digest != e.ArtifactDigest {
		return fmt.Errorf("%w: evidence %s covers %s, but artifact %s:%s is %s", errdef.ErrInvalidInput, e.Digest, e.ArtifactDigest, a.Name, a.Version, a.Digest)
	}
	return nil
}
