package sqlstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The races that matter, with the racing requests arriving at different
// replicas: three DMLs, each over its own handle (its own connections)
// onto one database, share nothing in process — no lock, no cache — so
// what keeps them correct is the database alone (SQLite's single writer
// across handles; PostgreSQL's row and advisory locks). After each case
// the audit log is checked to be one Merkle tree with contiguous indexes
// in event order, the same on every replica.

// replicas are the DMLs of one test; on(i) spreads requests over them.
type replicas []*domaintest.Env

func (rs replicas) on(i int) *releases.DML { return rs[i%len(rs)].DML }

func TestReplicas(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		for _, tc := range []struct {
			name string
			fn   func(t *testing.T, rs replicas)
		}{
			{"ApprovalsReachQuorumOnce", testReplicaApprovals},
			{"EvidenceAdmitsOnce", testReplicaEvidence},
			{"TagMovesAgainstAdmission", testReplicaTagMoves},
			{"NewVersionRaces", testReplicaNewVersion},
			{"GCAgainstPushes", testReplicaGC},
			{"AuditAppend", testReplicaAuditAppend},
			{"DeploymentsInPlanOrder", testReplicaDeploymentOrder},
			{"ChunkedUploadAcrossReplicas", testReplicaChunkedUpload},
			{"RevocationSeenByAll", testReplicaRevocation},
			{"TrustChangeSeenByAll", testReplicaTrustChange},
		} {
			t.Run(tc.name, func(t *testing.T) {
				open := storage(t)
				rs := replicas(domaintest.NewReplicas(t, 3, func() *sqlstore.DB { return open(t) }))
				tc.fn(t, rs)
				checkOneLog(t, rs)
			})
		}
	})
}

// race runs fn(i) for i in [0, n) in goroutines released together.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

const (
	relArtifact = "payments/api"
	sigFixture  = "cosign/payments-api-1.4.2.tar.gz.sig"
	attFixture  = "cosign/test-result-passed.dsse.json"
)

// pushSigned pushes the signed fixture as payments/api:version through
// rs.on(0): quarantined until its signature and attestation arrive
// (evidence, which addEvidence sends).
func pushSigned(t *testing.T, rs replicas, p access.Principal, version string) {
	t.Helper()
	content := domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz")
	if _, _, err := rs.on(0).Catalog.Push(t.Context(), p, catalog.PushRequest{Name: relArtifact, Version: version,
		MediaType: "application/gzip", Size: int64(len(content)), Body: bytes.NewReader(content)}); err != nil {
		t.Fatal(err)
	}
}

// evidence is the fixture's signature (i = 0) or test-result attestation
// (i = 1) for payments/api:version.
func evidence(t *testing.T, version string, i int) catalog.EvidenceRequest {
	if i == 0 {
		sig := `{"keyId":"ci","signature":"` + strings.TrimSpace(string(domaintest.Fixture(t, sigFixture))) + `"}`
		return catalog.EvidenceRequest{Name: relArtifact, Version: version, Kind: catalog.EvidenceSignature, Body: []byte(sig)}
	}
	return catalog.EvidenceRequest{Name: relArtifact, Version: version, Kind: catalog.EvidenceAttestation, Body: domaintest.Fixture(t, attFixture)}
}

