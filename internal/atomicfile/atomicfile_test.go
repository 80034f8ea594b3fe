package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// TestWrite: what a write leaves at the path and next to it, for a new
// path, an existing one, and a write that fails.
func TestWrite(t *testing.T) {
	errWrite := errors.New("write failed")
	failing := func(w io.Writer) error {
		_, _ = w.Write([]byte("half"))
		return errWrite
	}
	for _, tc := range []struct {
		name     string
		existing string // "" : no file at the path
		create   bool   // Create, else Replace
		write    func(io.Writer) error
		wantErr  error
		want     string
	}{
		{"create new", "", true, Bytes([]byte("new")), nil, "new"},
		{"create over existing", "old", true, Bytes([]byte("new")), fs.ErrExist, "old"},
		{"replace new", "", false, Bytes([]byte("new")), nil, "new"},
		{"replace existing", "old", false, Bytes([]byte("new")), nil, "new"},
		{"create, write fails", "", true, failing, errWrite, ""},
		{"replace, write fails", "old", false, failing, errWrite, "old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			if tc.existing != "" {
				if err := os.WriteFile(path, []byte(tc.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write := Replace
			if tc.create {
				write = Create
			}
			err := write(path, 0o640, tc.write)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got, err := os.ReadFile(path)
			switch {
			case tc.want == "" && !errors.Is(err, fs.ErrNotExist):
				t.Fatalf("file left at the path: %q, %v", got, err)
			case tc.want != "" && string(got) != tc.want:
				t.Fatalf("file holds %q (%v), want %q", got, err, tc.want)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) > 1 || (len(entries) == 1 && entries[0].Name() != "file") {
				t.Fatalf("temporary files left behind: %v", entries)
			}
			if tc.wantErr == nil {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o640 {
					t.Fatalf("mode %v, want 0640", fi.Mode().Perm())
				}
			}
		})
	}
}

// TestCreateRace: of writers creating the same path at once, exactly one
// succeeds and the file holds its bytes whole; the others see fs.ErrExist.
func TestCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = Create(path, 0o600, Bytes([]byte("writer "+strconv.Itoa(i))))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created the file", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Fatalf("writer %d: %v, want fs.ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the file")
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "writer "+strconv.Itoa(winner) {
		t.Fatalf("file holds %q (%v), want writer %d's bytes", got, err, winner)
	}
}
