package sqlstore_test

import (
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/signing"
)

// testReplicaTrustChange: each replica keeps the trust it last decided
// with; a change of trust made through one replica counts from the next
// decision of every other. Replicas 1 and 2 decide first (so they keep
// the policy and the key), then replica 0 changes the policy, then
// revokes the key.
func testReplicaTrustChange(t *testing.T, rs replicas) {
	ctx := t.Context()
	rs[0].TrustCI()
	pipeline := rs[0].Principal("pipeline", nil, access.RolePublisher)
	for i, version := range []string{"1.0", "2.0"} {
		pushSigned(t, rs, pipeline, version)
		if _, a, err := rs.on(i+1).Catalog.AddEvidence(ctx, pipeline, evidence(t, version, 0)); err != nil || a.State != catalog.StateQuarantined {
			t.Fatalf("%s signed through replica %d: %s, %v; want quarantined, the tests missing", version, i+1, a.State, err)
		}
	}
	pv, err := rs.on(0).Trust.SetTrustPolicy(ctx, rs[0].Admin, []byte(`{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// Replica 0 re-decided what was quarantined; the others decide a new
	// version with the new policy.
	for i, version := range []string{"3.0", "4.0"} {
		pushSigned(t, rs, pipeline, version)
		_, a, err := rs.on(i+1).Catalog.AddEvidence(ctx, pipeline, evidence(t, version, 0))
		if err != nil || a.State != catalog.StateAdmitted || a.Admission.PolicyVersion != pv.Version {
			t.Fatalf("%s signed through replica %d after the policy change: %s %+v, %v; want admitted by policy v%d", version, i+1, a.State, a.Admission, err, pv.Version)
		}
	}
	if err := rs.on(0).Trust.RevokeTrustKey(ctx, rs[0].Admin, "ci"); err != nil {
		t.Fatal(err)
	}
	for i, version := range []string{"5.0", "6.0"} {
		pushSigned(t, rs, pipeline, version)
		if _, _, err := rs.on(i+1).Catalog.AddEvidence(ctx, pipeline, evidence(t, version, 0)); signing.ReasonOf(err) != signing.UntrustedKey {
			t.Fatalf("%s signed by the revoked key through replica %d: %v; want untrusted", version, i+1, err)
		}
		a, err := rs.on(i+1).Catalog.Artifact(ctx, relArtifact, version)
		if err != nil || a.State != catalog.StateQuarantined || !strings.Contains(strings.Join(a.Admission.Unmet, "; "), "signature") {
			t.Fatalf("%s through replica %d: %s %+v, %v; want quarantined, a signature missing", version, i+1, a.State, a.Admission, err)
		}
	}
}
