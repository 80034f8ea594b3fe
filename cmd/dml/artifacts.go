package main

import (
	"fmt"
	"io"
	"iter"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
)

func newArtifactCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "artifact",
		Aliases: []string{"artifacts"},
		Short:   "Show and list artifacts",
	}
	cmd.AddCommand(newArtifactShowCmd(app), newArtifactListCmd(app), newArtifactRetireCmd(app))
	return cmd
}

func newArtifactShowCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NAME VERSION",
		Short: "Show one artifact version",
		Args:  cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			a, err := c.Artifacts().Get(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), a, func(w io.Writer) error { return printFields(w, artifactFields(a)) })
		}),
	}
	return cmd
}

func newArtifactListCmd(app *cli) *cobra.Command {
	var (
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
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			items, next, err := onePageOrAll(all, c.Artifacts().All(cmd.Context(), f), func() ([]wire.Artifact, string, error) {
				p, err := c.Artifacts().List(cmd.Context(), f)
				return p.Artifacts, p.NextCursor, err
			})
			if err != nil {
				return err
			}
			page := wire.ArtifactPage{Artifacts: items, NextCursor: next}
			none := noneMatch("artifacts", "name", quoted(f.Name), "state", f.State)
			return app.printPage(cmd, page, page.NextCursor, len(page.Artifacts), none, func(tw io.Writer) {
				fmt.Fprintln(tw, "NAME\tVERSION\tDIGEST\tSIZE\tSTATE\tCREATED")
				for _, a := range page.Artifacts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Version, short(a.Digest), formatBytes(a.Size), a.State, formatTime(a.CreatedAt))
				}
			})
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Name, "name", "", "only this artifact name")
	fl.StringVar(&f.State, "state", "", "only this state: quarantined, admitted or rejected")
	fl.IntVar(&f.Limit, "limit", 0, "page size (default: the server's)")
	fl.StringVar(&f.Cursor, "cursor", "", "start at this page (from a previous listing)")
	fl.BoolVar(&all, "all", false, "follow cursors and list every page")
	return cmd
}

// onePageOrAll returns every item of all (when all is set) or the items
// of one page and the next page's cursor.
func onePageOrAll[T any](all bool, every iter.Seq2[T, error], page func() ([]T, string, error)) ([]T, string, error) {
	if !all {
		return page()
	}
	var items []T
	for it, err := range every {
		if err != nil {
			return nil, "", err
		}
		items = append(items, it)
	}
	return items, "", nil
}
