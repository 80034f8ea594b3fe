package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/dmlproject/dml/api/client"
	"github.com/spf13/cobra"
)

func newArtifactCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "artifact",
		Aliases: []string{"artifacts"},
		Short:   "Show and list artifacts",
	}
	cmd.AddCommand(newArtifactShowCmd(), newArtifactListCmd())
	return cmd
}

func newArtifactShowCmd() *cobra.Command {
	var (
		cf  clientFlags
		out outputFormat
	)
	cmd := &cobra.Command{
		Use:   "show NAME VERSION",
		Short: "Show one artifact version",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			a, err := c.Artifact(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), a)
			}
			return printFields(cmd.OutOrStdout(), artifactFields(a))
		},
	}
	cf.register(cmd)
	out.register(cmd)
	return cmd
}

func newArtifactListCmd() *cobra.Command {
	var (
		cf  clientFlags
		out outputFormat
		f   client.ArtifactFilter
		all bool
	)
	cmd := &cobra.Command{
		Use:   "list [--name NAME] [--state STATE] [--limit N] [--all]",
		Short: "List artifacts, ordered by name and version",
		Long: `List artifacts, ordered by name and version, one page at a time.

Without --all one page is printed and, when there are more, the cursor of the next one
(on stderr for tables, as nextCursor in JSON). With --all every page is fetched; --limit
is then the page size.`,
		Example: `  dml artifact list --name payments/api --state admitted
  dml artifact list --all --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			var page client.ArtifactPage
			if all {
				for a, err := range c.AllArtifacts(cmd.Context(), f) {
					if err != nil {
						return err
					}
					page.Artifacts = append(page.Artifacts, a)
				}
			} else if page, err = c.ListArtifacts(cmd.Context(), f); err != nil {
				return err
			}
			if page.Artifacts == nil {
				page.Artifacts = []client.Artifact{}
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), page)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tDIGEST\tSIZE\tSTATE\tCREATED")
			for _, a := range page.Artifacts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Version, shortDigest(a), formatBytes(a.Size), a.State, a.CreatedAt.Format("2006-01-02 15:04"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s (or --all)\n", page.NextCursor)
			}
			return nil
		},
	}
	cf.register(cmd)
	out.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.Name, "name", "", "only this artifact name")
	fl.StringVar(&f.State, "state", "", "only this state: quarantined, admitted or rejected")
	fl.IntVar(&f.Limit, "limit", 0, "page size (default: the server's)")
	fl.StringVar(&f.Cursor, "cursor", "", "start at this page (from a previous listing)")
	fl.BoolVar(&all, "all", false, "follow cursors and list every page")
	return cmd
}

// shortDigest abbreviates a digest for tables, like git and docker do.
func shortDigest(a client.Artifact) string {
	s := a.Digest.String()
	alg, enc := a.Digest.Algorithm().String(), a.Digest.Encoded()
	if len(enc) > 12 {
		s = alg + ":" + enc[:12]
	}
	return s
}
