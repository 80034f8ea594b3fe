package blobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
)

// Garbage collection removes blobs nothing refers to and uploads that were
// abandoned, once they are older than a grace period; never anything the
// catalogue refers to.
//
// The hard part is a blob that becomes referenced while gc runs: a push
// of the same bytes finds the blob stored, writes nothing (idempotent
// commits) and records its reference a moment later. Checking references
// just before each delete does not close that window, so writers and gc
// also coordinate through the catalogue's database, which serialises the
// two transactions that matter:
//
//   - A writer claims the blob (IntegrityStore.ClaimBlob) before it looks
//     at the stored copy, and drops the claim after its reference is
//     committed; it then checks that the blob is still stored.
//   - gc deletes a blob only after BeginBlobDeletion, which in one
//     transaction finds no reference and no claim and records the
//     deletion; it ends it (EndBlobDeletion) after the delete.
//   - A claim is refused while a deletion is recorded; the writer waits
//     for it to end.
//
// Either the writer's claim commits first, and gc leaves the blob; or the
// deletion's record does, and the writer waits, finds the blob gone and
// fails its push (nothing refers to a missing blob; the client pushes
// again and the bytes are written anew). An in-process lock would do the
// same for one server, but the database is what several replicas share.
// The grace period on the blob's age comes on top: it keeps gc off blobs
// whose write has not reached its reference yet (a staged upload being
// moved into place), and off the uploads of clients that are merely slow.

// GCOptions says what a gc may remove.
type GCOptions struct {
	// Grace: only blobs and uploads last written longer ago than this are
	// removed. It must not be negative.
	Grace time.Duration
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// DefaultGCGrace is the grace period operators get unless they choose one.
const DefaultGCGrace = 24 * time.Hour

// gcDeleteTimeout bounds one delete, well below deletionTTL: a deletion
// mark older than that is taken for a collector that died.
const gcDeleteTimeout = time.Minute

// maxStaleSessions bounds the upload sessions one gc (or dry run) lists.
const maxStaleSessions = 10000

// GCSummary is what a gc removed (or, in a dry run, would remove).
type GCSummary struct {
	DryRun bool
	Grace  string
	// Blobs: the stored objects looked at.
	Blobs        int64
	DeletedBlobs int64
	DeletedBytes int64
	// DeletedUploads: upload sessions, staging objects and the chunks of
	// uploads without a session.
	DeletedUploads int64
	// DeletedPartials: the backend's own partial writes (temporary
	// files, incomplete multipart uploads); not counted in a dry run.
	DeletedPartials int64
	// Kept: referenced blobs, blobs younger than the grace period, and
	// blobs a writer claimed while gc looked at them.
	KeptReferenced int64
	KeptYoung      int64
	KeptClaimed    int64
	Duration       string
}

// GC removes, as an admin, what nothing refers to and is older than the
// grace period: upload sessions not touched since, staging objects, the
// chunks of uploads whose session is gone, the backend's partial writes,
// and blobs the catalogue does not refer to. It reports each removal as a
// finding, then the summary, which it also returns.
func (m *Maintenance) GC(ctx context.Context, p access.Principal, opts GCOptions, report func(MaintenanceEvent[GCSummary]) error) (GCSummary, error) {
	if opts.Grace < 0 {
		return GCSummary{}, fmt.Errorf("%w: the grace period must not be negative", errdef.ErrInvalidInput)
	}
	s := m.svc
	done, err := m.start(p, "gc")
	if err != nil {
		return GCSummary{}, err
	}
	defer done()
	g := &gc{m: m, svc: s, p: p, opts: opts, cutoff: s.now().Add(-opts.Grace), rep: &reporter[GCSummary]{emit: report}}
	g.sum.DryRun, g.sum.Grace = opts.DryRun, opts.Grace.String()
	start := time.Now()
	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"uploads", g.uploads},
		{"staging", g.staging},
		{"blobs", g.blobs},
	} {
		if err := g.rep.phase(phase.name); err != nil {
			return g.sum, err
		}
		if err := phase.run(ctx); err != nil {
			return g.sum, fmt.Errorf("gc, %s: %w", phase.name, err)
		}
		if err := g.rep.flush(); err != nil {
			return g.sum, err
		}
	}
	g.sum.Duration = time.Since(start).Round(time.Millisecond).String()
	s.log.Info("gc done", "by", p.Name, "dryRun", opts.DryRun, "grace", opts.Grace, "deletedBlobs", g.sum.DeletedBlobs, "deletedBytes", g.sum.DeletedBytes, "deletedUploads", g.sum.DeletedUploads)
	done()
	return g.sum, g.rep.summary(g.sum)
}

