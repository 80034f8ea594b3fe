package lifecycle

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestGateComputation is a gate's authorisation as a table: the approvals
// on record × the digest the gate expects now → who counts and whether
// the gate is authorised. An approval counts once per principal, only for
// the digest it named, and not once discarded (a new plan, a rejection);
// a rejection never counts.
func TestGateComputation(t *testing.T) {
	planDigest, other := digest.FromString("plan"), digest.FromString("another plan")
	ap := func(by string, d digest.Digest) Approval {
		return Approval{Gate: GatePlan, Decision: DecisionApprove, Digest: d, By: by}
	}
	discarded := func(a Approval) Approval { a.Discarded = true; return a }
	rejected := func(a Approval) Approval { a.Decision = DecisionReject; return a }
	for _, tc := range []struct {
		name       string
		quorum     map[string]int
		approvals  []Approval
		expect     digest.Digest
		approvers  []string
		authorized bool
	}{
		{"none yet", map[string]int{GatePlan: 2}, nil, planDigest, nil, false},
		{"one of two", map[string]int{GatePlan: 2}, []Approval{ap("cab-1", planDigest)}, planDigest, []string{"cab-1"}, false},
		{"two of two", map[string]int{GatePlan: 2}, []Approval{ap("cab-1", planDigest), ap("cab-2", planDigest)}, planDigest, []string{"cab-1", "cab-2"}, true},
		{"one approver twice counts once", map[string]int{GatePlan: 2}, []Approval{ap("cab-1", planDigest), ap("cab-1", planDigest)}, planDigest, []string{"cab-1"}, false},
		{"an approval of another digest", map[string]int{GatePlan: 2}, []Approval{ap("cab-1", planDigest), ap("cab-2", other)}, planDigest, []string{"cab-1"}, false},
		{"a discarded approval", map[string]int{GatePlan: 2}, []Approval{ap("cab-1", planDigest), discarded(ap("cab-2", planDigest))}, planDigest, []string{"cab-1"}, false},
		{"a rejection", map[string]int{GatePlan: 1}, []Approval{rejected(ap("cab-1", planDigest))}, planDigest, nil, false},
		{"quorum of one", map[string]int{GatePlan: 1}, []Approval{ap("cab-1", planDigest)}, planDigest, []string{"cab-1"}, true},
		{"a gate without a quorum of record needs one", map[string]int{}, []Approval{ap("cab-1", planDigest)}, planDigest, []string{"cab-1"}, true},
		{"nothing to approve yet", map[string]int{GatePlan: 1}, []Approval{ap("cab-1", "")}, "", []string{"cab-1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Release{Name: "rel", Gates: tc.quorum, Approvals: tc.approvals}
			if got := approversOf(r, GatePlan, tc.expect); !slices.Equal(got, tc.approvers) {
				t.Errorf("approvers = %v; want %v", got, tc.approvers)
			}
			if got := authorized(r, GatePlan, tc.expect); got != tc.authorized {
				t.Errorf("authorized = %v; want %v", got, tc.authorized)
			}
		})
	}
}

// TestOpenGates is which gates can be decided in each state: one phase's
// gate at a time, and after sealing the deploy gates not yet authorised,
// in plan order.
func TestOpenGates(t *testing.T) {
	manifest := digest.FromString("sealed manifest")
	staging := Approval{Gate: DeployGate("staging"), Decision: DecisionApprove, Digest: manifest, By: "cab-1"}
	for _, tc := range []struct {
		state     ReleaseState
		approvals []Approval
		want      []string
	}{
		{ReleasePlanning, nil, []string{GatePlan}},
		{ReleaseBuilding, nil, []string{GateBuild}},
		{ReleaseReleased, nil, []string{DeployGate("staging"), DeployGate("production")}},
		{ReleaseDeploying, []Approval{staging}, []string{DeployGate("production")}},
		{ReleaseDeployed, []Approval{staging}, nil},
		{ReleaseReview, nil, []string{GateClose}},
		{ReleaseClosed, nil, nil},
		{ReleaseCancelled, nil, nil},
	} {
		r := Release{Name: "rel", State: tc.state, Plan: Plan{Environments: []string{"staging", "production"}},
			Gates: map[string]int{}, Approvals: tc.approvals, ManifestDigest: manifest}
		if got := openGates(r); !slices.Equal(got, tc.want) {
			t.Errorf("%s: open gates %v; want %v", tc.state, got, tc.want)
		}
	}
}

