package metadatatest

import (
	"errors"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
)

// person is a single sign-on identity, as an actor of its own session.
var person = access.Actor{Name: "pat@example.com", Issuer: "https://idp.example.com/", Subject: "user-42"}

func session(id string, roles ...access.Role) access.Token {
	tok := token(id, person.Name, roles...)
	tok.CreatedBy = person.Name
	tok.Issuer, tok.Subject = person.Issuer, person.Subject
	exp := t0.Add(8 * time.Hour)
	tok.ExpiresAt = &exp
	return tok
}

// testStartSession: a session is stored with its identity, found by hash
// and by identity, and its start is recorded with the identity in the
// event's actor (and so in the audit record).
func testStartSession(t *testing.T, m store) {
	tok := session("tok_s1", access.RoleApprover, access.RoleAuditor)
	actor := person
	actor.TokenID = tok.ID
	if err := m.StartSession(t.Context(), actor, tok, secretHash("dml_s1"), "corp", nil); err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	got, err := m.TokenByHash(t.Context(), secretHash("dml_s1"))
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	if got.Issuer != person.Issuer || got.Subject != person.Subject || !got.IsSession() {
		t.Errorf("TokenByHash = issuer %q subject %q; want %q %q", got.Issuer, got.Subject, person.Issuer, person.Subject)
	}
	list, err := m.Sessions(t.Context(), person.Issuer, person.Subject)
	if err != nil || len(list) != 1 || list[0].ID != tok.ID {
		t.Fatalf("Sessions = %+v, %v; want [%s]", list, err, tok.ID)
	}
	if other, err := m.Sessions(t.Context(), person.Issuer, "someone-else"); err != nil || len(other) != 0 {
		t.Errorf("Sessions(someone else) = %+v, %v; want none", other, err)
	}
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], access.ActionSessionStarted, tok.ID, actor, map[string]any{
		"name": person.Name, "provider": "corp", "issuer": person.Issuer, "subject": person.Subject,
		"roles": jsonList(access.RoleApprover, access.RoleAuditor), "environments": jsonList[string](),
		"expiresAt": tok.ExpiresAt.Format(time.RFC3339Nano), "ended": jsonList[string](),
	})
}

// testStartSessionEnds: a new session ends the listed sessions of the
// same person, in its transaction, one event each; a listed token of
// someone else, or one already revoked, is left alone.
func testStartSessionEnds(t *testing.T, m store) {
	first := session("tok_s1", access.RoleApprover)
	actor := person
	actor.TokenID = first.ID
	if err := m.StartSession(t.Context(), actor, first, secretHash("dml_s1"), "corp", nil); err != nil {
		t.Fatal(err)
	}
	machine := token("tok_ci", "ci", access.RolePublisher)
	mustCreateToken(t, m, machine, secretHash("dml_ci"))

	second := session("tok_s2", access.RoleAuditor)
	actor.TokenID = second.ID
	if err := m.StartSession(t.Context(), actor, second, secretHash("dml_s2"), "corp", []string{first.ID, machine.ID}); err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	for hash, revoked := range map[string]bool{"dml_s1": true, "dml_s2": false, "dml_ci": false} {
		got, err := m.TokenByHash(t.Context(), secretHash(hash))
		if err != nil {
			t.Fatal(err)
		}
		if (got.RevokedAt != nil) != revoked {
			t.Errorf("token %s revoked at %v; want revoked %v", got.ID, got.RevokedAt, revoked)
		}
	}
	evs := checkEventCount(t, m, 4)
	checkEvent(t, evs[2], access.ActionSessionStarted, second.ID, actor, nil)
	checkEvent(t, evs[3], access.ActionSessionEnded, first.ID, actor, map[string]any{
		"reason": "a sign-in no longer grants all of its roles and environments", "provider": "corp", "by": second.ID,
	})
}

func testStartSessionInvalid(t *testing.T, m store) {
	noIdentity := session("tok_x", access.RoleAuditor)
	noIdentity.Subject = ""
	noExpiry := session("tok_y", access.RoleAuditor)
	noExpiry.ExpiresAt = nil
	for name, tok := range map[string]access.Token{"no subject": noIdentity, "no expiry": noExpiry} {
		if err := m.StartSession(t.Context(), person, tok, secretHash("dml_"+tok.ID), "corp", nil); !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("StartSession(%s) = %v; want ErrInvalidInput", name, err)
		}
	}
	// A session is never created as a plain token (it would record
	// token.issued, and skip ending the person's other sessions).
	if err := m.CreateToken(t.Context(), admin, session("tok_z", access.RoleAuditor), secretHash("dml_z")); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("CreateToken(session) = %v; want ErrInvalidInput", err)
	}
	checkEventCount(t, m, 0)
}

func testRecordRefusedSignIn(t *testing.T, m store) {
	refusal := access.SignInRefusal{Provider: "corp", Claim: "groups", Values: []string{"interns"}}
	if err := m.RecordRefusedSignIn(t.Context(), person, refusal); err != nil {
		t.Fatalf("RecordRefusedSignIn: %v", err)
	}
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], access.ActionSignInRefused, person.Issuer+"#"+person.Subject, person, map[string]any{
		"provider": "corp", "claim": "groups", "values": jsonList("interns"),
	})
	if n, err := m.CountTokens(t.Context()); err != nil || n != 0 {
		t.Errorf("CountTokens = %d, %v; want 0", n, err)
	}
}
