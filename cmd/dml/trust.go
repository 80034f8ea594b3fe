package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

func newTrustCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Manage the trusted keys, roots, identities and the trust policy (admins)",
		Long: `Signers are the trusted keys, and the keyless identities whose certificates chain to an
installed Sigstore trusted root; their signatures and attestations count. The trust policy
says, per artifact name pattern, which of them must sign and which attestations are
required for an artifact to be admitted. Anyone may read all of it; only admins change it,
and every change is audited. See docs/signing.md.`,
	}
	key := &cobra.Command{Use: "key", Short: "Register, list and revoke trusted public keys"}
	key.AddCommand(newTrustKeyAddCmd(app), newTrustKeyListCmd(app), newTrustKeyRevokeCmd(app))
	policy := &cobra.Command{Use: "policy", Short: "Set and show the trust policy"}
	policy.AddCommand(newTrustPolicySetCmd(app), newTrustPolicyShowCmd(app))
	cmd.AddCommand(key, policy, newTrustRootCmd(app), newTrustIdentityCmd(app), newTrustServerKeyCmd(app))
	cmd.AddCommand(newTrustLogKeyCmd(app))
	return cmd
}

func newTrustLogKeyCmd(app *cli) *cobra.Command {
	var out outputFile
	cmd := &cobra.Command{
		Use:   "log-key [--output-file FILE]",
		Short: "Print the audit log's public key, which signs its checkpoints",
		Long: `Print the audit log's note verifier key (one line: name+hash+key), the key that
` + "`dml provenance verify --log-key FILE`" + ` and ` + "`dml audit verify --log-key FILE`" + ` check the log's
signed checkpoints with. It is served to every token (GET /api/v1/audit/key).

Fetch it once, when the server is installed, and compare its fingerprint with the operator's
(the server logs the key it signs with at start, "signing keys pinned"; the private half is
DATA_DIR/log-key): a key fetched from the server at verification time proves only that the
server agrees with itself.

The key goes to --output-file (an existing file is replaced only with --force) or stdout; the
report (file, digest, size, the key's name and its fingerprint: SHA-256 of the public key) to
stdout, or to stderr when stdout carries the key.`,
		Example: `  dml trust log-key --output-file log.key
  dml provenance verify prov.json --log-key log.key --server-key dml-server.pub`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			if err := out.check(); err != nil {
				return err
			}
			vkey, err := c.Audit().Key(cmd.Context())
			if err != nil {
				return err
			}
			name, fingerprint, err := noteKeyFingerprint(string(vkey))
			if err != nil {
				return fmt.Errorf("the server's log key: %w", err)
			}
			return app.writeDocument(cmd, &out, document{Kind: "log key", Key: name, Fingerprint: fingerprint}, vkey)
		}),
	}
	out.register(cmd, "file to write the key to (default and -: stdout)")
	return cmd
}

// noteKeyFingerprint checks that vkey is a note verifier key
// (name+hash+base64(algorithm byte || public key)) and returns its name
// and the SHA-256 of its public key, as SSH prints fingerprints.
func noteKeyFingerprint(vkey string) (name, fingerprint string, err error) {
	vkey = strings.TrimSpace(vkey)
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return "", "", err
	}
	// The name and the hash hold no '+'; the base64 key may.
	key, err := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(key)
	return v.Name(), "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), nil
}

func newTrustServerKeyCmd(app *cli) *cobra.Command {
	var out outputFile
	cmd := &cobra.Command{
		Use:   "server-key [--output-file FILE]",
		Short: "Print the server's public key, which signs admission receipts",
		Long: `Print the server's public key (PEM). Its admission receipts verify with this key alone
(` + "`dml verify --server-key FILE`" + `, or ` + "`cosign verify-blob-attestation --key FILE`" + `).

Fetch it once, when the server is installed, and hand the copy to those who verify: a key
fetched from the server at verification time proves only that the server agrees with
itself.

The key goes to --output-file (an existing file is replaced only with --force) or stdout; the
report (file, digest, size) to stdout, or to stderr when stdout carries the key.`,
		Example: `  dml trust server-key --output-file dml-server.pub`,
		Args:    cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			if err := out.check(); err != nil {
				return err
			}
			pem, err := c.Trust().ServerKey(cmd.Context())
			if err != nil {
				return err
			}
			return app.writeDocument(cmd, &out, document{Kind: "server key"}, pem)
		}),
	}
	out.register(cmd, "file to write the key to (default and -: stdout)")
	return cmd
}

