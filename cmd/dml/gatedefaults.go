package main

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
)

func newGateDefaultsCmd(app *cli) *cobra.Command {
	var (
		set   []string
		clear bool
	)
	cmd := &cobra.Command{
		Use:   "gate-defaults [--set GATE=N]... [--clear]",
		Short: "Show or set (admins) the default approvals each gate needs in new releases",
		Long: `Show the default quorums, or replace them with --set (admins). GATE is plan, build, close,
deploy:ENV, or deploy:* for every environment without its own default. The defaults are
minimums: a release may ask for more with --gate, never for less. They apply to new releases
and to environments a new plan adds; gates a release already has keep their quorums.`,
		Example: `  dml release gate-defaults --set deploy:production=2 --set close=1`,
		Args:    cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			var (
				d   wire.GateDefaults
				err error
			)
			if len(set) > 0 || clear {
				gates := map[string]wire.GateSetting{}
				if err := parseGateQuorums(set, gates); err != nil {
					return err
				}
				d, err = c.Settings().SetGateDefaults(cmd.Context(), gates)
			} else {
				d, err = c.Settings().GateDefaults(cmd.Context())
			}
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), d, func(w io.Writer) error {
				if len(d.Gates) == 0 {
					_, err := fmt.Fprintln(w, "no defaults: every gate needs 1 approval unless a release sets its own")
					return err
				}
				gates := slices.Sorted(maps.Keys(d.Gates))
				tw := newTable(w)
				fmt.Fprintln(tw, "GATE\tAPPROVALS")
				for _, g := range gates {
					fmt.Fprintf(tw, "%s\t%d\n", g, d.Gates[g].Approvals)
				}
				return tw.Flush()
			})
		}),
	}
	cmd.Flags().StringArrayVar(&set, "set", nil, "GATE=N default quorum (repeatable); replaces all defaults")
	cmd.Flags().BoolVar(&clear, "clear", false, "remove every default")
	return cmd
}
