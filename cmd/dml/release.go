package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newReleaseCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "release",
		Aliases: []string{"releases"},
		Short:   "Plan, authorise, deploy and review releases (ITIL release and deployment management)",
		Long: `A release moves through planning → building → released → deploying → deployed → review →
closed (or cancelled). Each step past planning is authorised at a gate by approvers:

  plan          authorises the plan (its digest)            planning  → building
  build         authorises the artifacts; seals the manifest building  → released
  deploy:ENV    authorises deployment of the sealed manifest released  → deploying
  close         authorises the review                       review    → closed
  emergency     authorises an emergency change (dml release emergency): deployments
                outside the release's change window, until the change ends

Approvals name the digest they approve and count only while it is current. The release's
creator and the publishers of its artifacts cannot approve it, nor can whoever changed its
plan, artifacts or review approve the plan, build or close gate. Deployments outside the
release's change window are refused (OUTSIDE_CHANGE_WINDOW) unless an emergency change is in
force; the admin's change policy (dml release change-policy) sets the risk levels, the pattern
of change references and an external change system. See docs/itil.md.`,
	}
	cmd.AddCommand(
		newReleaseCreateCmd(app),
		newReleaseShowCmd(app),
		newReleaseListCmd(app),
		newReleaseSetPlanCmd(app),
		newReleaseSetArtifactsCmd(app),
		newReleaseDecideCmd(app, wire.DecisionApprove),
		newReleaseDecideCmd(app, wire.DecisionReject),
		newReleaseDeployCmd(app),
		newReleaseReviewCmd(app),
		newReleaseCancelCmd(app),
		newReleaseManifestCmd(app),
		newGateDefaultsCmd(app),
		newReleaseEmergencyCmd(app),
		newChangePolicyCmd(app),
		newReleaseWaitCmd(app),
	)
	return cmd
}

// releasePlanFlags are the plan flags of create and set-plan. Flags the
// user sets override the --file document.
type releasePlanFlags struct {
	file        string
	changeRef   string
	title       string
	envs        []string
	description string
	windowStart string
	windowEnd   string
	backoutPlan string
	risk        string
}

func (p *releasePlanFlags) register(f *pflag.FlagSet) {
	f.StringVar(&p.file, "file", "", "JSON request body to start from (- for stdin); flags override its fields")
	f.StringVar(&p.changeRef, "change-ref", "", "change record that authorises the release (e.g. CHG-1234)")
	f.StringVar(&p.title, "title", "", "release title")
	f.StringSliceVar(&p.envs, "env", nil, "environment, in deployment order (repeatable, or comma-separated)")
	f.StringVar(&p.description, "description", "", "what the release changes")
	f.StringVar(&p.windowStart, "window-start", "", "start of the deployment window (RFC 3339)")
	f.StringVar(&p.windowEnd, "window-end", "", "end of the deployment window (RFC 3339)")
	f.StringVar(&p.backoutPlan, "backout-plan", "", "how a failed deployment is backed out")
	f.StringVar(&p.risk, "risk", "", "risk assessment")
}

// apply overrides req with the flags the user set.
func (p *releasePlanFlags) apply(f *pflag.FlagSet, req *wire.PlanRequest) error {
	set := func(name string, dst *string, v string) {
		if f.Changed(name) {
			*dst = v
		}
	}
	set("change-ref", &req.ChangeRef, p.changeRef)
	set("title", &req.Title, p.title)
	set("description", &req.Plan.Description, p.description)
	set("backout-plan", &req.Plan.BackoutPlan, p.backoutPlan)
	set("risk", &req.Plan.Risk, p.risk)
	if f.Changed("env") {
		req.Environments = p.envs
	}
	if f.Changed("window-start") || f.Changed("window-end") {
		w := wire.Window{}
		if req.Plan.Window != nil {
			w = *req.Plan.Window
		}
		for _, x := range []struct {
			flag, v string
			dst     *time.Time
		}{{"window-start", p.windowStart, &w.Start}, {"window-end", p.windowEnd, &w.End}} {
			if !f.Changed(x.flag) {
				continue
			}
			t, err := time.Parse(time.RFC3339, x.v)
			if err != nil {
				return fmt.Errorf("--%s: want an RFC 3339 time such as 2026-11-14T22:00:00Z: %w", x.flag, err)
			}
			*x.dst = t
		}
		if w.Start.IsZero() || w.End.IsZero() {
			return errors.New("--window-start and --window-end go together")
		}
		req.Plan.Window = &w
	}
	return nil
}

