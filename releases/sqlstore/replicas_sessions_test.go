package sqlstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/opencontainers/go-digest"
)

// More races across replicas (TestReplicas runs them): what a request
// leaves behind for the next one — a deployment, a chunked upload's
// session, a token's revocation — is seen by whichever replica the next
// request reaches, because it is in the database and nowhere else.

// deployingRelease creates a release of the signed fixture over staging
// then production, has every gate authorised by one approver and returns
// it, deploying.
func deployingRelease(t *testing.T, rs replicas, name string) lifecycle.Release {
	t.Helper()
	ctx := t.Context()
	rs[0].TrustCI()
	pipeline := rs[0].Principal("pipeline-"+name, nil, access.RolePublisher)
	rm := rs[0].Principal("rm-"+name, nil, access.RoleReleaseManager)
	cab := rs[0].Principal("cab-"+name, nil, access.RoleApprover)
	pushSigned(t, rs, pipeline, "1.4.2")
	for i := range 2 {
		if _, _, err := rs.on(i).Catalog.AddEvidence(ctx, pipeline, evidence(t, "1.4.2", i)); err != nil {
			t.Fatal(err)
		}
	}
	envs := []string{"staging", "production"}
	r, err := rs.on(1).Releases.CreateRelease(ctx, rm, lifecycle.CreateReleaseRequest{
		Name: name, Artifacts: []lifecycle.ReleaseArtifactRef{{Name: relArtifact, Version: "1.4.2"}},
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-" + name, Title: "Payments API 1.4.2", Environments: envs,
			Plan: lifecycle.PlanDetails{Description: "Roll out", BackoutPlan: "Redeploy 1.4.1", Risk: "low"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, gate := range []string{lifecycle.GatePlan, lifecycle.GateBuild, lifecycle.DeployGate(envs[0]), lifecycle.DeployGate(envs[1])} {
		d, err := rs.on(i).Releases.ExpectedDigest(ctx, r, gate)
		if err != nil {
			t.Fatal(err)
		}
		if r, err = rs.on(i).Releases.Decide(ctx, cab, r.Name, lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.DecisionApprove, Digest: d, Comment: "ok"}); err != nil {
			t.Fatalf("approving %s: %v", gate, err)
		}
	}
	if r.State != lifecycle.ReleaseDeploying {
		t.Fatalf("release %s is %s after its gates, want deploying", r.Name, r.State)
	}
	return r
}

// testReplicaDeploymentOrder: deployments in plan order when the requests
// reach different replicas. Staging's deployment is finished (succeeded)
// through one replica while production deployments are recorded through
// the others: each production deployment is either refused as out of
// order or recorded after staging's success, and none is lost — the
// release holds exactly the ones acknowledged.
func testReplicaDeploymentOrder(t *testing.T, rs replicas) {
	ctx := t.Context()
	r := deployingRelease(t, rs, "rollout")
	agent := rs[0].Principal("agent", []string{"staging", "production"}, access.RoleDeployer)
	_, staging, err := rs.on(0).Releases.RecordDeployment(ctx, agent, r.Name, lifecycle.DeploymentRequest{Environment: "staging", Target: "stg-1"})
	if err != nil {
		t.Fatal(err)
	}
	const agents = 9
	recorded := make([]string, agents)
	race(agents, func(i int) {
		if i == 0 {
			if _, _, err := rs.on(0).Releases.UpdateDeployment(ctx, agent, r.Name, staging.ID, lifecycle.DeploymentUpdate{Status: lifecycle.DeploymentSucceeded}); err != nil {
				t.Errorf("finishing staging: %v", err)
			}
			return
		}
		_, dep, err := rs.on(i).Releases.RecordDeployment(ctx, agent, r.Name, lifecycle.DeploymentRequest{Environment: "production", Target: fmt.Sprint("prod-", i)})
		switch {
		case err == nil:
			recorded[i] = dep.ID
		case !errors.Is(err, lifecycle.ErrDeploymentOutOfOrder):
			t.Errorf("production deployment through replica %d: %v", i%len(rs), err)
		}
	})
	got, err := rs.on(2).Releases.Release(ctx, r.Name)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, d := range got.Deployments {
		if d.Environment == "production" {
			held = append(held, d.ID)
		}
	}
	acknowledged := slices.DeleteFunc(slices.Clone(recorded), func(id string) bool { return id == "" })
	slices.Sort(held)
	slices.Sort(acknowledged)
	if !slices.Equal(held, acknowledged) {
		t.Errorf("the release holds production deployments %v, the replicas acknowledged %v", held, acknowledged)
	}
	stagingDone := false
	for _, ev := range events(t, rs, "release:"+r.Name) {
		var d struct {
			Environment string `json:"environment"`
			Status      string `json:"status"`
		}
		if ev.Action != lifecycle.ActionReleaseDeployment {
			continue
		}
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Environment == "staging" && d.Status == string(lifecycle.DeploymentSucceeded):
			stagingDone = true
		case d.Environment == "production" && !stagingDone:
			t.Errorf("a production deployment (event %d) was recorded before staging succeeded", ev.Seq)
		}
	}
}

// testReplicaChunkedUpload: an OCI chunked upload whose PATCHes alternate
// replicas, completed on yet another, stores exactly the bytes sent. Then
// two PATCHes of one upload racing through two replicas (a client
// breaking the protocol): at most one is accepted, and the upload then
// either completes with exactly the accepted bytes or is refused as
// invalid — never a blob other than the one named.
func testReplicaChunkedUpload(t *testing.T, rs replicas) {
	ctx := t.Context()
	pipeline := rs[0].Principal("pipeline", nil, access.RolePublisher)
	const repo = "apps/chunked"
	var whole bytes.Buffer
	u, err := rs.on(0).Registry.StartUpload(ctx, pipeline, repo)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		chunk := bytes.Repeat(fmt.Appendf(nil, "chunk %d; ", i), 100+i)
		rng := &registry.ChunkRange{Start: int64(whole.Len()), End: int64(whole.Len()+len(chunk)) - 1}
		if u, err = rs.on(i).Registry.AppendUpload(ctx, pipeline, repo, u.ID, bytes.NewReader(chunk), rng, int64(len(chunk))); err != nil {
			t.Fatalf("PATCH %d through replica %d: %v", i, i%len(rs), err)
		}
		whole.Write(chunk)
		if u.Offset != int64(whole.Len()) {
			t.Fatalf("after PATCH %d the upload holds %d bytes, want %d", i, u.Offset, whole.Len())
		}
	}
	d := digest.FromBytes(whole.Bytes())
	if _, err := rs.on(2).Registry.CompleteUpload(ctx, pipeline, repo, u.ID, d, strings.NewReader(""), nil, 0); err != nil {
		t.Fatalf("completing through replica 2: %v", err)
	}
	for i := range rs {
		checkBlob(t, rs, i, pipeline, repo, whole.Bytes())
	}

	for trial := range 4 {
		u, err := rs.on(trial).Registry.StartUpload(ctx, pipeline, repo)
		if err != nil {
			t.Fatal(err)
		}
		bodies := [][]byte{
			bytes.Repeat(fmt.Appendf(nil, "trial %d, first writer ", trial), 200),
			bytes.Repeat(fmt.Appendf(nil, "trial %d, second writer ", trial), 200),
		}
		accepted := make([]bool, len(bodies))
		race(len(bodies), func(i int) {
			_, err := rs.on(i).Registry.AppendUpload(ctx, pipeline, repo, u.ID, bytes.NewReader(bodies[i]), &registry.ChunkRange{Start: 0, End: int64(len(bodies[i])) - 1}, int64(len(bodies[i])))
			switch {
			case err == nil:
				accepted[i] = true
			case !errors.Is(err, errdef.ErrConflict) && !errors.Is(err, registry.ErrChunkOutOfOrder):
				t.Errorf("trial %d: PATCH through replica %d: %v", trial, i, err)
			}
		})
		winner := slices.Index(accepted, true)
		if winner < 0 || slices.Index(accepted[winner+1:], true) >= 0 {
			t.Fatalf("trial %d: PATCHes accepted %v, want exactly one", trial, accepted)
		}
		_, err = rs.on(2).Registry.CompleteUpload(ctx, pipeline, repo, u.ID, digest.FromBytes(bodies[winner]), strings.NewReader(""), nil, 0)
		switch {
		case err == nil:
			checkBlob(t, rs, trial, pipeline, repo, bodies[winner])
		case errors.Is(err, registry.ErrUploadInvalid):
			// The loser's bytes overwrote the winner's chunk: the commit's
			// verification refused them, and the upload is gone.
		default:
			t.Errorf("trial %d: completing: %v", trial, err)
		}
		if _, err := rs.on(1).Registry.UploadStatus(ctx, pipeline, repo, u.ID); !errors.Is(err, registry.ErrUploadUnknown) {
			t.Errorf("trial %d: the upload is still there after its completion (%v)", trial, err)
		}
	}
}

