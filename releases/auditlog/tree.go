package auditlog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Tree is an in-memory Merkle tree grown one record at a time, as a
// verifier rebuilds the log from its records. It keeps tlog's stored
// hashes (about two per record), so any prefix's root can be recomputed.
type Tree struct {
	hashes []tlog.Hash
	n      int64
}

var _ tlog.HashReader = (*Tree)(nil)

// Size is the number of records added.
func (t *Tree) Size() int64 { return t.n }

// Append adds the next record (which must carry index Size()) and returns
// its leaf hash.
func (t *Tree) Append(record []byte) (tlog.Hash, error) {
	idx, err := ParseIndex(record)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("record at position %d: %w", t.n, err)
	}
	if idx != t.n {
		return tlog.Hash{}, &IndexError{Position: t.n, Index: idx}
	}
	return t.AppendHash(LeafHash(record))
}

// AppendHash adds the next leaf by its hash.
func (t *Tree) AppendHash(leaf tlog.Hash) (tlog.Hash, error) {
	hs, err := tlog.StoredHashesForRecordHash(t.n, leaf, t)
	if err != nil {
		return tlog.Hash{}, err
	}
	t.hashes = append(t.hashes, hs...)
	t.n++
	return leaf, nil
}

// Root is the root hash of the first n records (n <= Size()).
func (t *Tree) Root(n int64) (tlog.Hash, error) {
	if n < 0 || n > t.n {
		return tlog.Hash{}, fmt.Errorf("tree of %d records has no prefix of %d", t.n, n)
	}
	if n == 0 {
		return tlog.Hash{}, nil
	}
	return tlog.TreeHash(n, t)
}

// Leaf returns the leaf hash of record i.
func (t *Tree) Leaf(i int64) tlog.Hash { return t.hashes[tlog.StoredHashIndex(0, i)] }

// ReadHashes implements tlog.HashReader.
func (t *Tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("stored hash %d not in a tree of %d records", idx, t.n)
		}
		out[i] = t.hashes[idx]
	}
	return out, nil
}

// IndexError reports a record that is not where its index says: a record
// inserted, deleted or moved.
type IndexError struct {
	Position int64
	Index    int64
}

func (e *IndexError) Error() string {
	return fmt.Sprintf("record at position %d carries index %d", e.Position, e.Index)
}
