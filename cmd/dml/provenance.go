package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dmlproject/dml/releases/provenance"
	"github.com/dmlproject/dml/signing"
	"github.com/spf13/cobra"
)

func newProvenanceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "provenance", Short: "Export and verify (offline) everything recorded about an artifact"}
	cmd.AddCommand(newProvenanceExportCmd(), newProvenanceVerifyCmd())
	return cmd
}

func newProvenanceExportCmd() *cobra.Command {
	var (
		cf  clientFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "export NAME VERSION",
		Short: "Download the provenance document of an artifact version (auditors, admins)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			doc, err := c.Provenance(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if out == "-" || out == "" {
				_, err = cmd.OutOrStdout().Write(append(doc, '\n'))
				return err
			}
			if err := writeFileAtomic(out, append(doc, '\n')); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&out, "output-file", "o", "-", "where to write the document (- for stdout)")
	return cmd
}

func newProvenanceVerifyCmd() *cobra.Command {
	var logKey, serverKey, trustedDir, file string
	cmd := &cobra.Command{
		Use:   "verify BUNDLE.json --log-key FILE --server-key FILE [--trusted-keys DIR] [--file ARTIFACT]",
		Short: "Verify a provenance document offline, with no server",
		Long: `Verify a provenance document with no server: the checkpoint signature (log key), every
record's inclusion proof, that every item matches its audit record, each signature and
attestation (with the keys in --trusted-keys, *.pub files named after their key id, or else the
document's keys, each proven registered by its audit record), the admission receipt and the
sealed release manifests (server key), and, with --file, the artifact's bytes.`,
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
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				opts.Content = f
			}
			rep, err := provenance.Verify(&doc, opts)
			if err != nil {
				return &exitError{code: 2, msg: "VERIFICATION FAILED: " + err.Error()}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "provenance of %s:%s (%s) verified offline\n", doc.Artifact.Name, doc.Artifact.Version, doc.Artifact.Digest)
			for _, line := range rep.Checked {
				fmt.Fprintln(w, "  ok  "+line)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&logKey, "log-key", "", "file holding the audit log's note verifier key (GET /api/v1/audit/key)")
	cmd.Flags().StringVar(&serverKey, "server-key", "", "file holding the server's public key PEM (GET /api/v1/keys/server)")
	cmd.Flags().StringVar(&trustedDir, "trusted-keys", "", "directory of trusted signing keys: ID.pub files (PEM)")
	cmd.Flags().StringVar(&file, "file", "", "the artifact file, to check its bytes against the digest")
	return cmd
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
