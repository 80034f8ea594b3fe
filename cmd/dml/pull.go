package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dmlproject/dml/api/client"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

func newPullCmd() *cobra.Command {
	var (
		cf  clientFlags
		dst string
	)
	cmd := &cobra.Command{
		Use:   "pull NAME VERSION -o FILE",
		Short: "Download an artifact version to a file, verifying its digest",
		Long: `Download version VERSION of artifact NAME into FILE (-o - writes to stdout).

The bytes are written to a temporary file next to FILE while they are hashed. They must
match both the digest the server sends with them and the artifact's recorded digest;
only then is the file synced and renamed into place. On a mismatch nothing is left behind
and an existing FILE is untouched. With -o - the bytes reach stdout as they arrive, and a
mismatch is reported (exit status 1) after the fact.`,
		Example: `  dml pull payments/api 1.4.2 -o api.tar.gz`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			name, version := args[0], args[1]
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			a, err := pull(cmd.Context(), c, name, version, dst, stdout, stderr)
			if err != nil {
				return err
			}
			report := stdout
			if dst == "-" {
				report = stderr // stdout carries the bytes
			} else {
				fmt.Fprintf(report, "%s:%s → %s\n", name, version, dst)
			}
			return printFields(report, [][2]string{{"digest", a.Digest.String()}, {"size", formatBytes(a.Size)}, {"state", a.State}})
		},
	}
	cf.register(cmd)
	// Not "--output": that is the format flag elsewhere, and DML_OUTPUT=json
	// must not turn into a file called "json".
	cmd.Flags().StringVarP(&dst, "output-file", "o", "", "file to write (- for stdout)")
	_ = cmd.MarkFlagRequired("output-file")
	return cmd
}

// pull fetches the artifact's metadata, then its bytes, and writes them to
// dst (or stdout for "-") only if they match both the digest announced with
// the content and the digest recorded for the artifact.
func pull(ctx context.Context, c *client.Client, name, version, dst string, stdout, stderr io.Writer) (client.Artifact, error) {
	a, err := c.Artifact(ctx, name, version)
	if err != nil {
		return client.Artifact{}, err
	}
	content, err := c.Pull(ctx, name, version)
	if err != nil {
		return client.Artifact{}, err
	}
	defer content.Body.Close()
	if content.Digest != a.Digest || content.Size != a.Size {
		return client.Artifact{}, fmt.Errorf("%w: %s:%s is recorded as %s (%d bytes) but the server sent %s (%d bytes)",
			errDigestMismatch, name, version, a.Digest, a.Size, content.Digest, content.Size)
	}
	body, done := withProgress(stderr, content.Body, content.Size, "downloading")
	if dst == "-" {
		err = copyVerified(stdout, body, a.Digest, a.Size)
	} else {
		err = saveVerified(dst, body, a.Digest, a.Size)
	}
	done(err == nil)
	if err != nil {
		return client.Artifact{}, fmt.Errorf("pull %s:%s: %w", name, version, err)
	}
	return a, nil
}

// errDigestMismatch: the bytes received are not the artifact's.
var errDigestMismatch = errors.New("digest mismatch")

// saveVerified writes r to dst through a temporary file in dst's directory
// (so the final rename is atomic), and renames it into place only when the
// bytes hash to want and are size long (size < 0: any length). Otherwise
// the temporary file is removed and dst is left as it was.
func saveVerified(dst string, r io.Reader, want digest.Digest, size int64) (err error) {
	dir, base := filepath.Split(dst)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := copyVerified(tmp, r, want, size); err != nil {
		return err
	}
	// CreateTemp makes 0600 files; a pulled package is an ordinary file.
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	syncDir(dir)
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

// copyVerified copies r to w while hashing it and fails unless the bytes
// hash to want and are size long (size < 0: any length).
func copyVerified(w io.Writer, r io.Reader, want digest.Digest, size int64) error {
	if err := want.Validate(); err != nil {
		return fmt.Errorf("expected digest: %w", err)
	}
	h := want.Algorithm().Digester()
	n, err := io.Copy(io.MultiWriter(w, h.Hash()), r)
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: received %d bytes, expected %d", errDigestMismatch, n, size)
	}
	if got := h.Digest(); got != want {
		return fmt.Errorf("%w: received bytes hash to %s, expected %s", errDigestMismatch, got, want)
	}
	return nil
}
