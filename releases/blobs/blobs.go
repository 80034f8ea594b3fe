package blobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/defaults"
	"github.com/dmlproject/dml/releases/internal/keyed"
	"github.com/dmlproject/dml/store"
	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
)

// The rules that keep "the bytes served are exactly the bytes admitted"
// true after the bytes were written:
//
//   - Every read of a whole blob is verified while it streams (the store's
//     ReadSeeker). A read that finds the bytes wrong never delivers the
//     last byte; the blob is marked corrupt (audit record, ERROR log,
//     metric) and every later request for it is refused with
//     ErrBlobCorrupt before anything is sent, until it is repaired.
//   - A blob whose stored size is not its recorded size is corrupt too,
//     found by the Stat that opens it.
//   - A partial read (a Range request) cannot check what it serves: it is
//     served only when the backend object is the one that last verified
//     (same fingerprint: size, modification time, ETag or inode+ctime),
//     and otherwise after a verification of the whole blob. Every write of
//     a blob by the DML records it as verified, so this costs a read only
//     after the object was changed behind the DML's back (or for blobs
//     written before the record existed). Silent media corruption that
//     changes no metadata is found by full reads and by fsck.
//   - Pushing the same bytes again repairs a blob: a stored copy that is
//     marked corrupt, or changed since it was verified, is written over
//     (store.IngestOptions.Replace) once the pushed body verified, and
//     the mark is cleared. fsck clears it too when the bytes verify again
//     (put back from a backup).

const (
	sourceRead = "read"
	sourceFsck = "fsck"
	sourcePush = "push"
)

// Service is the domain's view of stored bytes: verified reads, ingest
// with repair, and the claims that keep gc off blobs being referred to.
type Service struct {
	store Store
	blobs *store.Store
	log   *slog.Logger
	now   func() time.Time
	// verifying serialises the verifications of one blob before a Range
	// read, so concurrent requests read it once. It saves work: each
	// request would otherwise verify the blob itself, and a replica that
	// does verifies on its own (what it records, under the blob's lock in
	// the store, is the same whichever replica records it).
	verifying keyed.Mutex
	// integrity counts corrupt blobs found and repaired.
	integrity integrityCounters
}

// New returns the blob service over the integrity store st and the blob
// store blobs. A nil log keeps it silent, a nil now is the wall clock.
func New(st Store, blobs *store.Store, log *slog.Logger, now func() time.Time) (*Service, error) {
	if st == nil || blobs == nil {
		return nil, errors.New("blobs: an integrity store and a blob store are required")
	}
	return &Service{store: st, blobs: blobs, log: defaults.Logger(log), now: defaults.Clock(now)}, nil
}

// Store is the blob store itself (chunked uploads, readiness, statistics).
func (s *Service) Store() *store.Store { return s.blobs }

// CleanStaging removes what crashed uploads left behind.
func (s *Service) CleanStaging(ctx context.Context, maxAge time.Duration) (int, error) {
	return s.blobs.CleanStaging(ctx, maxAge)
}

// integrityCounters count what this service found and repaired since it
// started; the API exports them as Prometheus counters.
type integrityCounters struct {
	corruptRead, corruptFsck, repaired atomic.Int64
}

// CorruptionsFound is how many blobs this service marked corrupt since it
// started, found by source: "read" (a download) or "fsck".
func (s *Service) CorruptionsFound(source string) int64 {
	switch source {
	case sourceRead:
		return s.integrity.corruptRead.Load()
	case sourceFsck:
		return s.integrity.corruptFsck.Load()
	}
	return 0
}

// BlobsRepaired is how many corrupt blobs this service saw repaired (by a
// push, or verified again by fsck) since it started.
func (s *Service) BlobsRepaired() int64 { return s.integrity.repaired.Load() }

// corruptError is the refusal of a blob marked corrupt.
func corruptError(rec BlobIntegrity) error {
	return fmt.Errorf("%w: %s, found %s (%s); an admin repairs it by pushing the same bytes again",
		ErrBlobCorrupt, rec.Digest, rec.CorruptAt.Format(time.RFC3339), rec.CorruptReason)
}

// corruptReason is why the store found a blob corrupt, for the record.
func corruptReason(err error) string {
	var ce *store.CorruptError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return err.Error()
}

// blobCorrupt marks d corrupt after a read found its bytes wrong. state is
// the fingerprint of the object that was read: if the object has been
// written since (a repair that raced with the read), what failed is no
// longer stored and nothing is marked.
func (s *Service) blobCorrupt(ctx context.Context, actor access.Actor, d digest.Digest, state, reason, source string) {
	ctx = context.WithoutCancel(ctx)
	if state != "" {
		if info, err := s.blobs.StatBlob(ctx, d); err == nil && info.Fingerprint() != state {
			s.log.Warn("a read of a blob failed verification, but the blob was written since; not marking it", "digest", d, "reason", reason)
			return
		}
	}
	marked, err := MarkCorrupt(ctx, s.store, actor, d, reason, source, s.now())
	if err != nil {
		s.log.Error("stored blob is corrupt, and marking it failed", "digest", d, "reason", reason, "source", source, "err", err)
		return
	}
	if !marked {
		return
	}
	switch source {
	case sourceRead:
		s.integrity.corruptRead.Add(1)
	case sourceFsck:
		s.integrity.corruptFsck.Add(1)
	}
	s.log.Error("stored blob is corrupt; it is refused until its bytes are pushed again", "digest", d, "reason", reason, "source", source, "by", actor.Name)
}

