package metadatatest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/trust"
)

// trustKey is a valid key named id. The PEM has the shape of a public key;
// parsing keys is package signing's business, not the store's.
func trustKey(id string) trust.TrustKey {
	return trust.TrustKey{
		ID:           id,
		PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + hex.EncodeToString([]byte(id)) + "\n-----END PUBLIC KEY-----\n",
		Algorithm:    "ecdsa-p256",
		Comment:      "signing key " + id,
		CreatedBy:    admin.Name,
		CreatedAt:    t0,
	}
}

func mustAddKey(t *testing.T, m store, k trust.TrustKey) {
	t.Helper()
	if err := m.AddTrustKey(t.Context(), admin, k); err != nil {
		t.Fatalf("AddTrustKey(%s): %v", k.ID, err)
	}
}

func mustSetPolicy(t *testing.T, m store, doc string) trust.PolicyVersion {
	t.Helper()
	p, err := m.SetTrustPolicy(t.Context(), admin, json.RawMessage(doc))
	if err != nil {
		t.Fatalf("SetTrustPolicy: %v", err)
	}
	return p
}

func sameTrustKey(got, want trust.TrustKey) bool {
	return got.ID == want.ID && got.PublicKeyPEM == want.PublicKeyPEM && got.Algorithm == want.Algorithm &&
		got.Comment == want.Comment && got.CreatedBy == want.CreatedBy && got.CreatedAt.Equal(want.CreatedAt) &&
		sameTime(got.RevokedAt, want.RevokedAt) && got.RevokedBy == want.RevokedBy
}

func trustKeys(t *testing.T, m store) []trust.TrustKey {
	t.Helper()
	keys, err := m.TrustKeys(t.Context())
	if err != nil {
		t.Fatalf("TrustKeys: %v", err)
	}
	return keys
}

// checkTrustKeys checks that TrustKeys lists exactly want, in order.
func checkTrustKeys(t *testing.T, m store, want ...trust.TrustKey) []trust.TrustKey {
	t.Helper()
	got := trustKeys(t, m)
	if !slices.EqualFunc(got, want, sameTrustKey) {
		t.Errorf("TrustKeys:\n got %+v\nwant %+v", got, want)
	}
	return got
}

func samePolicy(got, want trust.PolicyVersion) bool {
	return got.Version == want.Version && bytes.Equal(got.Document, want.Document) &&
		got.CreatedBy == want.CreatedBy && got.CreatedAt.Equal(want.CreatedAt)
}

func checkPolicy(t *testing.T, what string, got, want trust.PolicyVersion) {
	t.Helper()
	if !samePolicy(got, want) {
		t.Errorf("%s = version %d %q by %q at %v; want version %d %q by %q at %v", what,
			got.Version, got.Document, got.CreatedBy, got.CreatedAt, want.Version, want.Document, want.CreatedBy, want.CreatedAt)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func testAddTrustKey(t *testing.T, m store) {
	// Added out of order: TrustKeys orders by ID.
	ci, release := trustKey("ci"), trustKey("release-2025")
	release.Comment = ""
	mustAddKey(t, m, release)
	mustAddKey(t, m, ci)

	got := checkTrustKeys(t, m, ci, release)
	for _, k := range got {
		checkUTC(t, "CreatedAt of "+k.ID, k.CreatedAt)
	}
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[0], trust.ActionTrustKeyAdded, release.ID, admin, map[string]any{
		"algorithm":       release.Algorithm,
		"comment":         "",
		"publicKeySha256": sha256Hex([]byte(release.PublicKeyPEM)),
	})
	checkEvent(t, evs[1], trust.ActionTrustKeyAdded, ci.ID, admin, map[string]any{
		"algorithm":       ci.Algorithm,
		"comment":         ci.Comment,
		"publicKeySha256": sha256Hex([]byte(ci.PublicKeyPEM)),
	})
}

func testAddTrustKeyDefaults(t *testing.T, m store) {
	checkTrustKeys(t, m) // none yet, and no error
	k := trustKey("ci")
	k.CreatedAt = time.Time{}
	before := time.Now()
	mustAddKey(t, m, k)
	keys := trustKeys(t, m)
	if len(keys) != 1 {
		t.Fatalf("TrustKeys = %+v; want the key added", keys)
	}
	got := keys[0]
	k.CreatedAt = got.CreatedAt
	if !sameTrustKey(got, k) {
		t.Errorf("TrustKeys = %+v; want %+v", got, k)
	}
	checkUTC(t, "CreatedAt", got.CreatedAt)
	if d := got.CreatedAt.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("CreatedAt = %v; want about %v", got.CreatedAt, before)
	}
}

