package main

import (
	"fmt"
	"io"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
)

func newTokenCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, list and revoke bearer tokens (admins)",
	}
	cmd.AddCommand(newTokenCreateCmd(app), newTokenListCmd(app), newTokenRevokeCmd(app))
	return cmd
}

func newTokenCreateCmd(app *cli) *cobra.Command {
	var (
		req       wire.TokenRequest
		expiresIn time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE [--role ROLE]... [--env ENV]... [--expires-in DURATION]",
		Short: "Issue a token; its secret is shown once",
		Long: `Issue a bearer token. The name is the principal: several tokens with one name are one
principal (for rotation). Roles: admin, publisher, release-manager, approver, deployer,
auditor. A deployer token must name the environments it deploys to. With --expires-in
the token stops working after that long (401, saying it expired).

The secret is printed once and cannot be shown again.`,
		Example: `  dml token create --name ci-payments --role publisher --expires-in 720h
  dml token create --name deploy-eu --role deployer --env staging --env prod-eu --output json`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			if expiresIn < 0 {
				return fmt.Errorf("--expires-in must be positive, not %s", expiresIn)
			}
			if expiresIn > 0 {
				req.ExpiresIn = expiresIn.String()
			}
			t, err := c.Tokens().Create(cmd.Context(), req)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), t, func(w io.Writer) error {
				fmt.Fprintln(cmd.ErrOrStderr(), "Store the token now: it is not shown again.")
				return printFields(w, [][2]string{
					{"id", t.ID},
					{"token", t.Token},
					{"name", t.Name},
					{"roles", listOrNone(t.Roles)},
					{"environments", listOrNone(t.Environments)},
					{"expires", formatTimeOrDash(t.ExpiresAt)},
				})
			})
		}),
	}
	f := cmd.Flags()
	f.DurationVar(&expiresIn, "expires-in", 0, "how long the token works, e.g. 720h (default: no expiry)")
	f.StringVar(&req.Name, "name", "", "token (principal) name")
	f.StringSliceVar(&req.Roles, "role", nil, "role to grant (repeatable, or comma-separated)")
	f.StringSliceVar(&req.Environments, "env", nil, "environment a deployer may deploy to (repeatable, or comma-separated)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newTokenListCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every token: roles, environments, creation, last use, expiry, revocation",
		Long: `List every token, revoked and expired ones included, oldest first. Secrets are never
shown: they are not stored. Last use is recorded to within a minute.`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			list, err := c.Tokens().List(cmd.Context())
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), list, func(w io.Writer) error {
				return printList(w, len(list), "no tokens", func(tw io.Writer) {
					fmt.Fprintln(tw, "ID\tNAME\tROLES\tENVIRONMENTS\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
					for _, t := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, listOrNone(t.Roles), listOrNone(t.Environments),
							formatTime(t.CreatedAt), formatTimeOrDash(t.LastUsedAt), formatTimeOrDash(t.ExpiresAt), formatTimeOrDash(t.RevokedAt))
					}
				})
			})
		}),
	}
	return cmd
}

func newTokenRevokeCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token by its id (tok_...)",
		Args:  cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.Tokens().Revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			return app.printRevoked(cmd, "", args[0])
		}),
	}
	return cmd
}

func newWhoamiCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the principal behind the token, or the session of dml login",
		Args:  cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			id, err := c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), id, func(w io.Writer) error {
				fields := [][2]string{
					{"name", id.Name},
					{"token id", id.TokenID},
					{"roles", listOrNone(id.Roles)},
					{"environments", listOrNone(id.Environments)},
				}
				if id.Issuer != "" {
					// A person's single sign-on session (dml login).
					fields = append(fields, [2]string{"issuer", id.Issuer}, [2]string{"subject", id.Subject})
				}
				return printFields(w, fields)
			})
		}),
	}
	return cmd
}
