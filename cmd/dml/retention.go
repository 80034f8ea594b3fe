package main

import (
	"fmt"
	"io"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
)

func newRetentionCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Retention policies, and runs that delete what they let go (admins)",
		Long: `Retention deletes artifact versions the DML no longer needs, by policies per artifact name
pattern: keep the newest N admitted versions, delete quarantined and rejected pushes after D
days. Whatever the policy, a version any release names (open, closed or cancelled) is kept,
and so are OCI tags (delete those through /v2/). See docs/retention.md.

dml serve --retention-interval runs the policies on a schedule; dml retention run runs them now.`,
	}
	policy := &cobra.Command{
		Use:   "policy",
		Short: "Set, list and delete retention policies",
	}
	policy.AddCommand(newRetentionPolicySetCmd(app), newRetentionPolicyListCmd(app), newRetentionPolicyDeleteCmd(app))
	cmd.AddCommand(policy, newRetentionRunCmd(app))
	return cmd
}

func newRetentionPolicySetCmd(app *cli) *cobra.Command {
	var p wire.RetentionPolicy
	cmd := &cobra.Command{
		Use:   "set ID --pattern PATTERN [--keep-admitted N] [--delete-quarantined-after DAYS] [--delete-rejected-after DAYS]",
		Short: "Create or replace a retention policy",
		Long: `Create or replace the retention policy ID (1-63 characters of a-z, 0-9, '.', '_', '-').

--pattern is a trust policy pattern: an exact name, or "/"-separated segments where "*", "?"
and "[a-z]" match within a segment and a segment "**" matches any number of segments
("payments/**"). When several policies match a name, the most specific pattern wins: an
exact name, then the longest text before the first wildcard, then a pattern without "**",
then the longer pattern, then the lower ID.

--keep-admitted N keeps the newest N admitted, unretired versions of each name (by push
time) and deletes the older ones; retired versions are deleted. 0 keeps every admitted
version. --delete-quarantined-after and --delete-rejected-after delete pushes still in that
state that many days after they were pushed; 0 never deletes them. A version any release
names is never deleted.`,
		Example: `  dml retention policy set payments --pattern 'payments/**' --keep-admitted 10 --delete-quarantined-after 30 --delete-rejected-after 7
  dml retention policy set scratch --pattern 'sandbox/*' --delete-quarantined-after 3 --delete-rejected-after 1`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			p.ID = args[0]
			got, err := c.Retention().SetPolicy(cmd.Context(), p)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), got, func(w io.Writer) error { return printFields(w, policyFields(got)) })
		}),
	}
	f := cmd.Flags()
	f.StringVar(&p.Pattern, "pattern", "", "artifact name pattern the policy governs")
	f.IntVar(&p.KeepAdmitted, "keep-admitted", 0, "admitted versions to keep per name, newest first (0: all)")
	f.IntVar(&p.DeleteQuarantinedAfterDays, "delete-quarantined-after", 0, "days after which a quarantined push is deleted (0: never)")
	f.IntVar(&p.DeleteRejectedAfterDays, "delete-rejected-after", 0, "days after which a rejected push is deleted (0: never)")
	_ = cmd.MarkFlagRequired("pattern")
	return cmd
}

func policyFields(p wire.RetentionPolicy) [][2]string {
	return [][2]string{
		{"id", p.ID},
		{"pattern", p.Pattern},
		{"keep admitted", limitOrAll(int64(p.KeepAdmitted))},
		{"delete quarantined after", daysOrNever(p.DeleteQuarantinedAfterDays)},
		{"delete rejected after", daysOrNever(p.DeleteRejectedAfterDays)},
		{"updated by", p.UpdatedBy},
		{"updated", formatTimeOrDash(p.UpdatedAt)},
	}
}

func limitOrAll(n int64) string {
	if n == 0 {
		return "all"
	}
	return fmt.Sprint(n)
}

func daysOrNever(d int) string {
	if d == 0 {
		return "never"
	}
	return fmt.Sprintf("%d days", d)
}

func newRetentionPolicyListCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the retention policies",
		Args:  cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			list, err := c.Retention().Policies(cmd.Context())
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), list, func(w io.Writer) error {
				return printList(w, len(list), "no retention policies", func(tw io.Writer) {
					fmt.Fprintln(tw, "ID\tPATTERN\tKEEP ADMITTED\tQUARANTINED\tREJECTED\tUPDATED BY\tUPDATED")
					for _, p := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Pattern, limitOrAll(int64(p.KeepAdmitted)),
							daysOrNever(p.DeleteQuarantinedAfterDays), daysOrNever(p.DeleteRejectedAfterDays), p.UpdatedBy, formatTimeOrDash(p.UpdatedAt))
					}
				})
			})
		}),
	}
}

func newRetentionPolicyDeleteCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a retention policy (the names it governed are kept from then on)",
		Args:  cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.Retention().DeletePolicy(cmd.Context(), args[0]); err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), map[string]string{"deleted": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "retention policy %s deleted\n", args[0])
				return err
			})
		}),
	}
}