// readReleaseFile decodes the JSON document at path ("-": stdin) into v,
// refusing unknown fields.
func readReleaseFile(cmd *cobra.Command, path string, v any) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("--file %s: %w", path, err)
	}
	return nil
}

// parseArtifactRefs parses NAME:VERSION arguments.
func parseArtifactRefs(list []string) ([]wire.ReleaseArtifactRef, error) {
	out := make([]wire.ReleaseArtifactRef, 0, len(list))
	for _, s := range list {
		i := strings.LastIndex(s, ":")
		if i <= 0 || i == len(s)-1 {
			return nil, fmt.Errorf("--artifact %q: want NAME:VERSION", s)
		}
		out = append(out, wire.ReleaseArtifactRef{Name: s[:i], Version: s[i+1:]})
	}
	return out, nil
}

// parseGates parses GATE=N arguments into gates.
func parseGateQuorums(list []string, gates map[string]wire.GateSetting) error {
	for _, s := range list {
		i := strings.LastIndex(s, "=")
		n, err := strconv.Atoi(s[i+1:])
		if i <= 0 || err != nil {
			return fmt.Errorf("--gate %q: want GATE=APPROVALS, e.g. deploy:production=2", s)
		}
		gates[s[:i]] = wire.GateSetting{Approvals: n}
	}
	return nil
}

// warnAbout prints the server's warnings about a release's artifacts
// that are not admitted to stderr (stdout carries the release, perhaps as
// JSON, which has them too) and returns the release.
func warnAbout(cmd *cobra.Command, p wire.PlannedRelease, err error) (wire.Release, error) {
	if err != nil {
		return wire.Release{}, err
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s; the build gate refuses it until it is admitted\n", w.Message)
	}
	return p.Release, nil
}

// releaseRun is the common shape of a release command: run fn with the
// client, print the release it returns.
func releaseRun(app *cli, fn func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error)) func(*cobra.Command, []string) error {
	return app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
		r, err := fn(cmd, args, c)
		if err != nil {
			return err
		}
		return app.emit(cmd.OutOrStdout(), r, func(w io.Writer) error { return printRelease(w, r) })
	})
}

func newReleaseCreateCmd(app *cli) *cobra.Command {
	var (
		plan      releasePlanFlags
		artifacts []string
		gates     []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --change-ref C --title T --env ENV... [flags]",
		Short: "Plan a new release (release managers)",
		Long: `Create a release in the planning state. Environments are deployed to in the order given.
Every gate needs one approval unless --gate or the admin's defaults (dml release gate-defaults)
set its quorum; the defaults are minimums, and a --gate below one is refused (QUORUM_TOO_LOW).
Gates are plan, build, deploy:ENV for each environment, and close.

--file starts from a JSON request body ({"name","changeRef","title","environments","plan":
{"description","window":{"start","end"},"backoutPlan","risk"},"artifacts":[{"name","version"}],
"gates":{"deploy:production":{"approvals":2}}}); flags override its fields.`,
		Example: `  dml release create 2026.11-payments --change-ref CHG-4711 --title "Payments November release" \
    --env staging --env production --risk medium --backout-plan "redeploy 2026.10-payments" \
    --window-start 2026-11-14T22:00:00Z --window-end 2026-11-15T02:00:00Z \
    --artifact payments/api:1.4.2 --gate deploy:production=2
  dml release create --file release.json`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.RunE = releaseRun(app, func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error) {
		var req wire.CreateReleaseRequest
		if plan.file != "" {
			if err := readReleaseFile(cmd, plan.file, &req); err != nil {
				return wire.Release{}, err
			}
		}
		if len(args) == 1 {
			if req.Name != "" && req.Name != args[0] {
				return wire.Release{}, fmt.Errorf("the name %q differs from %q in --file", args[0], req.Name)
			}
			req.Name = args[0]
		}
		if req.Name == "" {
			return wire.Release{}, errors.New("a release name is required (argument NAME or \"name\" in --file)")
		}
		if err := plan.apply(cmd.Flags(), &req.PlanRequest); err != nil {
			return wire.Release{}, err
		}
		if cmd.Flags().Changed("artifact") {
			refs, err := parseArtifactRefs(artifacts)
			if err != nil {
				return wire.Release{}, err
			}
			req.Artifacts = refs
		}
		if len(gates) > 0 {
			if req.Gates == nil {
				req.Gates = map[string]wire.GateSetting{}
			}
			if err := parseGateQuorums(gates, req.Gates); err != nil {
				return wire.Release{}, err
			}
		}
		p, err := c.Releases().Plan(cmd.Context(), req)
		return warnAbout(cmd, p, err)
	})
	plan.register(cmd.Flags())
	cmd.Flags().StringArrayVar(&artifacts, "artifact", nil, "artifact version NAME:VERSION to include (repeatable)")
	cmd.Flags().StringArrayVar(&gates, "gate", nil, "gate quorum GATE=APPROVALS, e.g. deploy:production=2 (repeatable)")
	return cmd
}

func newReleaseShowCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a release: plan, artifacts, gates, deployments, review and what can happen next",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = releaseRun(app, func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error) {
		return c.Releases().Get(cmd.Context(), args[0])
	})
	return cmd
}

func newReleaseListCmd(app *cli) *cobra.Command {
	var (
		f   client.ReleaseFilter
		all bool
	)
	cmd := &cobra.Command{
		Use:     "list [--state STATE] [--limit N] [--all]",
		Short:   "List releases, ordered by name",
		Example: "  dml release list --state deploying\n  dml release list --all --output json",
		Args:    cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			items, next, err := onePageOrAll(all, c.Releases().All(cmd.Context(), f), func() ([]wire.Release, string, error) {
				p, err := c.Releases().List(cmd.Context(), f)
				return p.Releases, p.NextCursor, err
			})
			if err != nil {
				return err
			}
			page := wire.ReleasePage{Releases: items, NextCursor: next}
			return app.printPage(cmd, page, page.NextCursor, len(page.Releases), noneMatch("releases", "state", f.State), func(tw io.Writer) {
				fmt.Fprintln(tw, "NAME\tSTATE\tCHANGE\tENVIRONMENTS\tOPEN GATES\tUPDATED\tTITLE")
				for _, r := range page.Releases {
					var open []string
					for _, g := range r.Gates {
						if g.Open {
							open = append(open, fmt.Sprintf("%s (%d/%d)", g.Gate, g.Received, g.Required))
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.State, r.Plan.ChangeRef, listOrNone(r.Plan.Environments),
						listOrNone(open), formatTime(r.UpdatedAt), oneLine(r.Plan.Title))
				}
			})
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.State, "state", "", "only this state: planning, building, released, deploying, deployed, review, closed or cancelled")
	fl.IntVar(&f.Limit, "limit", 0, "page size (default: the server's)")
	fl.StringVar(&f.Cursor, "cursor", "", "start at this page (from a previous listing)")
	fl.BoolVar(&all, "all", false, "follow cursors and list every page")
	return cmd
}

func newReleaseSetPlanCmd(app *cli) *cobra.Command {
	var (
		plan releasePlanFlags
	)
	cmd := &cobra.Command{
		Use:   "set-plan NAME [plan flags | --file plan.json]",
		Short: "Replace the plan of a planning release (discards its plan approvals)",
		Long: `Replace the whole plan of a release in planning. Without --file the plan starts from the
current one, so only the flags given change. Changing the plan changes its digest: plan
approvals given so far are discarded and approvers must approve the new digest.`,
		Example: `  dml release set-plan 2026.11-payments --risk high --backout-plan "restore DB snapshot, redeploy 2026.10-payments"`,
		Args:    cobra.ExactArgs(1),
	}
	cmd.RunE = releaseRun(app, func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error) {
		var req wire.PlanRequest
		if plan.file != "" {
			var doc wire.CreateReleaseRequest
			if err := readReleaseFile(cmd, plan.file, &doc); err != nil {
				return wire.Release{}, err
			}
			if doc.Artifacts != nil || doc.Gates != nil || (doc.Name != "" && doc.Name != args[0]) {
				return wire.Release{}, errors.New("set-plan --file takes the plan fields only (changeRef, title, environments, plan); use set-artifacts for artifacts")
			}
			req = doc.PlanRequest
		} else {
			cur, err := c.Releases().Get(cmd.Context(), args[0])
			if err != nil {
				return wire.Release{}, err
			}
			p := cur.Plan
			req = wire.PlanRequest{ChangeRef: p.ChangeRef, Title: p.Title, Environments: p.Environments,
				Plan: wire.PlanDetails{Description: p.Description, Window: p.Window, BackoutPlan: p.BackoutPlan, Risk: p.Risk}}
		}
		if err := plan.apply(cmd.Flags(), &req); err != nil {
			return wire.Release{}, err
		}
		p, err := c.Releases().Replan(cmd.Context(), args[0], req)
		return warnAbout(cmd, p, err)
	})
	plan.register(cmd.Flags())
	return cmd
}

