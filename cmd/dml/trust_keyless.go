package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
)

// newTrustRootCmd manages the Sigstore trusted roots keyless evidence is
// verified against.
func newTrustRootCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "root",
		Short: "Install, list, show and revoke Sigstore trusted roots",
		Long: `A trusted root is a Sigstore trusted_root.json: the Fulcio certificate authorities, the
Rekor and certificate transparency log keys and the timestamp authorities that keyless
evidence is verified against, offline. Several may be installed (the public-good instance,
GitHub's, a private Sigstore); each identity names one.`,
	}
	cmd.AddCommand(newTrustRootAddCmd(app), newTrustRootListCmd(app), newTrustRootShowCmd(app), newTrustRootRevokeCmd(app))
	return cmd
}

func newTrustRootAddCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "add ID FILE",
		Short: "Install a trusted_root.json under ID (- for stdin)",
		Long: `Install the Sigstore trusted_root.json in FILE (- for stdin) under ID. The server loads it
as verification will and refuses what it cannot (ROOT_INVALID).

Installing another document under an existing ID makes its next version, audited like the
first: the Sigstore instance rotated a key or added a CA, and the identities bound to the ID
follow it. Installing the same document again changes nothing. A revoked ID stays revoked
(ROOT_REVOKED): install the document under a new ID.

A root is the trusted_root.json target of its instance's TUF repository
(tuf-repo-cdn.sigstore.dev for the public-good instance): fetch it with a TUF client on a
machine with network access, and carry it to the DML.`,
		Example: `  dml trust root add public-good trusted_root.json`,
		Args:    cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			doc, err := readBounded(cmd.InOrStdin(), args[1], 1<<20, "trusted root")
			if err != nil {
				return err
			}
			r, created, err := c.Trust().PutRoot(cmd.Context(), args[0], doc)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), r, func(w io.Writer) error {
				if created {
					fmt.Fprintf(w, "trusted root %s installed\n", r.ID)
				} else {
					// A new version, or the same document again.
					fmt.Fprintf(w, "trusted root %s is at version %d\n", r.ID, r.Version)
				}
				return printRootSummary(w, r)
			})
		}),
	}
}

// printRootSummary prints what a root trusts, one line per authority or
// log.
func printRootSummary(w io.Writer, r wire.TrustedRoot) error {
	period := func(from, until *time.Time) string { return formatTimeOrDash(from) + " .. " + formatTimeOrDash(until) }
	fields := [][2]string{{"version", fmt.Sprint(r.Version)}, {"sha256", r.SHA256}, {"installed by", r.CreatedBy}, {"installed", formatTime(r.CreatedAt)}}
	if r.RevokedAt != nil {
		fields = append(fields, [2]string{"revoked", formatTime(*r.RevokedAt) + " by " + r.RevokedBy})
	}
	for _, a := range r.Summary.CertificateAuthorities {
		fields = append(fields, [2]string{"fulcio CA", a.Subject + "  " + period(a.ValidFrom, a.ValidUntil)})
	}
	for _, a := range r.Summary.TimestampAuthorities {
		fields = append(fields, [2]string{"timestamp authority", a.Subject + "  " + period(a.ValidFrom, a.ValidUntil)})
	}
	for _, l := range r.Summary.RekorLogs {
		fields = append(fields, [2]string{"rekor log", l.ID + "  " + orDash(l.BaseURL)})
	}
	for _, l := range r.Summary.CTLogs {
		fields = append(fields, [2]string{"ct log", l.ID + "  " + orDash(l.BaseURL)})
	}
	return printFields(w, fields)
}

func newTrustRootListCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List trusted roots, revoked ones included",
		Args:  cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			roots, err := c.Trust().Roots(cmd.Context())
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), wire.TrustedRootList{Roots: roots}, func(w io.Writer) error {
				return printList(w, len(roots), "no trusted roots", func(tw io.Writer) {
					fmt.Fprintln(tw, "ID\tVERSION\tSTATUS\tCAS\tREKOR LOGS\tCT LOGS\tTSAS\tINSTALLED BY\tINSTALLED")
					for _, r := range roots {
						status := trustStatus(r.RevokedAt)
						s := r.Summary
						fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.ID, r.Version, status, len(s.CertificateAuthorities),
							len(s.RekorLogs), len(s.CTLogs), len(s.TimestampAuthorities), r.CreatedBy, formatTime(r.CreatedAt))
					}
				})
			})
		}),
	}
}

func newTrustRootShowCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show what a trusted root trusts",
		Long: `Show the current version of a trusted root: who installed it and when, its SHA-256 (the
audit log's record of it), and its certificate authorities, logs and timestamp authorities.
With --output json the document itself is included (its sha256 is of the bytes installed).`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			r, err := c.Trust().Root(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), r, func(w io.Writer) error {
				fmt.Fprintf(w, "trusted root %s\n", r.ID)
				return printRootSummary(w, r)
			})
		}),
	}
}

func newTrustRootRevokeCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a trusted root",
		Long: `Revoke a trusted root. Every identity bound to it stops counting towards admission, as if
revoked itself, and no identity may be bound to it again. The ID stays taken.`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.Trust().RevokeRoot(cmd.Context(), args[0]); err != nil {
				return err
			}
			return app.printRevoked(cmd, "trusted root ", args[0])
		}),
	}
}