// gc is one run.
type gc struct {
	m      *Maintenance
	svc    *Service
	p      access.Principal
	opts   GCOptions
	cutoff time.Time
	rep    *reporter[GCSummary]
	sum    GCSummary
}

// uploads expires the upload sessions not touched since the cutoff, with
// their chunks.
func (g *gc) uploads(ctx context.Context) error {
	reg := g.m.uploads
	if reg == nil {
		return nil
	}
	for {
		stale, err := reg.StaleUploads(ctx, g.cutoff, min(100, maxStaleSessions))
		if err != nil {
			return err
		}
		for _, u := range stale {
			if err := g.rep.step(0); err != nil {
				return err
			}
			if !g.opts.DryRun && !reg.ExpireUpload(ctx, u.ID, g.cutoff) {
				continue // touched since it was listed
			}
			g.sum.DeletedUploads++
			if err := g.rep.finding(Finding{Kind: FindingUpload, Key: u.ID, Detail: fmt.Sprintf("session in %s, %d bytes received, last touched %s", u.Repository, u.Offset, u.UpdatedAt.Format(time.RFC3339))}); err != nil {
				return err
			}
		}
		// A dry run removes nothing, so the next page would be this one.
		if len(stale) < 100 || g.opts.DryRun || g.sum.DeletedUploads >= maxStaleSessions {
			return nil
		}
	}
}

// staging removes staging objects older than the cutoff and the chunks of
// uploads that have no session any more, then the backend's partial
// writes.
func (g *gc) staging(ctx context.Context) error {
	s := g.svc
	// Chunks of one upload are listed together: its session is looked up
	// once, and it is reported once.
	var lastID string
	var lastHasSession, lastReported bool
	err := s.blobs.ListStaging(ctx, func(o store.StagingObject) error {
		if err := g.rep.step(o.Size); err != nil {
			return err
		}
		if o.ModTime.After(g.cutoff) {
			return nil
		}
		if o.UploadID != "" {
			if o.UploadID != lastID {
				lastID, lastReported = o.UploadID, false
				lastHasSession = false
				if reg := g.m.uploads; reg != nil {
					has, err := reg.UploadExists(ctx, o.UploadID)
					if err != nil {
						return err
					}
					lastHasSession = has
				}
			}
			if lastHasSession {
				return nil // the session decides (uploads phase)
			}
		}
		if !g.opts.DryRun {
			if err := s.blobs.DeleteStaging(ctx, o.Key); err != nil {
				return err
			}
		}
		if o.UploadID != "" && lastReported {
			return nil
		}
		lastReported = true
		g.sum.DeletedUploads++
		return g.rep.finding(Finding{Kind: FindingUpload, Key: o.Key, Detail: fmt.Sprintf("abandoned upload data, last written %s", o.ModTime.Format(time.RFC3339))})
	})
	if err != nil || g.opts.DryRun {
		return err
	}
	n, err := s.blobs.SweepPartials(ctx, g.cutoff)
	g.sum.DeletedPartials += int64(n)
	return err
}

// blobs deletes the blobs nothing refers to that are older than the
// cutoff, each under the protocol above.
func (g *gc) blobs(ctx context.Context) error {
	s := g.svc
	return s.blobs.ListBlobs(ctx, func(sb store.StoredBlob) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.sum.Blobs++
		if err := g.rep.step(sb.Size); err != nil {
			return err
		}
		if sb.Digest == "" {
			return nil // not the store's: fsck reports it, gc leaves it
		}
		if sb.ModTime.After(g.cutoff) {
			g.sum.KeptYoung++
			return nil
		}
		referenced, err := s.store.BlobReferenced(ctx, sb.Digest)
		if err != nil {
			return err
		}
		if referenced {
			g.sum.KeptReferenced++
			return nil
		}
		if g.opts.DryRun {
			return g.collected(sb, sb.Size)
		}
		deleted, err := g.delete(ctx, sb)
		if err != nil || !deleted {
			return err
		}
		return g.collected(sb, sb.Size)
	})
}

