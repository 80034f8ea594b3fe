package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

func newPullCmd(app *cli) *cobra.Command {
	var out outputFile
	cmd := &cobra.Command{
		Use:   "pull NAME VERSION [--output-file FILE|DIR|-] [--force]",
		Short: "Download an artifact version to a file, verifying its digest",
		Long: `Download version VERSION of artifact NAME into a file.

The file is --output-file, or, when that names a directory or is not given, a file in that
directory (default: the current one) named after the last component of NAME and VERSION:
payments/api 1.4.2 is saved as api-1.4.2. An existing file is not replaced unless --force
is given. --output-file - writes the bytes to stdout.

The bytes are written to a temporary file next to the destination while they are hashed.
They must match both the digest the server sends with them and the artifact's recorded
digest; only then is the file synced and moved into place. On a mismatch or an interrupt
nothing is left behind and an existing file is untouched. With --output-file - the bytes
reach stdout as they arrive, and a mismatch is reported (exit status 1) after the fact.

The report (what was written where, digest, size, state) goes to stdout, or to stderr when
stdout carries the bytes; --output json prints it as one JSON object.`,
		Example: `  dml pull payments/api 1.4.2                        # writes ./api-1.4.2
  dml pull payments/api 1.4.2 --output-file dist/     # writes dist/api-1.4.2
  dml pull payments/api 1.4.2 --output-file api.tar.gz --force
  dml pull payments/api 1.4.2 --output-file - | tar xz`,
		Args: cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			name, version := args[0], args[1]
			dst, err := pullDestination(out.path, name, version)
			if err != nil {
				return err
			}
			if dst != "-" {
				if err := refuseExisting(dst, out.force); err != nil {
					return err
				}
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			art, err := pull(cmd.Context(), c, name, version, dst, out.force, stdout, stderr)
			if err != nil {
				return err
			}
			report := stdout
			if dst == "-" {
				report = stderr // stdout carries the bytes
			}
			d := document{Kind: "artifact", Subject: name + ":" + version, File: dst, Size: art.Size, Digest: art.Digest, MediaType: art.MediaType, State: art.State}
			return app.emit(report, d, d.print)
		}),
	}
	out.register(cmd, "file or directory to write to (default: NAME's last component-VERSION in the current directory; - for stdout)")
	return cmd
}

// pullDestination is where pull writes NAME:VERSION: flag as given ("-":
// stdout), or, when flag is empty or a directory, the default file name
// in that directory: the last component of name and the version, so
// payments/api 1.4.2 is api-1.4.2.
func pullDestination(flag, name, version string) (string, error) {
	if flag == "-" {
		return flag, nil
	}
	if flag != "" {
		if st, err := os.Stat(flag); err != nil || !st.IsDir() {
			return flag, nil
		}
	}
	base := path.Base(name) + "-" + version
	if strings.ContainsAny(base, `/\`) || base == "." || base == ".." {
		return "", fmt.Errorf("%s:%s does not make a file name: give --output-file", name, version)
	}
	return filepath.Join(flag, base), nil
}

// pull fetches the artifact's metadata, then its bytes, and writes them to
// dst (or stdout for "-") only if they match both the digest announced with
// the content and the digest recorded for the artifact.
func pull(ctx context.Context, c *client.Client, name, version, dst string, replace bool, stdout, stderr io.Writer) (wire.Artifact, error) {
	a, err := c.Artifacts().Get(ctx, name, version)
	if err != nil {
		return wire.Artifact{}, err
	}
	content, err := c.Artifacts().Pull(ctx, name, version)
	if err != nil {
		return wire.Artifact{}, err
	}
	defer content.Body.Close()
	if content.Digest != a.Digest || content.Size != a.Size {
		return wire.Artifact{}, fmt.Errorf("%w: %s:%s is recorded as %s (%d bytes) but the server sent %s (%d bytes)",
			errDigestMismatch, name, version, a.Digest, a.Size, content.Digest, content.Size)
	}
	body, done := withProgress(stderr, content.Body, content.Size, "downloading "+name+":"+version)
	if dst == "-" {
		err = copyVerified(stdout, body, a.Digest, a.Size)
	} else {
		err = saveVerified(dst, body, a.Digest, a.Size, replace)
	}
	done(err == nil)
	if err != nil {
		return wire.Artifact{}, fmt.Errorf("pull %s:%s: %w", name, version, err)
	}
	return a, nil
}

// errDigestMismatch: the bytes received are not the artifact's.
var errDigestMismatch = errors.New("digest mismatch")

// saveVerified writes r to dst atomically (writeFileAtomic), and only
// when the bytes hash to want and are size long (size < 0: any length).
// Otherwise dst is left as it was. An existing dst is replaced only with
// replace.
func saveVerified(dst string, r io.Reader, want digest.Digest, size int64, replace bool) error {
	return writeFileAtomic(dst, 0o644, replace, func(w io.Writer) error {
		return copyVerified(w, r, want, size)
	})
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
