package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
)

// TestEventRecord: an event's audit record carries every field of the
// event but its sequence number, at the index given, in the canonical
// encoding (UTC time, compact details).
func TestEventRecord(t *testing.T) {
	e := Event{
		Seq:     42,
		Time:    time.Date(2026, 3, 1, 12, 30, 0, 5, time.FixedZone("CET", 3600)),
		Actor:   access.Actor{TokenID: "tok_1", Name: "ci"},
		Action:  "artifact.created",
		Subject: "payments/api:1.0.0",
		Details: json.RawMessage(`{ "digest": "sha256:abc" }`),
	}
	got, err := e.Record(7)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"index":7,"time":"2026-03-01T11:30:00.000000005Z","actor":{"tokenId":"tok_1","name":"ci"},` +
		`"action":"artifact.created","subject":"payments/api:1.0.0","details":{"digest":"sha256:abc"}}`
	if string(got) != want {
		t.Errorf("Record(7) =\n%s\nwant\n%s", got, want)
	}
	if _, err := (Event{Details: json.RawMessage(`{"cut":`)}).Record(0); err == nil {
		t.Error("Record of details that are not JSON: nil error")
	}
}
