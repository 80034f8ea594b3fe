package metadatatest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"golang.org/x/mod/sumdb/tlog"
)

func testDataSurvivesReopen(t *testing.T, open func(t *testing.T) releases.Metadata) {
	ctx := t.Context()
	m1, close1 := openStore(t, open)
	a1 := mustCreate(t, m1, artifact("payments/api", "1.0.0", "a1"))
	a2 := artifact("payments/web", "2.0.0", "a2")
	a2.State = catalog.StateAdmitted
	a2 = mustCreate(t, m1, a2)
	revoked := token("tok_old", "old", access.RolePublisher)
	live := token("tok_new", "new", access.RoleDeployer)
	live.Environments = []string{"prod"}
	mustCreateToken(t, m1, revoked, secretHash("old"))
	mustCreateToken(t, m1, live, secretHash("new"))
	if err := m1.RevokeToken(ctx, admin, revoked.ID); err != nil {
		t.Fatal(err)
	}
	revokedBefore, err := m1.TokenByHash(ctx, secretHash("old"))
	if err != nil {
		t.Fatal(err)
	}
	mustAddKey(t, m1, trustKey("ci"))
	mustAddKey(t, m1, trustKey("old-key"))
	if err := m1.RevokeTrustKey(ctx, admin, "old-key"); err != nil {
		t.Fatal(err)
	}
	keysBefore := trustKeys(t, m1)
	policy := mustSetPolicy(t, m1, "{\n  \"rules\": []\n}")
	att := attestation(a1, "att", "ci", predicateTestResult, `{"result": "PASSED"}`)
	sig := signature(a1, "sig", "ci")
	sig.CreatedAt = t0.Add(time.Second)
	mustAddEvidence(t, m1, att)
	mustAddEvidence(t, m1, sig)
	a1 = mustSetAdmission(t, m1, a1, catalog.StateQuarantined, admitted(att.Digest, sig.Digest))
	mustCreateRelease(t, m1, fullRelease("payments-march", time.UTC, a1, a2))
	mustCreateRelease(t, m1, release("payments-april", a1))
	rel := mustUpdateRelease(t, m1, "payments-march", lifecycle.ActionReleaseClosed, `{"outcome": "successful"}`, func(r *lifecycle.Release) {
		r.State = lifecycle.ReleaseClosed
	})
	a2 = mustRetire(t, m1, a2)
	before := allEvents(t, m1)
	logBefore := checkAuditLog(t, m1, before)
	rootBefore := treeHash(t, int64(len(logBefore)), m1.AuditHashes(ctx))
	close1()

	m2, close2 := openStore(t, open)
	list, _, err := m2.ListArtifacts(ctx, catalog.ArtifactFilter{})
	if err != nil || !slices.EqualFunc(list, []catalog.Artifact{a1, a2}, sameArtifact) {
		t.Errorf("ListArtifacts after reopen = %s, %v; want %s", refs(list), err, refs([]catalog.Artifact{a1, a2}))
	}
	got, err := m2.TokenByHash(ctx, secretHash("old"))
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, "revoked token after reopen", got, revokedBefore)
	got, err = m2.TokenByHash(ctx, secretHash("new"))
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, "live token after reopen", got, live)
	checkArtifact(t, "admitted artifact after reopen", mustGet(t, m2, a1.Name, a1.Version), a1)
	checkTrustKeys(t, m2, keysBefore...)
	cur, err := m2.TrustPolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkPolicy(t, "TrustPolicy after reopen", cur, policy)
	checkEvidence(t, m2, a1.Name, a1.Version, att, sig)
	checkRelease(t, "GetRelease after reopen", mustGetRelease(t, m2, rel.Name), rel)
	checkContaining(t, m2, a1.Name, a1.Version, "payments-april", "payments-march")
	checkContaining(t, m2, a2.Name, a2.Version, "payments-march")
	if page, _, err := m2.ListReleases(ctx, lifecycle.ReleaseFilter{State: lifecycle.ReleaseClosed}); err != nil || releaseNames(page) != "[payments-march]" {
		t.Errorf("closed releases after reopen = %s, %v; want [payments-march]", releaseNames(page), err)
	}

	after := allEvents(t, m2)
	if len(after) != len(before) {
		t.Fatalf("%d events after reopen; want %d", len(after), len(before))
	}
	for i := range after {
		b, a := before[i], after[i]
		// Byte-equal details: the audit log hashes what was recorded.
		if a.Seq != b.Seq || !a.Time.Equal(b.Time) || a.Actor != b.Actor || a.Action != b.Action ||
			a.Subject != b.Subject || !bytes.Equal(a.Details, b.Details) {
			t.Errorf("event %d after reopen = %+v; want %+v", i, a, b)
		}
	}

	if logAfter := checkAuditLog(t, m2, after); !slices.EqualFunc(logAfter, logBefore, sameEntry) {
		t.Errorf("audit log after reopen = %s; want %s as before", entryIndexes(logAfter), entryIndexes(logBefore))
	}
	if root := treeHash(t, int64(len(logBefore)), m2.AuditHashes(ctx)); root != rootBefore {
		t.Errorf("audit root after reopen = %v; want %v", root, rootBefore)
	}

	// The reopened store still enforces what it stored.
	if _, created, err := m2.CreateArtifact(ctx, publisher, artifact("payments/api", "1.0.0", "a1")); err != nil || created {
		t.Errorf("re-push after reopen = created %v, %v; want an idempotent no-op", created, err)
	}
	if _, _, err := m2.CreateArtifact(ctx, publisher, artifact("payments/api", "1.0.0", "changed")); !errors.Is(err, catalog.ErrVersionExists) {
		t.Errorf("conflicting push after reopen: %v; want ErrVersionExists", err)
	}
	checkErr(t, "AddTrustKey with a taken id after reopen", m2.AddTrustKey(ctx, admin, trustKey("old-key")), errdef.ErrConflict)
	if created, err := m2.AddEvidence(ctx, publisher, sig); err != nil || created {
		t.Errorf("re-adding evidence after reopen = created %v, %v; want an idempotent no-op", created, err)
	}
	_, err = m2.SetAdmission(ctx, admin, a1.Name, a1.Version, catalog.StateQuarantined, pending())
	checkErr(t, "SetAdmission from a stale state after reopen", err, errdef.ErrConflict)
	_, err = m2.CreateRelease(ctx, manager, release(rel.Name))
	checkErr(t, "CreateRelease with a taken name after reopen", err, errdef.ErrConflict)
	stale := rel
	stale.Revision--
	_, err = m2.UpdateRelease(ctx, manager, stale, lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseCancelled})
	checkErr(t, "UpdateRelease from a stale revision after reopen", err, errdef.ErrConflict)
	if again := mustRetire(t, m2, a2); !sameArtifact(again, a2) {
		t.Errorf("retiring again after reopen = %+v; want %+v unchanged", again, a2)
	}
	// Versions continue where they were.
	if p := mustSetPolicy(t, m2, `{}`); p.Version != policy.Version+1 {
		t.Errorf("policy version after reopen = %d; want %d", p.Version, policy.Version+1)
	}
	mustCreate(t, m2, artifact("payments/api", "1.1.0", "a3"))
	// Revisions continue where they were.
	rel = mustUpdateRelease(t, m2, rel.Name, lifecycle.ActionReleaseReview, "", func(r *lifecycle.Release) { r.ReviewDigest = "" })
	if rel.Revision != 3 {
		t.Errorf("revision after reopen = %d; want 3", rel.Revision)
	}
	evs := allEvents(t, m2)
	if last := evs[len(evs)-1]; last.Seq <= before[len(before)-1].Seq {
		t.Errorf("new event seq %d after reopen; want above %d", last.Seq, before[len(before)-1].Seq)
	}
	close2()

	m3, _ := openStore(t, open)
	if n, err := m3.CountTokens(ctx); err != nil || n != 2 {
		t.Errorf("CountTokens after second reopen = %d, %v; want 2", n, err)
	}
	checkEventCount(t, m3, len(before)+3) // and the log, record for record
	// The log after the reopens extends the one before them.
	hashes := m3.AuditHashes(ctx)
	size := int64(len(before) + 3)
	proof, err := tlog.ProveTree(size, int64(len(before)), hashes)
	if err != nil {
		t.Fatalf("ProveTree(%d, %d): %v", size, len(before), err)
	}
	if err := tlog.CheckTree(proof, size, treeHash(t, size, hashes), int64(len(before)), rootBefore); err != nil {
		t.Errorf("audit log after reopens does not extend the one before: %v", err)
	}
	if _, err := m3.TrustPolicy(ctx); err != nil {
		t.Errorf("TrustPolicy after second reopen: %v", err)
	}
	checkRelease(t, "GetRelease after second reopen", mustGetRelease(t, m3, rel.Name), rel)
}

func mustGet(t *testing.T, m store, name, version string) catalog.Artifact {
	t.Helper()
	a, err := m.GetArtifact(t.Context(), name, version)
	if err != nil {
		t.Fatalf("GetArtifact(%s:%s): %v", name, version, err)
	}
	return a
}

func testEmptyReopens(t *testing.T, open func(t *testing.T) releases.Metadata) {
	_, close1 := openStore(t, open)
	close1()
	m2, _ := openStore(t, open)
	if err := m2.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if n, err := m2.CountTokens(t.Context()); err != nil || n != 0 {
		t.Errorf("CountTokens = %d, %v; want 0", n, err)
	}
	checkEventCount(t, m2, 0)
	mustCreate(t, m2, artifact("app", "1", "x"))
	checkEventCount(t, m2, 1)
}