func (g *gc) collected(sb store.StoredBlob, size int64) error {
	g.sum.DeletedBlobs++
	g.sum.DeletedBytes += size
	return g.rep.finding(Finding{Kind: FindingOrphan, Digest: sb.Digest, Detail: fmt.Sprintf("%d bytes nothing refers to, last written %s", size, sb.ModTime.Format(time.RFC3339))})
}

// delete deletes one unreferenced blob unless a writer got to it first.
func (g *gc) delete(ctx context.Context, sb store.StoredBlob) (bool, error) {
	s := g.svc
	now := s.now()
	begun, err := BeginDeletion(ctx, s.store, sb.Digest, now, now.Add(-claimTTL))
	if err != nil {
		return false, err
	}
	if !begun {
		// Referenced or claimed since it was listed.
		g.sum.KeptClaimed++
		return false, nil
	}
	deleted := false
	defer func() {
		if err := s.store.EndBlobDeletion(context.WithoutCancel(ctx), g.p.Actor(), sb.Digest, deleted, sb.Size); err != nil {
			s.log.Warn("ending a blob deletion failed; writers wait for it to expire", "digest", sb.Digest, "err", err)
		}
	}()
	// Written again since it was listed (a push that repaired it)?
	info, err := s.blobs.StatBlob(ctx, sb.Digest)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if info.ModTime.After(g.cutoff) {
		g.sum.KeptYoung++
		return false, nil
	}
	dctx, cancel := context.WithTimeout(ctx, gcDeleteTimeout)
	defer cancel()
	if err := s.blobs.Delete(dctx, sb.Digest); err != nil {
		return false, err
	}
	deleted = true
	s.log.Info("blob collected", "digest", sb.Digest, "size", sb.Size, "by", g.p.Name)
	return true, nil
}

// CollectSummary is what Collect removed.
type CollectSummary struct {
	DeletedBlobs int64
	DeletedBytes int64
	// Kept: digests still referenced, claimed by a writer, or not stored.
	Kept int64
}

// Collect deletes, as an admin, those of digests that nothing refers to
// any more, each through gc's own protocol (BeginDeletion, a check that
// the blob was not written again, the delete, EndBlobDeletion, which
// records ActionBlobCollected): a writer that claimed a blob, or a
// reference committed meanwhile, keeps it. It is how a caller that has
// just removed references (a retention run) frees their bytes at once,
// without a grace period: the digests are named because their last
// reference is gone, and the claims cover the writers racing it. It does
// not take the fsck/gc slot (one run of either at a time): each deletion
// is decided in the database, which every collector shares.
func (m *Maintenance) Collect(ctx context.Context, p access.Principal, digests []digest.Digest) (CollectSummary, error) {
	var sum CollectSummary
	if !p.Has(access.RoleAdmin) {
		return sum, fmt.Errorf("%w: collecting blobs needs the admin role", errdef.ErrDenied)
	}
	s := m.svc
	g := &gc{m: m, svc: s, p: p, cutoff: s.now(), rep: &reporter[GCSummary]{emit: func(MaintenanceEvent[GCSummary]) error { return nil }}}
	seen := make(map[digest.Digest]bool, len(digests))
	for _, d := range digests {
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		info, err := s.blobs.StatBlob(ctx, d)
		if errors.Is(err, store.ErrNotFound) {
			sum.Kept++
			continue
		}
		if err != nil {
			return sum, fmt.Errorf("collect %s: %w", d, err)
		}
		deleted, err := g.delete(ctx, store.StoredBlob{Info: info, Digest: d})
		if err != nil {
			return sum, fmt.Errorf("collect %s: %w", d, err)
		}
		if !deleted {
			sum.Kept++
			continue
		}
		sum.DeletedBlobs++
		sum.DeletedBytes += info.Size
	}
	return sum, nil
}
