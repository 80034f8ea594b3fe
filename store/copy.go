package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Copying every blob of one store into another (`dml admin copy-blobs`):
// a data directory's blobs into the S3 bucket that replicas share. Each
// blob goes through Ingest with its digest and size known, so the
// destination makes it visible only once its bytes verified; a blob the
// destination already holds at the right size is left alone, so a copy
// that stopped half-way is simply run again.

// Outcomes of one blob in CopyBlobs.
const (
	CopyCopied  = "copied"  // written to the destination, verified
	CopySkipped = "skipped" // the destination holds it at the right size
	CopyFailed  = "failed"  // the source's bytes do not hash to its digest
	CopyStray   = "stray"   // an object under blobs/ that names no digest
)

// CopyEvent is one object CopyBlobs looked at.
type CopyEvent struct {
	Outcome string
	// Key is the source's key; Digest is empty for a stray object.
	Key    string
	Digest digest.Digest
	Size   int64
	// Err says why a blob failed.
	Err error
}

// CopySummary counts what CopyBlobs did.
type CopySummary struct {
	Blobs       int64 // blobs in the source
	Copied      int64
	CopiedBytes int64
	Skipped     int64
	Failed      int64
	Stray       int64
}

// CopyBlobs copies every blob of from into to and calls fn, if not nil,
// for each object of from's blob area. A blob to already holds at the
// right size is skipped; one it holds at another size is replaced, once
// the copy verified. A blob whose bytes in from do not hash to its digest
// is not copied: it is reported (CopyFailed), counted, and the copy goes
// on, because it says nothing about the other blobs. Any other error (the
// destination cannot be written, the source cannot be read) stops the
// copy and is returned.
func CopyBlobs(ctx context.Context, from, to *Store, fn func(CopyEvent)) (CopySummary, error) {
	var sum CopySummary
	report := func(ev CopyEvent) {
		if fn != nil {
			fn(ev)
		}
	}
	err := from.ListBlobs(ctx, func(b StoredBlob) error {
		if b.Digest == "" {
			sum.Stray++
			report(CopyEvent{Outcome: CopyStray, Key: b.Key, Size: b.Size})
			return nil
		}
		sum.Blobs++
		ev := CopyEvent{Key: b.Key, Digest: b.Digest, Size: b.Size}
		have, err := to.Stat(ctx, b.Digest)
		switch {
		case err == nil && have == b.Size:
			sum.Skipped++
			ev.Outcome = CopySkipped
			report(ev)
			return nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return fmt.Errorf("destination: %w", err)
		}
		if err := copyBlob(ctx, from, to, b, err == nil); err != nil {
			if !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrSizeMismatch) {
				return err
			}
			sum.Failed++
			ev.Outcome, ev.Err = CopyFailed, err
			report(ev)
			return nil
		}
		sum.Copied++
		sum.CopiedBytes += b.Size
		ev.Outcome = CopyCopied
		report(ev)
		return nil
	})
	return sum, err
}

// copyBlob streams blob b from from into to; replace writes over a copy
// of another size that to holds.
func copyBlob(ctx context.Context, from, to *Store, b StoredBlob, replace bool) error {
	rc, err := from.Open(ctx, b.Digest, 0, -1)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer rc.Close()
	opts := IngestOptions{Digest: b.Digest, Size: b.Size}
	if replace {
		opts.Replace = func(digest.Digest) (bool, error) { return true, nil }
	}
	if _, err := to.Ingest(ctx, rc, opts); err != nil {
		return fmt.Errorf("copy %s: %w", b.Digest, err)
	}
	return nil
}
