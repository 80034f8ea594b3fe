package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func newFsckCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fsck",
		Short: "Check every stored blob and every reference to one (admin)",
		Long: `Check the whole DML, on the server (which holds the storage credentials), as an admin:

  blobs       every stored blob is read and re-hashed; one that does not hash to its digest
              is marked corrupt, exactly as a failed download marks it: it is refused with
              500 BLOB_CORRUPT until its bytes are pushed again. A marked blob that verifies
              again (put back from a backup) has its mark cleared.
  references  every blob the catalogue refers to (artifacts, evidence, releases and their
              sealed manifests, OCI manifests, their layers and blob links) must be stored,
              at the size recorded.
  audit       every admission in the audit log must still hold in the catalogue.

Findings are printed as they are found: corrupt, missing, size, unexpected, catalogue and
unreadable are problems; orphan (a blob nothing refers to, which dml gc removes) and
repaired are not. Progress goes to stderr: a spinner on a terminal, a line every ten
seconds otherwise. The exit status is 0 when nothing is wrong, 2 when problems were
found, 1 when the check could not run. With --output json, every finding and the summary
are printed as JSON lines.

Reading every blob takes as long as reading the whole store once; the run stops if the
connection is closed.`,
		Example: `  dml fsck
  dml fsck --output json > fsck.ndjson`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{ndjsonAnnotation: "true"},
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			run := func(fn func(wire.FsckEvent)) (wire.FsckSummary, error) {
				return c.Admin().Fsck(cmd.Context(), fn)
			}
			sum, err := runMaintenance(cmd, app, "fsck", run, func(sum wire.FsckSummary) [][2]string {
				return [][2]string{
					{"blobs checked", fmt.Sprintf("%d (%s)", sum.Blobs, formatBytes(sum.Bytes))},
					{"references checked", fmt.Sprint(sum.References)},
					{"admissions checked", fmt.Sprint(sum.Admissions)},
					{"corrupt", fmt.Sprint(sum.Corrupt)},
					{"missing", fmt.Sprint(sum.Missing)},
					{"size mismatches", fmt.Sprint(sum.SizeMismatch)},
					{"unexpected objects", fmt.Sprint(sum.Unexpected)},
					{"catalogue", fmt.Sprint(sum.Catalogue)},
					{"unreadable", fmt.Sprint(sum.Unreadable)},
					{"orphans", fmt.Sprint(sum.Orphans)},
					{"repaired", fmt.Sprint(sum.Repaired)},
					{"took", sum.Duration},
				}
			})
			if err != nil {
				return err
			}
			if sum.Problems > 0 {
				return &exitError{code: 2, msg: fmt.Sprintf("fsck found %d problem(s)", sum.Problems)}
			}
			return nil
		}),
	}
	return cmd
}

func newGCCmd(app *cli) *cobra.Command {
	var opts client.GCOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs nothing refers to and abandoned uploads (admin)",
		Long: `Collect garbage on the server, as an admin: blobs the catalogue does not refer to
(left by refused pushes, deleted OCI tags and blob links), upload sessions and staging
objects nobody finished, and the storage backend's own partial writes — each only once
it is older than the grace period. Nothing that is referred to is ever removed, and a
blob that becomes referred to while gc runs is kept (see docs/operations.md).

Every removal is printed (and recorded in the audit log as blob.collected); --dry-run
prints what would be removed and removes nothing. Progress goes to stderr as for fsck.`,
		Example: `  dml gc --dry-run
  dml gc --grace 72h`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{ndjsonAnnotation: "true"},
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			if opts.Grace < 0 {
				return fmt.Errorf("--grace must not be negative")
			}
			run := func(fn func(wire.GCEvent)) (wire.GCSummary, error) {
				return c.Admin().GC(cmd.Context(), opts, fn)
			}
			_, err := runMaintenance(cmd, app, "gc", run, func(sum wire.GCSummary) [][2]string {
				verb := "removed"
				if sum.DryRun {
					verb = "would remove"
				}
				return [][2]string{
					{"grace period", sum.Grace},
					{"blobs looked at", fmt.Sprint(sum.Blobs)},
					{"blobs " + verb, fmt.Sprintf("%d (%s)", sum.DeletedBlobs, formatBytes(sum.DeletedBytes))},
					{"uploads " + verb, fmt.Sprint(sum.DeletedUploads)},
					{"partial writes removed", fmt.Sprint(sum.DeletedPartials)},
					{"kept: referenced", fmt.Sprint(sum.KeptReferenced)},
					{"kept: younger than the grace period", fmt.Sprint(sum.KeptYoung)},
					{"kept: claimed by a push meanwhile", fmt.Sprint(sum.KeptClaimed)},
					{"took", sum.Duration},
				}
			})
			return err
		}),
	}
	cmd.Flags().DurationVar(&opts.Grace, "grace", blobs.DefaultGCGrace, "remove only what was last written longer ago than this")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would be removed, remove nothing")
	return cmd
}

