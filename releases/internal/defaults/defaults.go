// Package defaults fills the two things every domain service is given
// besides its stores, when a caller leaves them out: a logger (none keeps
// the service silent) and a clock (the wall clock, in UTC).
package defaults

import (
	"log/slog"
	"time"
)

// Logger returns log, or a logger that discards everything when log is nil.
func Logger(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// Clock returns now, or the wall clock in UTC when now is nil.
func Clock(now func() time.Time) func() time.Time {
	if now == nil {
		return func() time.Time { return time.Now().UTC() }
	}
	return now
}
