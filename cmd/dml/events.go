package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// longPoll is how long one request of a follower or a waiter waits on the
// server: below the server's maximum (5m), and short enough that a
// connection cut by a proxy is noticed.
const longPoll = 60 * time.Second

func newEventsCmd(app *cli) *cobra.Command {
	var (
		q      client.EventQuery
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "events [--since ID] [--follow] [--event TYPE]... [--match PATTERN]... [--env ENV]...",
		Short: "Read the event stream: every audited change, typed (docs/events.md)",
		Long: `Print the events after --since (an event id; default: from the first), oldest first: their
id, time, type, subject and principal, or with --output json one event per line, as webhooks
receive them. --event selects types or prefix patterns (gate.*), --match artifact and release
name patterns (payments/*), --env deployments and deploy gates of those environments.

With --follow it keeps waiting for new events (a long-poll on the server, no polling) until
interrupted; --since latest then prints only what happens from now on.`,
		Example: `  dml events --event 'gate.*' --match 'payments-*'
  dml events --follow --since latest --output json`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{ndjsonAnnotation: "true"},
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			out := cmd.OutOrStdout()
			tw := newTable(out)
			rows := 0
			if follow {
				q.Wait = longPoll
			}
			for {
				page, err := c.Events().List(cmd.Context(), q)
				if err != nil {
					if follow && cmd.Context().Err() != nil {
						return nil // interrupted
					}
					return err
				}
				for _, e := range page.Events {
					if app.json() {
						if err := printJSONLine(out, e); err != nil {
							return err
						}
						continue
					}
					if rows++; rows == 1 {
						fmt.Fprintln(tw, "ID\tTIME\tTYPE\tSUBJECT\tPRINCIPAL")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ID, formatTime(e.Time), e.Type, e.Subject, e.Principal.Name)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				q.Since = page.Next
				if len(page.Events) == 0 && !follow {
					if rows == 0 && !app.json() {
						return printList(out, 0, noneMatch("events", "type", quotedAll(q.Types), "pattern", quotedAll(q.Match), "environment", quotedAll(q.Environments)), nil)
					}
					return nil
				}
			}
		}),
	}
	f := cmd.Flags()
	f.StringVar(&q.Since, "since", "", "start after this event id (latest: only new events)")
	f.BoolVarP(&follow, "follow", "f", false, "keep waiting for new events")
	f.IntVar(&q.Limit, "limit", 0, "events per request (default 100, at most 1000)")
	eventFilterFlags(f, &q.Types, &q.Match, &q.Environments)
	return cmd
}

// Exit codes of the waiting commands, besides 0 (reached) and 1 (an
// error of the request).
const (
	exitUnreachable = 3 // rejected, or a state the release can no longer reach
	exitTimedOut    = 4
	exitNotAdmitted = 5 // push --require-admitted: the version is not admitted (yet)
)

// waitFor blocks until check says done, re-checking after every event the
// server's long-poll answers for q (and when a long-poll ends empty), or
// until timeout. The stream's position is taken before the first check, so
// a change between the check and the wait is still seen.
func waitFor(ctx context.Context, c *client.Client, q client.EventQuery, timeout time.Duration, check func(context.Context) (bool, error)) error {
	if timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q.Since = "latest"
	start, err := c.Events().List(ctx, q)
	if err != nil {
		return err
	}
	q.Since = start.Next
	for {
		done, err := check(ctx)
		if done || err != nil {
			if err != nil && ctx.Err() == context.DeadlineExceeded {
				return errTimedOut
			}
			return err
		}
		left := time.Until(deadlineOf(ctx))
		if left <= 0 {
			return errTimedOut
		}
		q.Wait = min(longPoll, left.Round(time.Second)+time.Second)
		page, err := c.Events().List(ctx, q)
		if err != nil {
			if ctx.Err() == context.DeadlineExceeded {
				return errTimedOut
			}
			return err
		}
		q.Since = page.Next
	}
}

var errTimedOut = errors.New("timed out")

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// waitAdmitted waits until name:version is admitted (nil), rejected
// (exitUnreachable) or the timeout passes (exitTimedOut), printing the
// outcome to w.
func waitAdmitted(ctx context.Context, c *client.Client, w io.Writer, name, version string, timeout time.Duration) (wire.Artifact, error) {
	var a wire.Artifact
	err := waitFor(ctx, c, client.EventQuery{
		Types: []string{"artifact.admitted", "artifact.rejected", "artifact.quarantined", "artifact.retired"}, Match: []string{name},
	}, timeout, func(ctx context.Context) (bool, error) {
		var err error
		a, err = c.Artifacts().Get(ctx, name, version)
		return err != nil || a.State != "quarantined", err
	})
	ref := name + ":" + version
	switch {
	case errors.Is(err, errTimedOut):
		fmt.Fprintf(w, "%s is still %s after %s\n", ref, a.State, timeout)
		printUnmet(w, a)
		return a, &exitError{code: exitTimedOut, msg: fmt.Sprintf("timed out after %s waiting for %s to be admitted (it is %s)", timeout, ref, a.State)}
	case err != nil:
		return a, err
	case a.State == "admitted":
		fmt.Fprintf(w, "%s admitted\n", ref)
		return a, nil
	}
	fmt.Fprintf(w, "%s %s\n", ref, a.State)
	if a.Admission != nil && a.Admission.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", a.Admission.Reason)
	}
	printUnmet(w, a)
	return a, &exitError{code: exitUnreachable, msg: fmt.Sprintf("%s was %s, not admitted", ref, a.State)}
}

