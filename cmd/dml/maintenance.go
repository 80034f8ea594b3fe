package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/releases"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func newFsckCmd() *cobra.Command {
	var cf clientFlags
	var out outputFormat
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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			v := newProgressView(cmd.ErrOrStderr(), "fsck")
			stdout := cmd.OutOrStdout()
			sum, err := c.Fsck(cmd.Context(), func(ev client.FsckEvent) {
				switch {
				case ev.Progress != nil:
					v.progress(*ev.Progress)
				case ev.Finding != nil:
					v.clear()
					printFinding(stdout, out.json(), *ev.Finding)
				}
			})
			v.done()
			if err != nil {
				return err
			}
			if out.json() {
				if err := json.NewEncoder(stdout).Encode(map[string]any{"type": "summary", "summary": sum}); err != nil {
					return err
				}
			} else if err := printFields(stdout, [][2]string{
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
			}); err != nil {
				return err
			}
			if sum.Problems > 0 {
				return &exitError{code: 2, msg: fmt.Sprintf("fsck found %d problem(s)", sum.Problems)}
			}
			return nil
		},
	}
	cf.register(cmd)
	out.register(cmd)
	return cmd
}

func newGCCmd() *cobra.Command {
	var cf clientFlags
	var out outputFormat
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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			if opts.Grace < 0 {
				return fmt.Errorf("--grace must not be negative")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			v := newProgressView(cmd.ErrOrStderr(), "gc")
			stdout := cmd.OutOrStdout()
			sum, err := c.GC(cmd.Context(), opts, func(ev client.GCEvent) {
				switch {
				case ev.Progress != nil:
					v.progress(*ev.Progress)
				case ev.Finding != nil:
					v.clear()
					printFinding(stdout, out.json(), *ev.Finding)
				}
			})
			v.done()
			if err != nil {
				return err
			}
			if out.json() {
				return json.NewEncoder(stdout).Encode(map[string]any{"type": "summary", "summary": sum})
			}
			verb := "removed"
			if sum.DryRun {
				verb = "would remove"
			}
			return printFields(stdout, [][2]string{
				{"grace period", sum.Grace},
				{"blobs looked at", fmt.Sprint(sum.Blobs)},
				{"blobs " + verb, fmt.Sprintf("%d (%s)", sum.DeletedBlobs, formatBytes(sum.DeletedBytes))},
				{"uploads " + verb, fmt.Sprint(sum.DeletedUploads)},
				{"partial writes removed", fmt.Sprint(sum.DeletedPartials)},
				{"kept: referenced", fmt.Sprint(sum.KeptReferenced)},
				{"kept: younger than the grace period", fmt.Sprint(sum.KeptYoung)},
				{"kept: claimed by a push meanwhile", fmt.Sprint(sum.KeptClaimed)},
				{"took", sum.Duration},
			})
		},
	}
	cf.register(cmd)
	out.register(cmd)
	cmd.Flags().DurationVar(&opts.Grace, "grace", releases.DefaultGCGrace, "remove only what was last written longer ago than this")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would be removed, remove nothing")
	return cmd
}

// printFinding prints one finding: a line for people, or a JSON line.
func printFinding(w io.Writer, asJSON bool, f releases.Finding) {
	if asJSON {
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "finding", "finding": f})
		return
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
	fmt.Fprintln(w, line)
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

func (v *progressView) progress(p releases.Progress) {
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
