package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
)

func newStatusCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status NAME VERSION",
		Short: "Show an artifact's admission: its state and what the trust policy still needs",
		Long: `Show where version VERSION of artifact NAME stands against the trust policy: its state
(QUARANTINED, ADMITTED or REJECTED), the policy rule that applies, what admission still
needs, the reason for the decision, and the evidence attached so far.

The command is informational: it exits 0 whatever the state. To check the evidence and the
admission receipt yourself, use ` + "`dml verify`" + `.`,
		Example: `  dml status payments/api 1.4.2`,
		Args:    cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			a, err := c.Artifacts().Get(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			list, err := c.Evidence().List(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), struct {
				Artifact wire.Artifact   `json:"artifact"`
				Evidence []wire.Evidence `json:"evidence"`
			}{a, list}, func(w io.Writer) error {
				fmt.Fprintf(w, "%s:%s is %s\n", a.Name, a.Version, strings.ToUpper(a.State))
				fields := [][2]string{{"digest", a.Digest.String()}, {"size", formatBytes(a.Size)}, {"pushed by", a.CreatedBy}}
				fields = append(fields, admissionFields(a)...)
				fields = append(fields, [2]string{"evidence", countEvidence(list)})
				if err := printFields(w, fields); err != nil {
					return err
				}
				printUnmet(w, a)
				if len(list) == 0 {
					return nil
				}
				fmt.Fprintln(w)
				return printEvidenceTable(w, list)
			})
		}),
	}
	return cmd
}

// countEvidence says "2 signatures, 1 attestation" or "none".
func countEvidence(list []wire.Evidence) string {
	var sigs, atts int
	for _, e := range list {
		if e.Kind == kindAttestation {
			atts++
		} else {
			sigs++
		}
	}
	if sigs+atts == 0 {
		return "none"
	}
	return plural(sigs, "signature") + ", " + plural(atts, "attestation")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