func newReleaseWaitCmd(app *cli) *cobra.Command {
	var (
		state   string
		timeout time.Duration
	)
	states := make([]string, len(lifecycle.ReleaseStates))
	for i, s := range lifecycle.ReleaseStates {
		states[i] = string(s)
	}
	cmd := &cobra.Command{
		Use:   "wait NAME --state STATE [--timeout 30m]",
		Short: "Block until a release reaches a state (for pipelines)",
		Long: `Block until release NAME is in STATE (` + strings.Join(states, ", ") + `).
It waits on the server's event stream (a long-poll), not by polling.

Exit status: 0 when the release is in STATE; ` + strconv.Itoa(exitUnreachable) + ` at once when it reached a state from which
STATE cannot be reached (closed or cancelled, or past it: a release in review never becomes
deployed again); ` + strconv.Itoa(exitTimedOut) + ` when --timeout passes first; 1 for any other error.`,
		Example: `  dml release wait payments-2024-03 --state released --timeout 2h
  dml release wait payments-2024-03 --state deploying && ./deploy.sh`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			name, target := args[0], lifecycle.ReleaseState(state)
			if !slices.Contains(lifecycle.ReleaseStates, target) {
				return fmt.Errorf("--state must be one of %s, not %q", strings.Join(states, ", "), state)
			}
			var r wire.Release
			err := waitFor(cmd.Context(), c, client.EventQuery{Match: []string{name}}, timeout, func(ctx context.Context) (bool, error) {
				var err error
				if r, err = c.Releases().Get(ctx, name); err != nil {
					return false, err
				}
				current := lifecycle.Release{State: lifecycle.ReleaseState(r.State), Deployments: make([]lifecycle.Deployment, len(r.Deployments))}
				return current.State == target || !lifecycle.CanReach(current, target), nil
			})
			switch {
			case errors.Is(err, errTimedOut):
				return &exitError{code: exitTimedOut, msg: fmt.Sprintf("timed out after %s waiting for release %s to be %s (it is %s)", timeout, name, state, r.State)}
			case err != nil:
				return err
			case r.State != state:
				return &exitError{code: exitUnreachable, msg: fmt.Sprintf("release %s is %s and can no longer become %s", name, r.State, state)}
			}
			return app.emit(cmd.OutOrStdout(), r, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "release %s is %s\n", name, r.State)
				return err
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "state to wait for")
	f.DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long")
	_ = cmd.MarkFlagRequired("state")
	return cmd
}

func newWebhookCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhook",
		Aliases: []string{"webhooks"},
		Short:   "Register webhooks that receive events, and inspect their deliveries (admins)",
		Long: `A webhook receives every event its filters select as a signed HTTP POST
(X-DML-Signature: t=UNIX,v1=HMAC-SHA256(secret, t + "." + body)), in order, retried with
backoff until a 2xx answer. See docs/events.md for the event types, the payloads and how a
receiver verifies the signature.`,
	}
	cmd.AddCommand(newWebhookAddCmd(app), newWebhookListCmd(app), newWebhookShowCmd(app), newWebhookDeleteCmd(app),
		newWebhookDeliveriesCmd(app), newWebhookRedeliverCmd(app))
	return cmd
}

func newWebhookAddCmd(app *cli) *cobra.Command {
	var (
		req        wire.WebhookRequest
		secretFile string
	)
	cmd := &cobra.Command{
		Use:   "add --url URL --secret-file FILE [--event TYPE]... [--match PATTERN]... [--env ENV]...",
		Short: "Register a webhook",
		Long: `Register a webhook at URL (https, or http to a loopback address). The secret signs every
delivery; it is read from --secret-file ("-": standard input) or DML_WEBHOOK_SECRET, never
from the command line, and is not shown again. 16 to 512 bytes; surrounding whitespace is
dropped.

--event selects event types or prefix patterns (gate.*), --match artifact and release name
patterns (payments/*), --env deployments and deploy gates of those environments; without
them every event is sent. The webhook receives the events after its registration.`,
		Example: `  openssl rand -hex 32 > hook.secret
  dml webhook add --url https://chat.example.com/hooks/dml --secret-file hook.secret \
      --event 'gate.opened' --match 'payments-*'`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			secret, err := readSecret(cmd.InOrStdin(), secretFile)
			if err != nil {
				return err
			}
			req.Secret = secret
			w, err := c.Webhooks().Create(cmd.Context(), req)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), w, func(out io.Writer) error { return printFields(out, webhookFields(w)) })
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.URL, "url", "", "URL that receives the deliveries")
	f.StringVar(&secretFile, "secret-file", "", `file holding the signing secret ("-": standard input; default: DML_WEBHOOK_SECRET)`)
	eventFilterFlags(f, &req.Events, &req.Match, &req.Environments)
	_ = cmd.MarkFlagRequired("url")
	return cmd
}

