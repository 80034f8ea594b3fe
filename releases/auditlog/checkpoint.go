package auditlog

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dmlproject/dml/internal/atomicfile"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed statement of the log's size and root hash.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Text is the checkpoint body: origin, size and base64 root, one per line.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// Sign makes the signed note of c.
func Sign(c Checkpoint, signer note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: c.Text()}, signer)
}

// ErrBadCheckpoint reports a checkpoint whose signature or body is wrong.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// Open verifies a signed checkpoint with the log's verifier key and parses it.
func Open(msg []byte, verifierKey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: log key: %v", ErrBadCheckpoint, err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	return parseText(n.Text)
}

func parseText(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[3] != "" {
		return Checkpoint{}, fmt.Errorf("%w: body must be origin, size and root hash", ErrBadCheckpoint)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrBadCheckpoint, lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q", ErrBadCheckpoint, lines[2])
	}
	c := Checkpoint{Origin: lines[0], Size: size}
	copy(c.Root[:], raw)
	return c, nil
}

// LogKey is the server's log signing key.
type LogKey struct {
	Signer      note.Signer
	VerifierKey string
}

// LoadOrCreateLogKey reads the note signer key at path, or creates one
// named name (written with mode 0600, atomically) on first start.
func LoadOrCreateLogKey(path, name string) (*LogKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		skey, _, gerr := note.GenerateKey(rand.Reader, name)
		if gerr != nil {
			return nil, gerr
		}
		if err := writeExclusive(path, []byte(skey+"\n")); err != nil {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	k, err := NewLogKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("log key %s: %w", path, err)
	}
	return k, nil
}

// NewLogKey makes a LogKey from a note signer key string.
func NewLogKey(skey string) (*LogKey, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	vkey, err := verifierKeyOf(skey)
	if err != nil {
		return nil, err
	}
	return &LogKey{Signer: signer, VerifierKey: vkey}, nil
}

// verifierKeyOf derives the verifier key from a note signer key
// ("PRIVATE+KEY+name+hash+base64(alg||seed)").
func verifierKeyOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return "", errors.New("not an Ed25519 note signer key")
	}
	pub := ed25519PublicFromSeed(raw[1:])
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// writeExclusive writes data to a new file at path (mode 0600) without
// ever leaving a partial file, and without replacing a file another
// process wrote first: then that file stays, and nil is returned.
func writeExclusive(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	if err := atomicfile.Create(path, 0o600, atomicfile.Bytes(data)); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
