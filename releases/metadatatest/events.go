package metadatatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
)

// testEventsOnePerChange runs successes, no-ops and failures of every
// mutating method, and checks that exactly the successes were recorded, in
// order, in the events and in the audit log.
func testEventsOnePerChange(t *testing.T, m store) {
	ctx := t.Context()
	a1 := artifact("payments/api", "1.0.0", "a1")
	a2 := artifact("payments/api", "1.1.0", "a2")
	tok := token("tok_1", "one", access.RolePublisher)
	invalid := a2
	invalid.Digest = "sha256:nope"
	key := trustKey("ci")
	sig := signature(a1, "sig", key.ID)
	rel := release("payments-march", a1)
	change := lifecycle.ReleaseChange{Action: lifecycle.ActionReleasePlanSet, Details: json.RawMessage(`{"risk":"low"}`)}
	current := func() lifecycle.Release {
		r, err := m.GetRelease(ctx, rel.Name)
		if err != nil {
			t.Fatalf("GetRelease: %v", err)
		}
		return r
	}

	steps := []struct {
		name   string
		do     func() error
		record bool
	}{
		{"push", func() error { _, _, err := m.CreateArtifact(ctx, publisher, a1); return err }, true},
		{"push same bytes", func() error { _, _, err := m.CreateArtifact(ctx, publisher, a1); return err }, false},
		{"push other bytes", func() error {
			_, _, err := m.CreateArtifact(ctx, publisher, artifact(a1.Name, a1.Version, "other"))
			return ignore(err, catalog.ErrVersionExists)
		}, false},
		{"push invalid", func() error {
			_, _, err := m.CreateArtifact(ctx, publisher, invalid)
			return ignore(err, errdef.ErrInvalidInput)
		}, false},
		{"push another version", func() error { _, _, err := m.CreateArtifact(ctx, publisher, a2); return err }, true},
		{"issue token", func() error { return m.CreateToken(ctx, admin, tok, secretHash("s1")) }, true},
		{"issue duplicate token", func() error {
			return ignore(m.CreateToken(ctx, admin, tok, secretHash("s2")), errdef.ErrConflict)
		}, false},
		{"revoke", func() error { return m.RevokeToken(ctx, admin, tok.ID) }, true},
		{"revoke again", func() error { return m.RevokeToken(ctx, admin, tok.ID) }, false},
		{"revoke unknown", func() error { return ignore(m.RevokeToken(ctx, admin, "tok_unknown"), errdef.ErrNotFound) }, false},

		{"add key", func() error { return m.AddTrustKey(ctx, admin, key) }, true},
		{"add key with a taken id", func() error { return ignore(m.AddTrustKey(ctx, admin, key), errdef.ErrConflict) }, false},
		{"add invalid key", func() error {
			return ignore(m.AddTrustKey(ctx, admin, trust.TrustKey{ID: "bare"}), errdef.ErrInvalidInput)
		}, false},
		{"revoke key", func() error { return m.RevokeTrustKey(ctx, admin, key.ID) }, true},
		{"revoke key again", func() error { return m.RevokeTrustKey(ctx, admin, key.ID) }, false},
		{"revoke unknown key", func() error { return ignore(m.RevokeTrustKey(ctx, admin, "unknown"), errdef.ErrNotFound) }, false},

		{"set policy", func() error { _, err := m.SetTrustPolicy(ctx, admin, json.RawMessage(`{"rules":[]}`)); return err }, true},
		{"set invalid policy", func() error {
			_, err := m.SetTrustPolicy(ctx, admin, json.RawMessage(`{`))
			return ignore(err, errdef.ErrInvalidInput)
		}, false},
		{"set same policy again", func() error { _, err := m.SetTrustPolicy(ctx, admin, json.RawMessage(`{"rules":[]}`)); return err }, true},

		{"add evidence", func() error { _, err := m.AddEvidence(ctx, publisher, sig); return err }, true},
		{"add same evidence", func() error { _, err := m.AddEvidence(ctx, publisher, sig); return err }, false},
		{"add evidence to unknown version", func() error {
			e := sig
			e.ArtifactVersion = "9.9.9"
			_, err := m.AddEvidence(ctx, publisher, e)
			return ignore(err, errdef.ErrNotFound)
		}, false},
		{"add invalid evidence", func() error {
			e := sig
			e.Kind = "sbom"
			_, err := m.AddEvidence(ctx, publisher, e)
			return ignore(err, errdef.ErrInvalidInput)
		}, false},

		{"keep quarantined", func() error {
			_, err := m.SetAdmission(ctx, admin, a1.Name, a1.Version, catalog.StateQuarantined, pending("attestation"))
			return err
		}, true},
		{"admit", func() error {
			_, err := m.SetAdmission(ctx, admin, a1.Name, a1.Version, catalog.StateQuarantined, admitted(sig.Digest))
			return err
		}, true},
		{"admit from a stale state", func() error {
			_, err := m.SetAdmission(ctx, admin, a1.Name, a1.Version, catalog.StateQuarantined, admitted(sig.Digest))
			return ignore(err, errdef.ErrConflict)
		}, false},
		{"admit unknown", func() error {
			_, err := m.SetAdmission(ctx, admin, a1.Name, "9.9.9", catalog.StateQuarantined, admitted())
			return ignore(err, errdef.ErrNotFound)
		}, false},
		{"admit invalid", func() error {
			_, err := m.SetAdmission(ctx, admin, a2.Name, a2.Version, "pending", admitted())
			return ignore(err, errdef.ErrInvalidInput)
		}, false},

		{"create release", func() error { _, err := m.CreateRelease(ctx, manager, rel); return err }, true},
		{"create release with a taken name", func() error {
			_, err := m.CreateRelease(ctx, manager, rel)
			return ignore(err, errdef.ErrConflict)
		}, false},
		{"create invalid release", func() error {
			_, err := m.CreateRelease(ctx, manager, release(""))
			return ignore(err, errdef.ErrInvalidInput)
		}, false},
		{"update release", func() error { _, err := m.UpdateRelease(ctx, manager, current(), change); return err }, true},
		{"update release from a stale revision", func() error {
			stale := current()
			stale.Revision--
			_, err := m.UpdateRelease(ctx, manager, stale, change)
			return ignore(err, errdef.ErrConflict)
		}, false},
		{"update unknown release", func() error {
			unknown := current()
			unknown.Name = "payments-april"
			_, err := m.UpdateRelease(ctx, manager, unknown, change)
			return ignore(err, errdef.ErrNotFound)
		}, false},
		{"update release without an action", func() error {
			_, err := m.UpdateRelease(ctx, manager, current(), lifecycle.ReleaseChange{})
			return ignore(err, errdef.ErrInvalidInput)
		}, false},
		{"update release with invalid details", func() error {
			_, err := m.UpdateRelease(ctx, manager, current(), lifecycle.ReleaseChange{Action: change.Action, Details: json.RawMessage(`{`)})
			return ignore(err, errdef.ErrInvalidInput)
		}, false},

		{"retire", func() error { _, err := m.RetireArtifact(ctx, admin, a2.Name, a2.Version); return err }, true},
		{"retire again", func() error { _, err := m.RetireArtifact(ctx, admin, a2.Name, a2.Version); return err }, false},
		{"retire unknown", func() error {
			_, err := m.RetireArtifact(ctx, admin, a2.Name, "9.9.9")
			return ignore(err, errdef.ErrNotFound)
		}, false},
	}
	recorded := 0
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.record {
			recorded++
		}
		evs := allEvents(t, m)
		if len(evs) != recorded {
			t.Fatalf("after %q: %d events; want %d: %s", s.name, len(evs), recorded, describeEvents(evs))
		}
		// One record per event, appended with it, and none for a no-op
		// or a failure.
		checkAuditLog(t, m, evs)
	}

	evs := allEvents(t, m)
	checkEvent(t, evs[0], catalog.ActionArtifactPushed, "payments/api:1.0.0", publisher, nil)
	checkEvent(t, evs[1], catalog.ActionArtifactPushed, "payments/api:1.1.0", publisher, nil)
	checkEvent(t, evs[2], access.ActionTokenIssued, tok.ID, admin, nil)
	checkEvent(t, evs[3], access.ActionTokenRevoked, tok.ID, admin, nil)
	checkEvent(t, evs[4], trust.ActionTrustKeyAdded, key.ID, admin, nil)
	checkEvent(t, evs[5], trust.ActionTrustKeyRevoked, key.ID, admin, nil)
	checkEvent(t, evs[6], trust.ActionTrustPolicySet, "policy", admin, nil)
	checkEvent(t, evs[7], trust.ActionTrustPolicySet, "policy", admin, nil)
	checkEvent(t, evs[8], catalog.ActionEvidenceAdded, "payments/api:1.0.0", publisher, nil)
	checkEvent(t, evs[9], catalog.ActionAdmissionDecided, "payments/api:1.0.0", admin, nil)
	checkEvent(t, evs[10], catalog.ActionAdmissionDecided, "payments/api:1.0.0", admin, nil)
	checkEvent(t, evs[11], lifecycle.ActionReleaseCreated, "release:payments-march", manager, nil)
	checkEvent(t, evs[12], lifecycle.ActionReleasePlanSet, "release:payments-march", manager, nil)
	checkEvent(t, evs[13], catalog.ActionArtifactRetired, "payments/api:1.1.0", admin, nil)
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Errorf("seq %d follows %d; want increasing", evs[i].Seq, evs[i-1].Seq)
		}
	}
}

