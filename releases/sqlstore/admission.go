package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
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
func (db *DB) checkAdmission(ref string, from catalog.ArtifactState, adm catalog.Admission) (catalog.Admission, error) {
	switch {
	case !from.Valid():
		return adm, fmt.Errorf("%w: admission of %s: unknown state %q to move from", errdef.ErrInvalidInput, ref, from)
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

// SetAdmission stores adm as the artifact's latest decision and moves the
// artifact to adm.State, provided it is still in state from; otherwise it
// returns errdef.ErrConflict naming the current state, and changes and
// records nothing. Every stored decision records "admission.decided", also
// one that leaves the state as it was (a re-evaluation with new unmet
// requirements is news to the audit log).
func (x *Catalog) SetAdmission(ctx context.Context, actor access.Actor, name, version string, from catalog.ArtifactState, adm catalog.Admission) (catalog.Artifact, error) {
	db := x.db
	ref := name + ":" + version
	adm, err := db.checkAdmission(ref, from, adm)
	if err != nil {
		return catalog.Artifact{}, err
	}
	unmet, evidence := nonNil(adm.Unmet), nonNil(adm.Evidence)
	unmetJSON, err := json.Marshal(unmet)
	if err != nil {
		return catalog.Artifact{}, fmt.Errorf("admission of %s: %w", ref, err)
	}
	evidenceJSON, err := json.Marshal(evidence)
	if err != nil {
		return catalog.Artifact{}, fmt.Errorf("admission of %s: %w", ref, err)
	}
	var receipt sql.NullString
	var receiptSHA256 string
	if len(adm.Receipt) > 0 {
		receipt = sql.NullString{String: string(adm.Receipt), Valid: true}
		receiptSHA256 = sha256Hex(adm.Receipt)
	}

	var stored catalog.Artifact
	err = db.write(ctx, func(tx *sql.Tx) error {
		// The compare-and-set is the UPDATE's own condition, so it holds on
		// a dialect with several writers too; only when it matched nothing
		// is there a question of why.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE artifacts SET state = ?,
			admission_state = ?, admission_rule = ?, admission_unmet = ?, admission_reason = ?,
			admission_policy_version = ?, admission_evidence = ?, admission_receipt = ?, admission_decided_at = ?
			WHERE name = ? AND version = ? AND state = ?`),
			string(adm.State),
			string(adm.State), adm.Rule, string(unmetJSON), adm.Reason,
			adm.PolicyVersion, string(evidenceJSON), receipt, toNanos(adm.DecidedAt),
			name, version, string(from))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var current string
			if err := tx.QueryRowContext(ctx, db.q(`SELECT state FROM artifacts WHERE name = ? AND version = ?`), name, version).Scan(&current); err != nil {
				return err
			}
			return fmt.Errorf("artifact %s is %s, not %s: %w", ref, current, from, errdef.ErrConflict)
		}
		stored, err = scanArtifact(tx.QueryRowContext(ctx, db.q(selectArtifact+` WHERE name = ? AND version = ?`), name, version))
		if err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, catalog.ActionAdmissionDecided, ref, struct {
			From          catalog.ArtifactState `json:"from"`
			State         catalog.ArtifactState `json:"state"`
			Rule          string                `json:"rule"`
			Unmet         []string              `json:"unmet"`
			Reason        string                `json:"reason"`
			PolicyVersion int64                 `json:"policyVersion"`
			Evidence      []digest.Digest       `json:"evidence"`
			ReceiptSHA256 string                `json:"receiptSha256,omitempty"`
		}{from, adm.State, adm.Rule, unmet, adm.Reason, adm.PolicyVersion, evidence, receiptSHA256})
	})
	switch err := db.translate(err); {
	case errors.Is(err, errdef.ErrNotFound):
		return catalog.Artifact{}, fmt.Errorf("artifact %s: %w", ref, err)
	case errors.Is(err, errdef.ErrConflict):
		return catalog.Artifact{}, err
	case err != nil:
		return catalog.Artifact{}, fmt.Errorf("sqlstore: set admission of %s: %w", ref, err)
	}
	return stored, nil
}
