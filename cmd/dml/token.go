package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/spf13/cobra"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, list and revoke bearer tokens (admins)",
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var (
		cf        clientFlags
		out       outputFormat
		req       client.TokenRequest
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			if expiresIn < 0 {
				return fmt.Errorf("--expires-in must be positive, not %s", expiresIn)
			}
			if expiresIn > 0 {
				req.ExpiresIn = expiresIn.String()
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
				{"expires", timeOrNone(t.ExpiresAt)},
			})
		},
	}
	cf.register(cmd)
	out.register(cmd)
	f := cmd.Flags()
	f.DurationVar(&expiresIn, "expires-in", 0, "how long the token works, e.g. 720h (default: no expiry)")
	f.StringVar(&req.Name, "name", "", "token (principal) name")
	f.StringSliceVar(&req.Roles, "role", nil, "role to grant (repeatable, or comma-separated)")
	f.StringSliceVar(&req.Environments, "env", nil, "environment a deployer may deploy to (repeatable, or comma-separated)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newTokenListCmd() *cobra.Command {
	var (
		cf  clientFlags
		out outputFormat
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every token: roles, environments, creation, last use, expiry, revocation",
		Long: `List every token, revoked and expired ones included, oldest first. Secrets are never
shown: they are not stored. Last use is recorded to within a minute.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			list, err := c.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			if out.json() {
				if list == nil {
					list = []client.TokenInfo{}
				}
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLES\tENVIRONMENTS\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
			for _, t := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, listOrNone(t.Roles), listOrNone(t.Environments),
					t.CreatedAt.Format(timeLayout), timeOrNone(t.LastUsedAt), timeOrNone(t.ExpiresAt), timeOrNone(t.RevokedAt))
			}
			return tw.Flush()
		},
	}
	cf.register(cmd)
	out.register(cmd)
	return cmd
}

// timeLayout is how tables show times: to the minute, in UTC.
const timeLayout = "2006-01-02 15:04Z"

func timeOrNone(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(timeLayout)
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
