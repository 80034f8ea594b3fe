package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/releases/provenance"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

func newProvenanceCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "provenance", Short: "Export and verify (offline) everything recorded about an artifact"}
	cmd.AddCommand(newProvenanceExportCmd(app), newProvenanceVerifyCmd(app))
	return cmd
}

func newProvenanceExportCmd(app *cli) *cobra.Command {
	var out outputFile
	cmd := &cobra.Command{
		Use:   "export NAME VERSION [--output-file FILE]",
		Short: "Download the provenance document of an artifact version (auditors, admins)",
		Long: `Download the provenance document of an artifact version: everything recorded about it, with
the audit log's proofs, for dml provenance verify. It goes to --output-file (written
atomically; an existing file is replaced only with --force) or stdout, and the report about
it (file, digest, size) to stdout, or to stderr when stdout carries the document.`,
		Example: `  dml provenance export payments/api 1.4.2 --output-file payments-api-1.4.2.provenance.json`,
		Args:    cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := out.check(); err != nil {
				return err
			}
			doc, err := c.Artifacts().Provenance(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return app.writeDocument(cmd, &out, document{Kind: "provenance", Subject: args[0] + ":" + args[1]}, append(doc, '\n'))
		}),
	}
	out.register(cmd, "file to write the document to (default and -: stdout)")
	return cmd
}

func newProvenanceVerifyCmd(app *cli) *cobra.Command {
	var logKey, serverKey, trustedDir, contentFile string
	var rootSpecs []string
	cmd := &cobra.Command{
		Use:   "verify BUNDLE.json --log-key FILE --server-key FILE [--trusted-keys DIR] [--trusted-root [ID=]FILE]... [--content-file ARTIFACT]",
		Short: "Verify a provenance document offline, with no server",
		Long: `Verify a provenance document with no server: the checkpoint signature (log key), every
record's inclusion proof, that every item matches its audit record, each signature and
attestation (with the keys in --trusted-keys, *.pub files named after their key id, or else the
document's keys, each proven registered by its audit record), keyless evidence (with the
Sigstore trusted roots given by --trusted-root, or else the document's, each proven installed by
its audit record, and the document's identities, each proven added by its record: the
certificate, the Rekor entry, the identity and the claims are checked again offline), the
admission receipt and the sealed release manifests (server key), and, with --content-file, the
artifact's bytes.

The trust anchors are fetched once, when the server is installed, and kept: the log key with
` + "`dml trust log-key --output-file log.key`" + `, the server key with
` + "`dml trust server-key --output-file server.pub`" + `.

Exits 0 when everything verifies and 2 when something does not; with --output json the report
(ok, what was checked, or the problem) is printed either way.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if logKey == "" || serverKey == "" {
				return errors.New("--log-key and --server-key are required: verification is only as good as its trust anchors")
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var doc provenance.Document
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			lk, err := os.ReadFile(logKey)
			if err != nil {
				return fmt.Errorf("--log-key: %w", err)
			}
			sk, err := os.ReadFile(serverKey)
			if err != nil {
				return fmt.Errorf("--server-key: %w", err)
			}
			opts := provenance.Options{LogKey: string(lk), ServerKeyPEM: sk}
			if trustedDir != "" {
				if opts.TrustedKeys, err = loadKeyDir(trustedDir); err != nil {
					return err
				}
			}
			if len(rootSpecs) > 0 {
				if opts.TrustedRoots, err = loadTrustedRoots(rootSpecs); err != nil {
					return err
				}
			}
			if contentFile != "" {
				f, err := os.Open(contentFile)
				if err != nil {
					return err
				}
				defer f.Close()
				opts.Content = f
			}
			rep := provenanceReport{Name: doc.Artifact.Name, Version: doc.Artifact.Version, Digest: digest.Digest(doc.Artifact.Digest)}
			res, err := provenance.Verify(&doc, opts)
			if err != nil {
				rep.Problem = err.Error()
				return app.verificationFailed(cmd.OutOrStdout(), rep, rep.Problem)
			}
			rep.OK, rep.Records, rep.Evidence, rep.Releases, rep.Checked = true, res.Records, res.Evidence, res.Releases, res.Checked
			return app.emit(cmd.OutOrStdout(), rep, func(w io.Writer) error {
				fmt.Fprintf(w, "provenance of %s:%s (%s) verified offline\n", rep.Name, rep.Version, rep.Digest)
				for _, line := range rep.Checked {
					fmt.Fprintln(w, "  ok  "+line)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&logKey, "log-key", "", "file holding the audit log's note verifier key: dml trust log-key --output-file FILE saves it (GET /api/v1/audit/key)")
	cmd.Flags().StringVar(&serverKey, "server-key", "", "file holding the server's public key PEM (GET /api/v1/keys/server)")
	cmd.Flags().StringVar(&trustedDir, "trusted-keys", "", "directory of trusted signing keys: ID.pub files (PEM)")
	cmd.Flags().StringVar(&contentFile, "content-file", "", "the artifact's file, to check its bytes against the digest")
	cmd.Flags().StringArrayVar(&rootSpecs, "trusted-root", nil, "Sigstore trusted_root.json to verify keyless evidence with, PATH or ID=PATH (repeatable); without it, the document's roots, each proven installed by its audit record")
	return cmd
}

// provenanceReport is what provenance verify found.
type provenanceReport struct {
	OK bool `json:"ok"`
	// Problem says why verification failed (ok is false).
	Problem string        `json:"problem,omitempty"`
	Name    string        `json:"name"`
	Version string        `json:"version"`
	Digest  digest.Digest `json:"digest"`
	// What was verified: audit records, evidence, releases, and one line
	// per check.
	Records  int      `json:"records"`
	Evidence int      `json:"evidence"`
	Releases int      `json:"releases"`
	Checked  []string `json:"checked"`
}

// loadKeyDir loads every *.pub (or *.pem) file of dir as a trusted key
// whose id is the file name without extension.
func loadKeyDir(dir string) ([]*signing.PublicKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--trusted-keys: %w", err)
	}
	var keys []*signing.PublicKey
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if !e.IsDir() && (ext == ".pub" || ext == ".pem") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		k, err := signing.LoadPublicKey(strings.TrimSuffix(n, filepath.Ext(n)), b)
		if err != nil {
			return nil, fmt.Errorf("--trusted-keys %s: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--trusted-keys %s: no .pub or .pem files", dir)
	}
	return keys, nil
}
