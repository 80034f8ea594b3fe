package auditlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Source is where a verifier reads the log from (the dml API client, or
// anything serving the same data).
type Source interface {
	Key(ctx context.Context) ([]byte, error)
	Checkpoint(ctx context.Context) ([]byte, error)
	Entries(ctx context.Context, start, limit int64) (io.ReadCloser, error)
	ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error)
}

// State is what a verifier remembers between runs: the log key it trusts,
// the last checkpoint it verified, and the leaf hash of every record it
// has seen, so that a rewritten record is named even when the server
// rewrote its whole tree to match.
type State struct {
	LogKey     string      `json:"logKey"`
	Checkpoint string      `json:"checkpoint"`
	Size       int64       `json:"size"`
	Root       tlog.Hash   `json:"root"`
	Leaves     []tlog.Hash `json:"-"`
}

// VerifyError is a verification failure. Index is the first bad record, or
// -1 when the failure is not about one record (a bad signature).
type VerifyError struct {
	Index int64
	Err   error
}

func (e *VerifyError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("audit log record %d: %v", e.Index, e.Err)
	}
	return "audit log: " + e.Err.Error()
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Errors a verification can end with (wrapped in *VerifyError).
var (
	ErrKeyChanged   = errors.New("the log key differs from the one trusted")
	ErrRecordWrong  = errors.New("record does not hash into the signed tree")
	ErrRewritten    = errors.New("history rewritten since the saved checkpoint")
	ErrLogShrunk    = errors.New("log is shorter than at the saved checkpoint")
	ErrRecordMoved  = errors.New("record out of place (inserted, deleted or reordered)")
	ErrLogTruncated = errors.New("log ended before the checkpoint's size")
)

// Options tune Verify.
type Options struct {
	// LogKey pins the verifier key; otherwise the saved one, otherwise
	// the server's (trust on first use).
	LogKey string
	// PageSize is how many records one request fetches (default 100,000).
	PageSize int64
}

// Result sums up a successful verification.
type Result struct {
	Checkpoint   Checkpoint
	PreviousSize int64
	KeyPinned    bool
}

// Verify downloads the whole log, recomputes the Merkle tree, checks the
// signed checkpoint against it, and checks that the log is an extension of
// the state saved last time. It returns the new state to save.
func Verify(ctx context.Context, src Source, prev *State, opts Options) (Result, *State, error) {
	if opts.PageSize <= 0 {
		opts.PageSize = 100_000
	}
	res := Result{}
	key := strings.TrimSpace(opts.LogKey)
	res.KeyPinned = key != ""
	served, err := src.Key(ctx)
	if err != nil {
		return res, nil, fmt.Errorf("fetching the log key: %w", err)
	}
	switch {
	case key != "":
	case prev != nil && prev.LogKey != "":
		key = prev.LogKey
		res.KeyPinned = true
	default:
		key = strings.TrimSpace(string(served))
	}
	if strings.TrimSpace(string(served)) != key {
		return res, nil, &VerifyError{Index: -1, Err: fmt.Errorf("%w: server serves %q, trusted %q", ErrKeyChanged, strings.TrimSpace(string(served)), key)}
	}
	msg, err := src.Checkpoint(ctx)
	if err != nil {
		return res, nil, fmt.Errorf("fetching the checkpoint: %w", err)
	}
	cp, err := Open(msg, key)
	if err != nil {
		return res, nil, &VerifyError{Index: -1, Err: err}
	}
	res.Checkpoint = cp
	if prev != nil {
		res.PreviousSize = prev.Size
		if cp.Size < prev.Size {
			return res, nil, &VerifyError{Index: cp.Size, Err: fmt.Errorf("%w: %d records now, %d at the saved checkpoint", ErrLogShrunk, cp.Size, prev.Size)}
		}
	}

	tree := &Tree{}
	for tree.Size() < cp.Size {
		if err := readPage(ctx, src, tree, prev, min(opts.PageSize, cp.Size-tree.Size())); err != nil {
			return res, nil, err
		}
	}
	root, err := tree.Root(cp.Size)
	if err != nil {
		return res, nil, err
	}
	if root != cp.Root {
		bad, err := firstBadRecord(ctx, src, tree, cp)
		if err != nil {
			return res, nil, err
		}
		return res, nil, &VerifyError{Index: bad, Err: fmt.Errorf("%w (signed root %x, recomputed %x)", ErrRecordWrong, cp.Root[:8], root[:8])}
	}
	if prev != nil && prev.Size > 0 {
		local, err := tree.Root(prev.Size)
		if err != nil {
			return res, nil, err
		}
		if local != prev.Root {
			return res, nil, &VerifyError{Index: -1, Err: fmt.Errorf("%w: the first %d records no longer hash to the saved root", ErrRewritten, prev.Size)}
		}
		proof, err := src.ConsistencyProof(ctx, prev.Size, cp.Size)
		if err == nil {
			err = tlog.CheckTree(proof, cp.Size, cp.Root, prev.Size, prev.Root)
		}
		if err != nil {
			return res, nil, &VerifyError{Index: -1, Err: fmt.Errorf("%w: no valid consistency proof from size %d to %d: %v", ErrRewritten, prev.Size, cp.Size, err)}
		}
	}
	next := &State{LogKey: key, Checkpoint: string(msg), Size: cp.Size, Root: cp.Root, Leaves: make([]tlog.Hash, cp.Size)}
	for i := int64(0); i < cp.Size; i++ {
		next.Leaves[i] = tree.Leaf(i)
	}
	return res, next, nil
}

