package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/dmlproject/dml/api/client"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

func newPushCmd() *cobra.Command {
	var (
		cf        clientFlags
		out       outputFormat
		mediaType string
	)
	cmd := &cobra.Command{
		Use:   "push NAME VERSION FILE",
		Short: "Upload a package file as an artifact version",
		Long: `Upload FILE as version VERSION of artifact NAME (e.g. payments/api 1.4.2 api.tar.gz).

The file's SHA-256 is computed first and sent with the upload, so the server verifies the
bytes while they stream and refuses a conflicting version before reading them. A version
is immutable: pushing the same bytes again succeeds without storing anything; pushing
different bytes fails with VERSION_EXISTS. New artifacts start quarantined until admitted.`,
		Example: `  DML_TOKEN=... dml push payments/api 1.4.2 dist/api.tar.gz --media-type application/gzip`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			a, created, err := pushFile(cmd.Context(), c, args[0], args[1], args[2], mediaType, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), struct {
					client.Artifact
					Created bool `json:"created"`
				}{a, created})
			}
			status := "created"
			if !created {
				status = "already present (identical bytes; nothing stored)"
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s:%s %s\n", a.Name, a.Version, status)
			return printFields(w, [][2]string{{"digest", a.Digest.String()}, {"size", formatBytes(a.Size)}, {"state", a.State}})
		},
	}
	cf.register(cmd)
	out.register(cmd)
	cmd.Flags().StringVar(&mediaType, "media-type", "", "media type of the file (default application/octet-stream)")
	return cmd
}

// pushFile hashes the file, then streams it. Memory stays bounded: both
// passes read through a fixed buffer.
func pushFile(ctx context.Context, c *client.Client, name, version, path, mediaType string, stderr io.Writer) (client.Artifact, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return client.Artifact{}, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return client.Artifact{}, false, err
	}
	if !st.Mode().IsRegular() {
		// The file is read twice (hash, then upload), which a pipe cannot do.
		return client.Artifact{}, false, fmt.Errorf("%s is not a regular file", path)
	}

	h := digest.SHA256.Digester()
	r, done := withProgress(stderr, f, st.Size(), "hashing  ")
	n, err := io.Copy(h.Hash(), r)
	done(err == nil)
	if err != nil {
		return client.Artifact{}, false, fmt.Errorf("hashing %s: %w", path, err)
	}

	// Send exactly the bytes that were hashed; if the file changed since,
	// the server's digest check refuses the upload.
	body, done := withProgress(stderr, io.NewSectionReader(f, 0, n), n, "uploading")
	a, created, err := c.Push(ctx, client.PushRequest{
		Name: name, Version: version, MediaType: mediaType,
		Digest: h.Digest(), Size: n, Body: body,
	})
	done(err == nil)
	return a, created, err
}