// ignore returns nil if err is the expected failure, so that a step of a
// table can say "this fails with want" and still stop on anything else.
func ignore(err, want error) error {
	if err == nil {
		return fmt.Errorf("succeeded; want %v", want)
	}
	if errors.Is(err, want) {
		return nil
	}
	return err
}

func testEventsPaging(t *testing.T, m store) {
	ctx := t.Context()
	for _, v := range []string{"1", "2", "3", "4", "5"} {
		mustCreate(t, m, artifact("app", v, v))
	}
	all := checkEventCount(t, m, 5)

	tests := []struct {
		name  string
		after int64
		limit int
		want  []audit.Event
	}{
		{"from the start", 0, 0, all},
		{"before the start", -1, 0, all},
		{"limit 1", 0, 1, all[:1]},
		{"limit 2 after the first", all[0].Seq, 2, all[1:3]},
		{"after the middle", all[2].Seq, 0, all[3:]},
		{"after the last", all[4].Seq, 0, nil},
		{"limit above maximum", 0, 1 << 20, all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Events(ctx, tc.after, tc.limit)
			if err != nil {
				t.Fatalf("Events(%d, %d): %v", tc.after, tc.limit, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Events(%d, %d) = %s; want %s", tc.after, tc.limit, describeEvents(got), describeEvents(tc.want))
			}
			for i := range got {
				if got[i].Seq != tc.want[i].Seq || got[i].Subject != tc.want[i].Subject {
					t.Errorf("event %d = seq %d %q; want seq %d %q", i, got[i].Seq, got[i].Subject, tc.want[i].Seq, tc.want[i].Subject)
				}
			}
		})
	}
	t.Run("negative limit", func(t *testing.T) {
		_, err := m.Events(ctx, 0, -1)
		checkErr(t, "Events(0, -1)", err, errdef.ErrInvalidInput)
	})
}

