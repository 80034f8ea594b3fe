package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		samples  []time.Duration
		median   time.Duration
		minimum  time.Duration
		keepsLen int
	}{
		{"odd count: the middle one", ms(30, 10, 20), 20 * time.Millisecond, 10 * time.Millisecond, 3},
		{"even count: mean of the middle two", ms(40, 10, 30, 20), 25 * time.Millisecond, 10 * time.Millisecond, 4},
		{"one sample", ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 1},
		{"an outlier does not move the median", ms(10, 11, 900), 11 * time.Millisecond, 10 * time.Millisecond, 3},
		{"none", nil, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := slices.Clone(tc.samples)
			s := summarize(tc.samples)
			if s.Median != tc.median || s.Min != tc.minimum || len(s.Samples) != tc.keepsLen {
				t.Errorf("summarize(%v) = %+v; want median %v, min %v, %d samples", tc.samples, s, tc.median, tc.minimum, tc.keepsLen)
			}
			if !slices.Equal(tc.samples, orig) || !slices.Equal(s.Samples, orig) {
				t.Errorf("samples reordered: given %v, kept %v, want %v in run order", tc.samples, s.Samples, orig)
			}
		})
	}
}

// TestAlternateOrder: the two sides take turns, repetition by repetition,
// each told its repetition; their times are summed up separately.
func TestAlternateOrder(t *testing.T) {
	var calls []string
	side := func(name string, d time.Duration) timed {
		return func(rep int) (time.Duration, error) {
			calls = append(calls, fmt.Sprintf("%s%d", name, rep))
			return d * time.Duration(rep+1), nil
		}
	}
	a, b, err := alternate(3, side("a", time.Second), side("b", time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a0", "b0", "a1", "b1", "a2", "b2"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
	if a.Median != 2*time.Second || a.Min != time.Second || b.Median != 2*time.Millisecond || b.Min != time.Millisecond {
		t.Errorf("a = %+v, b = %+v", a, b)
	}

	calls = nil
	a, b, err = alternate(2, side("a", time.Second), nil)
	if err != nil || !slices.Equal(calls, []string{"a0", "a1"}) || len(a.Samples) != 2 || len(b.Samples) != 0 {
		t.Errorf("without a baseline: calls %v, a %+v, b %+v, err %v", calls, a, b, err)
	}
}

// TestAlternateStopsAtTheFirstError: a failing repetition ends the run
// and is named; nothing runs after it.
func TestAlternateStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var calls []string
	ok := func(rep int) (time.Duration, error) {
		calls = append(calls, fmt.Sprint("a", rep))
		return time.Second, nil
	}
	failSecond := func(rep int) (time.Duration, error) {
		calls = append(calls, fmt.Sprint("b", rep))
		if rep == 1 {
			return 0, boom
		}
		return time.Second, nil
	}
	_, _, err := alternate(3, ok, failSecond)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "rep 2, baseline") {
		t.Errorf("err = %v, want boom at rep 2's baseline", err)
	}
	if want := []string{"a0", "b0", "a1", "b1"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
}

func TestParseHWM(t *testing.T) {
	status := []byte("Name:\tdml\nVmPeak:\t 1000 kB\nVmHWM:\t   30720 kB\nVmRSS:\t 20000 kB\n")
	got, err := parseHWM(status)
	if err != nil || got != 30720<<10 {
		t.Errorf("parseHWM = %d, %v; want %d", got, err, 30720<<10)
	}
	for _, bad := range []string{"Name:\tdml\n", "VmHWM:\t12 MB\n", "VmHWM:\tx kB\n"} {
		if _, err := parseHWM([]byte(bad)); err == nil {
			t.Errorf("parseHWM(%q) succeeded", bad)
		}
	}
	// This process's own status has one.
	if n, err := peakRSS(os.Getpid()); err != nil || n <= 0 {
		t.Errorf("peakRSS(self) = %d, %v", n, err)
	}
}

func sampleReport() *Report {
	s := func(med, lo time.Duration) Stat {
		return Stat{Median: med, Min: lo, Samples: []time.Duration{lo, med, med}}
	}
	base := s(time.Second, 900*time.Millisecond)
	fast := s(250*time.Millisecond, 200*time.Millisecond)
	rep := &Report{Reps: 3, Backend: "test", Skipped: []string{"s3: no S3 server"}, Rows: []Row{
		{Group: "rest large", Scenario: "REST push 1 GiB", Baseline: "write+fsync", DML: s(2*time.Second, 1800*time.Millisecond), Base: &base, Bytes: 1 << 30, PeakRSS: 30 << 20},
		{Group: "admission", Scenario: "admitted, 8 clients", Baseline: "pushes alone", DML: s(time.Second, time.Second), Base: &fast, Ops: 400, Note: "admitted/s"},
		{Group: "verification", Scenario: "no baseline", DML: s(time.Second, time.Second), Ops: 5000},
	}}
	for i := range rep.Rows {
		rep.Rows[i].finish()
	}
	return rep
}

func TestRatio(t *testing.T) {
	rep := sampleReport()
	if got := rep.Rows[0].Ratio; got != 2 {
		t.Errorf("ratio = %v, want 2 (dml twice as long)", got)
	}
	if got := rep.Rows[1].Ratio; got != 4 {
		t.Errorf("ratio = %v, want 4", got)
	}
	if got := rep.Rows[2].Ratio; got != 0 {
		t.Errorf("ratio without a baseline = %v, want 0", got)
	}
	for ratio, want := range map[float64]string{2: "2.00× slower", 0.5: "2.00× faster", 1: "1.00× slower", 0: "-"} {
		if got := ratioText(ratio); got != want {
			t.Errorf("ratioText(%v) = %q, want %q", ratio, got, want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var out bytes.Buffer
	if err := sampleReport().WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if !strings.HasPrefix(lines[0], "SCENARIO") || !strings.Contains(lines[0], "BASE MEDIAN") || !strings.Contains(lines[0], "PEAK RSS") {
		t.Errorf("header = %q", lines[0])
	}
	for i, want := range [][]string{
		{"REST push 1 GiB", "2.000s", "1.800s", "512 MiB/s", "write+fsync", "1.000s", "0.900s", "1024 MiB/s", "2.00× slower", "30 MiB"},
		{"admitted, 8 clients", "1.000s", "400/s", "pushes alone", "0.250s", "1600/s", "4.00× slower"},
		{"no baseline", "5000/s"},
	} {
		line := lines[i+1]
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("row %d %q lacks %q", i, line, w)
			}
		}
	}
	for _, w := range []string{"admitted, 8 clients: admitted/s", "skipped: s3: no S3 server"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("notes lack %q:\n%s", w, out.String())
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var out bytes.Buffer
	if err := sampleReport().WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back Report
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("the JSON report does not read back: %v", err)
	}
	want := sampleReport()
	if len(back.Rows) != len(want.Rows) || back.Rows[0].DML.Median != 2*time.Second || back.Rows[0].Base.Min != 900*time.Millisecond ||
		back.Rows[0].Ratio != 2 || back.Rows[0].Bytes != 1<<30 || back.Rows[1].Ops != 400 || back.Rows[2].Base != nil ||
		back.Rows[0].Group != "rest large" || !slices.Equal(back.Skipped, want.Skipped) {
		t.Errorf("read back %+v", back)
	}
	if dec.More() {
		t.Error("more than one JSON document")
	}
}

func TestWithDefaults(t *testing.T) {
	full := Config{}.withDefaults()
	if full.LargeSize != 1<<30 || full.OCISize != 256<<20 || full.Streams != 16 || full.StreamSize != 256<<20 || full.AuditRecords != 1_000_000 || full.Reps != 3 || full.Clients != 8 {
		t.Errorf("full defaults = %+v", full)
	}
	short := Config{Short: true}.withDefaults()
	if short.Reps != 1 || short.LargeSize >= full.LargeSize || short.AuditRecords >= full.AuditRecords {
		t.Errorf("short defaults = %+v", short)
	}
	given := Config{Short: true, Reps: 5, LargeSize: 3 << 20}.withDefaults()
	if given.Reps != 5 || given.LargeSize != 3<<20 {
		t.Errorf("given values replaced: %+v", given)
	}
}

// TestWriteFsyncAndPayload: the disk baseline copies the bytes whole, and
// freshen gives the payload new bytes and their digest.
func TestWriteFsyncAndPayload(t *testing.T) {
	dir := t.TempDir()
	p, err := newPayload(dir, "data", 5<<20+3)
	if err != nil {
		t.Fatal(err)
	}
	before := p.digest
	if err := p.freshen(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p.path)
	if err != nil {
		t.Fatal(err)
	}
	if p.digest == before || p.digest.String() != fmt.Sprintf("sha256:%x", sha256sum(data)) || int64(len(data)) != p.size {
		t.Errorf("freshen: digest %s (was %s), %d bytes", p.digest, before, len(data))
	}
	out := t.TempDir()
	path, err := writeFsync(p.path, out)
	if err != nil {
		t.Fatal(err)
	}
	if copies, _ := filepath.Glob(filepath.Join(out, "dd-*")); !slices.Equal(copies, []string{path}) {
		t.Fatalf("copies = %v, want %s", copies, path)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the copy differs (%d bytes, %v)", len(got), err)
	}
	// The timed side removes its copy, untimed, after the clock stops.
	if _, err := ddTimed(p.path, out)(0); err != nil {
		t.Fatal(err)
	}
	if copies, _ := filepath.Glob(filepath.Join(out, "dd-*")); len(copies) != 1 {
		t.Errorf("after ddTimed: copies = %v, want only the first", copies)
	}
}
