package lifecycle_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/dmlproject/dml/releases/lifecycle"
)

// An approval that passes a gate records the gates it opened, so that
// the event stream can say gate.opened for each (releases/events): the
// build gate after the plan, every deploy gate after the seal, none after
// a deploy gate or the close.
func TestApprovalRecordsOpenedGates(t *testing.T) {
	e := newRelEnv(t)
	r := e.driveTo("closed")
	want := map[string][]string{
		lifecycle.GatePlan: {lifecycle.GateBuild}, lifecycle.GateBuild: {lifecycle.DeployGate("staging"), lifecycle.DeployGate("production")},
		lifecycle.DeployGate("staging"): {}, lifecycle.DeployGate("production"): {}, lifecycle.GateClose: {},
	}
	passed := map[string]bool{}
	for _, ev := range e.releaseEvents(r.Name) {
		if ev.Action != lifecycle.ActionReleaseApproval {
			continue
		}
		var d struct {
			Gate       string    `json:"gate"`
			Authorized bool      `json:"authorized"`
			Opened     *[]string `json:"opened"`
		}
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			t.Fatal(err)
		}
		if !d.Authorized {
			continue
		}
		passed[d.Gate] = true
		if d.Opened == nil {
			t.Errorf("approval passing %s records no opened gates: %s", d.Gate, ev.Details)
			continue
		}
		if !slices.Equal(*d.Opened, want[d.Gate]) {
			t.Errorf("approval passing %s opened %v; want %v", d.Gate, *d.Opened, want[d.Gate])
		}
	}
	if len(passed) != len(want) {
		t.Errorf("gates passed: %v; want %d", passed, len(want))
	}
}
