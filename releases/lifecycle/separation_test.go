package lifecycle

import (
	"errors"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// TestSeparationOfDutiesTable is the rule as a table: principal × what
// they changed × gate → may decide or refused. The creator and the
// publishers decide no gate; an editor of the plan, the artifacts or the
// review does not decide the gate approving that part, and decides the
// others.
func TestSeparationOfDutiesTable(t *testing.T) {
	at := time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC)
	ed := func(part, by string) Edit {
		return Edit{Part: part, Digest: digest.FromString(part + by), By: by, TokenID: "tok_" + by, At: at}
	}
	r := Release{
		Name: "rel", CreatedBy: "rm",
		Plan:      Plan{Environments: []string{"staging", "production"}},
		Artifacts: []ReleaseArtifact{{Name: "payments/api", Version: "1.4.2", CreatedBy: "pipeline"}},
		Edits: []Edit{
			ed(PartPlan, "rm"), ed(PartArtifacts, "rm"), // creation
			ed(PartPlan, "plan-editor"),
			ed(PartArtifacts, "artifacts-editor"),
			ed(PartReview, "reviewer"),
			ed(PartPlan, "both"), ed(PartReview, "both"),
			ed(PartArtifacts, "twice"), ed(PartArtifacts, "twice"),
		},
	}
	gates := []string{GatePlan, GateBuild, DeployGate("staging"), DeployGate("production"), GateClose}
	for _, tc := range []struct {
		principal string
		changed   string
		refused   []string // the gates p may not decide; every other one is allowed
	}{
		{"rm", "created the release (plan and artifacts)", gates},
		{"pipeline", "published an artifact", gates},
		{"plan-editor", "the plan", []string{GatePlan}},
		{"artifacts-editor", "the artifacts", []string{GateBuild}},
		{"twice", "the artifacts, twice", []string{GateBuild}},
		{"reviewer", "the review", []string{GateClose}},
		{"both", "the plan and the review", []string{GatePlan, GateClose}},
		{"cab", "nothing", nil},
	} {
		for _, gate := range gates {
			refused := false
			for _, g := range tc.refused {
				refused = refused || g == gate
			}
			err := SeparationOfDuties(r, access.Principal{Name: tc.principal, Roles: []access.Role{access.RoleApprover, access.RoleReleaseManager}}, gate)
			switch {
			case refused && !errors.Is(err, ErrSeparationOfDuties):
				t.Errorf("%s, who changed %s, deciding %s: %v; want refused for separation of duties", tc.principal, tc.changed, gate, err)
			case !refused && err != nil:
				t.Errorf("%s, who changed %s, deciding %s: %v; want allowed", tc.principal, tc.changed, gate, err)
			}
		}
	}
}

// TestGateQuorums is the quorum floor as a table: every gate of the plan
// gets max(default, request), a request below the default is refused, and
// deploy:* covers the deploy gates without a default of their own.
func TestGateQuorums(t *testing.T) {
	plan := Plan{Environments: []string{"staging", "production"}}
	defaults := map[string]GateSetting{"plan": {Approvals: 2}, "deploy:*": {Approvals: 2}, "deploy:staging": {Approvals: 1}}
	set := func(m map[string]int) map[string]GateSetting {
		out := map[string]GateSetting{}
		for g, n := range m {
			out[g] = GateSetting{Approvals: n}
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		requested map[string]int
		defaults  map[string]GateSetting
		want      map[string]int
		err       error
	}{
		{"no defaults, no request", nil, nil,
			map[string]int{"plan": 1, "build": 1, "deploy:staging": 1, "deploy:production": 1, "close": 1}, nil},
		{"defaults only", nil, defaults,
			map[string]int{"plan": 2, "build": 1, "deploy:staging": 1, "deploy:production": 2, "close": 1}, nil},
		{"requests above the defaults", map[string]int{"plan": 3, "deploy:production": 4, "close": 2}, defaults,
			map[string]int{"plan": 3, "build": 1, "deploy:staging": 1, "deploy:production": 4, "close": 2}, nil},
		{"request equal to the default", map[string]int{"plan": 2}, defaults,
			map[string]int{"plan": 2, "build": 1, "deploy:staging": 1, "deploy:production": 2, "close": 1}, nil},
		{"below the gate's default", map[string]int{"plan": 1}, defaults, nil, ErrQuorumTooLow},
		{"below deploy:*", map[string]int{"deploy:production": 1}, defaults, nil, ErrQuorumTooLow},
		{"an environment's own default wins over deploy:*", map[string]int{"deploy:staging": 1}, defaults,
			map[string]int{"plan": 2, "build": 1, "deploy:staging": 1, "deploy:production": 2, "close": 1}, nil},
		{"unknown gate", map[string]int{"deploy:qa": 2}, defaults, nil, errdef.ErrInvalidInput},
		{"zero", map[string]int{"build": 0}, nil, nil, errdef.ErrInvalidInput},
		{"above the maximum", map[string]int{"build": maxApprovals + 1}, nil, nil, errdef.ErrInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gateQuorums(plan, set(tc.requested), tc.defaults)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("gateQuorums: %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("gateQuorums: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("gateQuorums = %v, want %v", got, tc.want)
			}
			for g, n := range tc.want {
				if got[g] != n {
					t.Errorf("gate %s: %d approvals, want %d (all: %v)", g, got[g], n, got)
				}
			}
		})
	}
}