// maxRecord bounds one record line.
const maxRecord = 4 << 20

func readPage(ctx context.Context, src Source, tree *Tree, prev *State, n int64) error {
	start := tree.Size()
	rc, err := src.Entries(ctx, start, n)
	if err != nil {
		return fmt.Errorf("fetching records from %d: %w", start, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), maxRecord)
	for tree.Size() < start+n && sc.Scan() {
		line := sc.Bytes()
		pos := tree.Size()
		leaf, err := tree.Append(line)
		if err != nil {
			var ie *IndexError
			if errors.As(err, &ie) {
				return &VerifyError{Index: pos, Err: fmt.Errorf("%w: found index %d", ErrRecordMoved, ie.Index)}
			}
			return &VerifyError{Index: pos, Err: err}
		}
		if prev != nil && pos < int64(len(prev.Leaves)) && prev.Leaves[pos] != leaf {
			return &VerifyError{Index: pos, Err: fmt.Errorf("%w: record changed since the saved checkpoint", ErrRewritten)}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading records from %d: %w", start, err)
	}
	if tree.Size() < start+n {
		return &VerifyError{Index: tree.Size(), Err: ErrLogTruncated}
	}
	return nil
}

// firstBadRecord finds the first record that is not part of the signed
// tree: the largest k whose recomputed prefix root the server can prove
// consistent with the signed root is the number of good records before it.
func firstBadRecord(ctx context.Context, src Source, tree *Tree, cp Checkpoint) (int64, error) {
	good := func(k int64) (bool, error) {
		if k == 0 {
			return true, nil
		}
		if k == cp.Size {
			return false, nil
		}
		root, err := tree.Root(k)
		if err != nil {
			return false, err
		}
		proof, err := src.ConsistencyProof(ctx, k, cp.Size)
		if err != nil {
			return false, nil
		}
		return tlog.CheckTree(proof, cp.Size, cp.Root, k, root) == nil, nil
	}
	var ferr error
	// sort.Search finds the smallest k in [1, size] whose prefix is bad;
	// record k-1 is then the first bad one.
	k := sort.Search(int(cp.Size), func(i int) bool {
		ok, err := good(int64(i + 1))
		if err != nil && ferr == nil {
			ferr = err
		}
		return !ok
	})
	return int64(k), ferr
}
