package metadatatest

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
)

func testCreateToken(t *testing.T, m store) {
	tok := token("tok_deploy", "deployer-prod", access.RoleDeployer, access.RoleAuditor)
	tok.Environments = []string{"prod", "staging"}
	hash := secretHash("dml_secret-one")
	mustCreateToken(t, m, tok, hash)

	got, err := m.TokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	checkToken(t, "TokenByHash", got, tok)
	checkUTC(t, "CreatedAt", got.CreatedAt)

	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], access.ActionTokenIssued, tok.ID, admin, map[string]any{
		"name":         tok.Name,
		"roles":        jsonList(tok.Roles...),
		"environments": jsonList(tok.Environments...),
	})
	// The hash is as good as the secret to anyone holding the audit log.
	details := string(evs[0].Details)
	for _, enc := range []string{
		hex.EncodeToString(hash),
		strings.ToUpper(hex.EncodeToString(hash)),
		base64.StdEncoding.EncodeToString(hash),
		base64.RawURLEncoding.EncodeToString(hash),
	} {
		if strings.Contains(details, enc) {
			t.Errorf("token.issued details %s contain the secret hash", details)
		}
	}
}

// testCreateRecoveryToken: an admin token issued on the server's host
// authenticates like any other and is recorded as token.recovered, with
// the host user and host, never the hash.
func testCreateRecoveryToken(t *testing.T, m store) {
	tok := token("tok_recovered", access.RecoveryTokenName, access.RoleAdmin)
	hash := secretHash("dml_recovered-secret")
	actor := access.Actor{Name: "root@dml-host"}
	if err := m.CreateRecoveryToken(t.Context(), actor, tok, hash, access.Recovery{HostUser: "root", Host: "dml-host"}); err != nil {
		t.Fatalf("CreateRecoveryToken: %v", err)
	}
	got, err := m.TokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	checkToken(t, "TokenByHash", got, tok)
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], access.ActionTokenRecovered, tok.ID, actor, map[string]any{
		"name":     tok.Name,
		"roles":    jsonList(access.RoleAdmin),
		"hostUser": "root",
		"host":     "dml-host",
	})
	if strings.Contains(string(evs[0].Details), hex.EncodeToString(hash)) {
		t.Errorf("token.recovered details %s contain the secret hash", evs[0].Details)
	}
}

func testCreateTokenDefaults(t *testing.T, m store) {
	tok := token("tok_admin2", "bootstrap-admin", access.RoleAdmin)
	tok.Environments = nil
	tok.CreatedAt = time.Time{}
	hash := secretHash("dml_secret-two")
	before := time.Now()
	mustCreateToken(t, m, tok, hash)

	got, err := m.TokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	checkUTC(t, "CreatedAt", got.CreatedAt)
	if d := got.CreatedAt.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("CreatedAt = %v; want about %v", got.CreatedAt, before)
	}
	if len(got.Environments) != 0 || got.RevokedAt != nil {
		t.Errorf("TokenByHash = %+v; want no environments, not revoked", got)
	}
}

func testCreateTokenInvalid(t *testing.T, m store) {
	revoked := t0
	tests := []struct {
		name   string
		mutate func(tok *access.Token, hash *[]byte)
	}{
		{"empty id", func(tok *access.Token, _ *[]byte) { tok.ID = "" }},
		{"no hash", func(_ *access.Token, hash *[]byte) { *hash = nil }},
		{"short hash", func(_ *access.Token, hash *[]byte) { *hash = (*hash)[:31] }},
		{"hex text instead of hash", func(_ *access.Token, hash *[]byte) { *hash = []byte(hex.EncodeToString(*hash)) }},
		{"unknown role", func(tok *access.Token, _ *[]byte) { tok.Roles = []access.Role{access.RoleAdmin, "root"} }},
		{"created revoked", func(tok *access.Token, _ *[]byte) { tok.RevokedAt = &revoked }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := token("tok_x", "x", access.RoleAdmin)
			hash := secretHash("dml_secret-x")
			tc.mutate(&tok, &hash)
			err := m.CreateToken(t.Context(), admin, tok, hash)
			checkErr(t, "CreateToken", err, errdef.ErrInvalidInput)
		})
	}
	if n, err := m.CountTokens(t.Context()); err != nil || n != 0 {
		t.Errorf("CountTokens = %d, %v; want 0", n, err)
	}
	checkEventCount(t, m, 0)
}

