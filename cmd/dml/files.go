package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

// errFileExists: the destination exists and --force was not given.
var errFileExists = errors.New("file exists")

// writeFileAtomic makes path hold exactly what write produces, or leaves
// it as it was: the bytes go to a temporary file in path's directory
// (so that the final step is atomic), which is synced and then moved into
// place. With replace, it is renamed over path. Without, it is hard-linked
// to path, which fails if path exists — the check and the move are one
// step, so a file that appears meanwhile is not overwritten either. On any
// error, an interrupt included, the temporary file is removed: a reader of
// path never sees half a file.
func writeFileAtomic(path string, perm fs.FileMode, replace bool, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = tmp.Close()
		}
		if err != nil || !replace {
			_ = os.Remove(tmp.Name()) // after a link, only the temporary name goes
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	// CreateTemp makes 0600 files; the caller says what the file is.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	closed = true
	if err := tmp.Close(); err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = linkNoClobber(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// linkNoClobber gives the file at tmp the name path unless path exists.
// Where the file system has no hard links (some network and FAT file
// systems), the check and the rename are two steps.
func linkNoClobber(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return existsError(path)
	}
	if _, statErr := os.Lstat(path); statErr == nil {
		return existsError(path)
	}
	return os.Rename(tmp, path)
}

func existsError(path string) error {
	return fmt.Errorf("%s: %w (--force replaces it; --output-file writes elsewhere)", path, errFileExists)
}

// refuseExisting fails early, before any work is done, when path exists
// and may not be replaced.
func refuseExisting(path string, replace bool) error {
	if replace {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		return existsError(path)
	}
	return nil
}

// syncDir makes a rename durable. It is best effort: some platforms and
// file systems cannot sync a directory, and the data itself is synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// outputFile is the destination of a command that produces a document
// (an artifact's bytes, a signature, an attestation, a key, a manifest, a
// provenance document): --output-file, or stdout. The document is
// written atomically and an existing file is replaced only with --force.
// --output formats the report about it, which goes to stdout — or to
// stderr when stdout carries the document.
type outputFile struct {
	path  string
	force bool
}

func (o *outputFile) register(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&o.path, "output-file", "", usage)
	cmd.Flags().BoolVar(&o.force, "force", false, "replace the --output-file if it exists")
}

func (o *outputFile) toStdout() bool { return o.path == "" || o.path == "-" }

// check refuses, before anything is done, a file that exists.
func (o *outputFile) check() error {
	if o.toStdout() {
		return nil
	}
	return refuseExisting(o.path, o.force)
}

// document is what a command that writes a document prints about it:
// what it wrote (the bytes of an artifact, a provenance document, a
// release manifest, the server's key, a signature, an attestation), where
// to, its digest and size.
type document struct {
	Kind    string        `json:"document"`
	Subject string        `json:"subject,omitempty"` // what the document is about
	File    string        `json:"file"`              // "-": stdout
	Size    int64         `json:"size"`
	Digest  digest.Digest `json:"digest"` // of the bytes written
	// Pulled artifacts: their media type and state.
	MediaType string `json:"mediaType,omitempty"`
	State     string `json:"state,omitempty"`
	// Release manifests: the server's signature.
	Signature string `json:"signature,omitempty"`
}

func (d document) print(w io.Writer) error {
	what, dst := d.Kind, d.File
	if d.Subject != "" {
		what += " " + d.Subject
	}
	if dst == "-" {
		dst = "stdout"
	}
	fmt.Fprintf(w, "%s → %s\n", what, dst)
	fields := [][2]string{{"digest", d.Digest.String()}, {"size", formatBytes(d.Size)}}
	for _, f := range [][2]string{{"media type", d.MediaType}, {"state", d.State}, {"signature", d.Signature}} {
		if f[1] != "" {
			fields = append(fields, f)
		}
	}
	return printFields(w, fields)
}

// writeDocument writes data where out says and prints the report about
// it, d completed with the destination, size and digest.
func (a *cli) writeDocument(cmd *cobra.Command, out *outputFile, d document, data []byte) error {
	d.File, d.Size, d.Digest = "-", int64(len(data)), digest.FromBytes(data)
	report := cmd.ErrOrStderr()
	if out.toStdout() {
		if _, err := cmd.OutOrStdout().Write(data); err != nil {
			return err
		}
	} else {
		d.File, report = out.path, cmd.OutOrStdout()
		err := writeFileAtomic(out.path, 0o644, out.force, func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		})
		if err != nil {
			return err
		}
	}
	return a.emit(report, d, d.print)
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
