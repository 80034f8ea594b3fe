package auditlog

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func record(t *testing.T, i int64) []byte {
	t.Helper()
	b, err := Encode(Record{Index: i, Time: time.Unix(1700000000+i, 5).In(time.FixedZone("x", 3600)), Actor: Actor{TokenID: "tok_1", Name: "ci"},
		Action: "artifact.pushed", Subject: "payments/api:1.0", Details: json.RawMessage(`{ "digest" : "sha256:ab" }`)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeCanonical(t *testing.T) {
	b := record(t, 3)
	want := `{"index":3,"time":"2023-11-14T22:13:23.000000005Z","actor":{"tokenId":"tok_1","name":"ci"},"action":"artifact.pushed","subject":"payments/api:1.0","details":{"digest":"sha256:ab"}}`
	if string(b) != want {
		t.Fatalf("Encode = %s\nwant      %s", b, want)
	}
	r, err := Decode(b)
	if err != nil || r.Index != 3 {
		t.Fatalf("Decode: %+v %v", r, err)
	}
	if _, err := Decode([]byte(`{"index":3, "time":"2023-11-14T22:13:23.000000005Z"}`)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-canonical record decoded: %v", err)
	}
	if n, err := ParseIndex(b); err != nil || n != 3 {
		t.Fatalf("ParseIndex = %d, %v", n, err)
	}
	for _, bad := range []string{`{"idx":1}`, `{"index":-1,`, `{"index":x,`, `{"index":12`} {
		if _, err := ParseIndex([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseIndex(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

// TestTreeMatchesTlog: the in-memory tree gives the same roots and proofs
// as tlog's own functions, for every prefix.
func TestTreeMatchesTlog(t *testing.T) {
	var tree Tree
	var leaves []tlog.Hash
	for i := int64(0); i < 67; i++ {
		rec := record(t, i)
		if _, err := tree.Append(rec); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, tlog.RecordHash(rec))
	}
	for n := int64(1); n <= tree.Size(); n++ {
		got, err := tree.Root(n)
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveRoot(leaves[:n]); got != want {
			t.Fatalf("root of %d: %x, want %x", n, got, want)
		}
		for _, i := range []int64{0, n / 2, n - 1} {
			p, err := tlog.ProveRecord(n, i, &tree)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, n, got, i, leaves[i]); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, n, err)
			}
		}
	}
	if _, err := tree.Append(record(t, 99)); err == nil {
		t.Fatal("a record with the wrong index was appended")
	} else {
		var ie *IndexError
		if !errors.As(err, &ie) || ie.Position != 67 || ie.Index != 99 {
			t.Fatalf("error %v, want IndexError at 67", err)
		}
	}
}

// naiveRoot is RFC 6962's MTH, written directly.
func naiveRoot(leaves []tlog.Hash) tlog.Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return tlog.NodeHash(naiveRoot(leaves[:k]), naiveRoot(leaves[k:]))
}

func TestCheckpointSignAndOpen(t *testing.T) {
	dir := t.TempDir()
	key, err := LoadOrCreateLogKey(dir+"/log.key", "dml.example")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateLogKey(dir+"/log.key", "ignored")
	if err != nil || again.VerifierKey != key.VerifierKey {
		t.Fatalf("reloaded key differs: %v", err)
	}
	c := Checkpoint{Origin: "dml.example", Size: 42, Root: tlog.RecordHash([]byte("x"))}
	msg, err := Sign(c, key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(msg, key.VerifierKey)
	if err != nil || got != c {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, c)
	}
	tampered := []byte(string(msg))
	tampered[len("dml.example\n")] = '9' // size 42 → 92
	if _, err := Open(tampered, key.VerifierKey); !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("tampered checkpoint opened: %v", err)
	}
	_, otherV, _ := note.GenerateKey(nil, "dml.example")
	if otherV != "" {
		if _, err := Open(msg, otherV); !errors.Is(err, ErrBadCheckpoint) {
			t.Fatalf("checkpoint opened with another key: %v", err)
		}
	}
}