func testAddTrustKeyInvalid(t *testing.T, m store) {
	revoked := t0
	tests := []struct {
		name   string
		mutate func(k *trust.TrustKey)
	}{
		{"empty id", func(k *trust.TrustKey) { k.ID = "" }},
		{"no public key", func(k *trust.TrustKey) { k.PublicKeyPEM = "" }},
		{"no algorithm", func(k *trust.TrustKey) { k.Algorithm = "" }},
		{"added revoked", func(k *trust.TrustKey) { k.RevokedAt = &revoked }},
		{"added with a revoker", func(k *trust.TrustKey) { k.RevokedBy = admin.Name }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := trustKey("ci")
			tc.mutate(&k)
			checkErr(t, "AddTrustKey", m.AddTrustKey(t.Context(), admin, k), errdef.ErrInvalidInput)
		})
	}
	checkTrustKeys(t, m)
	checkEventCount(t, m, 0)
}

// testAddTrustKeyDuplicate checks that an ID names one key forever: taken
// while the key is live and after it is revoked.
func testAddTrustKeyDuplicate(t *testing.T, m store) {
	first := trustKey("ci")
	mustAddKey(t, m, first)
	other := trustKey("other")
	other.ID = first.ID

	checkErr(t, "AddTrustKey with a live key's id", m.AddTrustKey(t.Context(), admin, other), errdef.ErrConflict)
	if err := m.RevokeTrustKey(t.Context(), admin, first.ID); err != nil {
		t.Fatalf("RevokeTrustKey: %v", err)
	}
	checkErr(t, "AddTrustKey with a revoked key's id", m.AddTrustKey(t.Context(), admin, other), errdef.ErrConflict)

	got := trustKeys(t, m)
	if len(got) != 1 || got[0].PublicKeyPEM != first.PublicKeyPEM || got[0].RevokedAt == nil {
		t.Errorf("TrustKeys = %+v; want only the first key, revoked", got)
	}
	checkEventCount(t, m, 2)
}

func testRevokeTrustKey(t *testing.T, m store) {
	ci, release := trustKey("ci"), trustKey("release")
	mustAddKey(t, m, ci)
	mustAddKey(t, m, release)

	if err := m.RevokeTrustKey(t.Context(), admin, ci.ID); err != nil {
		t.Fatalf("RevokeTrustKey: %v", err)
	}
	got := trustKeys(t, m)
	if len(got) != 2 {
		t.Fatalf("TrustKeys = %+v; want both keys", got)
	}
	if got[0].RevokedAt == nil {
		t.Fatal("RevokedAt = nil after RevokeTrustKey")
	}
	checkUTC(t, "RevokedAt", *got[0].RevokedAt)
	revoked := ci
	revoked.RevokedAt, revoked.RevokedBy = got[0].RevokedAt, admin.Name
	checkTrustKeys(t, m, revoked, release) // the other key untouched
	evs := checkEventCount(t, m, 3)
	checkEvent(t, evs[2], trust.ActionTrustKeyRevoked, ci.ID, admin, nil)

	t.Run("again", func(t *testing.T) {
		if err := m.RevokeTrustKey(t.Context(), publisher, ci.ID); err != nil {
			t.Fatalf("RevokeTrustKey of a revoked key: %v; want nil", err)
		}
		checkTrustKeys(t, m, revoked, release) // still revoked when and by whom it was
		checkEventCount(t, m, 3)
	})
	t.Run("unknown", func(t *testing.T) {
		for _, id := range []string{"unknown", "CI", ""} {
			checkErr(t, "RevokeTrustKey("+id+")", m.RevokeTrustKey(t.Context(), admin, id), errdef.ErrNotFound)
		}
		checkTrustKeys(t, m, revoked, release)
		checkEventCount(t, m, 3)
	})
}