// blobVerified records that d verified with the backend object in state.
func (s *Service) blobVerified(ctx context.Context, actor access.Actor, d digest.Digest, state, source string) error {
	repaired, err := RecordVerified(context.WithoutCancel(ctx), s.store, actor, d, state, source, s.now())
	if err != nil {
		return err
	}
	if repaired {
		s.integrity.repaired.Add(1)
		s.log.Info("corrupt blob repaired", "digest", d, "source", source, "by", actor.Name)
	}
	return nil
}

// BlobReader serves one stored blob: an io.ReadSeeker for
// http.ServeContent that verifies whole reads (see the rules above) and
// marks the blob when they fail. Close it when done.
type BlobReader struct {
	svc   *Service
	ctx   context.Context
	actor access.Actor
	d     digest.Digest
	size  int64
	// state is the fingerprint of the object when it was opened; verified
	// is true when that state is the one that last verified.
	state    string
	verified bool
	rs       *store.ReadSeeker
	err      error
}

// Open opens d, of the recorded size (-1: the stored one), for actor,
// after the checks that need no read: a blob marked corrupt, or whose
// stored size is wrong, is refused with ErrBlobCorrupt before anything is
// served. The caller has authorised the read.
func (s *Service) Open(ctx context.Context, actor access.Actor, d digest.Digest, size int64) (*BlobReader, error) {
	rec, err := s.store.BlobIntegrity(ctx, d)
	if err != nil {
		return nil, err
	}
	if rec.Corrupt() {
		return nil, corruptError(rec)
	}
	info, err := s.blobs.StatBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	if size >= 0 && info.Size != size {
		err := &store.CorruptError{Digest: d, Reason: fmt.Sprintf("%d bytes stored, %d recorded", info.Size, size)}
		s.blobCorrupt(ctx, actor, d, info.Fingerprint(), err.Reason, sourceRead)
		return nil, err
	}
	size = info.Size
	return &BlobReader{
		svc: s, ctx: ctx, actor: actor, d: d, size: size,
		state: info.Fingerprint(), verified: rec.VerifiedState == info.Fingerprint(),
		rs: s.blobs.ReadSeeker(ctx, d, size),
	}, nil
}

// Digest is the blob's digest.
func (b *BlobReader) Digest() digest.Digest { return b.d }

// Size is the blob's size.
func (b *BlobReader) Size() int64 { return b.size }

// Read reads the blob. A whole read that finds the bytes wrong fails with
// ErrBlobCorrupt on the Read that would deliver the last byte, delivering
// nothing of it, and marks the blob.
func (b *BlobReader) Read(p []byte) (int, error) {
	n, err := b.rs.Read(p)
	switch {
	case err == io.EOF:
		if !b.verified && b.rs.Verified() {
			b.verified = true
			if rerr := b.svc.blobVerified(b.ctx, b.actor, b.d, b.state, sourceRead); rerr != nil {
				b.svc.log.Warn("recording a verified blob failed", "digest", b.d, "err", rerr)
			}
		}
	case err != nil:
		if b.err == nil {
			b.err = err
		}
		if errors.Is(err, store.ErrCorrupt) {
			b.svc.blobCorrupt(b.ctx, b.actor, b.d, b.state, corruptReason(err), sourceRead)
		}
	}
	return n, err
}

// Seek sets where the next Read starts.
func (b *BlobReader) Seek(offset int64, whence int) (int64, error) {
	return b.rs.Seek(offset, whence)
}

// Close releases the backend reader.
func (b *BlobReader) Close() error { return b.rs.Close() }

// Err is the first error a Read returned other than io.EOF: after a
// transfer, it says whether the client got everything it was sent.
func (b *BlobReader) Err() error { return b.err }

// VerifyForRange makes sure that what a partial read will serve is the
// blob as verified: when the backend object changed since it last
// verified (or never did), the whole blob is read and checked first, once
// for all requests waiting on it. A blob that fails is marked and
// ErrBlobCorrupt is returned.
func (b *BlobReader) VerifyForRange() error {
	if b.verified {
		return nil
	}
	s := b.svc
	defer s.verifying.Lock(b.d.String())()
	// Another request may have verified it while this one waited.
	rec, err := s.store.BlobIntegrity(b.ctx, b.d)
	if err != nil {
		return err
	}
	if rec.Corrupt() {
		return corruptError(rec)
	}
	if rec.VerifiedState == b.state {
		b.verified = true
		return nil
	}
	info, err := s.blobs.Verify(b.ctx, b.d, b.size)
	if errors.Is(err, store.ErrCorrupt) {
		s.blobCorrupt(b.ctx, b.actor, b.d, info.Fingerprint(), corruptReason(err), sourceRead)
		return err
	}
	if err != nil {
		return err
	}
	if info.Fingerprint() != b.state {
		// Written since it was opened: what verified is the new object,
		// which the range read (opened lazily) will read too.
		b.state = info.Fingerprint()
	}
	b.verified = true
	return s.blobVerified(b.ctx, b.actor, b.d, b.state, sourceRead)
}

