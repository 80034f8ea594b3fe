package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addClientCommands registers the client commands (push, pull, token, ...).
// They share app: the connection flags, the client built from them, and
// the output format.
func addClientCommands(root *cobra.Command, app *cli) {
	root.AddCommand(
		newPushCmd(app),
		newPullCmd(app),
		newArtifactCmd(app),
		newStatusCmd(app),
		newEvidenceCmd(app),
		newVerifyCmd(app),
		newSignCmd(app),
		newAttestCmd(app),
		newTrustCmd(app),
		newTokenCmd(app),
		newWhoamiCmd(app),
		newAuditCmd(app),
		newProvenanceCmd(app),
		newFsckCmd(app),
		newGCCmd(app),
		newReleaseCmd(app),
		newRetentionCmd(app),
		newQuotaCmd(app),
		newEventsCmd(app),
		newWebhookCmd(app),
		newLoginCmd(app),
		newLogoutCmd(app),
	)
	root.AddCommand(newDemoCmd(app))
}

func artifactFields(a wire.Artifact) [][2]string {
	fields := [][2]string{
		{"name", a.Name},
		{"version", a.Version},
		{"digest", a.Digest.String()},
		{"size", fmt.Sprintf("%d (%s)", a.Size, formatBytes(a.Size))},
		{"media type", a.MediaType},
		{"state", a.State},
		{"created by", a.CreatedBy},
		{"created at", formatTime(a.CreatedAt)},
	}
	if a.RetiredAt != nil {
		fields = append(fields, [2]string{"retired at", formatTime(*a.RetiredAt)}, [2]string{"retired by", orDash(a.RetiredBy)})
	}
	return fields
}

// isTerminal reports whether w is a terminal (progress bars only go there,
// never into logs or pipes).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// hasWidth reports whether the terminal w knows its width: without it
// (a serial console, some CI runners' pseudo-terminals) a bar renders
// empty.
func hasWidth(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	return err == nil && width > 0
}

// withProgress returns r counted by a progress bar on stderr when stderr
// is a terminal whose width is known, and by plain progress lines
// (progressLines) otherwise: a bar needs a width, and a log or a pipe
// needs lines, not carriage returns. Call done with whether the transfer
// succeeded.
func withProgress(stderr io.Writer, r io.Reader, size int64, desc string) (_ io.Reader, done func(ok bool)) {
	if !isTerminal(stderr) || !hasWidth(stderr) {
		return io.TeeReader(r, newProgressLines(stderr, size, desc, time.Now)), func(bool) {}
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(10),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(65*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }),
	)
	return io.TeeReader(r, bar), func(ok bool) {
		if ok {
			_ = bar.Finish()
			return
		}
		_ = bar.Exit()
		fmt.Fprintln(stderr)
	}
}

// Progress lines: where no bar can be drawn, a transfer says how far it
// is every transferLineEvery, and, when it is large enough for that to
// help, at each tenth. Small transfers, done in a moment, print nothing.
const (
	transferLineEvery = 5 * time.Second
	progressTenthsMin = 64 << 20
)

// progressLines counts the bytes written to it and prints lines such as
// "uploading api.tar.gz: 512.0 MiB of 1.0 GiB (50%)".
type progressLines struct {
	w     io.Writer
	size  int64 // <= 0: unknown
	desc  string
	now   func() time.Time
	n     int64
	last  time.Time // of the last line, or the start
	tenth int64     // the last tenth printed
}

func newProgressLines(w io.Writer, size int64, desc string, now func() time.Time) *progressLines {
	return &progressLines{w: w, size: size, desc: strings.TrimSpace(desc), now: now, last: now()}
}

func (p *progressLines) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	now := p.now()
	due := now.Sub(p.last) >= transferLineEvery
	if p.size >= progressTenthsMin {
		if tenth := p.n * 10 / p.size; tenth > p.tenth {
			p.tenth, due = tenth, true
		}
	}
	if due {
		p.last = now
		if p.size > 0 {
			fmt.Fprintf(p.w, "%s: %s of %s (%d%%)\n", p.desc, formatBytes(p.n), formatBytes(p.size), p.n*100/p.size)
		} else {
			fmt.Fprintf(p.w, "%s: %s\n", p.desc, formatBytes(p.n))
		}
	}
	return len(b), nil
}