func newReleaseSetArtifactsCmd(app *cli) *cobra.Command {
	var (
		artifacts []string
	)
	cmd := &cobra.Command{
		Use:     "set-artifacts NAME --artifact NAME:VERSION...",
		Short:   "Replace the artifacts of a planning or building release",
		Example: `  dml release set-artifacts 2026.11-payments --artifact payments/api:1.4.3 --artifact payments/worker:2.0.1`,
		Args:    cobra.ExactArgs(1),
	}
	cmd.RunE = releaseRun(app, func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error) {
		refs, err := parseArtifactRefs(artifacts)
		if err != nil {
			return wire.Release{}, err
		}
		p, err := c.Releases().PlanArtifacts(cmd.Context(), args[0], refs)
		return warnAbout(cmd, p, err)
	})
	cmd.Flags().StringArrayVar(&artifacts, "artifact", nil, "artifact version NAME:VERSION (repeatable; the list replaces the current one)")
	_ = cmd.MarkFlagRequired("artifact")
	return cmd
}

// digestKind says what a gate's digest is a digest of.
func gateDigestKind(gate string) string {
	switch {
	case gate == wire.GatePlan:
		return "plan"
	case gate == wire.GateClose:
		return "review"
	}
	return "manifest"
}

func newReleaseDecideCmd(app *cli, decision string) *cobra.Command {
	var (
		req = wire.ApprovalRequest{Decision: decision}
		dg  string
	)
	cmd := &cobra.Command{
		Use:   decision + " NAME --gate GATE [--digest DIGEST] [--comment TEXT]",
		Short: "Approve a gate of a release (approvers)",
		Long: `Approve a gate: plan, build, deploy:ENV or close. The approval is bound to a digest (plan,
release manifest or review) and counts only while that digest is current.

Without --digest the gate's current expected digest is fetched, printed and approved: check
it against what you reviewed (` + "`dml release show`" + `). With --digest, a digest that is no longer
current is refused with STALE_APPROVAL.`,
		Example: `  dml release approve 2026.11-payments --gate plan
  dml release approve 2026.11-payments --gate deploy:production --digest sha256:... --comment "CAB 2026-11-12"`,
		Args: cobra.ExactArgs(1),
	}
	verb := "approving"
	if decision == wire.DecisionReject {
		cmd.Use = "reject NAME --gate GATE --comment REASON [--digest DIGEST]"
		cmd.Short = "Reject a gate of a release with a reason (approvers)"
		cmd.Long = `Reject a gate. The reason (--comment) is required and shown on the release. Rejecting plan
sends the release back to planning, build back to building, close back to review; a
rejected deploy gate stays closed. Approvals already given for the gate are discarded.
Without --digest the gate's current expected digest is used.`
		cmd.Example = `  dml release reject 2026.11-payments --gate plan --comment "backout plan does not cover the DB migration"`
		verb = "rejecting"
	}
	cmd.RunE = releaseRun(app, func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error) {
		req.Digest = digest.Digest(dg)
		if req.Digest == "" {
			r, err := c.Releases().Get(cmd.Context(), args[0])
			if err != nil {
				return wire.Release{}, err
			}
			// A gate that is unknown or not open is left to the
			// server, which says why (INVALID_STATE, INVALID_INPUT).
			if g, ok := r.Gate(req.Gate); ok && g.Open && g.ExpectedDigest != "" {
				req.Digest = g.ExpectedDigest
				w := cmd.OutOrStdout()
				if app.json() {
					w = cmd.ErrOrStderr()
				}
				fmt.Fprintf(w, "%s %s digest %s (gate %s of %s)\n", verb, gateDigestKind(req.Gate), req.Digest, req.Gate, r.Name)
			}
		}
		d, err := c.Releases().DecideGate(cmd.Context(), args[0], req)
		if err == nil && d.AlreadyCounted {
			// Nothing changed: said on stderr, where a pipeline's log
			// shows it, while stdout carries the release as always.
			fmt.Fprintln(cmd.ErrOrStderr(), "already counted: "+d.Message)
		}
		return d.Release, err
	})
	f := cmd.Flags()
	f.StringVar(&req.Gate, "gate", "", "gate: plan, build, deploy:ENV or close")
	f.StringVar(&dg, "digest", "", "digest being decided on (default: the gate's current expected digest)")
	f.StringVar(&req.Comment, "comment", "", "comment (required to reject)")
	_ = cmd.MarkFlagRequired("gate")
	if decision == wire.DecisionReject {
		_ = cmd.MarkFlagRequired("comment")
	}
	return cmd
}

