package metadatatest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/trust"
)

// The store does not parse trusted roots (package trust does, with
// sigstore-go): any JSON is a document here.

// install makes doc the next version of root id unless it is the same as
// the current one, the way trust.Service decides.
func install(doc string) func(trust.TrustedRoot, bool) (json.RawMessage, error) {
	return func(cur trust.TrustedRoot, found bool) (json.RawMessage, error) {
		if found && string(cur.Document) == doc {
			return nil, nil
		}
		return json.RawMessage(doc), nil
	}
}

func mustPutRoot(t *testing.T, m store, id, doc string) trust.TrustedRoot {
	t.Helper()
	r, err := m.ModifyTrustedRoot(t.Context(), admin, id, install(doc))
	if err != nil {
		t.Fatalf("ModifyTrustedRoot(%s): %v", id, err)
	}
	return r
}

func trustedRoots(t *testing.T, m store) []trust.TrustedRoot {
	t.Helper()
	roots, err := m.TrustedRoots(t.Context())
	if err != nil {
		t.Fatalf("TrustedRoots: %v", err)
	}
	return roots
}

func sameRoot(got, want trust.TrustedRoot) bool {
	return got.ID == want.ID && got.Version == want.Version && string(got.Document) == string(want.Document) &&
		got.CreatedBy == want.CreatedBy && got.CreatedAt.Equal(want.CreatedAt) &&
		sameTime(got.RevokedAt, want.RevokedAt) && got.RevokedBy == want.RevokedBy
}

func identity(id, root string) trust.Identity {
	return trust.Identity{
		ID: id, Root: root, Issuer: "https://token.actions.githubusercontent.com",
		Subject:   "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main",
		Claims:    map[string]string{"sourceRepositoryURI": "https://github.com/org/repo", "githubWorkflowTrigger": "push"},
		CreatedBy: admin.Name, CreatedAt: t0,
	}
}

// anyRoot accepts any installed root, unrevoked or not; the rule is the
// domain's.
func anyRoot(_ trust.TrustedRoot, found bool) error {
	if !found {
		return errdef.ErrNotFound
	}
	return nil
}

func identities(t *testing.T, m store) []trust.Identity {
	t.Helper()
	ids, err := m.Identities(t.Context())
	if err != nil {
		t.Fatalf("Identities: %v", err)
	}
	return ids
}

func testPutTrustedRoot(t *testing.T, m store) {
	if got := trustedRoots(t, m); len(got) != 0 {
		t.Fatalf("TrustedRoots of an empty store = %+v", got)
	}
	// Byte for byte: the audit log's hash covers the bytes given.
	v1doc, v2doc := "{\n  \"mediaType\": \"a\"\n}\n", `{"mediaType":"b","z":1,"a":2}`
	v1 := mustPutRoot(t, m, "public-good", v1doc)
	other := mustPutRoot(t, m, "github", `{}`)
	if v1.Version != 1 || string(v1.Document) != v1doc || v1.CreatedBy != admin.Name || v1.RevokedAt != nil {
		t.Errorf("first version = %+v; want version 1 of the document given, by %s", v1, admin.Name)
	}
	checkUTC(t, "CreatedAt", v1.CreatedAt)

	same := mustPutRoot(t, m, "public-good", v1doc)
	if !sameRoot(same, v1) {
		t.Errorf("unchanged document = %+v; want the current version %+v", same, v1)
	}
	v2 := mustPutRoot(t, m, "public-good", v2doc)
	if v2.Version != 2 || string(v2.Document) != v2doc {
		t.Errorf("second version = %+v; want version 2 of %q", v2, v2doc)
	}
	got := trustedRoots(t, m)
	if len(got) != 2 || !sameRoot(got[0], other) || !sameRoot(got[1], v2) {
		t.Errorf("TrustedRoots = %+v; want github v1 then public-good v2", got)
	}
	evs := checkEventCount(t, m, 3)
	checkEvent(t, evs[0], trust.ActionTrustRootAdded, "public-good", admin, map[string]any{"version": float64(1), "documentSha256": sha256Hex([]byte(v1doc))})
	checkEvent(t, evs[1], trust.ActionTrustRootAdded, "github", admin, map[string]any{"version": float64(1), "documentSha256": sha256Hex([]byte(`{}`))})
	checkEvent(t, evs[2], trust.ActionTrustRootReplaced, "public-good", admin, map[string]any{"version": float64(2), "documentSha256": sha256Hex([]byte(v2doc))})

	t.Run("refused", func(t *testing.T) {
		refusal := errors.New("refused by the rule")
		_, err := m.ModifyTrustedRoot(t.Context(), admin, "public-good", func(cur trust.TrustedRoot, found bool) (json.RawMessage, error) {
			if !found || !sameRoot(cur, v2) {
				t.Errorf("fn given %+v, found %v; want the current version", cur, found)
			}
			return nil, refusal
		})
		if !errors.Is(err, refusal) {
			t.Errorf("ModifyTrustedRoot = %v; want fn's error", err)
		}
		for _, doc := range []string{"not json", "{\"a\":\"\xff\"}"} {
			_, err := m.ModifyTrustedRoot(t.Context(), admin, "public-good", install(doc))
			checkErr(t, "ModifyTrustedRoot("+doc+")", err, errdef.ErrInvalidInput)
		}
		_, err = m.ModifyTrustedRoot(t.Context(), admin, "", install(`{}`))
		checkErr(t, "ModifyTrustedRoot without an id", err, errdef.ErrInvalidInput)
		checkEventCount(t, m, 3)
	})
}