// runMaintenance runs fsck or gc on the server: progress on stderr,
// findings on stdout as they arrive, then the summary — as a table of
// fields, or with --output json as JSON lines (maintenanceLine).
func runMaintenance[S any](cmd *cobra.Command, app *cli, op string, run func(func(wire.MaintenanceEvent[S])) (S, error), fields func(S) [][2]string) (S, error) {
	var zero S
	v := newProgressView(cmd.ErrOrStderr(), op)
	stdout := cmd.OutOrStdout()
	var printErr error
	sum, err := run(func(ev wire.MaintenanceEvent[S]) {
		switch {
		case ev.Progress != nil:
			v.progress(*ev.Progress)
		case ev.Finding != nil && printErr == nil:
			v.clear()
			printErr = printFinding(stdout, app.json(), *ev.Finding)
		}
	})
	v.done()
	if err == nil {
		err = printErr
	}
	if err != nil {
		return zero, err
	}
	if app.json() {
		return sum, printJSONLine(stdout, maintenanceLine{Type: "summary", Summary: sum})
	}
	return sum, printFields(stdout, fields(sum))
}

// maintenanceLine is one line of fsck's and gc's --output json: a
// finding as it is found, and last the summary.
type maintenanceLine struct {
	Type    string        `json:"type"` // finding or summary
	Finding *wire.Finding `json:"finding,omitempty"`
	Summary any           `json:"summary,omitempty"`
}

// printFinding prints one finding: a line for people, or a JSON line.
func printFinding(w io.Writer, asJSON bool, f wire.Finding) error {
	if asJSON {
		return printJSONLine(w, maintenanceLine{Type: "finding", Finding: &f})
	}
	what := f.Digest.String()
	if what == "" {
		what = f.Key
	}
	line := fmt.Sprintf("%-10s %s", strings.ToUpper(f.Kind), what)
	if len(f.Holders) > 0 {
		line += " (" + strings.Join(f.Holders, ", ") + ")"
	}
	if f.Detail != "" {
		line += ": " + f.Detail
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// progressLineEvery is how often a run's progress is printed when stderr
// is not a terminal (a log, a CI job).
const progressLineEvery = 10 * time.Second

// progressView shows a run's progress on stderr: a spinner with the
// phase and the counts on a terminal, a line per phase and every
// progressLineEvery otherwise.
type progressView struct {
	w        io.Writer
	op       string
	tty      bool
	bar      *progressbar.ProgressBar
	phase    string
	lastLine time.Time
}

func newProgressView(w io.Writer, op string) *progressView {
	return &progressView{w: w, op: op, tty: isTerminal(w)}
}

func (v *progressView) progress(p wire.Progress) {
	desc := fmt.Sprintf("%s: %s", v.op, p.Phase)
	if !v.tty {
		if p.Phase != v.phase || time.Since(v.lastLine) >= progressLineEvery {
			v.phase, v.lastLine = p.Phase, time.Now()
			fmt.Fprintf(v.w, "dml %s: %d items, %s\n", desc, p.Items, formatBytes(p.Bytes))
		}
		return
	}
	if v.bar == nil || p.Phase != v.phase {
		v.done()
		v.phase = p.Phase
		v.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(v.w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(v.w) }),
		)
	}
	_ = v.bar.Set64(p.Items)
	if p.Bytes > 0 {
		v.bar.Describe(fmt.Sprintf("%s (%s)", desc, formatBytes(p.Bytes)))
	}
}

// clear makes room for a line of output.
func (v *progressView) clear() {
	if v.bar != nil {
		_ = v.bar.Clear()
	}
}

func (v *progressView) done() {
	if v.bar != nil {
		_ = v.bar.Finish()
		v.bar = nil
	}
}