func newRetentionRunCmd(app *cli) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "run [--dry-run]",
		Short: "Run the retention policies now, or list what they would delete",
		Long: `Run the retention policies on the server, as an admin. Every version a policy lets go is
printed with its state, size and why; then the totals.

With --dry-run nothing is deleted. Otherwise each version is deleted in a transaction that
checks again that no release names it (a release that took it meanwhile keeps it: the
version is listed as skipped) and records artifact.deleted in the audit log, with the
policy and the reason; the blobs nothing refers to any more are then deleted the way
dml gc deletes them (a push of the same bytes racing the deletion keeps its blob). One run
at a time, across every replica.`,
		Example: `  dml retention run --dry-run
  dml retention run --output json`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			run, err := c.Retention().Run(cmd.Context(), dryRun)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), run, func(w io.Writer) error { return printRetentionRun(w, run) })
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be deleted, delete nothing")
	return cmd
}

func printRetentionRun(w io.Writer, run wire.RetentionRun) error {
	sum := run.Summary
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tSIZE\tPOLICY\tWHY\tOUTCOME")
	for _, it := range run.Items {
		outcome := "would delete"
		switch {
		case it.Deleted:
			outcome = "deleted"
		case it.Skipped != "":
			outcome = "kept: " + it.Skipped
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Name, it.Version, it.State, formatBytes(it.Size), it.Policy, it.Reason, outcome)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fields := [][2]string{
		{"versions looked at", fmt.Sprint(sum.Versions)},
		{"chosen by the policies", fmt.Sprintf("%d (%s)", sum.Planned, formatBytes(sum.PlannedBytes))},
	}
	if sum.DryRun {
		fields = append(fields, [2]string{"deleted", "nothing (dry run)"})
	} else {
		fields = append(fields,
			[2]string{"deleted", fmt.Sprintf("%d (%s)", sum.Deleted, formatBytes(sum.DeletedBytes))},
			[2]string{"kept after all", fmt.Sprint(sum.Skipped)},
			[2]string{"blobs freed", fmt.Sprintf("%d (%s)", sum.BlobsCollected, formatBytes(sum.BytesCollected))})
	}
	fields = append(fields, [2]string{"duration", sum.Duration})
	return printFields(w, fields)
}

func newQuotaCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Limit the bytes and versions under an artifact name prefix (admins)",
		Long: `Quotas limit what may be pushed under an artifact name prefix (a plain string prefix:
"payments/" covers payments/api; every quota whose prefix a name starts with applies).
A push past a quota is refused with 403 QUOTA_EXCEEDED before any byte is stored, on the
REST API and the OCI registry alike. Usage counts the versions under the prefix and their
sizes, plus the blobs pushed into OCI repositories under it. See docs/retention.md.`,
	}
	cmd.AddCommand(newQuotaSetCmd(app), newQuotaListCmd(app), newQuotaDeleteCmd(app))
	return cmd
}

func newQuotaSetCmd(app *cli) *cobra.Command {
	var q wire.Quota
	cmd := &cobra.Command{
		Use:   "set PREFIX [--max-bytes N] [--max-artifacts N]",
		Short: "Create or replace the quota of a prefix (0: no limit)",
		Long: `Create or replace the quota of PREFIX. --max-bytes limits the bytes under the prefix,
--max-artifacts its versions; 0 is no limit, and at least one is needed. A quota below
what the prefix holds already refuses every new push until enough is deleted.`,
		Example: `  dml quota set payments/ --max-bytes 53687091200 --max-artifacts 500
  dml quota set sandbox/ --max-artifacts 50`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			q.Prefix = args[0]
			got, err := c.Quotas().Set(cmd.Context(), q)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), got, func(w io.Writer) error { return printFields(w, quotaFields(got)) })
		}),
	}
	f := cmd.Flags()
	f.Int64Var(&q.MaxBytes, "max-bytes", 0, "bytes the prefix may hold (0: no limit)")
	f.Int64Var(&q.MaxArtifacts, "max-artifacts", 0, "versions the prefix may hold (0: no limit)")
	return cmd
}

func quotaFields(q wire.Quota) [][2]string {
	return [][2]string{
		{"prefix", q.Prefix},
		{"max bytes", limitOrNone(q.MaxBytes, true)},
		{"max artifacts", limitOrNone(q.MaxArtifacts, false)},
		{"used bytes", fmt.Sprintf("%d (%s)", q.UsedBytes, formatBytes(q.UsedBytes))},
		{"used artifacts", fmt.Sprint(q.UsedArtifacts)},
		{"updated by", q.UpdatedBy},
		{"updated", formatTimeOrDash(q.UpdatedAt)},
	}
}

func limitOrNone(n int64, bytes bool) string {
	switch {
	case n == 0:
		return "no limit"
	case bytes:
		return fmt.Sprintf("%d (%s)", n, formatBytes(n))
	}
	return fmt.Sprint(n)
}

func newQuotaListCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the quotas with what each prefix holds",
		Args:  cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			list, err := c.Quotas().List(cmd.Context())
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), list, func(w io.Writer) error {
				return printList(w, len(list), "no quotas", func(tw io.Writer) {
					fmt.Fprintln(tw, "PREFIX\tBYTES USED\tMAX BYTES\tARTIFACTS\tMAX ARTIFACTS\tUPDATED BY")
					for _, q := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", q.Prefix, formatBytes(q.UsedBytes), limitOrNone(q.MaxBytes, true),
							q.UsedArtifacts, limitOrNone(q.MaxArtifacts, false), q.UpdatedBy)
					}
				})
			})
		}),
	}
}

func newQuotaDeleteCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "delete PREFIX",
		Short: "Delete the quota of a prefix",
		Args:  cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.Quotas().Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), map[string]string{"deleted": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "quota %s deleted\n", args[0])
				return err
			})
		}),
	}
}