func newReleaseDeployCmd(app *cli) *cobra.Command {
	var (
		env      string
		target   string
		status   string
		notes    string
		verified []string
		update   string
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME (--env ENV --target TARGET | --update ID) [--status S] [--notes N] [--verified DIGEST]...",
		Short: "Record a deployment, or update one (deployers of the environment)",
		Long: `Record a deployment of a release to one of its environments, or (--update ID) change the
status, notes or verified digests of a recorded one.

A deployment needs the release in deploying, deploy:ENV authorised, a token whose
environments include ENV, and a successful deployment to every earlier environment of
the plan. --verified names digests the agent checked (the release manifest's or the
artifacts'). Status: in_progress (default), succeeded, failed, rolled_back.`,
		Example: `  dml release deploy 2026.11-payments --env staging --target k8s/staging-eu --status succeeded \
    --verified sha256:...
  dml release deploy 2026.11-payments --update dep_0123456789ab --status succeeded`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			digests := make([]digest.Digest, len(verified))
			for i, v := range verified {
				digests[i] = digest.Digest(v)
			}
			var (
				res wire.DeploymentResult
				err error
			)
			if update != "" {
				if cmd.Flags().Changed("env") || cmd.Flags().Changed("target") {
					return errors.New("--update changes a recorded deployment: --env and --target do not apply")
				}
				upd := wire.DeploymentUpdate{Status: status}
				if cmd.Flags().Changed("notes") {
					upd.Notes = &notes
				}
				if len(digests) > 0 {
					upd.VerifiedDigests = digests
				}
				if upd.Status == "" && upd.Notes == nil && upd.VerifiedDigests == nil {
					return errors.New("--update needs --status, --notes or --verified")
				}
				res, err = c.Releases().UpdateDeployment(cmd.Context(), args[0], update, upd)
			} else {
				if env == "" || target == "" {
					return errors.New("--env and --target are required (or --update ID)")
				}
				res, err = c.Releases().RecordDeployment(cmd.Context(), args[0], wire.DeploymentRequest{
					Environment: env, Target: target, Status: status, Notes: notes, VerifiedDigests: digests,
				})
			}
			if err != nil {
				return err
			}
			d := res.Deployment
			status := d.Status
			if d.Emergency {
				status += " [EMERGENCY] " + oneLine(d.EmergencyReason)
			}
			return app.emit(cmd.OutOrStdout(), res, func(w io.Writer) error {
				return printFields(w, [][2]string{
					{"deployment", d.ID},
					{"environment", d.Environment},
					{"target", d.Target},
					{"status", status},
					{"by", d.By},
					{"started", formatTime(d.StartedAt)},
					{"finished", formatTimeOrDash(d.FinishedAt)},
					{"verified", listOrNone(digestStrings(d.VerifiedDigests))},
					{"notes", orDash(oneLine(d.Notes))},
					{"release", res.Release.Name},
					{"release state", res.Release.State},
					{"next", listOrNone(res.Release.AllowedActions)},
				})
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&env, "env", "", "environment deployed to")
	f.StringVar(&target, "target", "", "what was deployed to (cluster, host group, ...)")
	f.StringVar(&status, "status", "", "in_progress (default for new deployments), succeeded, failed or rolled_back")
	f.StringVar(&notes, "notes", "", "notes")
	f.StringArrayVar(&verified, "verified", nil, "digest verified before deploying (repeatable)")
	f.StringVar(&update, "update", "", "update the deployment with this id instead of recording a new one")
	return cmd
}

func newReleaseReviewCmd(app *cli) *cobra.Command {
	var (
		req wire.ReviewRequest
	)
	cmd := &cobra.Command{
		Use:   "review NAME --outcome OUTCOME --summary TEXT [--incident ID]... [--objectives-met]",
		Short: "File the post-implementation review of a deployed release (release managers)",
		Long: `File (or re-file) the post-implementation review. The release moves to review, and the
close gate then approves the review's digest; re-filing discards close approvals.
Outcomes: successful, successful_with_issues, failed, rolled_back.

A release still deploying (a deployment failed or was rolled back, none running) is finished
this way too, with outcome failed or rolled_back: once a deployment is recorded it can no
longer be cancelled.`,
		Example: `  dml release review 2026.11-payments --outcome successful --summary "no incidents" --objectives-met`,
		Args:    cobra.ExactArgs(1),
	}
	cmd.RunE = releaseRun(app, func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error) {
		return c.Releases().FileReview(cmd.Context(), args[0], req)
	})
	f := cmd.Flags()
	f.StringVar(&req.Outcome, "outcome", "", "successful, successful_with_issues, failed or rolled_back")
	f.StringVar(&req.Summary, "summary", "", "summary of the review")
	f.StringArrayVar(&req.Incidents, "incident", nil, "incident reference (repeatable)")
	f.BoolVar(&req.ObjectivesMet, "objectives-met", false, "the release met its objectives")
	_ = cmd.MarkFlagRequired("outcome")
	_ = cmd.MarkFlagRequired("summary")
	return cmd
}

func newReleaseCancelCmd(app *cli) *cobra.Command {
	var (
		reason string
	)
	cmd := &cobra.Command{
		Use:     "cancel NAME --reason TEXT",
		Short:   "Cancel a release before its first deployment (release managers)",
		Long:    "Cancel a release before its first deployment. The reason is required; the audit log keeps it.",
		Example: `  dml release cancel 2026.11-payments --reason "superseded by 2026.12-payments"`,
		Args:    cobra.ExactArgs(1),
	}
	cmd.RunE = releaseRun(app, func(cmd *cobra.Command, args []string, c *client.Client) (wire.Release, error) {
		if strings.TrimSpace(reason) == "" {
			return wire.Release{}, errors.New("--reason must say why the release is cancelled; the audit log keeps it")
		}
		return c.Releases().Cancel(cmd.Context(), args[0], reason)
	})
	cmd.Flags().StringVar(&reason, "reason", "", "why the release is cancelled (required; kept in the audit log)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newReleaseManifestCmd(app *cli) *cobra.Command {
	var out outputFile
	cmd := &cobra.Command{
		Use:   "manifest NAME [--output-file FILE]",
		Short: "Fetch the sealed release manifest (OCI image index) and the server's signature",
		Long: `Fetch the release manifest sealed when the build gate was authorised: an OCI image index
listing every artifact by digest. The bytes are checked against the announced digest.
They go to --output-file (written atomically; an existing file is replaced only with
--force) or stdout; the report (file, digest, size, the server's signature) goes to stdout,
or to stderr when stdout carries the manifest.`,
		Example: `  dml release manifest 2026.11-payments --output-file 2026.11-payments.index.json`,
		Args:    cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := out.check(); err != nil {
				return err
			}
			m, err := c.Releases().Manifest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return app.writeDocument(cmd, &out, document{Kind: "release manifest", Subject: args[0], Signature: m.Signature}, m.Body)
		}),
	}
	out.register(cmd, "file to write the manifest to (default and -: stdout)")
	return cmd
}

func newArtifactRetireCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retire NAME VERSION",
		Short: "Retire an artifact version: kept, but no new release may include it (admins, release managers)",
		Args:  cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			a, err := c.Artifacts().Retire(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), a, func(w io.Writer) error { return printFields(w, artifactFields(a)) })
		}),
	}
	return cmd
}

// printRelease prints the readable view of a release.
func printRelease(w io.Writer, r wire.Release) error {
	p := r.Plan
	window := "-"
	if p.Window != nil {
		window = formatTime(p.Window.Start) + " – " + formatTime(p.Window.End)
	}
	manifest := "- (sealed when the build gate is authorised)"
	if r.ManifestDigest != "" {
		manifest = r.ManifestDigest.String() + " (sealed " + formatTimeOrDash(r.SealedAt) + ")"
	}
	fields := [][2]string{
		{"release", r.Name},
		{"state", r.State},
		{"change ref", p.ChangeRef},
		{"title", oneLine(p.Title)},
		{"environments", orDash(strings.Join(p.Environments, " → "))},
		{"window", window},
		{"risk", orDash(oneLine(p.Risk))},
		{"backout plan", orDash(oneLine(p.BackoutPlan))},
	}
	if p.Description != "" {
		fields = append(fields, [2]string{"description", oneLine(p.Description)})
	}
	fields = append(fields,
		[2]string{"plan digest", r.PlanDigest.String()},
		[2]string{"manifest digest", manifest},
		[2]string{"created", r.CreatedBy + " at " + formatTime(r.CreatedAt)},
		[2]string{"updated", formatTime(r.UpdatedAt) + fmt.Sprintf(" (revision %d)", r.Revision)},
	)
	if err := printFields(w, fields); err != nil {
		return err
	}

	tw := newTable(w)
	fmt.Fprintln(tw, "\nARTIFACTS")
	if len(r.Artifacts) == 0 {
		fmt.Fprintln(tw, "(none)")
	} else {
		fmt.Fprintln(tw, "NAME\tVERSION\tDIGEST\tSIZE\tPUBLISHED BY")
		for _, a := range r.Artifacts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Version, a.Digest, formatBytes(a.Size), a.CreatedBy)
		}
	}

	fmt.Fprintln(tw, "\nGATES")
	fmt.Fprintln(tw, "GATE\tREQUIRED\tRECEIVED\tSTATUS\tAPPROVERS\tEXPECTED DIGEST")
	for _, g := range r.Gates {
		status := "-"
		switch {
		case g.Authorized:
			status = "authorized"
		case g.Open:
			status = "open"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", g.Gate, g.Required, g.Received, status, listOrNone(g.Approvers), orDash(g.ExpectedDigest.String()))
	}

	if len(r.Approvals) > 0 {
		fmt.Fprintln(tw, "\nAPPROVALS")
		fmt.Fprintln(tw, "GATE\tDECISION\tBY\tAT\tCOUNTS")
		for _, a := range r.Approvals {
			counts := "yes"
			if a.Discarded {
				counts = "no (discarded)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Gate, a.Decision, who(a.By, a.Issuer, a.Subject), formatTime(a.At), counts)
		}
	}

	if len(r.Deployments) > 0 {
		fmt.Fprintln(tw, "\nDEPLOYMENTS")
		fmt.Fprintln(tw, "ID\tENVIRONMENT\tTARGET\tSTATUS\tBY\tSTARTED\tFINISHED\tVERIFIED")
		for _, d := range r.Deployments {
			status := d.Status
			if d.Emergency {
				status += " [EMERGENCY]"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Environment, d.Target, status, who(d.By, d.Issuer, d.Subject),
				formatTime(d.StartedAt), formatTimeOrDash(d.FinishedAt), listOrNone(digestStrings(d.VerifiedDigests)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if em := r.Emergency; em != nil {
		fmt.Fprintln(w, "\nEMERGENCY CHANGE")
		if err := printFields(w, emergencyFields(*em, time.Now())); err != nil {
			return err
		}
	}

	if rv := r.Review; rv != nil {
		fmt.Fprintln(w, "\nREVIEW")
		if err := printFields(w, [][2]string{
			{"outcome", rv.Outcome},
			{"summary", oneLine(rv.Summary)},
			{"incidents", listOrNone(rv.Incidents)},
			{"objectives met", strconv.FormatBool(rv.ObjectivesMet)},
			{"by", rv.By + " at " + formatTime(rv.At)},
			{"review digest", r.ReviewDigest.String()},
		}); err != nil {
			return err
		}
	}
	if rj := r.LastRejection; rj != nil {
		fmt.Fprintln(w, "\nLAST REJECTION")
		if err := printFields(w, [][2]string{
			{"gate", rj.Gate},
			{"by", rj.By + " at " + formatTime(rj.At)},
			{"digest", rj.Digest.String()},
			{"reason", oneLine(rj.Comment)},
		}); err != nil {
			return err
		}
	}
	next := "none (final state)"
	if len(r.AllowedActions) > 0 {
		next = strings.Join(r.AllowedActions, ", ")
	}
	_, err := fmt.Fprintf(w, "\nnext: %s\n", next)
	return err
}
