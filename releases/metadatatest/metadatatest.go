// Package metadatatest is the conformance suite for releases.Metadata: one
// suite per concept's store (RunTokens, RunTrust, RunCatalog, RunReleases,
// RunAudit, RunAccessLog, RunRegistry, RunIntegrity; Run runs the first
// six). In the manner of testing/fstest, every implementation (SQLite
// today, PostgreSQL later) runs the same checks from a few lines of its
// own test:
//
//	func TestMetadata(t *testing.T) {
//		metadatatest.Run(t, func(t *testing.T) releases.Metadata {
//			return openEmptyStore(t)
//		})
//	}
//
// A store decides nothing: where a change is guarded by a rule, the
// domain's function decides inside the store's transaction. The suites
// check an adapter through those functions (catalog.CreateArtifact,
// catalog.SetAdmission, registry.PutManifest, blobs.RecordVerified, …), so
// what they pin is the behaviour of the domain over that adapter. Beyond
// the stores' documentation, they pin behaviour that callers rely on and
// that the interfaces leave open:
//
//   - CreateArtifact stores an empty State as quarantined; a zero CreatedAt
//     (artifact, token, trust key, evidence) or DecidedAt (admission)
//     becomes the time of the call; times come back in UTC, exactly as
//     stored (the suite's own times have microsecond precision, which any
//     SQL database can hold).
//   - Invalid input is errdef.ErrInvalidInput: an empty name, version or
//     token id, a malformed digest, an unknown state or role, a negative
//     size or limit, a secret hash that is not 32 bytes, a token created
//     revoked, a malformed list cursor. A token id or secret hash issued
//     twice is errdef.ErrConflict.
//   - Not-found errors wrap errdef.ErrNotFound (GetArtifact's names the
//     name:version) and no error wraps sql.ErrNoRows.
//   - ListArtifacts orders bytewise by (name, version), like Go string
//     comparison or SQL COLLATE "C", pages with a keyset cursor (items added
//     behind the cursor do not shift later pages), returns "" as the next
//     cursor of the last page and no empty trailing page. Limit 0 is a
//     default page; a limit above the maximum is clamped, not refused.
//   - Trust keys: an empty id, public key or algorithm, or a key added
//     revoked, is errdef.ErrInvalidInput; the store does not parse the
//     key. RevokeTrustKey sets RevokedAt and RevokedBy (the actor's name).
//     TrustKeys orders bytewise by ID and returns no error when empty.
//   - Trusted roots and identities: documents come back byte for byte,
//     versions of a root are 1, 2, 3...; TrustedRoots and Identities order
//     by ID and return an empty list, not nil. Keys and identities share
//     one namespace of IDs (errdef.ErrConflict, revoked or not, also when
//     added at once). Events "trust.root.added"/"trust.root.replaced"
//     (details exactly {version, documentSha256}), "trust.root.revoked",
//     "trust.identity.added" (details {root, issuer, subject or
//     subjectRegexp, claims}) and "trust.identity.revoked".
//   - Trust policy: the document must be JSON in valid UTF-8
//     (errdef.ErrInvalidInput otherwise) and comes back byte for byte;
//     versions are 1, 2, 3... with no gaps, also when set concurrently and
//     after a reopen; CreatedBy is the actor's name.
//   - Evidence: errdef.ErrInvalidInput for an empty or malformed digest
//     or artifact digest, an artifact digest other than the version's, a
//     kind other than signature or attestation, an empty format or key id,
//     a negative size, an attestation without a predicate type, a
//     signature with a predicate, or a predicate that is not JSON in UTF-8.
//     The predicate comes back byte for byte. ListEvidence orders by
//     CreatedAt and lists nothing (no error) for an unknown version.
//     Each claim keeps its first presentation (the artifact, CreatedBy and
//     CreatedAt of the evidence that first carried it); later evidence
//     with the claim leaves it; a malformed claim is ErrInvalidInput.
//   - Admission: the receipt comes back byte for byte; nil Unmet and
//     Evidence come back empty. An unknown from or target state, a negative
//     policy version, a malformed evidence digest or a receipt that is not
//     JSON is errdef.ErrInvalidInput; the ErrConflict of a failed
//     compare-and-set names the current state. Every successful
//     SetAdmission is recorded, also one that keeps the state.
//   - Releases: CreateRelease stores revision 1, whatever it is given, and
//     a zero CreatedAt or UpdatedAt becomes the time of the call.
//     UpdateRelease and ModifyRelease store revision+1 with UpdatedAt the
//     time of the call, and keep CreatedBy and CreatedAt as created.
//     ModifyRelease hands fn the release as stored and fn's error back as
//     it is; concurrent ModifyRelease calls of one release all succeed,
//     each applied on top of the others. A release comes back
//     exactly as encoding/json would decode it, every field, with times in
//     UTC and nil and empty lists apart. An empty name, an unknown state, an
//     artifact without a name, version or valid digest, or one included
//     twice is errdef.ErrInvalidInput, as is an update without an action
//     or whose details are not JSON in UTF-8; the ErrConflict of a stale
//     revision names the stored and the given revision. ListReleases orders
//     bytewise by name and pages like ListArtifacts (a cursor of either list
//     is malformed for the other). ReleasesContaining follows the artifacts
//     of each release's current revision, orders by name and returns an
//     empty list, not nil, when there are none.
//   - RetireArtifact sets RetiredAt and RetiredBy (the actor's name), which
//     GetArtifact and ListArtifacts return, and changes nothing else; an
//     artifact pushed retired is errdef.ErrInvalidInput.
//   - Events: "artifact.pushed" (subject "name:version", details exactly
//     {digest, size, mediaType}), "token.issued" (subject the token id,
//     details exactly {name, roles, environments}, never the hash),
//     "token.revoked" (subject the token id), "token.recovered" (subject
//     the token id, details exactly {name, roles, hostUser, host}), "trust.key.added" (subject
//     the key id, details exactly {algorithm, comment, publicKeySha256}),
//     "trust.key.revoked" (subject the key id), "trust.policy.set" (subject
//     "policy", details exactly {version, documentSha256}),
//     "evidence.added" (subject "name:version", details exactly {digest,
//     kind, format, keyId, predicateType}), "admission.decided" (subject
//     "name:version", details exactly {from, state, rule, unmet, reason,
//     policyVersion, evidence} plus receiptSha256 when there is a receipt),
//     "release.created" (subject "release:NAME", details exactly {state,
//     planDigest, artifacts}, each artifact as "name:version@digest"), an
//     update's own action (subject "release:NAME", details the change's
//     byte for byte, none when empty) and "artifact.retired" (subject
//     "name:version", details exactly {digest}); hashes are lowercase hex
//     SHA-256 of the stored bytes. One event per successful change and none
//     for a no-op or a failure, with increasing Seq.
//   - Tokens: ExpiresAt comes back as stored and is in the token.issued
//     details (as expiresAt, RFC 3339) when set; an expiry not after the
//     creation time, or a token created with a LastUsedAt, is
//     errdef.ErrInvalidInput. ListTokens returns every token, revoked
//     ones too, ordered by CreatedAt then ID, and an empty list, not nil,
//     when there are none. TouchToken only moves LastUsedAt forward,
//     ignores unknown ids, and records no event.
//   - Access log: RecordAccess and PruneAccess record no event (the access
//     log is not in the audit log). Records come back field for field with
//     Seq increasing from 1, in Seq order; a zero Time becomes the time of
//     the call; a record without a method or outcome is
//     errdef.ErrInvalidInput. The subject filter matches the subject
//     exactly or the artifact name; filters combine; Since is inclusive.
//     Pages work like ListArtifacts' (a cursor of another list is
//     malformed). PruneAccess deletes exactly the records older than the
//     time given, then all but the newest keep, and returns the count.
//   - Audit log: every recorded event is also a record of the log, and
//     nothing else is: record i (indexes 0, 1, 2… with no gaps) is
//     auditlog.Encode of the i-th event, with the event's time, actor,
//     action, subject and details. AuditHashes serves tlog's stored hashes
//     of exactly those records (stored-hash index for index), in the order
//     asked, and fails for a hash not stored. AuditEntries with limit <= 0
//     runs to the end of the log as it was when the call began; a negative
//     start is errdef.ErrInvalidInput; fn's error stops the walk and is
//     returned; fn may call the store. AuditEntriesFor orders by index and
//     returns an empty list, not nil, when nothing matches. The log and its
//     root survive a reopen, and later trees are provably extensions of it.
//   - A write with a cancelled context fails with an error matching
//     context.Canceled and records nothing.
package metadatatest