// ReadVerified reads a whole blob of at most limit bytes, verified (and
// marked when it is not), for the domain's own use.
func (s *Service) ReadVerified(ctx context.Context, actor access.Actor, d digest.Digest, limit int64) ([]byte, error) {
	info, err := s.blobs.StatBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	if info.Size > limit {
		return nil, fmt.Errorf("%w: blob %s is larger than %d bytes", store.ErrTooLarge, d, limit)
	}
	b, err := s.Open(ctx, actor, d, info.Size)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d, err)
	}
	return data, nil
}

// Claims keep gc away from a blob between the moment a write finds (or
// writes) it and the moment its reference is committed; deletion marks
// keep writers from trusting a blob gc is deleting. See gc.go for the
// protocol.
const (
	// claimTTL: a claim older than this belongs to a writer that died. A
	// writer holds its claim from the check of the stored blob to the
	// commit of its reference: milliseconds.
	claimTTL = time.Hour
	// deletionTTL: a deletion begun longer ago belongs to a collector that
	// died. gc bounds each backend delete well below it (gcDeleteTimeout).
	deletionTTL = 5 * time.Minute
	// claimWait bounds how long a writer waits for a deletion to end.
	claimWait = 30 * time.Second
)

// claimBlob claims d for a write that is about to refer to it, waiting for
// a deletion of d under way to finish. It returns the function that drops
// the claim, to call once the reference is committed (or abandoned).
func (s *Service) claimBlob(ctx context.Context, d digest.Digest) (func(), error) {
	id := uuid.NewString()
	deadline := time.Now().Add(claimWait)
	wait := 10 * time.Millisecond
	for {
		now := s.now()
		err := Claim(ctx, s.store, id, d, now, now.Add(-deletionTTL))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrBlobCollecting) || time.Now().After(deadline) {
			return nil, fmt.Errorf("claiming blob %s: %w", d, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
	return func() {
		if err := s.store.DropBlobClaim(context.WithoutCancel(ctx), id); err != nil {
			s.log.Warn("dropping a blob claim failed; it expires by itself", "digest", d, "err", err)
		}
	}, nil
}

// MustReplace reports whether a stored copy of d may not stand for bytes
// being pushed: it is marked corrupt, or its backend object changed since
// it last verified (or never verified). Rewriting it with the pushed
// bytes, which verify while they are written, is the repair.
func (s *Service) MustReplace(ctx context.Context, d digest.Digest) (bool, error) {
	rec, err := s.store.BlobIntegrity(ctx, d)
	if err != nil {
		return false, err
	}
	if rec.Corrupt() {
		return true, nil
	}
	info, err := s.blobs.StatBlob(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // nothing to replace: it is written anyway
	}
	if err != nil {
		return false, err
	}
	return rec.VerifiedState != info.Fingerprint(), nil
}

// Ingest streams a body into the blob store for actor, repairing a stored
// copy that is corrupt or unverified (MustReplace), and holds the blob
// against gc (Hold). Call release once the reference is committed.
func (s *Service) Ingest(ctx context.Context, actor access.Actor, r io.Reader, opts store.IngestOptions) (store.Blob, func(), error) {
	opts.Replace = func(d digest.Digest) (bool, error) { return s.MustReplace(ctx, d) }
	blob, err := s.blobs.Ingest(ctx, r, opts)
	if err != nil {
		return store.Blob{}, nil, err
	}
	release, err := s.Hold(ctx, actor, blob.Digest, blob.Created)
	if err != nil {
		return store.Blob{}, nil, err
	}
	return blob, release, nil
}

// Hold claims d against gc and checks that it is (still) stored, for a
// write about to refer to it; written says the write stored the bytes
// itself, which records them as verified (clearing a corrupt mark: the
// repair). Call release once the reference is committed.
func (s *Service) Hold(ctx context.Context, actor access.Actor, d digest.Digest, written bool) (release func(), err error) {
	drop, err := s.claimBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			drop()
		}
	}()
	info, err := s.blobs.StatBlob(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		// gc deleted it between the write's check and the claim: the
		// push must send the bytes again.
		return nil, fmt.Errorf("%w: blob %s was garbage-collected while it was pushed; push it again", errdef.ErrConflict, d)
	}
	if err != nil {
		return nil, err
	}
	if written {
		if err := s.blobVerified(ctx, actor, d, info.Fingerprint(), sourcePush); err != nil {
			return nil, err
		}
	}
	return drop, nil
}

// Usable reports whether d is stored and not marked corrupt: a blob that
// may stand for the same bytes pushed again (a mount), or must be
// uploaded, which repairs it.
func (s *Service) Usable(ctx context.Context, d digest.Digest) (bool, error) {
	if rec, err := s.store.BlobIntegrity(ctx, d); err != nil || rec.Corrupt() {
		return false, err
	}
	return s.blobs.Exists(ctx, d)
}
