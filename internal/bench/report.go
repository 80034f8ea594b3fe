package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one scenario's result: the dml side and its baseline, each timed
// over the same work per repetition (Bytes bytes moved or Ops operations).
type Row struct {
	// Group is the scenario group the row comes from (--scenario selects
	// groups); Scenario says what the row measured.
	Group    string `json:"group"`
	Scenario string `json:"scenario"`
	// Baseline names what dml is compared with; empty when the scenario
	// has none.
	Baseline string `json:"baseline,omitempty"`
	DML      Stat   `json:"dml"`
	Base     *Stat  `json:"baselineStat,omitempty"`
	// Bytes or Ops: the work of one repetition, the same on both sides.
	Bytes int64 `json:"bytes,omitempty"`
	Ops   int64 `json:"ops,omitempty"`
	// Ratio is dml's median time over the baseline's: above 1 dml is
	// slower, below 1 faster. 0 without a baseline.
	Ratio float64 `json:"ratio,omitempty"`
	// PeakRSS is the dml server's peak resident set (VmHWM) during the
	// scenario, BasePeakRSS the baseline server's when it is one (the
	// reference registry); 0 when nothing was measured.
	PeakRSS     int64  `json:"peakRssBytes,omitempty"`
	BasePeakRSS int64  `json:"baselinePeakRssBytes,omitempty"`
	Note        string `json:"note,omitempty"`
}

// Report is one run of the harness.
type Report struct {
	Started time.Time `json:"started"`
	Reps    int       `json:"reps"`
	Backend string    `json:"backend"`
	Rows    []Row     `json:"rows"`
	// Skipped says which scenarios did not run, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// finish fills the ratio from the two medians.
func (r *Row) finish() {
	if r.Base != nil && r.Base.Median > 0 {
		r.Ratio = float64(r.DML.Median) / float64(r.Base.Median)
	}
}

// rate is the work done per second at duration d, in the row's unit.
func (r Row) rate(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	switch {
	case r.Bytes > 0:
		return fmt.Sprintf("%.0f MiB/s", float64(r.Bytes)/(1<<20)/d.Seconds())
	case r.Ops > 0:
		return fmt.Sprintf("%.0f/s", float64(r.Ops)/d.Seconds())
	}
	return "-"
}

// ratioText says the ratio in words: "1.80× slower", "2.80× faster".
func ratioText(ratio float64) string {
	switch {
	case ratio == 0:
		return "-"
	case ratio >= 1:
		return fmt.Sprintf("%.2f× slower", ratio)
	default:
		return fmt.Sprintf("%.2f× faster", 1/ratio)
	}
}

func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func secs(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// WriteTable prints the report for people: one line per scenario.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tDML MEDIAN\tDML MIN\tDML RATE\tBASELINE\tBASE MEDIAN\tBASE MIN\tBASE RATE\tRATIO\tPEAK RSS\tBASE RSS")
	for _, r := range rep.Rows {
		base, bmed, bmin, brate := "-", "-", "-", "-"
		if r.Base != nil {
			base, bmed, bmin, brate = r.Baseline, secs(r.Base.Median), secs(r.Base.Min), r.rate(r.Base.Median)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario,
			secs(r.DML.Median), secs(r.DML.Min), r.rate(r.DML.Median),
			base, bmed, bmin, brate, ratioText(r.Ratio), mib(r.PeakRSS), mib(r.BasePeakRSS))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, r := range rep.Rows {
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s: %s", r.Scenario, r.Note))
		}
	}
	for _, s := range rep.Skipped {
		notes = append(notes, "  skipped: "+s)
	}
	if len(notes) > 0 {
		if _, err := fmt.Fprintf(w, "\nnotes (%d reps, %s):\n%s\n", rep.Reps, rep.Backend, strings.Join(notes, "\n")); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON prints the report as one JSON document.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