import (
	"sync"
	"testing"

	"github.com/dmlproject/dml/releases"
)

// Run runs every suite but the registry's, integrity's and reopening
// (RunRegistry, RunIntegrity, RunReopen), and checks Ping and Close. open
// is called once per test and must return a new, empty store; the suite
// closes it when the test ends.
func Run(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{{"Ping", testPing}})
	RunTokens(t, open)
	RunTrust(t, open)
	RunCatalog(t, open)
	RunReleases(t, open)
	RunAudit(t, open)
	RunAccessLog(t, open)
	RunWebhooks(t, open)
	t.Run("PingAfterClose", func(t *testing.T) {
		m, closeStore := openStore(t, open)
		closeStore()
		if err := m.Ping(t.Context()); err == nil {
			t.Error("Ping after Close succeeded; want an error")
		}
	})
}

// suiteCase is one test of a suite.
type suiteCase struct {
	name string
	fn   func(t *testing.T, m store)
}

// run runs each case over a new store.
func run(t *testing.T, open func(t *testing.T) releases.Metadata, cases []suiteCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := openStore(t, open)
			tc.fn(t, m)
		})
	}
}

// RunTokens is the suite of access.Store (tokens).
func RunTokens(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Tokens/Create", testCreateToken},
		{"Tokens/CreateDefaults", testCreateTokenDefaults},
		{"Tokens/CreateRecovery", testCreateRecoveryToken},
		{"Tokens/CreateInvalid", testCreateTokenInvalid},
		{"Tokens/CreateDuplicate", testCreateTokenDuplicate},
		{"Tokens/CreateFirst", testCreateFirstToken},
		{"Tokens/ByHashNotFound", testTokenByHashNotFound},
		{"Tokens/Revoke", testRevokeToken},
		{"Tokens/Count", testCountTokens},
		{"Tokens/Expiry", testTokenExpiry},
		{"Tokens/ExpiryInvalid", testTokenExpiryInvalid},
		{"Tokens/List", testListTokens},
		{"Tokens/Touch", testTouchToken},
		{"Concurrent/Revoke", testConcurrentRevoke},
		{"Sessions/Start", testStartSession},
		{"Sessions/StartEnds", testStartSessionEnds},
		{"Sessions/StartInvalid", testStartSessionInvalid},
		{"Sessions/RefusedSignIn", testRecordRefusedSignIn},
	})
}