func newTrustKeyAddCmd(app *cli) *cobra.Command {
	var (
		comment string
	)
	cmd := &cobra.Command{
		Use:   "add ID PEMFILE [--comment C]",
		Short: "Register a public key (cosign.pub) under ID",
		Long: `Register the public key in PEMFILE (a PEM "PUBLIC KEY" as ` + "`cosign generate-key-pair`" + ` writes
cosign.pub: ECDSA P-256/384/521, Ed25519 or RSA >= 2048 bits) under ID, the name
policies use. Quarantined artifacts are re-evaluated: the new key may admit some.`,
		Example: `  dml trust key add ci cosign.pub --comment "payments build pipeline"`,
		Args:    cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			pem, err := readBounded(nil, args[1], 64<<10, "public key")
			if err != nil {
				return err
			}
			k, err := c.Trust().AddKey(cmd.Context(), wire.TrustKeyRequest{ID: args[0], PublicKey: string(pem), Comment: comment})
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), k, func(w io.Writer) error {
				fmt.Fprintf(w, "trusted key %s added\n", k.ID)
				return printFields(w, [][2]string{{"algorithm", k.Algorithm}, {"comment", orDash(k.Comment)}})
			})
		}),
	}
	cmd.Flags().StringVar(&comment, "comment", "", "what the key is for, who holds it")
	return cmd
}

func newTrustKeyListCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List trusted keys, revoked ones included",
		Args:  cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			keys, err := c.Trust().Keys(cmd.Context())
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), struct {
				Keys []wire.TrustKey `json:"keys"`
			}{keys}, func(w io.Writer) error {
				return printList(w, len(keys), "no trusted keys", func(tw io.Writer) {
					fmt.Fprintln(tw, "ID\tALGORITHM\tSTATUS\tADDED BY\tADDED\tCOMMENT")
					for _, k := range keys {
						status := trustStatus(k.RevokedAt)
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, status, k.CreatedBy, formatTime(k.CreatedAt), orDash(k.Comment))
					}
				})
			})
		}),
	}
	return cmd
}

func newTrustKeyRevokeCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a trusted key",
		Long: `Revoke a trusted key. Evidence it signed no longer counts towards admission, and new
evidence signed with it is refused (KEY_UNTRUSTED). Artifacts already admitted stay
admitted: their receipts record what was true when they were admitted.`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.Trust().RevokeKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			return app.printRevoked(cmd, "trusted key ", args[0])
		}),
	}
	return cmd
}

func newTrustPolicySetCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set FILE",
		Short: "Replace the trust policy with FILE (YAML or JSON; - for stdin)",
		Long: `Store the policy in FILE (YAML or JSON, - for stdin) as the new current version. The
server validates it and reports every problem at once (POLICY_INVALID); unknown fields are
errors, so a misspelt "treshold" cannot weaken a rule. Quarantined artifacts are then
re-evaluated. See docs/signing.md for the format and how rules are chosen.`,
		Example: `  dml trust policy set policy.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			doc, err := readBounded(cmd.InOrStdin(), args[0], 1<<20, "policy")
			if err != nil {
				return err
			}
			p, err := c.Trust().SetPolicy(cmd.Context(), doc)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), p, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "trust policy version %d set\n", p.Version)
				return err
			})
		}),
	}
	return cmd
}

func newTrustPolicyShowCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the current trust policy",
		Long: `Print the current trust policy. The document goes to stdout as indented JSON, which
` + "`dml trust policy set`" + ` accepts back; its version and author go to stderr. With --output json
the version, author and document are printed together.`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			p, err := c.Trust().Policy(cmd.Context())
			if err != nil {
				return err
			}
			if app.json() {
				return printJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "trust policy version %d, set by %s at %s\n", p.Version, p.CreatedBy, formatTime(p.CreatedAt))
			var buf bytes.Buffer
			if err := json.Indent(&buf, p.Policy, "", "  "); err != nil {
				return fmt.Errorf("the server sent a policy that is not JSON: %w", err)
			}
			buf.WriteByte('\n')
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		}),
	}
	return cmd
}

// trustStatus is how a list of trusted keys, roots or identities shows
// one: active, or revoked and when.
func trustStatus(revokedAt *time.Time) string {
	if revokedAt == nil {
		return "active"
	}
	return "revoked " + formatTime(*revokedAt)
}
