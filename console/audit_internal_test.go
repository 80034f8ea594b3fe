package console

import (
	"errors"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/errdef"
)

// TestParseFormTime: the audit page's time fields read the browser's
// datetime-local values in UTC; as the end of a range, a minute (or a
// second, or a day) reaches to its last nanosecond, so "to 10:00" holds
// what happened during 10:00.
func TestParseFormTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		end  bool
		want string
	}{
		{"2026-11-25T10:00", false, "2026-11-25T10:00:00Z"},
		{"2026-11-25T10:00", true, "2026-11-25T10:00:59.999999999Z"},
		{"2026-11-25T10:00:30", true, "2026-11-25T10:00:30.999999999Z"},
		{"2026-11-25", true, "2026-11-25T23:59:59.999999999Z"},
		{"2026-11-25T10:00:00.5+01:00", true, "2026-11-25T09:00:00.5Z"},
	} {
		got, err := parseFormTime(tc.in, tc.end)
		if err != nil || got.UTC().Format(time.RFC3339Nano) != tc.want {
			t.Errorf("parseFormTime(%q, %v) = %v, %v; want %s", tc.in, tc.end, got, err, tc.want)
		}
	}
	if _, err := parseFormTime("yesterday", false); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("parseFormTime(yesterday): %v", err)
	}
}