func testCreateTokenDuplicate(t *testing.T, m store) {
	tok := token("tok_1", "one", access.RolePublisher)
	hash := secretHash("dml_secret-1")
	mustCreateToken(t, m, tok, hash)

	tests := []struct {
		name string
		tok  access.Token
		hash []byte
	}{
		{"same id", token("tok_1", "other", access.RoleAdmin), secretHash("dml_secret-2")},
		{"same secret", token("tok_2", "other", access.RoleAdmin), hash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := m.CreateToken(t.Context(), admin, tc.tok, tc.hash)
			checkErr(t, "CreateToken", err, errdef.ErrConflict)
		})
	}
	got, err := m.TokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	checkToken(t, "token after duplicates", got, tok)
	if n, err := m.CountTokens(t.Context()); err != nil || n != 1 {
		t.Errorf("CountTokens = %d, %v; want 1", n, err)
	}
	checkEventCount(t, m, 1)
}

func testTokenByHashNotFound(t *testing.T, m store) {
	mustCreateToken(t, m, token("tok_1", "one", access.RoleAdmin), secretHash("dml_known"))
	tests := []struct {
		name string
		hash []byte
	}{
		{"unknown", secretHash("dml_unknown")},
		{"nil", nil},
		{"empty", []byte{}},
		{"prefix of a known hash", secretHash("dml_known")[:16]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.TokenByHash(t.Context(), tc.hash)
			checkErr(t, "TokenByHash", err, errdef.ErrNotFound)
		})
	}
}

func testRevokeToken(t *testing.T, m store) {
	tok := token("tok_1", "one", access.RolePublisher)
	hash := secretHash("dml_secret-1")
	mustCreateToken(t, m, tok, hash)

	if err := m.RevokeToken(t.Context(), admin, tok.ID); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	got, err := m.TokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("TokenByHash of a revoked token: %v", err)
	}
	if got.RevokedAt == nil {
		t.Fatal("RevokedAt = nil after RevokeToken")
	}
	checkUTC(t, "RevokedAt", *got.RevokedAt)
	revokedAt := *got.RevokedAt
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], access.ActionTokenRevoked, tok.ID, admin, nil)

	t.Run("again", func(t *testing.T) {
		if err := m.RevokeToken(t.Context(), publisher, tok.ID); err != nil {
			t.Fatalf("RevokeToken of a revoked token: %v; want nil", err)
		}
		got, err := m.TokenByHash(t.Context(), hash)
		if err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt) {
			t.Errorf("after revoking twice: %+v, %v; want RevokedAt still %v", got, err, revokedAt)
		}
		checkEventCount(t, m, 2)
	})
	t.Run("unknown", func(t *testing.T) {
		for _, id := range []string{"tok_unknown", ""} {
			err := m.RevokeToken(t.Context(), admin, id)
			checkErr(t, "RevokeToken("+id+")", err, errdef.ErrNotFound)
		}
		checkEventCount(t, m, 2)
	})
}

func testCountTokens(t *testing.T, m store) {
	count := func(want int) {
		t.Helper()
		if n, err := m.CountTokens(t.Context()); err != nil || n != want {
			t.Fatalf("CountTokens = %d, %v; want %d", n, err, want)
		}
	}
	count(0)
	for _, id := range []string{"tok_1", "tok_2", "tok_3"} {
		mustCreateToken(t, m, token(id, "n", access.RoleAuditor), secretHash(id))
	}
	count(3)
	if err := m.RevokeToken(t.Context(), admin, "tok_2"); err != nil {
		t.Fatal(err)
	}
	count(3) // ever issued, revoked or not
}

func testTokenExpiry(t *testing.T, m store) {
	tok := token("tok_exp", "short-lived", access.RolePublisher)
	expires := t0.Add(720 * time.Hour)
	tok.ExpiresAt = &expires
	hash := secretHash("dml_expiring")
	mustCreateToken(t, m, tok, hash)

	got, err := m.TokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	checkToken(t, "TokenByHash", got, tok)
	checkUTC(t, "ExpiresAt", *got.ExpiresAt)
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], access.ActionTokenIssued, tok.ID, admin, map[string]any{
		"name":         tok.Name,
		"roles":        jsonList(tok.Roles...),
		"environments": jsonList[string](),
		"expiresAt":    expires.Format(time.RFC3339Nano),
	})
}