// testCancelledContext checks that a write whose context is already done
// fails as such and leaves nothing behind.
func testCancelledContext(t *testing.T, m store) {
	tok := token("tok_live", "live", access.RoleAdmin)
	mustCreateToken(t, m, tok, secretHash("live"))
	key := trustKey("live")
	mustAddKey(t, m, key)
	live := mustCreate(t, m, artifact("payments/api", "0.9.0", "live"))
	liveRelease := mustCreateRelease(t, m, release("payments-march", live))

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	a := artifact("payments/api", "1.0.0", "x")
	_, created, err := m.CreateArtifact(cancelled, publisher, a)
	checkErr(t, "CreateArtifact", err, context.Canceled)
	if created {
		t.Error("created = true with a cancelled context")
	}
	err = m.CreateToken(cancelled, admin, token("tok_2", "two", access.RoleAdmin), secretHash("two"))
	checkErr(t, "CreateToken", err, context.Canceled)
	err = m.RevokeToken(cancelled, admin, tok.ID)
	checkErr(t, "RevokeToken", err, context.Canceled)
	err = m.AddTrustKey(cancelled, admin, trustKey("new"))
	checkErr(t, "AddTrustKey", err, context.Canceled)
	err = m.RevokeTrustKey(cancelled, admin, key.ID)
	checkErr(t, "RevokeTrustKey", err, context.Canceled)
	_, err = m.SetTrustPolicy(cancelled, admin, json.RawMessage(`{}`))
	checkErr(t, "SetTrustPolicy", err, context.Canceled)
	_, err = m.AddEvidence(cancelled, publisher, signature(live, "sig", key.ID))
	checkErr(t, "AddEvidence", err, context.Canceled)
	_, err = m.SetAdmission(cancelled, admin, live.Name, live.Version, catalog.StateQuarantined, admitted())
	checkErr(t, "SetAdmission", err, context.Canceled)
	_, err = m.CreateRelease(cancelled, manager, release("payments-april", live))
	checkErr(t, "CreateRelease", err, context.Canceled)
	closed := liveRelease
	closed.State = lifecycle.ReleaseClosed
	closed.Artifacts = attached()
	_, err = m.UpdateRelease(cancelled, manager, closed, lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseClosed})
	checkErr(t, "UpdateRelease", err, context.Canceled)
	_, err = m.RetireArtifact(cancelled, admin, live.Name, live.Version)
	checkErr(t, "RetireArtifact", err, context.Canceled)

	if _, err := m.GetArtifact(t.Context(), a.Name, a.Version); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("GetArtifact after a cancelled create: %v; want ErrNotFound", err)
	}
	if got, err := m.TokenByHash(t.Context(), secretHash("live")); err != nil || got.RevokedAt != nil {
		t.Errorf("token after a cancelled revoke = %+v, %v; want not revoked", got, err)
	}
	if n, err := m.CountTokens(t.Context()); err != nil || n != 1 {
		t.Errorf("CountTokens = %d, %v; want 1", n, err)
	}
	checkTrustKeys(t, m, key)
	_, err = m.TrustPolicy(t.Context())
	checkErr(t, "TrustPolicy after a cancelled set", err, errdef.ErrNotFound)
	checkEvidence(t, m, live.Name, live.Version)
	checkStored(t, m, live) // neither admitted nor retired
	_, err = m.GetRelease(t.Context(), "payments-april")
	checkErr(t, "GetRelease after a cancelled create", err, errdef.ErrNotFound)
	checkRelease(t, "GetRelease after a cancelled update", mustGetRelease(t, m, liveRelease.Name), liveRelease)
	checkContaining(t, m, live.Name, live.Version, liveRelease.Name)
	checkEventCount(t, m, 4)
}
