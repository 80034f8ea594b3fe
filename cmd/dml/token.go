package main

import (
	"fmt"

	"github.com/dmlproject/dml/api/client"
	"github.com/spf13/cobra"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue and revoke bearer tokens (admins)",
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenRevokeCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var (
		cf  clientFlags
		out outputFormat
		req client.TokenRequest
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE [--role ROLE]... [--env ENV]...",
		Short: "Issue a token; its secret is shown once",
		Long: `Issue a bearer token. The name is the principal: several tokens with one name are one
principal (for rotation). Roles: admin, publisher, release-manager, approver, deployer,
auditor. A deployer token must name the environments it deploys to.

The secret is printed once and cannot be shown again.`,
		Example: `  dml token create --name ci-payments --role publisher
  dml token create --name deploy-eu --role deployer --env staging --env prod-eu --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Store the token now: it is not shown again.")
			return printFields(cmd.OutOrStdout(), [][2]string{
				{"id", t.ID},
				{"token", t.Token},
				{"name", t.Name},
				{"roles", listOrNone(t.Roles)},
				{"environments", listOrNone(t.Environments)},
			})
		},
	}
	cf.register(cmd)
	out.register(cmd)
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "token (principal) name")
	f.StringSliceVar(&req.Roles, "role", nil, "role to grant (repeatable, or comma-separated)")
	f.StringSliceVar(&req.Environments, "env", nil, "environment a deployer may deploy to (repeatable, or comma-separated)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newTokenRevokeCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token by its id (tok_...)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

func newWhoamiCmd() *cobra.Command {
	var (
		cf  clientFlags
		out outputFormat
	)
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the principal behind the token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			id, err := c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), id)
			}
			return printFields(cmd.OutOrStdout(), [][2]string{
				{"name", id.Name},
				{"token id", id.TokenID},
				{"roles", listOrNone(id.Roles)},
				{"environments", listOrNone(id.Environments)},
			})
		},
	}
	cf.register(cmd)
	out.register(cmd)
	return cmd
}
