package main

import (
	"fmt"
	"io"
	"os"
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

// withProgress returns r counted by a progress bar on stderr when stderr
// is a terminal, and r itself otherwise. Call done with whether the
// transfer succeeded.
func withProgress(stderr io.Writer, r io.Reader, size int64, desc string) (_ io.Reader, done func(ok bool)) {
	if !isTerminal(stderr) {
		return r, func(bool) {}
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
