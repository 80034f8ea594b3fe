package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// audit checks every admission the audit log records against the
// catalogue: admitted content is immutable, so the artifact must still be
// there with the digest it was admitted with, and so must the evidence
// the decision counted. A disagreement means the catalogue was changed
// outside the DML.
// CheckAdmissions is fsck's last phase (blobs.AdmissionChecker): admitted
// is called once per admission checked, find once per disagreement.
func (s *Service) CheckAdmissions(ctx context.Context, admitted func() error, find func(blobs.Finding) error) error {
	return s.audit.AuditEntries(ctx, 0, 0, func(e audit.AuditEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := auditlog.Decode(e.Record)
		if err != nil {
			return find(blobs.Finding{Kind: blobs.FindingCatalogue, Key: fmt.Sprintf("audit record %d", e.Index), Detail: err.Error()})
		}
		if rec.Action != ActionAdmissionDecided {
			return nil
		}
		var det struct {
			State    ArtifactState   `json:"state"`
			Evidence []digest.Digest `json:"evidence"`
		}
		if err := json.Unmarshal(rec.Details, &det); err != nil || det.State != StateAdmitted {
			return nil
		}
		if err := admitted(); err != nil {
			return err
		}
		return s.checkAdmission(ctx, e.Index, rec.Subject, det.Evidence, find)
	})
}

func (s *Service) checkAdmission(ctx context.Context, index int64, subject string, evidence []digest.Digest, find func(blobs.Finding) error) error {
	where := fmt.Sprintf("audit record %d (admission of %s)", index, subject)
	name, version, ok := strings.Cut(subject, ":")
	if !ok {
		return find(blobs.Finding{Kind: blobs.FindingCatalogue, Key: where, Detail: "the subject names no artifact"})
	}
	admitted, deleted, err := s.digestAdmitted(ctx, subject, index)
	if err != nil {
		return err
	}
	if deleted {
		// A retention run deleted the version after this admission, and
		// the log says so: the catalogue lacking it is what the log
		// records, not a change made outside the DML.
		return nil
	}
	a, err := s.store.GetArtifact(ctx, name, version)
	if errors.Is(err, errdef.ErrNotFound) {
		return find(blobs.Finding{Kind: blobs.FindingCatalogue, Digest: admitted, Key: where, Detail: "the admitted artifact is no longer in the catalogue"})
	}
	if err != nil {
		return err
	}
	if admitted != "" && a.Digest != admitted {
		return find(blobs.Finding{Kind: blobs.FindingCatalogue, Digest: admitted, Key: where, Detail: fmt.Sprintf("admitted as %s, the catalogue holds %s", admitted, a.Digest)})
	}
	if len(evidence) == 0 {
		return nil
	}
	list, err := s.store.ListEvidence(ctx, name, version)
	if err != nil {
		return err
	}
	have := make(map[digest.Digest]bool, len(list))
	for _, ev := range list {
		have[ev.Digest] = true
	}
	for _, d := range evidence {
		if !have[d] {
			if err := find(blobs.Finding{Kind: blobs.FindingCatalogue, Digest: d, Key: where, Detail: "evidence the admission counted is no longer in the catalogue"}); err != nil {
				return err
			}
		}
	}
	return nil
}

// digestAdmitted is the digest subject had when record index admitted it:
// the one its last push before that record names ("" if none does); and
// whether a later record deleted the version (ActionArtifactDeleted).
func (s *Service) digestAdmitted(ctx context.Context, subject string, index int64) (d digest.Digest, deleted bool, err error) {
	entries, err := s.audit.AuditEntriesFor(ctx, []string{subject})
	if err != nil {
		return "", false, err
	}
	for _, e := range entries {
		if e.Index > index {
			if rec, err := auditlog.Decode(e.Record); err == nil && rec.Action == ActionArtifactDeleted {
				return d, true, nil
			}
			continue
		}
		if e.Index == index {
			continue
		}
		rec, err := auditlog.Decode(e.Record)
		if err != nil || rec.Action != ActionArtifactPushed {
			continue
		}
		var det struct {
			Digest digest.Digest `json:"digest"`
		}
		if json.Unmarshal(rec.Details, &det) == nil && det.Digest != "" {
			d = det.Digest
		}
	}
	return d, false, nil
}