// RunTrust is the suite of trust.Store (keys, policy versions, trusted
// roots and identities).
func RunTrust(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"TrustKeys/Add", testAddTrustKey},
		{"TrustKeys/AddDefaults", testAddTrustKeyDefaults},
		{"TrustKeys/AddInvalid", testAddTrustKeyInvalid},
		{"TrustKeys/AddDuplicate", testAddTrustKeyDuplicate},
		{"TrustKeys/Revoke", testRevokeTrustKey},
		{"TrustPolicy/None", testTrustPolicyNone},
		{"TrustPolicy/Set", testSetTrustPolicy},
		{"TrustPolicy/ByteForByte", testTrustPolicyByteForByte},
		{"TrustPolicy/SetInvalid", testSetTrustPolicyInvalid},
		{"Concurrent/SetTrustPolicy", testConcurrentSetTrustPolicy},
		{"Concurrent/RevokeTrustKey", testConcurrentRevokeTrustKey},
		{"TrustedRoots/Put", testPutTrustedRoot},
		{"TrustedRoots/Revoke", testRevokeTrustedRoot},
		{"Identities/Add", testAddIdentity},
		{"Identities/Revoke", testRevokeIdentity},
		{"Signers/OneNamespace", testSignerNamespace},
		{"Concurrent/SignerID", testConcurrentSignerID},
		{"Concurrent/RootRevocation", testConcurrentRootRevocation},
		{"Revision", testTrustRevision},
	})
}