// newTrustIdentityCmd manages the keyless signers.
func newTrustIdentityCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Register, list and revoke keyless signer identities",
		Long: `An identity is a keyless signer: a workload (a CI workflow) that signs with a short-lived
Fulcio certificate issued for its OIDC token. It is named by the token's issuer and subject
and may pin certificate claims. Identities and keys share one namespace of signer IDs, so a
policy's keys lists name either.`,
	}
	cmd.AddCommand(newTrustIdentityAddCmd(app), newTrustIdentityListCmd(app), newTrustIdentityRevokeCmd(app))
	return cmd
}

func newTrustIdentityAddCmd(app *cli) *cobra.Command {
	var (
		req    wire.SignerIdentityRequest
		claims []string
	)
	cmd := &cobra.Command{
		Use:   "add ID --root R --issuer URL (--subject S | --subject-regexp RE) [--claim NAME=VALUE]...",
		Short: "Register a keyless signer identity under ID",
		Long: `Register a keyless signer under ID, the name policies use. Its certificates must chain to
the trusted root R and be issued for an OIDC token from URL whose subject is S, or matches
the regular expression RE whole (it is anchored: "…@refs/tags/v1" does not match
"…@refs/tags/v1-rc"). Each --claim pins a Fulcio certificate extension, by the names
sigstore-go gives them: sourceRepositoryURI, sourceRepositoryRef, sourceRepositoryDigest,
buildSignerURI, buildConfigURI, githubWorkflowTrigger, runnerEnvironment, … (an unknown
name is refused). Quarantined artifacts are re-evaluated.`,
		Example: `  dml trust identity add payments-release --root public-good \
      --issuer https://token.actions.githubusercontent.com \
      --subject https://github.com/acme/payments/.github/workflows/release.yml@refs/heads/main \
      --claim sourceRepositoryURI=https://github.com/acme/payments --claim githubWorkflowTrigger=push`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			req.ID = args[0]
			for _, kv := range claims {
				name, value, ok := strings.Cut(kv, "=")
				if !ok || name == "" {
					return fmt.Errorf("--claim %q: want NAME=VALUE", kv)
				}
				if req.Claims == nil {
					req.Claims = map[string]string{}
				}
				if _, dup := req.Claims[name]; dup {
					return fmt.Errorf("--claim %s given twice", name)
				}
				req.Claims[name] = value
			}
			id, err := c.Trust().AddIdentity(cmd.Context(), req)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), id, func(w io.Writer) error {
				fmt.Fprintf(w, "identity %s added\n", id.ID)
				return printIdentity(w, id)
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Root, "root", "", "the trusted root the certificates chain to (required)")
	f.StringVar(&req.Issuer, "issuer", "", "the OIDC issuer URL (required)")
	f.StringVar(&req.Subject, "subject", "", "the certificate subject (or --subject-regexp)")
	f.StringVar(&req.SubjectRegexp, "subject-regexp", "", "a regular expression the whole subject must match")
	f.StringArrayVar(&claims, "claim", nil, "NAME=VALUE a certificate extension must have (repeatable)")
	_ = cmd.MarkFlagRequired("root")
	_ = cmd.MarkFlagRequired("issuer")
	cmd.MarkFlagsOneRequired("subject", "subject-regexp")
	cmd.MarkFlagsMutuallyExclusive("subject", "subject-regexp")
	return cmd
}

func printIdentity(w io.Writer, id wire.SignerIdentity) error {
	fields := [][2]string{{"root", id.Root}, {"issuer", id.Issuer}}
	if id.SubjectRegexp != "" {
		fields = append(fields, [2]string{"subject regexp", id.SubjectRegexp})
	} else {
		fields = append(fields, [2]string{"subject", id.Subject})
	}
	fields = append(fields, [2]string{"claims", formatClaims(id.Claims)})
	return printFields(w, fields)
}

// formatClaims is NAME=VALUE, comma-separated in name order; "-" for none.
func formatClaims(claims map[string]string) string {
	out := make([]string, 0, len(claims))
	for name, value := range claims {
		out = append(out, name+"="+value)
	}
	slices.Sort(out)
	return orDash(strings.Join(out, ", "))
}

func newTrustIdentityListCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List identities, revoked ones included",
		Args:  cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			ids, err := c.Trust().Identities(cmd.Context())
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), wire.SignerIdentityList{Identities: ids}, func(w io.Writer) error {
				return printList(w, len(ids), "no signer identities", func(tw io.Writer) {
					fmt.Fprintln(tw, "ID\tROOT\tISSUER\tSUBJECT\tCLAIMS\tSTATUS\tADDED BY")
					for _, id := range ids {
						status := trustStatus(id.RevokedAt)
						subject := id.Subject
						if id.SubjectRegexp != "" {
							subject = "~" + id.SubjectRegexp
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id.ID, id.Root, id.Issuer, subject, formatClaims(id.Claims), status, id.CreatedBy)
					}
				})
			})
		}),
	}
}

func newTrustIdentityRevokeCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an identity",
		Long: `Revoke an identity. Evidence it signed no longer counts towards admission, exactly as a
revoked key's. Artifacts already admitted stay admitted. The ID stays taken.`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.Trust().RevokeIdentity(cmd.Context(), args[0]); err != nil {
				return err
			}
			return app.printRevoked(cmd, "identity ", args[0])
		}),
	}
}
