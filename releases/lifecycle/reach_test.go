package lifecycle

import "testing"

func TestCanReach(t *testing.T) {
	deploying := Release{State: ReleaseDeploying}
	deployed := Release{State: ReleaseDeploying, Deployments: []Deployment{{Status: DeploymentSucceeded}}}
	tests := []struct {
		r    Release
		to   ReleaseState
		want bool
	}{
		{Release{State: ReleasePlanning}, ReleasePlanning, true},
		{Release{State: ReleasePlanning}, ReleaseReleased, true},
		{Release{State: ReleasePlanning}, ReleaseClosed, true},
		{Release{State: ReleasePlanning}, ReleaseCancelled, true},
		{Release{State: ReleaseBuilding}, ReleasePlanning, false},
		{deploying, ReleaseCancelled, true},
		{deployed, ReleaseCancelled, false},
		{deployed, ReleaseDeployed, true},
		{Release{State: ReleaseReview}, ReleaseDeployed, false},
		{Release{State: ReleaseReview}, ReleaseClosed, true},
		{Release{State: ReleaseCancelled}, ReleaseClosed, false},
		{Release{State: ReleaseCancelled}, ReleaseCancelled, true},
		{Release{State: ReleaseClosed}, ReleaseReview, false},
		{Release{State: ReleasePlanning}, "nonsense", false},
	}
	for _, tc := range tests {
		if got := CanReach(tc.r, tc.to); got != tc.want {
			t.Errorf("CanReach(%s with %d deployments, %s) = %v; want %v", tc.r.State, len(tc.r.Deployments), tc.to, got, tc.want)
		}
	}
}
