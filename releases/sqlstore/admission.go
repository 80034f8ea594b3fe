package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
)

// admissionColumns hold an artifact's latest decision, one column per field
// of catalog.Admission, rather than one JSON document: times stay
// Unix nanoseconds like every other time here, and the receipt stays the
// bytes that were signed, which json.Marshal would re-encode.
const admissionColumns = `admission_state, admission_rule, admission_unmet, admission_reason,
	admission_policy_version, admission_evidence, admission_receipt, admission_decided_at`

// admissionRow scans admissionColumns; they are all NULL until the first
// decision and all set by SetAdmission, which writes them together.
type admissionRow struct {
	state, rule, unmet, reason, evidence, receipt sql.NullString
	policyVersion, decidedAt                      sql.NullInt64
}

func (r *admissionRow) dest() []any {
	return []any{&r.state, &r.rule, &r.unmet, &r.reason, &r.policyVersion, &r.evidence, &r.receipt, &r.decidedAt}
}

// admission returns the stored decision, or nil if there is none.
func (r *admissionRow) admission() (*catalog.Admission, error) {
	if !r.state.Valid {
		return nil, nil
	}
	adm := &catalog.Admission{
		State:         catalog.ArtifactState(r.state.String),
		Rule:          r.rule.String,
		Reason:        r.reason.String,
		PolicyVersion: r.policyVersion.Int64,
		DecidedAt:     fromNanos(r.decidedAt.Int64),
	}
	if err := errors.Join(
		json.Unmarshal([]byte(r.unmet.String), &adm.Unmet),
		json.Unmarshal([]byte(r.evidence.String), &adm.Evidence),
	); err != nil {
		return nil, fmt.Errorf("stored admission lists: %w", err)
	}
	if r.receipt.Valid {
		adm.Receipt = json.RawMessage(r.receipt.String)
	}
	return adm, nil
}

// checkAdmission validates a decision about ref and fills a zero DecidedAt
// with now. Which decisions make sense is the domain's business; the store
// only keeps the row meaningful.
func (db *DB) checkAdmission(ref string, adm catalog.Admission) (catalog.Admission, error) {
	switch {
	case !adm.State.Valid():
		return adm, fmt.Errorf("%w: admission of %s: unknown state %q", errdef.ErrInvalidInput, ref, adm.State)
	case adm.PolicyVersion < 0:
		return adm, fmt.Errorf("%w: admission of %s: negative policy version %d", errdef.ErrInvalidInput, ref, adm.PolicyVersion)
	}
	for _, d := range adm.Evidence {
		if err := d.Validate(); err != nil {
			return adm, fmt.Errorf("%w: admission of %s: evidence digest %q: %v", errdef.ErrInvalidInput, ref, d, err)
		}
	}
	if len(adm.Receipt) > 0 {
		if err := checkJSON(adm.Receipt); err != nil {
			return adm, fmt.Errorf("admission of %s: receipt: %w", ref, err)
		}
	}
	t, ok := db.timeOrNow(adm.DecidedAt)
	if !ok {
		return adm, fmt.Errorf("%w: admission of %s: decision time %s out of range", errdef.ErrInvalidInput, ref, adm.DecidedAt)
	}
	adm.DecidedAt = t
	return adm, nil
}

// SetAdmission loads name:version in a write transaction (locking its row
// where the dialect has several writers) and lets decide choose the
// decision to store and its event; the artifact moves to the decision's
// state. Whether a decision may be stored at all (a compare-and-set on the
// state it was made in) is decide's to say: its error is returned as it
// is and nothing is stored.
func (x *Catalog) SetAdmission(ctx context.Context, actor access.Actor, name, version string, decide func(a catalog.Artifact) (catalog.Admission, audit.Change, error)) (catalog.Artifact, error) {
	db := x.db
	ref := name + ":" + version
	var (
		stored    catalog.Artifact
		decideErr error
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		stored, decideErr = catalog.Artifact{}, nil
		cur, err := db.lockArtifact(ctx, tx, name, version)
		if err != nil {
			return err
		}
		adm, change, err := decide(cur)
		if err != nil {
			decideErr = err
			return err
		}
		stored, err = db.storeAdmission(ctx, tx, actor, name, version, adm, change)
		return err
	})
	if decideErr != nil {
		return catalog.Artifact{}, decideErr
	}
	switch err := db.translate(err); {
	case err == nil:
		return stored, nil
	case errors.Is(err, errdef.ErrNotFound), errors.Is(err, errdef.ErrInvalidInput):
		return catalog.Artifact{}, err
	default:
		return catalog.Artifact{}, fmt.Errorf("sqlstore: set admission of %s: %w", ref, err)
	}
}

// storeAdmission stores adm as name:version's decision in tx, moving the
// artifact to its state, and records change; it returns the artifact as
// stored.
func (db *DB) storeAdmission(ctx context.Context, tx *sql.Tx, actor access.Actor, name, version string, adm catalog.Admission, change audit.Change) (catalog.Artifact, error) {
	ref := name + ":" + version
	adm, err := db.checkAdmission(ref, adm)
	if err != nil {
		return catalog.Artifact{}, err
	}
	if change.Action == "" {
		return catalog.Artifact{}, fmt.Errorf("%w: admission of %s: the decision records no event", errdef.ErrInvalidInput, ref)
	}
	if len(change.Details) > 0 {
		if err := checkJSON(change.Details); err != nil {
			return catalog.Artifact{}, fmt.Errorf("admission of %s: details: %w", ref, err)
		}
	}
	unmetJSON, err := json.Marshal(nonNil(adm.Unmet))
	if err != nil {
		return catalog.Artifact{}, fmt.Errorf("admission of %s: %w", ref, err)
	}
	evidenceJSON, err := json.Marshal(nonNil(adm.Evidence))
	if err != nil {
		return catalog.Artifact{}, fmt.Errorf("admission of %s: %w", ref, err)
	}
	var receipt sql.NullString
	if len(adm.Receipt) > 0 {
		receipt = sql.NullString{String: string(adm.Receipt), Valid: true}
	}
	_, err = tx.ExecContext(ctx, db.q(`UPDATE artifacts SET state = ?,
		admission_state = ?, admission_rule = ?, admission_unmet = ?, admission_reason = ?,
		admission_policy_version = ?, admission_evidence = ?, admission_receipt = ?, admission_decided_at = ?
		WHERE name = ? AND version = ?`),
		string(adm.State),
		string(adm.State), adm.Rule, string(unmetJSON), adm.Reason,
		adm.PolicyVersion, string(evidenceJSON), receipt, toNanos(adm.DecidedAt),
		name, version)
	if err != nil {
		return catalog.Artifact{}, err
	}
	stored, err := db.getArtifact(ctx, tx, name, version)
	if err != nil {
		return catalog.Artifact{}, err
	}
	return stored, db.recordEvent(ctx, tx, db.now(), actor, change.Action, ref, change.Details)
}
