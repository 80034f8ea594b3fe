package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
)

func newReleaseEmergencyCmd(app *cli) *cobra.Command {
	var (
		reason string
		until  string
	)
	cmd := &cobra.Command{
		Use:   "emergency NAME --reason TEXT [--until TIME|DURATION]",
		Short: "Record an emergency change: deploy outside the change window once approved (release managers)",
		Long: `Record an emergency change on a sealed release that is not deployed everywhere yet. It opens
the release's "emergency" gate: approvers decide it like the other gates (dml release approve
NAME --gate emergency), with its own quorum (the admin's default for "emergency", 2 when
unset; see dml release gate-defaults) and separation of duties (neither the release's
creator, the publishers of its artifacts nor the requester may approve it). Approvals bind to
the digest of this request: a new request makes earlier approvals stale.

Once the gate is authorised, deployments outside the release's window are recorded until
--until, each marked as an emergency deployment with the reason, and highlighted in the audit
log. --until is a time (RFC 3339) or a duration from now (default 24h, at most 72h).`,
		Example: `  dml release emergency 2026.11-payments --reason "INC-4711: card payments failing" --until 6h
  dml release approve 2026.11-payments --gate emergency`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = releaseRun(app, func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error) {
		req := wire.EmergencyRequest{Reason: reason}
		if until != "" {
			t, err := parseUntil(until, time.Now())
			if err != nil {
				return wire.Release{}, err
			}
			req.Until = &t
		}
		return c.Releases().RequestEmergency(cmd.Context(), args[0], req)
	})
	cmd.Flags().StringVar(&reason, "reason", "", "why the emergency change is needed (an incident reference, what breaks without it)")
	cmd.Flags().StringVar(&until, "until", "", "when the emergency change ends: an RFC 3339 time or a duration from now (default 24h, at most 72h)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

// parseUntil reads an RFC 3339 time, or a duration after now.
func parseUntil(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("--until %q is neither an RFC 3339 time nor a positive duration (6h, 90m)", s)
	}
	return now.Add(d).UTC().Truncate(time.Second), nil
}

func newChangePolicyCmd(app *cli) *cobra.Command {
	var (
		requireWindow bool
		riskLevels    []string
		pattern       string
		systemURL     string
		secretFile    string
	)
	cmd := &cobra.Command{
		Use:   "change-policy [--require-window=BOOL] [--risk-level L]... [--change-ref-pattern RE] [--change-system-url URL [--change-system-secret-file F]]",
		Short: "Show or set (admins) the change control: windows, risk levels, change references, change system",
		Long: `Show the admin's change control, or change it (admins); flags left out keep their value.

  --require-window       plans must have a change window (default false: a release without
                         one deploys at any time; with true, one stored without a window
                         deploys only under an emergency change)
  --risk-level           the risks a plan may name, replacing the list (default low, medium,
                         high); releases stored with another risk still load
  --change-ref-pattern   a Go regular expression every change reference must match, anchored
                         as written (^CHG[0-9]+$); "" accepts any
  --change-system-url    the external change system asked before a plan gate passes (https,
                         or http to a loopback address); "" removes it. The secret that
                         signs its requests (X-DML-Signature) is read from
                         --change-system-secret-file. See docs/itil.md for the contract.`,
		Example: `  dml release change-policy --risk-level low --risk-level medium --risk-level high --risk-level critical
  dml release change-policy --change-ref-pattern '^CHG[0-9]+$' --require-window
  dml release change-policy --change-system-url https://itsm.example.com/dml --change-system-secret-file itsm.secret`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			f := cmd.Flags()
			var upd wire.ChangePolicyUpdate
			set := false
			if f.Changed("require-window") {
				upd.RequireChangeWindow, set = &requireWindow, true
			}
			if f.Changed("risk-level") {
				upd.RiskLevels, set = riskLevels, true
			}
			if f.Changed("change-ref-pattern") {
				upd.ChangeRefPattern, set = &pattern, true
			}
			if f.Changed("change-system-secret-file") && !f.Changed("change-system-url") {
				return fmt.Errorf("--change-system-secret-file goes with --change-system-url")
			}
			if f.Changed("change-system-url") {
				cs := &wire.ChangeSystemSetting{URL: systemURL}
				if secretFile != "" {
					b, err := os.ReadFile(secretFile)
					if err != nil {
						return fmt.Errorf("reading the change system's secret: %w", err)
					}
					cs.Secret = strings.TrimSpace(string(b))
				}
				upd.ChangeSystem, set = cs, true
			}
			var (
				p   wire.ChangePolicy
				err error
			)
			if set {
				p, err = c.Settings().SetChangePolicy(cmd.Context(), upd)
			} else {
				p, err = c.Settings().ChangePolicy(cmd.Context())
			}
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), p, func(w io.Writer) error { return printChangePolicy(w, p) })
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&requireWindow, "require-window", false, "plans must have a change window")
	f.StringArrayVar(&riskLevels, "risk-level", nil, "a risk level a plan may name (repeatable; the list replaces the current one)")
	f.StringVar(&pattern, "change-ref-pattern", "", `Go regular expression change references must match ("" accepts any)`)
	f.StringVar(&systemURL, "change-system-url", "", `the external change system's URL ("" removes it)`)
	f.StringVar(&secretFile, "change-system-secret-file", "", "file holding the secret that signs requests to the change system")
	return cmd
}

func printChangePolicy(w io.Writer, p wire.ChangePolicy) error {
	system := "none"
	if cs := p.ChangeSystem; cs != nil {
		system = cs.URL
		if cs.Signed {
			system += " (signed)"
		} else {
			system += " (unsigned)"
		}
	}
	updated := "never (defaults)"
	if p.UpdatedAt != nil {
		updated = p.UpdatedBy + " at " + formatTime(*p.UpdatedAt)
	}
	return printFields(w, [][2]string{
		{"require window", fmt.Sprint(p.RequireChangeWindow)},
		{"risk levels", strings.Join(p.RiskLevels, ", ")},
		{"change ref pattern", orDash(p.ChangeRefPattern)},
		{"change system", system},
		{"updated", updated},
	})
}

// emergencyFields describes a release's emergency change for `release show`.
func emergencyFields(em wire.Emergency, now time.Time) [][2]string {
	status := em.Status
	switch {
	case em.Status == wire.EmergencyAuthorized && now.Before(em.Until):
		status = "AUTHORIZED — deployments outside the window allowed until " + formatTime(em.Until)
	case em.Status == wire.EmergencyAuthorized:
		status = "authorized, ended " + formatTime(em.Until)
	case em.Status == wire.EmergencyRequested && !now.Before(em.Until):
		status = "requested, expired " + formatTime(em.Until)
	case em.Status == wire.EmergencyRequested:
		status = "requested — waiting for the emergency gate"
	}
	fields := [][2]string{
		{"status", status},
		{"reason", oneLine(em.Reason)},
		{"until", formatTime(em.Until)},
		{"requested", em.RequestedBy + " at " + formatTime(em.RequestedAt)},
		{"digest", em.Digest.String()},
	}
	if em.AuthorizedAt != nil {
		fields = append(fields, [2]string{"authorized", formatTime(*em.AuthorizedAt)})
	}
	return fields
}
