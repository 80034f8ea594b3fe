package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/access"
)

// TestClientSeesEveryField reads every resource twice after a release
// went all the way through (a rejection, a sealed manifest, a deployment,
// a review), with a retired artifact, a revoked key and a revoked token on
// record: once as raw JSON over HTTP and once through the client. The raw
// body must decode strictly into its wire type (no field the server sends
// is unknown to the contract), and what the client returns must encode to
// the same JSON document: the client drops nothing the server sends.
func TestClientSeesEveryField(t *testing.T) {
	ctx := context.Background()
	e := admittedArtifact(t)
	rm := e.as(t, "rm", access.RoleReleaseManager)
	alice := e.as(t, "alice", access.RoleApprover)
	pub := e.as(t, "pipeline", access.RolePublisher)
	dep := deployer(t, e, "deploy-staging", "staging")

	if _, _, err := pub.Artifacts().Push(ctx, pushReq("payments/api", "1.4.3", randomBytes(t, 64))); err != nil {
		t.Fatal(err)
	}
	if _, err := rm.Artifacts().Retire(ctx, "payments/api", "1.4.3"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "old", PublicKey: string(releaseFixture(t, "cosign.pub")), Comment: "rotated"}); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Trust().RevokeKey(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	spare, err := e.admin.Tokens().Create(ctx, wire.TokenRequest{Name: "spare", Roles: []string{"auditor"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Tokens().Revoke(ctx, spare.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Settings().SetGateDefaults(ctx, map[string]wire.GateSetting{"deploy:*": {Approvals: 1}}); err != nil {
		t.Fatal(err)
	}

	r, err := rm.Releases().Create(ctx, wire.CreateReleaseRequest{
		Name: "r1",
		PlanRequest: wire.PlanRequest{ChangeRef: "CHG-1", Title: "payments 1.4.2", Environments: []string{"staging"},
			Plan: wire.PlanDetails{Description: "d", BackoutPlan: "redeploy 1.4.1", Risk: "low"}},
		Artifacts: []wire.ReleaseArtifactRef{{Name: "payments/api", Version: "1.4.2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	decide := func(gate, decision, comment string) wire.Release {
		t.Helper()
		g, ok := r.Gate(gate)
		if !ok {
			t.Fatalf("no gate %s", gate)
		}
		r, err = alice.Releases().Decide(ctx, "r1", wire.ApprovalRequest{Gate: gate, Decision: decision, Digest: g.ExpectedDigest, Comment: comment})
		if err != nil {
			t.Fatalf("%s %s: %v", decision, gate, err)
		}
		return r
	}
	decide(wire.GatePlan, wire.DecisionReject, "no window")
	decide(wire.GatePlan, wire.DecisionApprove, "")
	decide(wire.GateBuild, wire.DecisionApprove, "")
	decide(wire.DeployGate("staging"), wire.DecisionApprove, "")
	if _, err := rm.Releases().RequestEmergency(ctx, "r1", wire.EmergencyRequest{Reason: "INC-1"}); err != nil {
		t.Fatal(err)
	}
	d, err := dep.Releases().RecordDeployment(ctx, "r1", wire.DeploymentRequest{Environment: "staging", Target: "k8s/staging", Notes: "canary"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dep.Releases().UpdateDeployment(ctx, "r1", d.Deployment.ID, wire.DeploymentUpdate{Status: wire.DeploymentSucceeded}); err != nil {
		t.Fatal(err)
	}
	if _, err := rm.Releases().FileReview(ctx, "r1", wire.ReviewRequest{Outcome: "successful", Summary: "fine", Incidents: []string{"none"}, ObjectivesMet: true}); err != nil {
		t.Fatal(err)
	}
	pattern := "^CHG-[0-9]+$"
	if _, err := e.admin.Settings().SetChangePolicy(ctx, wire.ChangePolicyUpdate{RiskLevels: []string{"low", "high"}, ChangeRefPattern: &pattern,
		ChangeSystem: &wire.ChangeSystemSetting{URL: "https://itsm.example.com/dml", Secret: "s"}}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		path string
		into any // a pointer to the wire type of the body
		read func() (any, error)
	}{
		{"/api/v1/artifacts/payments/api/versions/1.4.2", new(wire.Artifact), func() (any, error) { return e.admin.Artifacts().Get(ctx, "payments/api", "1.4.2") }},
		{"/api/v1/artifacts/payments/api/versions/1.4.3", new(wire.Artifact), func() (any, error) { return e.admin.Artifacts().Get(ctx, "payments/api", "1.4.3") }},
		{"/api/v1/artifacts", new(wire.ArtifactPage), func() (any, error) { return e.admin.Artifacts().List(ctx, client.ArtifactFilter{}) }},
		{"/api/v1/artifacts/payments/api/versions/1.4.2/evidence", new(wire.EvidenceList), func() (any, error) {
			list, err := e.admin.Evidence().List(ctx, "payments/api", "1.4.2")
			return wire.EvidenceList{Evidence: list}, err
		}},
		{"/api/v1/releases/r1", new(wire.Release), func() (any, error) { return e.admin.Releases().Get(ctx, "r1") }},
		{"/api/v1/releases", new(wire.ReleasePage), func() (any, error) { return e.admin.Releases().List(ctx, client.ReleaseFilter{}) }},
		{"/api/v1/tokens", new(wire.TokenList), func() (any, error) {
			list, err := e.admin.Tokens().List(ctx)
			return wire.TokenList{Tokens: list}, err
		}},
		{"/api/v1/whoami", new(wire.Identity), func() (any, error) { return e.admin.Whoami(ctx) }},
		{"/api/v1/trust/keys", new(wire.TrustKeyList), func() (any, error) {
			list, err := e.admin.Trust().Keys(ctx)
			return wire.TrustKeyList{Keys: list}, err
		}},
		{"/api/v1/trust/policy", new(wire.TrustPolicy), func() (any, error) { return e.admin.Trust().Policy(ctx) }},
		{"/api/v1/settings/gates", new(wire.GateDefaults), func() (any, error) { return e.admin.Settings().GateDefaults(ctx) }},
		{"/api/v1/settings/change", new(wire.ChangePolicy), func() (any, error) { return e.admin.Settings().ChangePolicy(ctx) }},
		{"/api/v1/audit/access", new(wire.AccessPage), func() (any, error) { return e.admin.Audit().AccessLog(ctx, client.AccessFilter{}) }},
	} {
		t.Run(c.path, func(t *testing.T) {
			raw := getRaw(t, e, c.path)
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(c.into); err != nil {
				t.Fatalf("the server sent a field the contract lacks: %v\n%s", err, raw)
			}
			got, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			viaClient, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var want, have any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(viaClient, &have); err != nil {
				t.Fatal(err)
			}
			if c.path == "/api/v1/audit/access" {
				// The client's own read is logged after the raw one.
				dropNewer(want, have)
			}
			if !reflect.DeepEqual(want, have) {
				t.Fatalf("the client's value differs from what the server sent:\n server %s\n client %s", raw, viaClient)
			}
		})
	}
}

// getRaw is the body of an admin's GET of path.
func getRaw(t *testing.T, e env, path string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// dropNewer trims the client's page of access records to the records of
// the raw page.
func dropNewer(raw, viaClient any) {
	rp, cp := raw.(map[string]any), viaClient.(map[string]any)
	rr, _ := rp["records"].([]any)
	cr, _ := cp["records"].([]any)
	if len(cr) > len(rr) {
		cp["records"] = cr[:len(rr)]
	}
}
