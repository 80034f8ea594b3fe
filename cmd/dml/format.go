package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
)

// formatTime is how every table shows a time: RFC 3339, in UTC, to the
// second (JSON output has the same format, with fractions of a second).
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// formatTimeOrDash formats an optional time; nil is "-".
func formatTimeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return formatTime(*t)
}

// printFields prints "key: value" lines with the values aligned.
func printFields(w io.Writer, fields [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
	}
	return tw.Flush()
}

// newTable starts a table: columns two spaces apart.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func listOrNone(v []string) string {
	if len(v) == 0 {
		return "-"
	}
	return strings.Join(v, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine folds a multi-line text for a table cell.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ⏎ ")), " ")
}

func digestStrings(ds []digest.Digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// short abbreviates a digest for tables, like git and docker do.
func short(d digest.Digest) string {
	if d.Validate() != nil {
		return d.String() // Encoded would panic on a digest without a colon
	}
	return d.Algorithm().String() + ":" + d.Encoded()[:12]
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

// who names the principal of a record: its name and, for a person signed
// in through single sign-on, the provider identity behind it.
func who(name, issuer, subject string) string {
	if issuer == "" {
		return name
	}
	return name + " [" + subject + " @ " + issuer + "]"
}
