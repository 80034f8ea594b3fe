package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/dmlproject/dml/internal/atomicfile"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

// errFileExists: the destination exists and --force was not given.
var errFileExists = errors.New("file exists")

// writeFileAtomic makes path hold exactly what write produces, or leaves
// it as it was (atomicfile.Replace, or atomicfile.Create without replace):
// a reader of path never sees half a file, and a file that exists is
// replaced only with replace — the CLI's --force.
func writeFileAtomic(path string, perm fs.FileMode, replace bool, write func(io.Writer) error) error {
	if replace {
		return atomicfile.Replace(path, perm, write)
	}
	err := atomicfile.Create(path, perm, write)
	if errors.Is(err, fs.ErrExist) {
		return existsError(path)
	}
	return err
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
	// Keys: the key's name and the fingerprint to compare out of band.
	Key         string `json:"key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
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
	for _, f := range [][2]string{{"media type", d.MediaType}, {"state", d.State}, {"signature", d.Signature}, {"key", d.Key}, {"fingerprint", d.Fingerprint}} {
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
		if err := writeFileAtomic(out.path, 0o644, out.force, atomicfile.Bytes(data)); err != nil {
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