// testReplicaApprovals: ten approvers approving a quorum-10 gate at once,
// through three replicas, all succeed; each gate is authorised exactly
// once, and the build gate seals the release once.
func testReplicaApprovals(t *testing.T, rs replicas) {
	ctx := t.Context()
	rs[0].TrustCI()
	pipeline := rs[0].Principal("pipeline", nil, access.RolePublisher)
	rm := rs[0].Principal("rm", nil, access.RoleReleaseManager)
	var cab []access.Principal
	for i := range 10 {
		cab = append(cab, rs[0].Principal(fmt.Sprint("cab-", i), nil, access.RoleApprover))
	}
	pushSigned(t, rs, pipeline, "1.4.2")
	for i := range 2 {
		if _, _, err := rs.on(i).Catalog.AddEvidence(ctx, pipeline, evidence(t, "1.4.2", i)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rs.on(1).Releases.CreateRelease(ctx, rm, lifecycle.CreateReleaseRequest{
		Name: "march", Artifacts: []lifecycle.ReleaseArtifactRef{{Name: relArtifact, Version: "1.4.2"}},
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-1", Title: "Payments API 1.4.2", Environments: []string{"staging", "production"},
			Plan: lifecycle.PlanDetails{Description: "Roll out", BackoutPlan: "Redeploy 1.4.1", Risk: "low"}},
		Gates: map[string]lifecycle.GateSetting{lifecycle.GatePlan: {Approvals: 10}, lifecycle.GateBuild: {Approvals: 10}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, gate := range []string{lifecycle.GatePlan, lifecycle.GateBuild} {
		cur, err := rs.on(2).Releases.Release(ctx, r.Name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := rs.on(2).Releases.ExpectedDigest(ctx, cur, gate)
		if err != nil {
			t.Fatal(err)
		}
		req := lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.DecisionApprove, Digest: d, Comment: "ok"}
		race(len(cab), func(i int) {
			if _, err := rs.on(i).Releases.Decide(ctx, cab[i], r.Name, req); err != nil {
				t.Errorf("%s approving %s through replica %d: %v", cab[i].Name, gate, i%len(rs), err)
			}
		})
	}
	got, err := rs.on(0).Releases.Release(ctx, r.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != lifecycle.ReleaseReleased || got.ManifestDigest == "" {
		t.Errorf("release %s, sealed %q; want released and sealed", got.State, got.ManifestDigest)
	}
	counted, authorized, sealed := domaintest.Quorum(t, got, events(t, rs, "release:"+r.Name))
	if counted[lifecycle.GatePlan] != 10 || counted[lifecycle.GateBuild] != 10 ||
		authorized[lifecycle.GatePlan] != 1 || authorized[lifecycle.GateBuild] != 1 || sealed != 1 {
		t.Errorf("approvals %v, gates authorised %v, sealed %d times; want 10 per gate, each gate authorised once, one seal", counted, authorized, sealed)
	}
}

// testReplicaEvidence: an artifact's signature and attestation arriving
// at once at two replicas admit it, once: whichever evidence commits last
// is evaluated with both, and a decision made on less is never stored
// over it.
func testReplicaEvidence(t *testing.T, rs replicas) {
	ctx := t.Context()
	rs[0].TrustCI()
	pipeline := rs[0].Principal("pipeline", nil, access.RolePublisher)
	for _, version := range []string{"1.4.2", "1.4.2-b", "1.4.2-c", "1.4.2-d"} {
		pushSigned(t, rs, pipeline, version)
		race(2, func(i int) {
			if _, _, err := rs.on(i+1).Catalog.AddEvidence(ctx, pipeline, evidence(t, version, i)); err != nil {
				t.Errorf("%s: evidence %d: %v", version, i, err)
			}
		})
		a, err := rs.on(0).Catalog.Artifact(ctx, relArtifact, version)
		if err != nil || a.State != catalog.StateAdmitted {
			t.Errorf("%s after both pieces of evidence: %s, %v; want admitted", version, a.State, err)
		}
		decided := 0
		for _, ev := range events(t, rs, relArtifact+":"+version) {
			if ev.Action == catalog.ActionAdmissionDecided {
				decided++
			}
		}
		if decided != 1 {
			t.Errorf("%s: %d admission decisions; want 1", version, decided)
		}
	}
}

const ociRepo = "apps/oci"

// ociManifests pushes a config and a layer into ociRepo and returns n
// image manifests over them, told apart by an annotation.
func ociManifests(t *testing.T, rs replicas, p access.Principal, n int) [][]byte {
	t.Helper()
	var descs []ocispec.Descriptor
	for _, b := range []struct {
		data      string
		mediaType string
	}{{`{"os":"linux"}`, ocispec.MediaTypeImageConfig}, {"layer bytes", ocispec.MediaTypeImageLayer}} {
		d := digest.FromString(b.data)
		if _, err := rs.on(0).Registry.PushBlob(t.Context(), p, ociRepo, d, strings.NewReader(b.data), int64(len(b.data))); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, ocispec.Descriptor{MediaType: b.mediaType, Digest: d, Size: int64(len(b.data))})
	}
	out := make([][]byte, n)
	for i := range out {
		b, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: descs[0], Layers: descs[1:], Annotations: map[string]string{"n": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func pushManifest(ctx context.Context, svc *releases.DML, p access.Principal, tag string, body []byte) error {
	_, err := svc.Registry.PushManifest(ctx, p, registry.PushManifestRequest{Repository: ociRepo, Reference: tag, ContentType: ocispec.MediaTypeImageManifest, Body: body})
	return err
}

// testReplicaTagMoves: moves of a quarantined tag race, through two
// replicas, the admission of what it points at, through a third. The
// admission holds only for the bytes it was decided on, and once it is
// stored the tag never moves: at the end the tag and its artifact agree,
// an admitted artifact is the first manifest, and no move is recorded
// after the admission.
func testReplicaTagMoves(t *testing.T, rs replicas) {
	ctx := t.Context()
	pipeline := rs[0].Principal("pipeline", nil, access.RolePublisher)
	bodies := ociManifests(t, rs, pipeline, 5)
	first := digest.FromBytes(bodies[0])
	for trial := range 4 {
		tag := fmt.Sprint("1.", trial)
		if err := pushManifest(ctx, rs.on(0), pipeline, tag, bodies[0]); err != nil {
			t.Fatal(err)
		}
		race(len(bodies), func(i int) {
			if i == 0 {
				// What catalog.Evaluate stores for an admission: only if
				// the artifact is still quarantined and still the bytes
				// decided on.
				_, err := rs[2].Meta.Catalog().SetAdmission(ctx, rs[2].Admin.Actor(), ociRepo, tag, func(cur catalog.Artifact) (catalog.Admission, audit.Change, error) {
					if cur.State != catalog.StateQuarantined || cur.Digest != first {
						return catalog.Admission{}, audit.Change{}, fmt.Errorf("%s is %s %s: %w", tag, cur.State, cur.Digest, errdef.ErrConflict)
					}
					return catalog.Admission{State: catalog.StateAdmitted, Evidence: []digest.Digest{}},
						audit.Change{Action: catalog.ActionAdmissionDecided, Details: json.RawMessage(`{"state":"admitted"}`)}, nil
				})
				if err != nil && !errors.Is(err, errdef.ErrConflict) {
					t.Errorf("%s: admission: %v", tag, err)
				}
				return
			}
			err := pushManifest(ctx, rs.on(i%2), pipeline, tag, bodies[i])
			if err != nil && !errors.Is(err, errdef.ErrConflict) && !errors.Is(err, registry.ErrImmutable) {
				t.Errorf("%s: move to manifest %d: %v", tag, i, err)
			}
		})
		a, err := rs.on(1).Catalog.Artifact(ctx, ociRepo, tag)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := rs[1].Meta.Manifests().Tag(ctx, ociRepo, tag)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Digest != a.Digest || (a.State == catalog.StateAdmitted && a.Digest != first) {
			t.Errorf("%s: tag at %s, artifact %s at %s; want them equal, and an admitted artifact at %s", tag, cur.Digest, a.State, a.Digest, first)
		}
		admitted := false
		for _, ev := range events(t, rs, ociRepo+":"+tag) {
			switch {
			case ev.Action == catalog.ActionAdmissionDecided:
				admitted = true
			case admitted && ev.Action == catalog.ActionArtifactPushed:
				t.Errorf("%s: moved after its admission: %s", tag, ev.Details)
			}
		}
		if admitted != (a.State == catalog.StateAdmitted) {
			t.Errorf("%s: %s, yet admission recorded: %v", tag, a.State, admitted)
		}
	}
}

// testReplicaNewVersionRaces: a new version claimed at once through
// several replicas — by a REST push and an OCI tag of other bytes, or by
// OCI tags of different manifests — gets one clean outcome per request:
// one REST-or-OCI winner and ErrVersionExists for the other; tags created
// or moved in turn, or refused as stale. Nothing fails otherwise, and the
// tag and its artifact agree.
func testReplicaNewVersion(t *testing.T, rs replicas) {
	ctx := t.Context()
	pipeline := rs[0].Principal("pipeline", nil, access.RolePublisher)
	bodies := ociManifests(t, rs, pipeline, 3)
	for trial := range 4 {
		version := fmt.Sprint("2.", trial)
		errs := make([]error, 2)
		race(2, func(i int) {
			if i == 0 {
				body := fmt.Appendf(nil, "REST bytes of %s", version)
				_, _, errs[0] = rs.on(0).Catalog.Push(ctx, pipeline, catalog.PushRequest{Name: ociRepo, Version: version, Size: int64(len(body)), Body: bytes.NewReader(body)})
				return
			}
			errs[1] = pushManifest(ctx, rs.on(1), pipeline, version, bodies[0])
		})
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, catalog.ErrVersionExists):
				t.Errorf("%s: %s push: %v; want success or ErrVersionExists", version, []string{"REST", "OCI"}[i], err)
			}
		}
		if won != 1 {
			t.Errorf("%s: %d of a REST and an OCI push of other bytes won; want 1", version, won)
		}

		tag := fmt.Sprint("3.", trial)
		race(len(bodies), func(i int) {
			err := pushManifest(ctx, rs.on(i), pipeline, tag, bodies[i])
			// ErrVersionExists: registry.Service.checkTagMove, before the
			// transaction, reads the tag (none yet) and then the version
			// (a racer's, just committed), and refuses what one process,
			// holding catalog.LockVersion, would have moved. A refusal,
			// never a wrong write; the domain's to tighten for replicas.
			if err != nil && !errors.Is(err, errdef.ErrConflict) && !errors.Is(err, catalog.ErrVersionExists) {
				t.Errorf("%s: manifest %d: %v; want success, ErrConflict or ErrVersionExists", tag, i, err)
			}
		})
		a, err := rs.on(2).Catalog.Artifact(ctx, ociRepo, tag)
		if err != nil {
			t.Fatal(err)
		}
		if cur, err := rs[2].Meta.Manifests().Tag(ctx, ociRepo, tag); err != nil || cur.Digest != a.Digest {
			t.Errorf("%s: tag %+v, %v; want it at its artifact's %s", tag, cur, err, a.Digest)
		}
	}
}

// testReplicaGC: gc on one replica collects unreferenced old blobs while
// another replica pushes the same bytes. Whichever way they interleave, a
// push either refers to stored bytes or fails asking to be sent again,
// and pushed again it succeeds: no artifact ever refers to a blob gc
// deleted.
func testReplicaGC(t *testing.T, rs replicas) {
	ctx := t.Context()
	pipeline := rs[0].Principal("pipeline", nil, access.RolePublisher)
	st := rs.on(0).Blobs.Store()
	root := st.Backend().(*fs.Backend).Root()
	old := time.Now().Add(-3 * time.Hour)
	const rounds = 6
	for round := range rounds {
		body := bytes.Repeat(fmt.Appendf(nil, "bytes gc and a push both want, round %d ", round), 50)
		d := digest.FromBytes(body)
		// Stored, referred to by nothing, three hours old: gc's to collect.
		if _, err := st.Ingest(ctx, bytes.NewReader(body), store.IngestOptions{Digest: d, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(store.BlobKey(d))), old, old); err != nil {
			t.Fatal(err)
		}
		version := fmt.Sprint("1.", round)
		race(2, func(i int) {
			if i == 0 {
				_, err := rs.on(0).Maintenance.GC(ctx, rs[0].Admin, blobs.GCOptions{Grace: time.Hour}, func(blobs.MaintenanceEvent[blobs.GCSummary]) error { return nil })
				if err != nil {
					t.Errorf("round %d: gc: %v", round, err)
				}
				return
			}
			for attempt := 0; ; attempt++ {
				_, _, err := rs.on(1).Catalog.Push(ctx, pipeline, catalog.PushRequest{Name: "app", Version: version, Digest: d, Size: int64(len(body)), Body: bytes.NewReader(body)})
				if err == nil {
					return
				}
				if attempt == 3 || !(errors.Is(err, errdef.ErrConflict) || errors.Is(err, blobs.ErrBlobCollecting)) {
					t.Errorf("round %d: push attempt %d: %v", round, attempt, err)
					return
				}
			}
		})
	}
	list, _, err := rs.on(2).Catalog.Artifacts(ctx, catalog.ArtifactFilter{Limit: rounds + 1})
	if err != nil || len(list) != rounds {
		t.Fatalf("%d artifacts, %v; want %d", len(list), err, rounds)
	}
	for _, a := range list {
		rc, err := rs.on(2).Blobs.Store().Open(ctx, a.Digest, 0, -1)
		if err != nil {
			t.Errorf("%s:%s refers to %s, which is not stored: %v", a.Name, a.Version, a.Digest, err)
			continue
		}
		got, err := digest.FromReader(rc)
		rc.Close()
		if err != nil || got != a.Digest {
			t.Errorf("%s:%s: stored bytes hash to %s (%v), want %s", a.Name, a.Version, got, err, a.Digest)
		}
	}
}

// testReplicaAuditAppend: many writers on every replica at once, of every
// kind — artifacts, tokens, trust keys, settings — append to one log
// (checkOneLog checks it).
func testReplicaAuditAppend(t *testing.T, rs replicas) {
	ctx := t.Context()
	pipeline := rs[0].Principal("pipeline", nil, access.RolePublisher)
	const writers = 30
	race(writers, func(i int) {
		svc := rs.on(i)
		var err error
		switch i % 3 {
		case 0:
			body := fmt.Appendf(nil, "artifact %d", i)
			_, _, err = svc.Catalog.Push(ctx, pipeline, catalog.PushRequest{Name: "audit/app", Version: fmt.Sprint("1.", i), Size: int64(len(body)), Body: bytes.NewReader(body)})
		case 1:
			_, err = svc.Access.IssueToken(ctx, rs[0].Admin, access.TokenRequest{Name: fmt.Sprint("token-", i), Roles: []access.Role{access.RoleAuditor}})
		case 2:
			_, err = svc.Releases.SetGateDefaults(ctx, rs[0].Admin, map[string]lifecycle.GateSetting{lifecycle.GatePlan: {Approvals: 1 + i%4}})
		}
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	})
}

// events reads every event about subject, oldest first, through rs[0].
func events(t *testing.T, rs replicas, subject string) []audit.Event {
	t.Helper()
	var out []audit.Event
	for _, e := range allEvents(t, rs[0]) {
		if e.Subject == subject {
			out = append(out, e)
		}
	}
	return out
}

func allEvents(t *testing.T, e *domaintest.Env) []audit.Event {
	t.Helper()
	var out []audit.Event
	var after int64
	for range 1000 { // bounded: a test makes far fewer events
		page, err := e.Meta.Audit().Events(t.Context(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
	t.Fatal("events did not end")
	return nil
}

// checkOneLog checks that the replicas serve one audit log: record i is
// event i in seq (commit) order, indexes run 0, 1, 2… without a gap, and
// every replica signs the same checkpoint over the same tree, the one the
// records rebuild.
func checkOneLog(t *testing.T, rs replicas) {
	t.Helper()
	evs := allEvents(t, rs[0])
	var want auditlog.Checkpoint
	for n, r := range rs {
		var tree auditlog.Tree
		i := 0
		err := r.Meta.Audit().AuditEntries(t.Context(), 0, 0, func(e audit.AuditEntry) error {
			rec, err := auditlog.Decode(e.Record)
			switch {
			case err != nil:
				return err
			case i >= len(evs):
				return fmt.Errorf("record %d beyond the %d events", e.Index, len(evs))
			case e.Index != int64(i) || rec.Index != int64(i) || rec.Action != evs[i].Action || rec.Subject != evs[i].Subject:
				return fmt.Errorf("record %d (index %d, %s %s) is not event %d (seq %d, %s %s)", i, e.Index, rec.Action, rec.Subject, i, evs[i].Seq, evs[i].Action, evs[i].Subject)
			}
			i++
			_, err = tree.Append(e.Record)
			return err
		})
		if err != nil || i != len(evs) {
			t.Fatalf("replica %d: %d records, %v; want one per event, %d", n, i, err, len(evs))
		}
		_, cp, err := r.DML.Audit.SignCheckpoint(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		root, err := tree.Root(tree.Size())
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != tree.Size() || (cp.Size > 0 && cp.Root != root) {
			t.Errorf("replica %d signs %d records with root %v; the records rebuild %d with %v", n, cp.Size, cp.Root, tree.Size(), root)
		}
		if n > 0 && cp != want {
			t.Errorf("replica %d signs %+v; replica 0 %+v", n, cp, want)
		}
		want = cp
	}
}
