package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addClientCommands registers the client commands (push, pull, token, ...).
func addClientCommands(root *cobra.Command) {
	root.AddCommand(
		newPushCmd(),
		newPullCmd(),
		newArtifactCmd(),
		newStatusCmd(),
		newEvidenceCmd(),
		newVerifyCmd(),
		newSignCmd(),
		newAttestCmd(),
		newTrustCmd(),
		newTokenCmd(),
		newWhoamiCmd(),
		newAuditCmd(),
		newProvenanceCmd(),
		newFsckCmd(),
		newGCCmd(),
	)
	addReleaseCommands(root)
}

// clientFlags are the connection flags every client command has. The
// environment (DML_SERVER, DML_TOKEN) and the config file fill them through
// the root command's applyEnvAndConfig.
type clientFlags struct {
	server string
	token  string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "http://127.0.0.1:8080", "dml server URL (env DML_SERVER)")
	cmd.Flags().StringVar(&f.token, "token", "", "bearer token (env DML_TOKEN, preferred: flags are visible in the process list)")
	fromEnv(cmd.Flags(), "server", "token")
}

func (f *clientFlags) client() (*client.Client, error) {
	if f.token == "" {
		return nil, errors.New("no token: set DML_TOKEN (or --token, or token: in the config file)")
	}
	return client.New(f.server, f.token, client.WithUserAgent("dml-cli"))
}

// outputFormat is the --output flag of commands that print records.
type outputFormat struct{ format string }

func (o *outputFormat) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.format, "output", "table", "output format: table or json")
	fromEnv(cmd.Flags(), "output")
}

func (o *outputFormat) validate() error {
	switch o.format {
	case "table", "json":
		return nil
	}
	return fmt.Errorf("--output must be table or json, not %q", o.format)
}

func (o *outputFormat) json() bool { return o.format == "json" }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printFields prints "key: value" lines with the values aligned.
func printFields(w io.Writer, fields [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
	}
	return tw.Flush()
}

func artifactFields(a client.Artifact) [][2]string {
	return [][2]string{
		{"name", a.Name},
		{"version", a.Version},
		{"digest", a.Digest.String()},
		{"size", fmt.Sprintf("%d (%s)", a.Size, formatBytes(a.Size))},
		{"media type", a.MediaType},
		{"state", a.State},
		{"created by", a.CreatedBy},
		{"created at", a.CreatedAt.Format("2006-01-02 15:04:05 MST")},
	}
}

func listOrNone(v []string) string {
	if len(v) == 0 {
		return "-"
	}
	return strings.Join(v, ", ")
}

// formatBytes renders n in binary units: 1536 → "1.5 KiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
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
