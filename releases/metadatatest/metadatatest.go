// Package metadatatest is the conformance suite for releases.Metadata. In
// the manner of testing/fstest, every implementation (SQLite today,
// PostgreSQL later) runs the same checks from a few lines of its own test:
//
//	func TestMetadata(t *testing.T) {
//		metadatatest.Run(t, func(t *testing.T) releases.Metadata {
//			return openEmptyStore(t)
//		})
//	}
//
// Beyond the releases.Metadata documentation, the suite pins behaviour that
// callers rely on and that the interface leaves open:
//
//   - CreateArtifact stores an empty State as quarantined; a zero CreatedAt
//     (artifact or token) becomes the time of the call; times come back in
//     UTC, exactly as stored (the suite's own times have microsecond
//     precision, which any SQL database can hold).
//   - Invalid input is releases.ErrInvalidInput: an empty name, version or
//     token id, a malformed digest, an unknown state or role, a negative
//     size or limit, a secret hash that is not 32 bytes, a token created
//     revoked, a malformed list cursor. A token id or secret hash issued
//     twice is releases.ErrConflict.
//   - Not-found errors wrap releases.ErrNotFound (GetArtifact's names the
//     name:version) and no error wraps sql.ErrNoRows.
//   - ListArtifacts orders bytewise by (name, version), like Go string
//     comparison or SQL COLLATE "C", pages with a keyset cursor (items added
//     behind the cursor do not shift later pages), returns "" as the next
//     cursor of the last page and no empty trailing page. Limit 0 is a
//     default page; a limit above the maximum is clamped, not refused.
//   - Events: "artifact.pushed" (subject "name:version", details exactly
//     {digest, size, mediaType}), "token.issued" (subject the token id,
//     details exactly {name, roles, environments}, never the hash) and
//     "token.revoked" (subject the token id), one per successful change and
//     none for a no-op or a failure, with increasing Seq.
//   - A write with a cancelled context fails with an error matching
//     context.Canceled and records nothing.
package metadatatest

import (
	"sync"
	"testing"

	"github.com/dmlproject/dml/releases"
)

// Run runs the conformance suite. open is called once per test and must
// return a new, empty store; the suite closes it when the test ends.
func Run(t *testing.T, open func(t *testing.T) releases.Metadata) {
	tests := []struct {
		name string
		fn   func(t *testing.T, m releases.Metadata)
	}{
		{"Ping", testPing},

		{"Artifacts/Create", testCreateArtifact},
		{"Artifacts/CreateDefaults", testCreateArtifactDefaults},
		{"Artifacts/CreateInvalid", testCreateArtifactInvalid},
		{"Artifacts/CreateIdempotent", testCreateArtifactIdempotent},
		{"Artifacts/CreateConflict", testCreateArtifactConflict},
		{"Artifacts/GetNotFound", testGetArtifactNotFound},
		{"Artifacts/List", testListArtifacts},
		{"Artifacts/ListCursorIsKeyset", testListArtifactsKeyset},
		{"Artifacts/ListInvalid", testListArtifactsInvalid},

		{"Tokens/Create", testCreateToken},
		{"Tokens/CreateDefaults", testCreateTokenDefaults},
		{"Tokens/CreateInvalid", testCreateTokenInvalid},
		{"Tokens/CreateDuplicate", testCreateTokenDuplicate},
		{"Tokens/ByHashNotFound", testTokenByHashNotFound},
		{"Tokens/Revoke", testRevokeToken},
		{"Tokens/Count", testCountTokens},

		{"TrustKeys/Add", testAddTrustKey},
		{"TrustKeys/AddDefaults", testAddTrustKeyDefaults},
		{"TrustKeys/AddInvalid", testAddTrustKeyInvalid},
		{"TrustKeys/AddDuplicate", testAddTrustKeyDuplicate},
		{"TrustKeys/Revoke", testRevokeTrustKey},

		{"TrustPolicy/None", testTrustPolicyNone},
		{"TrustPolicy/Set", testSetTrustPolicy},
		{"TrustPolicy/ByteForByte", testTrustPolicyByteForByte},
		{"TrustPolicy/SetInvalid", testSetTrustPolicyInvalid},

		{"Evidence/Add", testAddEvidence},
		{"Evidence/AddDefaults", testAddEvidenceDefaults},
		{"Evidence/AddIdempotent", testAddEvidenceIdempotent},
		{"Evidence/AddUnknownArtifact", testAddEvidenceUnknownArtifact},
		{"Evidence/AddInvalid", testAddEvidenceInvalid},

		{"Admission/Admit", testSetAdmission},
		{"Admission/KeepState", testSetAdmissionKeepsState},
		{"Admission/Reject", testSetAdmissionReject},
		{"Admission/Conflict", testSetAdmissionConflict},
		{"Admission/NotFound", testSetAdmissionNotFound},
		{"Admission/Invalid", testSetAdmissionInvalid},
		{"Admission/Defaults", testSetAdmissionDefaults},

		{"Events/OnePerChange", testEventsOnePerChange},
		{"Events/Paging", testEventsPaging},
		{"CancelledContext", testCancelledContext},

		{"Concurrent/DistinctArtifacts", testConcurrentDistinct},
		{"Concurrent/SameVersionSameDigest", testConcurrentSameDigest},
		{"Concurrent/SameVersionDifferentDigests", testConcurrentDifferentDigests},
		{"Concurrent/Revoke", testConcurrentRevoke},
		{"Concurrent/ReadersAndWriters", testConcurrentReadersAndWriters},
		{"Concurrent/SetTrustPolicy", testConcurrentSetTrustPolicy},
		{"Concurrent/RevokeTrustKey", testConcurrentRevokeTrustKey},
		{"Concurrent/AddEvidence", testConcurrentAddEvidence},
		{"Concurrent/SetAdmission", testConcurrentSetAdmission},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := openStore(t, open)
			tc.fn(t, m)
		})
	}
	t.Run("PingAfterClose", func(t *testing.T) {
		m, closeStore := openStore(t, open)
		closeStore()
		if err := m.Ping(t.Context()); err == nil {
			t.Error("Ping after Close succeeded; want an error")
		}
	})
}

// RunReopen checks that data survives closing and re-opening a store, for
// implementations that persist it. newStorage is called once per test: it
// prepares new, empty storage and returns a function that opens a handle
// onto that same storage. The suite calls it several times, closing each
// handle before opening the next.
func RunReopen(t *testing.T, newStorage func(t *testing.T) (open func(t *testing.T) releases.Metadata)) {
	t.Run("DataSurvives", func(t *testing.T) { testDataSurvivesReopen(t, newStorage(t)) })
	t.Run("EmptyReopens", func(t *testing.T) { testEmptyReopens(t, newStorage(t)) })
}

// openStore opens a store and closes it when the test ends, unless the
// returned function closed it first. Close errors fail the test: a store
// that cannot close cleanly may not have persisted its last writes.
func openStore(t *testing.T, open func(t *testing.T) releases.Metadata) (releases.Metadata, func()) {
	t.Helper()
	m := open(t)
	if m == nil {
		t.Fatal("open returned a nil store")
	}
	var once sync.Once
	closeStore := func() {
		once.Do(func() {
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(closeStore)
	return m, closeStore
}

func testPing(t *testing.T, m releases.Metadata) {
	if err := m.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
