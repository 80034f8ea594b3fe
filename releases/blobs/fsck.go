package blobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
)

// FsckSummary is what an fsck found. Problems counts the findings that are
// damage; orphans (garbage, for gc) and repairs are not problems.
type FsckSummary struct {
	// Blobs and Bytes: the stored objects read and hashed.
	Blobs int64
	Bytes int64
	// References: the distinct digests the catalogue refers to, each
	// checked to be stored at the size recorded.
	References int64
	// Admissions: the admissions of the audit log checked against the
	// catalogue.
	Admissions   int64
	Corrupt      int64
	Missing      int64
	SizeMismatch int64
	Unexpected   int64
	Catalogue    int64
	Unreadable   int64
	Orphans      int64
	Repaired     int64
	Problems     int64
	Duration     string
}

// referencePage is how many references fsck reads per query.
const referencePage = 500

// Fsck checks the whole store, as an admin: it re-hashes every stored blob
// (marking the corrupt ones exactly as a failed download does, and
// clearing the mark of a marked blob that verifies again), checks that
// every blob the catalogue refers to is stored at the size recorded, and that every admission in the audit log still
// holds in the catalogue. It reports each finding through report as it
// goes, then the summary, which it also returns. Only one fsck or gc runs
// at a time.
func (m *Maintenance) Fsck(ctx context.Context, p access.Principal, report func(MaintenanceEvent[FsckSummary]) error) (FsckSummary, error) {
	done, err := m.start(p, "fsck")
	if err != nil {
		return FsckSummary{}, err
	}
	defer done()
	f := &fsck{m: m, svc: m.svc, p: p, rep: &reporter[FsckSummary]{emit: report}}
	start := time.Now()
	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"blobs", f.blobs},
		{"references", f.references},
		{"audit", f.audit},
	} {
		if err := f.rep.phase(phase.name); err != nil {
			return f.sum, err
		}
		if err := phase.run(ctx); err != nil {
			return f.sum, fmt.Errorf("fsck, %s: %w", phase.name, err)
		}
		if err := f.rep.flush(); err != nil {
			return f.sum, err
		}
	}
	f.sum.Duration = time.Since(start).Round(time.Millisecond).String()
	m.svc.log.Info("fsck done", "by", p.Name, "blobs", f.sum.Blobs, "problems", f.sum.Problems, "corrupt", f.sum.Corrupt, "missing", f.sum.Missing, "orphans", f.sum.Orphans)
	done()
	return f.sum, f.rep.summary(f.sum)
}

// fsck is one run.
type fsck struct {
	m   *Maintenance
	svc *Service
	p   access.Principal
	rep *reporter[FsckSummary]
	sum FsckSummary
}

// find counts and reports a finding.
func (f *fsck) find(fd Finding) error {
	counts := map[string]*int64{
		FindingCorrupt: &f.sum.Corrupt, FindingMissing: &f.sum.Missing, FindingSize: &f.sum.SizeMismatch,
		FindingUnexpected: &f.sum.Unexpected, FindingCatalogue: &f.sum.Catalogue, FindingUnreadable: &f.sum.Unreadable,
		FindingOrphan: &f.sum.Orphans, FindingRepaired: &f.sum.Repaired,
	}
	*counts[fd.Kind]++
	switch fd.Kind {
	case FindingOrphan, FindingRepaired:
	default:
		fd.Problem = true
		f.sum.Problems++
	}
	return f.rep.finding(fd)
}

// blobs re-hashes every stored object.
func (f *fsck) blobs(ctx context.Context) error {
	s := f.svc
	return s.blobs.ListBlobs(ctx, func(sb store.StoredBlob) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.sum.Blobs++
		f.sum.Bytes += sb.Size
		if err := f.rep.step(sb.Size); err != nil {
			return err
		}
		if sb.Digest == "" {
			return f.find(Finding{Kind: FindingUnexpected, Key: sb.Key, Detail: "an object under the blob area whose key names no digest"})
		}
		d := sb.Digest
		info, err := s.blobs.Verify(ctx, d, -1)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil // deleted since it was listed
		case errors.Is(err, store.ErrCorrupt):
			s.blobCorrupt(ctx, f.p.Actor(), d, info.Fingerprint(), corruptReason(err), sourceFsck)
			return f.find(Finding{Kind: FindingCorrupt, Digest: d, Holders: s.holderNames(ctx, d), Detail: corruptReason(err)})
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return f.find(Finding{Kind: FindingUnreadable, Digest: d, Detail: err.Error()})
		}
		repaired, err := RecordVerified(ctx, s.store, f.p.Actor(), d, info.Fingerprint(), sourceFsck, s.now())
		if err != nil {
			return err
		}
		if repaired {
			s.integrity.repaired.Add(1)
			s.log.Info("corrupt blob verified again: its mark is cleared", "digest", d, "by", f.p.Name)
			if err := f.find(Finding{Kind: FindingRepaired, Digest: d, Detail: "marked corrupt, and now verifies: the mark is cleared"}); err != nil {
				return err
			}
		}
		referenced, err := s.store.BlobReferenced(ctx, d)
		if err != nil {
			return err
		}
		if !referenced {
			return f.find(Finding{Kind: FindingOrphan, Digest: d, Detail: fmt.Sprintf("%d bytes nothing refers to; gc removes them", info.Size)})
		}
		return nil
	})
}

// references checks that every blob the catalogue refers to is stored, at
// the size it records. Pages come ordered by digest, so the pairs of one
// digest are consecutive: each digest is looked up once.
func (f *fsck) references(ctx context.Context) error {
	s := f.svc
	var after BlobRef
	var cur digest.Digest
	var stored store.Info
	var missing bool
	for {
		page, err := s.store.ReferencedBlobs(ctx, after, referencePage)
		if err != nil {
			return err
		}
		for _, ref := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			if ref.Digest != cur {
				cur = ref.Digest
				f.sum.References++
				if err := f.rep.step(0); err != nil {
					return err
				}
				stored, err = s.blobs.StatBlob(ctx, cur)
				missing = errors.Is(err, store.ErrNotFound)
				switch {
				case missing:
					if err := f.find(Finding{Kind: FindingMissing, Digest: cur, Holders: s.holderNames(ctx, cur), Detail: "referred to, not stored"}); err != nil {
						return err
					}
				case err != nil:
					return err
				}
			}
			if missing || ref.Size < 0 || ref.Size == stored.Size {
				continue
			}
			if rec, err := s.store.BlobIntegrity(ctx, cur); err != nil {
				return err
			} else if rec.Corrupt() {
				continue // reported as corrupt: its size is part of that
			}
			if err := f.find(Finding{Kind: FindingSize, Digest: cur, Holders: s.holderNames(ctx, cur),
				Detail: fmt.Sprintf("%d bytes stored, %d recorded", stored.Size, ref.Size)}); err != nil {
				return err
			}
		}
		if len(page) < referencePage {
			return nil
		}
		after = page[len(page)-1]
	}
}

// audit is fsck's last phase: the catalogue checks itself against every
// admission the audit log records (AdmissionChecker).
func (f *fsck) audit(ctx context.Context) error {
	return f.m.admissions.CheckAdmissions(ctx, func() error {
		f.sum.Admissions++
		return f.rep.step(0)
	}, f.find)
}
