package auditlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memSource is a log held in memory: Verify's work without the server's
// (the HTTP and database side is measured by dml bench and
// cmd/dml BenchmarkAuditVerify).
type memSource struct {
	key        string
	checkpoint []byte
	records    [][]byte
}

func (s *memSource) Key(context.Context) ([]byte, error)        { return []byte(s.key), nil }
func (s *memSource) Checkpoint(context.Context) ([]byte, error) { return s.checkpoint, nil }
func (s *memSource) Entries(_ context.Context, start, limit int64) (io.ReadCloser, error) {
	var b bytes.Buffer
	for i := start; i < min(start+limit, int64(len(s.records))); i++ {
		b.Write(s.records[i])
		b.WriteByte('\n')
	}
	return io.NopCloser(&b), nil
}
func (s *memSource) ConsistencyProof(context.Context, int64, int64) (tlog.TreeProof, error) {
	return nil, fmt.Errorf("not needed by a first verification")
}

func benchRecords(b *testing.B, n int64) [][]byte {
	b.Helper()
	out := make([][]byte, n)
	at := time.Unix(1700000000, 0).UTC()
	for i := range n {
		rec, err := Encode(Record{Index: i, Time: at.Add(time.Duration(i) * time.Millisecond), Actor: Actor{TokenID: "tok_pipeline", Name: "pipeline"},
			Action: "artifact.created", Subject: fmt.Sprintf("payments/api-%d:1.%d.0", i%100, i),
			Details: json.RawMessage(fmt.Sprintf(`{"digest":"sha256:%064x","size":4096}`, i))})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = rec
	}
	return out
}

// BenchmarkVerify is a first verification (dml audit verify with no saved
// state) of logs of 10,000 and 100,000 records held in memory: parsing
// each record's index, hashing it into the Merkle tree, the checkpoint's
// signature and the leaves kept for the next run. ns/op over records/op
// is the cost per record; docs/performance.md extrapolates to 1,000,000.
func BenchmarkVerify(b *testing.B) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "dml.bench")
	if err != nil {
		b.Fatal(err)
	}
	key, err := NewLogKey(skey)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int64{10_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			records := benchRecords(b, n)
			var tree Tree
			for _, r := range records {
				if _, err := tree.Append(r); err != nil {
					b.Fatal(err)
				}
			}
			root, err := tree.Root(n)
			if err != nil {
				b.Fatal(err)
			}
			msg, err := Sign(Checkpoint{Origin: "dml.bench", Size: n, Root: root}, key.Signer)
			if err != nil {
				b.Fatal(err)
			}
			src := &memSource{key: vkey, checkpoint: msg, records: records}
			b.ResetTimer()
			for b.Loop() {
				res, _, err := Verify(context.Background(), src, nil, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if res.Checkpoint.Size != n {
					b.Fatalf("verified %d records, want %d", res.Checkpoint.Size, n)
				}
			}
			b.ReportMetric(float64(n), "records/op")
		})
	}
}

// BenchmarkTreeAppend is appending one record to the Merkle tree: its
// index checked, its leaf hash and the interior hashes it completes — the
// hashing every verified record pays. The tree starts again every 65,536
// records (prepared, so that encoding them is not timed).
func BenchmarkTreeAppend(b *testing.B) {
	records := benchRecords(b, 1<<16)
	var tree Tree
	i := 0
	for b.Loop() {
		if i == len(records) {
			tree, i = Tree{}, 0
		}
		if _, err := tree.Append(records[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