// checkBlob reads want's blob from repo through replica i and compares.
func checkBlob(t *testing.T, rs replicas, i int, p access.Principal, repo string, want []byte) {
	t.Helper()
	b, err := rs.on(i).Registry.OpenBlob(t.Context(), p, repo, digest.FromBytes(want))
	if err != nil {
		t.Fatalf("reading the blob through replica %d: %v", i%len(rs), err)
	}
	defer b.Reader.Close()
	got, err := io.ReadAll(b.Reader)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("replica %d serves %d bytes (%v), want the %d bytes sent", i%len(rs), len(got), err, len(want))
	}
}

// testReplicaRevocation: a token revoked through one replica is refused
// by every replica on its next request, with no cache to wait out; one
// issued through another replica is accepted by all at once.
func testReplicaRevocation(t *testing.T, rs replicas) {
	ctx := t.Context()
	issued, err := rs.on(1).Access.IssueToken(ctx, rs[0].Admin, access.TokenRequest{Name: "agent", Roles: []access.Role{access.RoleAuditor}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		if _, err := rs.on(i).Access.Authenticate(ctx, issued.Secret); err != nil {
			t.Fatalf("replica %d refuses a token issued through replica 1: %v", i, err)
		}
	}
	if err := rs.on(2).Access.RevokeToken(ctx, rs[0].Admin, issued.Token.ID); err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		if _, err := rs.on(i).Access.Authenticate(ctx, issued.Secret); !errors.Is(err, errdef.ErrUnauthorized) {
			t.Errorf("replica %d after the revocation through replica 2: %v, want ErrUnauthorized", i, err)
		}
	}
}