// RunCatalog is the suite of catalog.Store (artifacts, evidence,
// admission), run through the catalogue's rules.
func RunCatalog(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Artifacts/Create", testCreateArtifact},
		{"Artifacts/CreateDefaults", testCreateArtifactDefaults},
		{"Artifacts/CreateInvalid", testCreateArtifactInvalid},
		{"Artifacts/CreateIdempotent", testCreateArtifactIdempotent},
		{"Artifacts/CreateConflict", testCreateArtifactConflict},
		{"Artifacts/GetNotFound", testGetArtifactNotFound},
		{"Artifacts/List", testListArtifacts},
		{"Artifacts/ListCursorIsKeyset", testListArtifactsKeyset},
		{"Artifacts/ListInvalid", testListArtifactsInvalid},
		{"Artifacts/Names", testArtifactNames},
		{"Evidence/Add", testAddEvidence},
		{"Evidence/AddDefaults", testAddEvidenceDefaults},
		{"Evidence/AddIdempotent", testAddEvidenceIdempotent},
		{"Evidence/AddUnknownArtifact", testAddEvidenceUnknownArtifact},
		{"Evidence/AddInvalid", testAddEvidenceInvalid},
		{"Evidence/ClaimPresentation", testClaimPresentation},
		{"Admission/Admit", testSetAdmission},
		{"Admission/KeepState", testSetAdmissionKeepsState},
		{"Admission/Reject", testSetAdmissionReject},
		{"Admission/Conflict", testSetAdmissionConflict},
		{"Admission/NotFound", testSetAdmissionNotFound},
		{"Admission/Invalid", testSetAdmissionInvalid},
		{"Admission/Defaults", testSetAdmissionDefaults},
		{"Artifacts/Retire", testRetireArtifact},
		{"Concurrent/DistinctArtifacts", testConcurrentDistinct},
		{"Concurrent/SameVersionSameDigest", testConcurrentSameDigest},
		{"Concurrent/SameVersionDifferentDigests", testConcurrentDifferentDigests},
		{"Concurrent/ReadersAndWriters", testConcurrentReadersAndWriters},
		{"Concurrent/AddEvidence", testConcurrentAddEvidence},
		{"Concurrent/SetAdmission", testConcurrentSetAdmission},
		{"Concurrent/RetireArtifact", testConcurrentRetireArtifact},
	})
}

// RunReleases is the suite of lifecycle.Store (releases and settings),
// run through the lifecycle's rules.
func RunReleases(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Settings", testSettings},
		{"Settings/Modify", testModifySetting},
		{"Releases/Create", testCreateRelease},
		{"Releases/CreateDefaults", testCreateReleaseDefaults},
		{"Releases/CreateInvalid", testCreateReleaseInvalid},
		{"Releases/CreateDuplicate", testCreateReleaseDuplicate},
		{"Releases/GetNotFound", testGetReleaseNotFound},
		{"Releases/List", testListReleases},
		{"Releases/ListCursorIsKeyset", testListReleasesKeyset},
		{"Releases/ListInvalid", testListReleasesInvalid},
		{"Releases/Names", testReleaseNames},
		{"Releases/Update", testUpdateRelease},
		{"Releases/UpdateKeepsCreation", testUpdateReleaseKeepsCreation},
		{"Releases/UpdateConflict", testUpdateReleaseConflict},
		{"Releases/UpdateNotFound", testUpdateReleaseNotFound},
		{"Releases/UpdateInvalid", testUpdateReleaseInvalid},
		{"Releases/Containing", testReleasesContaining},
		{"Releases/Modify", testModifyRelease},
		{"Releases/ModifyNoChange", testModifyReleaseNoChange},
		{"Releases/ModifyFnError", testModifyReleaseFnError},
		{"Releases/ModifyNotFound", testModifyReleaseNotFound},
		{"Releases/ModifyKeepsIdentity", testModifyReleaseKeepsIdentity},
		{"Releases/ModifyReadsInTx", testModifyReleaseReadsInTx},
		{"Concurrent/CreateRelease", testConcurrentCreateRelease},
		{"Concurrent/UpdateRelease", testConcurrentUpdateRelease},
		{"Concurrent/ModifyRelease", testConcurrentModifyRelease},
	})
}

// RunAudit is the suite of audit.Store: the events every change records
// and the audit log over them.
func RunAudit(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Events/OnePerChange", testEventsOnePerChange},
		{"Events/Paging", testEventsPaging},
		{"Audit/Records", testAuditRecords},
		{"Audit/Proofs", testAuditProofs},
		{"Audit/Entries", testAuditEntries},
		{"Audit/EntriesLongLog", testAuditEntriesLongLog},
		{"Audit/EntriesFor", testAuditEntriesFor},
		{"Audit/Hashes", testAuditHashes},
		{"CancelledContext", testCancelledContext},
		{"Concurrent/AuditLog", testConcurrentAuditLog},
	})
}

// RunAccessLog is the suite of audit.AccessStore (the access log).
func RunAccessLog(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"AccessLog/Record", testRecordAccess},
		{"AccessLog/Filter", testAccessFilter},
		{"AccessLog/Paging", testAccessPaging},
		{"AccessLog/Invalid", testAccessInvalid},
		{"AccessLog/PruneByAge", testPruneAccessByAge},
		{"AccessLog/PruneByCount", testPruneAccessByCount},
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
func openStore(t *testing.T, open func(t *testing.T) releases.Metadata) (store, func()) {
	t.Helper()
	meta := open(t)
	if meta == nil {
		t.Fatal("open returned a nil store")
	}
	m := newStore(meta)
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

func testPing(t *testing.T, m store) {
	if err := m.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
