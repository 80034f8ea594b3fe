package bench

import (
	"fmt"
	"slices"
	"time"
)

// Stat sums up the timed repetitions of one side of a scenario.
type Stat struct {
	Median  time.Duration   `json:"medianNs"`
	Min     time.Duration   `json:"minNs"`
	Samples []time.Duration `json:"samplesNs"`
}

// summarize is the median and minimum of samples (the mean of the two
// middle ones for an even count). No samples: a zero Stat.
func summarize(samples []time.Duration) Stat {
	if len(samples) == 0 {
		return Stat{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: m, Min: s[0], Samples: slices.Clone(samples)}
}

// timed is one repetition of one side: it does its work and says how long
// the part that counts took (setup excluded).
type timed func(rep int) (time.Duration, error)

// alternate runs a and b reps times each, interleaved — a, b, a, b, … —
// so that whatever else the machine does at a moment slows both sides
// alike. b may be nil (a scenario without a baseline). The first error
// stops the run.
func alternate(reps int, a, b timed) (sa, sb Stat, err error) {
	var da, db []time.Duration
	for rep := range reps {
		d, err := a(rep)
		if err != nil {
			return Stat{}, Stat{}, fmt.Errorf("rep %d: %w", rep+1, err)
		}
		da = append(da, d)
		if b == nil {
			continue
		}
		if d, err = b(rep); err != nil {
			return Stat{}, Stat{}, fmt.Errorf("rep %d, baseline: %w", rep+1, err)
		}
		db = append(db, d)
	}
	return summarize(da), summarize(db), nil
}

// stopwatch times f.
func stopwatch(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}