// TestReplicaKeys: replicas pin their signing keys in the database they
// share. Replicas starting at once with the same keys pin them once; a
// replica with keys of its own is refused (ErrKeysDiffer) until it rotates
// them on purpose, and then the replicas with the old keys are refused.
// Replicas starting at once with different keys: one set is pinned, every
// other replica is refused.
func TestReplicaKeys(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		ctx := t.Context()
		open := storage(t)
		rs := domaintest.NewReplicas(t, 3, func() *sqlstore.DB { return open(t) })
		pinned := make([]bool, len(rs))
		race(len(rs), func(i int) {
			var err error
			if pinned[i], err = rs[i].DML.PinKeys(ctx, false); err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		})
		if n := countTrue(pinned); n != 1 {
			t.Errorf("%d replicas pinned the keys, want 1", n)
		}
		stranger := domaintest.New(t, open(t), rs[0].DML.Blobs.Store())
		if _, err := stranger.PinKeys(ctx, false); !errors.Is(err, releases.ErrKeysDiffer) {
			t.Fatalf("a replica with keys of its own: %v, want ErrKeysDiffer", err)
		}
		if strings.Contains(fmt.Sprint(stranger.PinKeys(ctx, false)), "PRIVATE") {
			t.Error("the refusal shows a private key")
		}
		if p, err := stranger.PinKeys(ctx, true); err != nil || !p {
			t.Fatalf("rotating: pinned %v, %v", p, err)
		}
		if _, err := rs[1].DML.PinKeys(ctx, false); !errors.Is(err, releases.ErrKeysDiffer) {
			t.Errorf("a replica with the old keys after the rotation: %v, want ErrKeysDiffer", err)
		}
		if n := len(settingEvents(t, rs, "server.signing-keys")); n != 2 {
			t.Errorf("%d key pinning events, want 2 (the first start, the rotation)", n)
		}

		fresh := storage(t)
		strangers := make([]*releases.DML, 4)
		for i := range strangers {
			strangers[i] = domaintest.New(t, fresh(t), rs[0].DML.Blobs.Store())
		}
		var refused int
		var mu sync.Mutex
		race(len(strangers), func(i int) {
			_, err := strangers[i].PinKeys(ctx, false)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, releases.ErrKeysDiffer):
				refused++
			case err != nil:
				t.Errorf("replica %d: %v", i, err)
			}
		})
		if refused != len(strangers)-1 {
			t.Errorf("%d of %d replicas with keys of their own refused, want all but one", refused, len(strangers))
		}
	})
}

func countTrue(bs []bool) (n int) {
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// settingEvents are the events that set key, through rs[0].
func settingEvents(t *testing.T, rs replicas, key string) []audit.Event {
	return slices.DeleteFunc(events(t, rs, key), func(ev audit.Event) bool { return ev.Action != lifecycle.ActionSettingSet })
}

// TestReplicaBootstrap: replicas starting together on an empty database
// bootstrap one admin token between them: with the secret supplied
// (DML_BOOTSTRAP_TOKEN, the same for all), every replica starts and the
// secret works; with none, one replica generates (and prints) a secret
// and the others issue nothing.
func TestReplicaBootstrap(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		for _, secret := range []string{domaintest.AdminSecret, ""} {
			ctx := t.Context()
			open := storage(t)
			backend := domaintest.NewEnv(t).DML.Blobs.Store()
			rs := make([]*releases.DML, 3)
			for i := range rs {
				rs[i] = domaintest.New(t, open(t), backend)
			}
			generated := make([]string, len(rs))
			race(len(rs), func(i int) {
				var err error
				if generated[i], err = rs[i].Access.BootstrapAdmin(ctx, secret); err != nil {
					t.Errorf("secret %q: replica %d: %v", secret, i, err)
				}
			})
			n, err := open(t).Tokens().CountTokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			printed := slices.DeleteFunc(slices.Clone(generated), func(s string) bool { return s == "" })
			if n != 1 || (secret == "" && len(printed) != 1) || (secret != "" && len(printed) != 0) {
				t.Errorf("secret %q: %d tokens issued, %d secrets generated; want one token, and one generated secret only when none was supplied", secret, n, len(printed))
			}
			if secret == "" && len(printed) == 1 {
				secret = printed[0]
			}
			for i := range rs {
				if _, err := rs[i].Access.Authenticate(ctx, secret); err != nil {
					t.Errorf("replica %d refuses the bootstrap secret: %v", i, err)
				}
			}
		}
	})
}