func testTokenExpiryInvalid(t *testing.T, m store) {
	used := t0.Add(time.Hour)
	tests := []struct {
		name   string
		mutate func(tok *access.Token)
	}{
		{"expires at creation", func(tok *access.Token) { at := tok.CreatedAt; tok.ExpiresAt = &at }},
		{"expires before creation", func(tok *access.Token) { at := tok.CreatedAt.Add(-time.Second); tok.ExpiresAt = &at }},
		{"created used", func(tok *access.Token) { tok.LastUsedAt = &used }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := token("tok_x", "x", access.RoleAdmin)
			tc.mutate(&tok)
			err := m.CreateToken(t.Context(), admin, tok, secretHash("dml_x"))
			checkErr(t, "CreateToken", err, errdef.ErrInvalidInput)
		})
	}
	checkEventCount(t, m, 0)
}

func testListTokens(t *testing.T, m store) {
	list, err := m.ListTokens(t.Context())
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListTokens of an empty store = %v, %v; want [], nil", list, err)
	}
	// Created out of order, one revoked, one expiring.
	later := token("tok_b", "later", access.RoleAuditor)
	later.CreatedAt = t0.Add(time.Minute)
	sameTimeHigherID := token("tok_c", "same-time", access.RoleApprover)
	first := token("tok_a", "first", access.RoleDeployer)
	first.Environments = []string{"prod"}
	expires := t0.Add(time.Hour)
	first.ExpiresAt = &expires
	for i, tok := range []access.Token{later, sameTimeHigherID, first} {
		mustCreateToken(t, m, tok, secretHash(tok.ID+string(rune('0'+i))))
	}
	if err := m.RevokeToken(t.Context(), admin, later.ID); err != nil {
		t.Fatal(err)
	}
	list, err = m.ListTokens(t.Context())
	if err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	if len(list) != 3 {
		t.Fatalf("ListTokens = %d tokens; want 3: %+v", len(list), list)
	}
	checkToken(t, "first", list[0], first)
	checkToken(t, "second (same time, higher id)", list[1], sameTimeHigherID)
	if list[2].ID != later.ID || list[2].RevokedAt == nil {
		t.Errorf("third = %+v; want %s, revoked", list[2], later.ID)
	}
}

func testTouchToken(t *testing.T, m store) {
	tok := token("tok_used", "used", access.RolePublisher)
	hash := secretHash("dml_used")
	mustCreateToken(t, m, tok, hash)
	lastUse := func() *time.Time {
		t.Helper()
		got, err := m.TokenByHash(t.Context(), hash)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastUsedAt
	}
	if at := lastUse(); at != nil {
		t.Fatalf("LastUsedAt of a new token = %v; want nil", at)
	}
	touch := func(at time.Time) {
		t.Helper()
		if err := m.TouchToken(t.Context(), tok.ID, at); err != nil {
			t.Fatalf("TouchToken(%v): %v", at, err)
		}
	}
	t1 := t0.Add(time.Hour)
	touch(t1)
	if at := lastUse(); at == nil || !at.Equal(t1) {
		t.Fatalf("LastUsedAt = %v; want %v", at, t1)
	}
	checkUTC(t, "LastUsedAt", *lastUse())
	touch(t0.Add(time.Minute)) // earlier: ignored
	if at := lastUse(); !at.Equal(t1) {
		t.Errorf("LastUsedAt after an earlier touch = %v; want still %v", at, t1)
	}
	t2 := t1.Add(time.Minute)
	touch(t2)
	if at := lastUse(); !at.Equal(t2) {
		t.Errorf("LastUsedAt = %v; want %v", at, t2)
	}
	if err := m.TouchToken(t.Context(), "tok_unknown", t2); err != nil {
		t.Errorf("TouchToken of an unknown token: %v; want nil", err)
	}
	checkEventCount(t, m, 1) // the issue only
}

// testCreateFirstToken: the first token is created where none was ever
// issued, and nothing where one was; of writers racing on an empty store,
// exactly one creates it, with one event.
func testCreateFirstToken(t *testing.T, m store) {
	const writers = 8
	created := make([]bool, writers)
	race(writers, func(i int) {
		id := fmt.Sprint("tok_first_", i)
		var err error
		if created[i], err = m.CreateFirstToken(t.Context(), admin, token(id, "bootstrap-admin", access.RoleAdmin), secretHash(id)); err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	})
	if n := len(slices.DeleteFunc(slices.Clone(created), func(c bool) bool { return !c })); n != 1 {
		t.Errorf("%d writers created the first token, want 1", n)
	}
	if n, err := m.CountTokens(t.Context()); err != nil || n != 1 {
		t.Errorf("CountTokens = %d, %v; want 1", n, err)
	}
	checkEventCount(t, m, 1)
}