// readSecret reads the webhook secret from file, standard input ("-") or
// DML_WEBHOOK_SECRET.
func readSecret(stdin io.Reader, file string) (string, error) {
	var b []byte
	var err error
	switch file {
	case "":
		if s := os.Getenv("DML_WEBHOOK_SECRET"); s != "" {
			return strings.TrimSpace(s), nil
		}
		return "", errors.New("the signing secret is needed: --secret-file FILE, --secret-file - (standard input) or DML_WEBHOOK_SECRET")
	case "-":
		b, err = io.ReadAll(io.LimitReader(stdin, 4096))
	default:
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fmt.Errorf("reading the secret: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func webhookFields(w wire.Webhook) [][2]string {
	return [][2]string{
		{"id", w.ID}, {"url", w.URL}, {"events", listOrAll(w.Events)}, {"match", listOrAll(w.Match)},
		{"environments", listOrAll(w.Environments)}, {"created by", w.CreatedBy}, {"created", formatTime(w.CreatedAt)},
	}
}

func listOrAll(l []string) string {
	if len(l) == 0 {
		return "(all)"
	}
	return strings.Join(l, ", ")
}

func newWebhookListCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the webhooks",
		Args:  cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			list, err := c.Webhooks().List(cmd.Context())
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), list, func(w io.Writer) error {
				return printList(w, len(list), "no webhooks", func(tw io.Writer) {
					fmt.Fprintln(tw, "ID\tURL\tEVENTS\tMATCH\tENVIRONMENTS\tCREATED")
					for _, h := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.URL, listOrAll(h.Events), listOrAll(h.Match), listOrAll(h.Environments), formatTime(h.CreatedAt))
					}
				})
			})
		}),
	}
}

func newWebhookShowCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a webhook",
		Args:  cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			h, err := c.Webhooks().Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), h, func(w io.Writer) error { return printFields(w, webhookFields(h)) })
		}),
	}
}

func newWebhookDeleteCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Remove a webhook and its deliveries",
		Args:  cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.Webhooks().Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), struct {
				ID      string `json:"id"`
				Deleted bool   `json:"deleted"`
			}{args[0], true}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted webhook %s\n", args[0])
				return err
			})
		}),
	}
}

func newWebhookDeliveriesCmd(app *cli) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries ID [--limit N]",
		Short: "List a webhook's deliveries, newest first: state, attempts, last status and error",
		Long: `List a webhook's deliveries, newest first. A delivery is pending (waiting for its turn or
its next attempt), delivered (the receiver answered 2xx) or failed (every attempt failed). LAST is
the receiver's last status code (- when no answer came).`,
		Args: cobra.ExactArgs(1),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			list, err := c.Webhooks().Deliveries(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), list, func(w io.Writer) error {
				return printList(w, len(list), "no deliveries of webhook "+args[0], func(tw io.Writer) {
					fmt.Fprintln(tw, "ID\tEVENT\tTYPE\tSTATE\tATTEMPTS\tLAST\tNEXT ATTEMPT\tDELIVERED\tLAST ERROR")
					for _, d := range list {
						last := "-"
						if d.LastStatus != 0 {
							last = strconv.Itoa(d.LastStatus)
						}
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.ID, d.EventID, d.EventType, d.State, d.Attempts, last,
							formatTimeOrDash(d.NextAttemptAt), formatTimeOrDash(d.DeliveredAt), d.LastError)
					}
				})
			})
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "deliveries to list (default 100, at most 1000)")
	return cmd
}

func newWebhookRedeliverCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "redeliver ID DELIVERY",
		Short: "Send a delivered or failed delivery again (as a new delivery, at the end of the queue)",
		Args:  cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			id, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("DELIVERY must be a delivery id (a number), not %q", args[1])
			}
			d, err := c.Webhooks().Redeliver(cmd.Context(), args[0], id)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), d, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "delivery %d queued: event %s (%s) again\n", d.ID, d.EventID, d.EventType)
				return err
			})
		}),
	}
}

// eventFilterFlags binds the filter flags that dml events and dml webhook
// add share: the types, names and environments of the events selected.
func eventFilterFlags(f *pflag.FlagSet, types, match, envs *[]string) {
	f.StringSliceVar(types, "event", nil, "event type or prefix pattern such as gate.* (repeatable)")
	f.StringSliceVar(match, "match", nil, "artifact or release name pattern such as payments/* (repeatable)")
	f.StringSliceVar(envs, "env", nil, "environment of deployments and deploy gates (repeatable)")
}