func testTrustPolicyNone(t *testing.T, m store) {
	_, err := m.TrustPolicy(t.Context())
	checkErr(t, "TrustPolicy before any was set", err, errdef.ErrNotFound)
}

func testSetTrustPolicy(t *testing.T, m store) {
	docs := []string{
		`{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]}}]}`,
		`{"rules":[{"match":"**","signatures":{"keys":["ci","release"],"min":2}}]}`,
	}
	var set []trust.PolicyVersion
	for i, doc := range docs {
		p := mustSetPolicy(t, m, doc)
		want := trust.PolicyVersion{Version: int64(i + 1), Document: json.RawMessage(doc), CreatedBy: admin.Name, CreatedAt: p.CreatedAt}
		checkPolicy(t, "SetTrustPolicy", p, want)
		checkUTC(t, "CreatedAt", p.CreatedAt)
		cur, err := m.TrustPolicy(t.Context())
		if err != nil {
			t.Fatalf("TrustPolicy: %v", err)
		}
		checkPolicy(t, "TrustPolicy", cur, want)
		set = append(set, p)
	}
	if set[1].CreatedAt.Before(set[0].CreatedAt) {
		t.Errorf("version 2 created at %v, before version 1 at %v", set[1].CreatedAt, set[0].CreatedAt)
	}

	evs := checkEventCount(t, m, 2)
	for i, p := range set {
		checkEvent(t, evs[i], trust.ActionTrustPolicySet, "policy", admin, map[string]any{
			"version":        float64(p.Version),
			"documentSha256": sha256Hex([]byte(docs[i])),
		})
	}
}

// testTrustPolicyByteForByte stores documents whose bytes a JSON round trip
// would change; the policy's hash in the audit log covers the bytes given.
func testTrustPolicyByteForByte(t *testing.T, m store) {
	tests := []struct{ name, doc string }{
		{"indented", "{\n  \"rules\": [\n    {\"match\": \"**\"}\n  ]\n}\n"},
		{"key order", `{"z":1,"a":2,"m":{"y":true,"b":null}}`},
		{"escapes kept as written", `{"comment":"caf\u00e9 \u003cb\u003e \/ \"q\""}`},
		{"raw unicode and HTML", `{"comment":"café <b> & 🚀"}`},
		{"number precision", `{"n":12345678901234567890.12345678901234567890,"e":1E+2}`},
		{"duplicate keys", `{"a":1,"a":2}`},
		{"not an object", `["rules"]`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustSetPolicy(t, m, tc.doc)
			if p.Version != int64(i+1) || string(p.Document) != tc.doc {
				t.Errorf("SetTrustPolicy = version %d %q; want version %d %q", p.Version, p.Document, i+1, tc.doc)
			}
			cur, err := m.TrustPolicy(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if string(cur.Document) != tc.doc {
				t.Errorf("TrustPolicy document = %q; want %q byte for byte", cur.Document, tc.doc)
			}
		})
	}
}

func testSetTrustPolicyInvalid(t *testing.T, m store) {
	current := mustSetPolicy(t, m, `{"rules":[]}`)
	tests := []struct {
		name string
		doc  json.RawMessage
	}{
		{"nil", nil},
		{"empty", json.RawMessage{}},
		{"blank", json.RawMessage("  \n")},
		{"not JSON", json.RawMessage("rules: []")},
		{"truncated", json.RawMessage(`{"rules":[`)},
		{"trailing garbage", json.RawMessage(`{"rules":[]} x`)},
		{"two documents", json.RawMessage(`{} {}`)},
		{"invalid UTF-8", json.RawMessage("{\"comment\":\"\xff\xfe\"}")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := m.SetTrustPolicy(t.Context(), admin, tc.doc)
			checkErr(t, "SetTrustPolicy", err, errdef.ErrInvalidInput)
			if p.Version != 0 {
				t.Errorf("SetTrustPolicy returned version %d with an error", p.Version)
			}
		})
	}
	cur, err := m.TrustPolicy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkPolicy(t, "TrustPolicy after invalid sets", cur, current)
	checkEventCount(t, m, 1)
	// Failures use no version number.
	if p := mustSetPolicy(t, m, `{}`); p.Version != 2 {
		t.Errorf("next version = %d; want 2", p.Version)
	}
}