func testRevokeTrustedRoot(t *testing.T, m store) {
	r := mustPutRoot(t, m, "private", `{}`)
	if err := m.RevokeTrustedRoot(t.Context(), admin, "private"); err != nil {
		t.Fatalf("RevokeTrustedRoot: %v", err)
	}
	got := trustedRoots(t, m)
	if len(got) != 1 || got[0].RevokedAt == nil || got[0].RevokedBy != admin.Name || got[0].Version != r.Version {
		t.Fatalf("TrustedRoots = %+v; want the root revoked by %s", got, admin.Name)
	}
	checkUTC(t, "RevokedAt", *got[0].RevokedAt)
	if err := m.RevokeTrustedRoot(t.Context(), publisher, "private"); err != nil {
		t.Errorf("revoking again: %v; want nil", err)
	}
	checkErr(t, "RevokeTrustedRoot(unknown)", m.RevokeTrustedRoot(t.Context(), admin, "unknown"), errdef.ErrNotFound)
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], trust.ActionTrustRootRevoked, "private", admin, nil)

	// The revoked root is what the domain's rule is given.
	_, err := m.ModifyTrustedRoot(t.Context(), admin, "private", func(cur trust.TrustedRoot, found bool) (json.RawMessage, error) {
		if !found || cur.RevokedAt == nil {
			t.Errorf("fn given %+v, found %v; want the revoked root", cur, found)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testAddIdentity(t *testing.T, m store) {
	mustPutRoot(t, m, "public-good", `{}`)
	gha := identity("gha-release", "public-good")
	re := identity("gha-any", "public-good")
	re.Subject, re.SubjectRegexp, re.Claims = "", `https://github\.com/org/.*`, nil
	for _, id := range []trust.Identity{gha, re} {
		if err := m.AddIdentity(t.Context(), admin, id, anyRoot); err != nil {
			t.Fatalf("AddIdentity(%s): %v", id.ID, err)
		}
	}
	got := identities(t, m)
	if len(got) != 2 || got[0].ID != "gha-any" || got[1].ID != "gha-release" {
		t.Fatalf("Identities = %+v; want gha-any, gha-release", got)
	}
	g := got[1]
	if g.Root != gha.Root || g.Issuer != gha.Issuer || g.Subject != gha.Subject || g.SubjectRegexp != "" ||
		len(g.Claims) != 2 || g.Claims["sourceRepositoryURI"] != gha.Claims["sourceRepositoryURI"] ||
		g.CreatedBy != admin.Name || !g.CreatedAt.Equal(t0) || g.RevokedAt != nil {
		t.Errorf("Identities[1] = %+v; want %+v", g, gha)
	}
	if got[0].SubjectRegexp != re.SubjectRegexp || got[0].Subject != "" || got[0].Claims == nil || len(got[0].Claims) != 0 {
		t.Errorf("Identities[0] = %+v; want the regexp and empty claims", got[0])
	}
	evs := checkEventCount(t, m, 3)
	checkEvent(t, evs[1], trust.ActionTrustIdentityAdded, "gha-release", admin, map[string]any{
		"root": "public-good", "issuer": gha.Issuer, "subject": gha.Subject,
		"claims": map[string]any{"sourceRepositoryURI": "https://github.com/org/repo", "githubWorkflowTrigger": "push"},
	})
	checkEvent(t, evs[2], trust.ActionTrustIdentityAdded, "gha-any", admin, map[string]any{
		"root": "public-good", "issuer": gha.Issuer, "subjectRegexp": re.SubjectRegexp, "claims": map[string]any{},
	})

	t.Run("invalid", func(t *testing.T) {
		for name, mutate := range map[string]func(*trust.Identity){
			"no id":              func(i *trust.Identity) { i.ID = "" },
			"no root":            func(i *trust.Identity) { i.Root = "" },
			"no issuer":          func(i *trust.Identity) { i.Issuer = "" },
			"no subject":         func(i *trust.Identity) { i.Subject = "" },
			"subject and regexp": func(i *trust.Identity) { i.SubjectRegexp = ".*" },
			"added revoked":      func(i *trust.Identity) { i.RevokedBy = admin.Name },
		} {
			id := identity("new", "public-good")
			mutate(&id)
			checkErr(t, "AddIdentity("+name+")", m.AddIdentity(t.Context(), admin, id, anyRoot), errdef.ErrInvalidInput)
		}
		checkEventCount(t, m, 3)
	})
	t.Run("root rule", func(t *testing.T) {
		refusal := errors.New("no such root")
		err := m.AddIdentity(t.Context(), admin, identity("new", "missing"), func(r trust.TrustedRoot, found bool) error {
			if found {
				t.Errorf("root rule given %+v for a root never installed", r)
			}
			return refusal
		})
		if !errors.Is(err, refusal) {
			t.Errorf("AddIdentity = %v; want the rule's error", err)
		}
		checkEventCount(t, m, 3)
		if got := identities(t, m); len(got) != 2 {
			t.Errorf("Identities = %+v; want the refused one not stored", got)
		}
	})
}

func testRevokeIdentity(t *testing.T, m store) {
	mustPutRoot(t, m, "public-good", `{}`)
	if err := m.AddIdentity(t.Context(), admin, identity("gha", "public-good"), anyRoot); err != nil {
		t.Fatal(err)
	}
	if err := m.RevokeIdentity(t.Context(), admin, "gha"); err != nil {
		t.Fatalf("RevokeIdentity: %v", err)
	}
	got := identities(t, m)
	if len(got) != 1 || got[0].RevokedAt == nil || got[0].RevokedBy != admin.Name {
		t.Fatalf("Identities = %+v; want gha revoked by %s", got, admin.Name)
	}
	if err := m.RevokeIdentity(t.Context(), publisher, "gha"); err != nil {
		t.Errorf("revoking again: %v; want nil", err)
	}
	checkErr(t, "RevokeIdentity(unknown)", m.RevokeIdentity(t.Context(), admin, "unknown"), errdef.ErrNotFound)
	evs := checkEventCount(t, m, 3)
	checkEvent(t, evs[2], trust.ActionTrustIdentityRevoked, "gha", admin, nil)
}

// testSignerNamespace checks that keys and identities share their IDs,
// revoked or not, in either order.
func testSignerNamespace(t *testing.T, m store) {
	mustPutRoot(t, m, "public-good", `{}`)
	mustAddKey(t, m, trustKey("ci"))
	if err := m.AddIdentity(t.Context(), admin, identity("gha", "public-good"), anyRoot); err != nil {
		t.Fatal(err)
	}
	checkErr(t, "AddIdentity with a key's id", m.AddIdentity(t.Context(), admin, identity("ci", "public-good"), anyRoot), errdef.ErrConflict)
	checkErr(t, "AddTrustKey with an identity's id", m.AddTrustKey(t.Context(), admin, trustKey("gha")), errdef.ErrConflict)
	checkErr(t, "AddIdentity twice", m.AddIdentity(t.Context(), admin, identity("gha", "public-good"), anyRoot), errdef.ErrConflict)
	if err := m.RevokeIdentity(t.Context(), admin, "gha"); err != nil {
		t.Fatal(err)
	}
	checkErr(t, "AddTrustKey with a revoked identity's id", m.AddTrustKey(t.Context(), admin, trustKey("gha")), errdef.ErrConflict)
	if got := trustKeys(t, m); len(got) != 1 || got[0].ID != "ci" {
		t.Errorf("TrustKeys = %+v; want only ci", got)
	}
	if got := identities(t, m); len(got) != 1 || got[0].ID != "gha" {
		t.Errorf("Identities = %+v; want only gha", got)
	}
	checkEventCount(t, m, 4)
}

// testConcurrentSignerID races keys and identities for one ID: exactly
// one signer gets it.
func testConcurrentSignerID(t *testing.T, m store) {
	mustPutRoot(t, m, "public-good", `{}`)
	errs := make([]error, racingWriters)
	race(racingWriters, func(i int) {
		if i%2 == 0 {
			errs[i] = m.AddTrustKey(t.Context(), admin, trustKey("signer"))
		} else {
			errs[i] = m.AddIdentity(t.Context(), admin, identity("signer", "public-good"), anyRoot)
		}
	})
	oneWinner(t, errs, errdef.ErrConflict)
	n := len(trustKeys(t, m)) + len(identities(t, m))
	if n != 1 {
		t.Errorf("%d signers named signer; want 1", n)
	}
	checkEventCount(t, m, 2)
}

// testConcurrentRootRevocation races identities onto a root against its
// revocation: an identity is added only while the rule sees the root
// unrevoked.
func testConcurrentRootRevocation(t *testing.T, m store) {
	mustPutRoot(t, m, "public-good", `{}`)
	unrevoked := func(r trust.TrustedRoot, found bool) error {
		if !found || r.RevokedAt != nil {
			return errdef.ErrInvalidInput
		}
		return nil
	}
	errs := make([]error, racingWriters)
	race(racingWriters, func(i int) {
		if i == 0 {
			errs[i] = m.RevokeTrustedRoot(t.Context(), admin, "public-good")
			return
		}
		errs[i] = m.AddIdentity(t.Context(), admin, identity("gha-"+string(rune('a'+i)), "public-good"), unrevoked)
	})
	if errs[0] != nil {
		t.Fatalf("RevokeTrustedRoot: %v", errs[0])
	}
	evs := allEvents(t, m)
	revokedAt := -1
	for i, e := range evs {
		if e.Action == trust.ActionTrustRootRevoked {
			revokedAt = i
		}
		if e.Action == trust.ActionTrustIdentityAdded && revokedAt >= 0 {
			t.Errorf("identity %s added after its root was revoked", e.Subject)
		}
	}
	added := 0
	for _, err := range errs[1:] {
		if err == nil {
			added++
		} else if !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("AddIdentity: %v", err)
		}
	}
	if got := len(identities(t, m)); got != added {
		t.Errorf("%d identities stored; %d adds succeeded", got, added)
	}
}

// testTrustRevision checks that every change of trust raises the trust
// revision, and that a call changing nothing (a refused one, a revocation
// again, the same root document again) leaves it: admission keys what it
// keeps of the trust by it.
func testTrustRevision(t *testing.T, m store) {
	ctx := t.Context()
	last, err := m.TrustRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		change  func() error
		changes bool
	}{
		{"key added", func() error { return m.AddTrustKey(ctx, admin, trustKey("ci")) }, true},
		{"key added again", func() error { m.AddTrustKey(ctx, admin, trustKey("ci")); return nil }, false},
		{"policy set", func() error { _, err := m.SetTrustPolicy(ctx, admin, json.RawMessage(`{"rules":[]}`)); return err }, true},
		{"root added", func() error { mustPutRoot(t, m, "public-good", `{}`); return nil }, true},
		{"root document the same", func() error {
			_, err := m.ModifyTrustedRoot(ctx, admin, "public-good", func(trust.TrustedRoot, bool) (json.RawMessage, error) { return nil, nil })
			return err
		}, false},
		{"root replaced", func() error { mustPutRoot(t, m, "public-good", `{"v":2}`); return nil }, true},
		{"identity added", func() error { return m.AddIdentity(ctx, admin, identity("gha", "public-good"), anyRoot) }, true},
		{"identity revoked", func() error { return m.RevokeIdentity(ctx, admin, "gha") }, true},
		{"identity revoked again", func() error { return m.RevokeIdentity(ctx, admin, "gha") }, false},
		{"key revoked", func() error { return m.RevokeTrustKey(ctx, admin, "ci") }, true},
		{"key revoked again", func() error { return m.RevokeTrustKey(ctx, admin, "ci") }, false},
		{"root revoked", func() error { return m.RevokeTrustedRoot(ctx, admin, "public-good") }, true},
	} {
		if err := tc.change(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		rev, err := m.TrustRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tc.changes && rev <= last || !tc.changes && rev != last {
			t.Errorf("%s: trust revision %d after %d; want it raised: %v", tc.name, rev, last, tc.changes)
		}
		last = rev
	}
}
