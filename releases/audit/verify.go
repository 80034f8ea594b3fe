package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dmlproject/dml/releases/auditlog"
	"golang.org/x/mod/sumdb/tlog"
)

// Verification is the outcome of the server's latest check of its own
// audit log (VerifyLog).
type Verification struct {
	// At is when it ended; zero before the first.
	At time.Time
	// OK: the log verified. Problem says why not.
	OK      bool
	Problem string
	// Records is the size of the log verified.
	Records int64
	// Runs and Failures count the checks since the process started.
	Runs, Failures int64
}

// verifier is what VerifyLog remembers between runs: the last state that
// verified (without its leaves, which would hold 32 bytes per record in
// memory between runs) and the latest outcome.
type verifier struct {
	mu   sync.Mutex
	prev *auditlog.State
	last Verification
	// checkpointAt is when the service last signed a checkpoint.
	checkpointAt time.Time
}

// VerifyLog checks the log as `dml audit verify` does, reading the
// database rather than the API: it recomputes the Merkle tree from every
// record, checks it against a checkpoint it signs now, and checks that
// the log extends the one the previous run of this process verified. A
// record changed, removed or inserted behind the server's back, or
// hashes rewritten to match, fail it. The outcome is kept (Verification)
// for monitoring; a failure is also the error returned, a
// *auditlog.VerifyError.
//
// It reads the whole log, holding one hash per record while it runs.
func (s *Service) VerifyLog(ctx context.Context) error {
	s.verify.mu.Lock()
	prev := s.verify.prev
	s.verify.mu.Unlock()
	res, next, err := auditlog.Verify(ctx, localSource{s}, prev, auditlog.Options{LogKey: s.logKey.VerifierKey})
	var ve *auditlog.VerifyError
	if err != nil && !errors.As(err, &ve) {
		// Not a verdict on the log (the database did not answer, the
		// context ended): the previous outcome stands.
		return fmt.Errorf("audit: verifying the log: %w", err)
	}
	s.verify.mu.Lock()
	defer s.verify.mu.Unlock()
	v := &s.verify.last
	v.At, v.Runs = s.now(), v.Runs+1
	if ve != nil {
		v.OK, v.Problem = false, ve.Error()
		v.Failures++
		s.log.Error("audit log verification failed", "problem", ve.Error())
		return err
	}
	next.Leaves = nil
	s.verify.prev = next
	v.OK, v.Problem, v.Records = true, "", res.Checkpoint.Size
	return nil
}

// Verification is the outcome of the latest VerifyLog that reached a
// verdict.
func (s *Service) Verification() Verification {
	s.verify.mu.Lock()
	defer s.verify.mu.Unlock()
	return s.verify.last
}

// LastCheckpoint is when this process last signed a checkpoint (zero if
// it has not): VerifyLog signs one on each run, and auditors' requests
// do too.
func (s *Service) LastCheckpoint() time.Time {
	s.verify.mu.Lock()
	defer s.verify.mu.Unlock()
	return s.verify.checkpointAt
}

func (s *Service) checkpointSigned() {
	s.verify.mu.Lock()
	defer s.verify.mu.Unlock()
	s.verify.checkpointAt = s.now()
}

// ScheduleVerification runs VerifyLog at once and then every interval
// until ctx ends; interval <= 0 never runs it.
func (s *Service) ScheduleVerification(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.VerifyLog(ctx); err != nil && ctx.Err() == nil {
			var ve *auditlog.VerifyError
			if !errors.As(err, &ve) {
				s.log.Warn("audit log verification could not run", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// localSource serves auditlog.Verify from the service's own store, as
// the API serves `dml audit verify`.
type localSource struct{ s *Service }

func (l localSource) Key(context.Context) ([]byte, error) {
	return []byte(l.s.logKey.VerifierKey + "\n"), nil
}

func (l localSource) Checkpoint(ctx context.Context) ([]byte, error) {
	msg, _, err := l.s.SignCheckpoint(ctx)
	return msg, err
}

// Entries streams the records as the API does: one per line.
func (l localSource) Entries(ctx context.Context, start, limit int64) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		err := l.s.store.AuditEntries(ctx, start, limit, func(e AuditEntry) error {
			if _, err := w.Write(e.Record); err != nil {
				return err
			}
			return w.WriteByte('\n')
		})
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func (l localSource) ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	return tlog.ProveTree(to, from, l.s.store.AuditHashes(ctx))
}