// TestDeployAuthorized: deployment to an environment is authorised by its
// deploy gate's quorum of approvals of the sealed manifest, and by nothing
// before the release is sealed.
func TestDeployAuthorized(t *testing.T) {
	manifest := digest.FromString("sealed manifest")
	approve := func(env, by string, d digest.Digest) Approval {
		return Approval{Gate: DeployGate(env), Decision: DecisionApprove, Digest: d, By: by}
	}
	for _, tc := range []struct {
		name      string
		sealed    digest.Digest
		approvals []Approval
		env       string
		want      bool
	}{
		{"quorum met", manifest, []Approval{approve("production", "cab-1", manifest), approve("production", "cab-2", manifest)}, "production", true},
		{"quorum short", manifest, []Approval{approve("production", "cab-1", manifest)}, "production", false},
		{"another environment's approvals", manifest, []Approval{approve("staging", "cab-1", manifest), approve("staging", "cab-2", manifest)}, "production", false},
		{"approvals of another manifest", manifest, []Approval{approve("production", "cab-1", "sha256:00"), approve("production", "cab-2", "sha256:00")}, "production", false},
		{"not sealed", "", []Approval{approve("production", "cab-1", ""), approve("production", "cab-2", "")}, "production", false},
	} {
		r := Release{Name: "rel", Gates: map[string]int{DeployGate("production"): 2}, ManifestDigest: tc.sealed, Approvals: tc.approvals}
		if got := r.DeployAuthorized(tc.env); got != tc.want {
			t.Errorf("%s: DeployAuthorized(%s) = %v; want %v", tc.name, tc.env, got, tc.want)
		}
	}
}

// TestQuorumFloor: the fewest approvals a gate may need is the admin's
// default for it; a deploy gate without one of its own takes the deploy:*
// default; any other gate needs one.
func TestQuorumFloor(t *testing.T) {
	defaults := map[string]GateSetting{GatePlan: {Approvals: 3}, gateAllDeploys: {Approvals: 2}, DeployGate("staging"): {Approvals: 1}}
	for gate, want := range map[string]int{
		GatePlan:                   3,
		GateBuild:                  1,
		GateClose:                  1,
		DeployGate("staging"):      1,
		DeployGate("production"):   2,
		DeployGate("anything-new"): 2,
	} {
		if got := quorumFloor(defaults, gate); got != want {
			t.Errorf("quorumFloor(%s) = %d; want %d", gate, got, want)
		}
		if got := quorumFloor(nil, gate); got != 1 {
			t.Errorf("quorumFloor(%s) without defaults = %d; want 1", gate, got)
		}
	}
}

// TestRejectionSendsBack: a rejected gate sends the release back to the
// phase before it; a rejected deploy gate leaves it where it is.
func TestRejectionSendsBack(t *testing.T) {
	for _, tc := range []struct {
		state ReleaseState
		gate  string
		want  ReleaseState
	}{
		{ReleasePlanning, GatePlan, ReleasePlanning},
		{ReleaseBuilding, GateBuild, ReleaseBuilding},
		{ReleaseReleased, DeployGate("staging"), ReleaseReleased},
		{ReleaseDeploying, DeployGate("production"), ReleaseDeploying},
		{ReleaseReview, GateClose, ReleaseReview},
	} {
		if got := stateBeforeGate(Release{State: tc.state}, tc.gate); got != tc.want {
			t.Errorf("rejecting %s in %s: %s; want %s", tc.gate, tc.state, got, tc.want)
		}
	}
}
