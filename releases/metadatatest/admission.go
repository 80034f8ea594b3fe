package metadatatest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// receipt is a signed envelope as the server issues it; the whitespace and
// key order are there to be kept.
const receipt = `{"payloadType": "application/vnd.in-toto+json",
 "payload": "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
 "signatures": [{"sig": "MEUCIQD", "keyid": "dml-server"}]}`

// admitted is a decision that admits, citing evidence, with a receipt.
func admitted(evidence ...digest.Digest) catalog.Admission {
	return catalog.Admission{
		State:         catalog.StateAdmitted,
		Rule:          "payments/*",
		Unmet:         []string{},
		PolicyVersion: 1,
		Evidence:      evidence,
		Receipt:       json.RawMessage(receipt),
		DecidedAt:     t0.Add(time.Minute),
	}
}

// pending is a decision that keeps an artifact in quarantine.
func pending(unmet ...string) catalog.Admission {
	return catalog.Admission{
		State:         catalog.StateQuarantined,
		Rule:          "payments/*",
		Unmet:         unmet,
		PolicyVersion: 1,
		DecidedAt:     t0.Add(30 * time.Second),
	}
}

func mustSetAdmission(t *testing.T, m store, a catalog.Artifact, from catalog.ArtifactState, adm catalog.Admission) catalog.Artifact {
	t.Helper()
	got, err := m.SetAdmission(t.Context(), admin, a.Name, a.Version, from, adm)
	if err != nil {
		t.Fatalf("SetAdmission(%s:%s, from %s to %s): %v", a.Name, a.Version, from, adm.State, err)
	}
	return got
}

// withAdmission is a as it must read after the decision adm.
func withAdmission(a catalog.Artifact, adm catalog.Admission) catalog.Artifact {
	a.State = adm.State
	a.Admission = &adm
	return a
}

// checkStored checks that GetArtifact and ListArtifacts both return want.
func checkStored(t *testing.T, m store, want catalog.Artifact) {
	t.Helper()
	got, err := m.GetArtifact(t.Context(), want.Name, want.Version)
	if err != nil {
		t.Fatalf("GetArtifact: %v", err)
	}
	checkArtifact(t, "GetArtifact", got, want)
	list, _, err := m.ListArtifacts(t.Context(), catalog.ArtifactFilter{Name: want.Name, State: want.State})
	if err != nil {
		t.Fatalf("ListArtifacts: %v", err)
	}
	for _, a := range list {
		if a.Version == want.Version {
			checkArtifact(t, "ListArtifacts", a, want)
			return
		}
	}
	t.Errorf("ListArtifacts(name %s, state %s) = %s; want it to include %s", want.Name, want.State, refs(list), want.Version)
}

func testSetAdmission(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.4.2", "bytes"))
	bystander := mustCreate(t, m, artifact("payments/api", "1.4.3", "other"))
	ev := evidenceFor(t, m, a, 2)
	adm := admitted(ev...)

	got := mustSetAdmission(t, m, a, catalog.StateQuarantined, adm)
	want := withAdmission(a, adm)
	checkArtifact(t, "SetAdmission", got, want)
	checkUTC(t, "DecidedAt", got.Admission.DecidedAt)
	if string(got.Admission.Receipt) != receipt {
		t.Errorf("receipt = %q; want %q byte for byte", got.Admission.Receipt, receipt)
	}
	checkStored(t, m, want)
	checkStored(t, m, bystander) // no decision, no Admission

	evs := checkEventCount(t, m, 5)
	checkEvent(t, evs[4], catalog.ActionAdmissionDecided, "payments/api:1.4.2", admin, map[string]any{
		"from":          "quarantined",
		"state":         "admitted",
		"rule":          adm.Rule,
		"unmet":         []any{},
		"reason":        "",
		"policyVersion": float64(1),
		"evidence":      jsonList(ev...),
		"receiptSha256": sha256Hex([]byte(receipt)),
	})
}

// testSetAdmissionKeepsState records decisions that leave the state as it
// was: each replaces the last and is recorded, and the artifact does not
// move.
func testSetAdmissionKeepsState(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	first := pending("a signature by ci", "a test-result attestation")
	checkArtifact(t, "first decision", mustSetAdmission(t, m, a, catalog.StateQuarantined, first), withAdmission(a, first))

	second := pending("a test-result attestation")
	second.PolicyVersion = 2
	second.DecidedAt = first.DecidedAt.Add(time.Minute)
	checkArtifact(t, "second decision", mustSetAdmission(t, m, a, catalog.StateQuarantined, second), withAdmission(a, second))
	checkStored(t, m, withAdmission(a, second))

	// Unmet and Evidence left nil are stored and recorded as empty lists.
	third := pending()
	third.Unmet, third.Evidence = nil, nil
	third.Rule = ""
	checkArtifact(t, "third decision", mustSetAdmission(t, m, a, catalog.StateQuarantined, third), withAdmission(a, third))

	evs := checkEventCount(t, m, 4)
	checkEvent(t, evs[2], catalog.ActionAdmissionDecided, "payments/api:1.0.0", admin, map[string]any{
		"from":          "quarantined",
		"state":         "quarantined",
		"rule":          "payments/*",
		"unmet":         jsonList(second.Unmet...),
		"reason":        "",
		"policyVersion": float64(2),
		"evidence":      []any{},
	})
	checkEvent(t, evs[3], catalog.ActionAdmissionDecided, "payments/api:1.0.0", admin, map[string]any{
		"from":          "quarantined",
		"state":         "quarantined",
		"rule":          "",
		"unmet":         []any{},
		"reason":        "",
		"policyVersion": float64(1),
		"evidence":      []any{},
	})
}

func testSetAdmissionReject(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	rej := catalog.Admission{
		State:         catalog.StateRejected,
		Rule:          "payments/*",
		Unmet:         []string{},
		Reason:        `test-result attestation by ci says "FAILED"`,
		PolicyVersion: 3,
		DecidedAt:     t0,
	}
	got := mustSetAdmission(t, m, a, catalog.StateQuarantined, rej)
	checkArtifact(t, "SetAdmission", got, withAdmission(a, rej))
	checkStored(t, m, withAdmission(a, rej))
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[1], catalog.ActionAdmissionDecided, "payments/api:1.0.0", admin, map[string]any{
		"from": "quarantined", "state": "rejected", "rule": rej.Rule, "unmet": []any{},
		"reason": rej.Reason, "policyVersion": float64(3), "evidence": []any{},
	})
}

// testSetAdmissionConflict checks the compare-and-set: a decision made
// against a state the artifact has left changes and records nothing, and
// says where the artifact is now.
func testSetAdmissionConflict(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	tests := []struct {
		name    string
		from    catalog.ArtifactState
		adm     catalog.Admission
		current catalog.ArtifactState
	}{
		{"admit from admitted while quarantined", catalog.StateAdmitted, admitted(), catalog.StateQuarantined},
		{"keep from rejected while quarantined", catalog.StateRejected, pending("x"), catalog.StateQuarantined},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.SetAdmission(t.Context(), admin, a.Name, a.Version, tc.from, tc.adm)
			checkErr(t, "SetAdmission", err, errdef.ErrConflict)
			if err != nil && !strings.Contains(err.Error(), string(tc.current)) {
				t.Errorf("error %q does not name the current state %s", err, tc.current)
			}
		})
	}
	checkStored(t, m, a)
	checkEventCount(t, m, 1)

	// Admitted now: a decision still based on quarantine loses.
	adm := admitted()
	admittedArtifact := mustSetAdmission(t, m, a, catalog.StateQuarantined, adm)
	_, err := m.SetAdmission(t.Context(), admin, a.Name, a.Version, catalog.StateQuarantined, pending("late"))
	checkErr(t, "SetAdmission from a stale state", err, errdef.ErrConflict)
	if err != nil && !strings.Contains(err.Error(), string(catalog.StateAdmitted)) {
		t.Errorf("error %q does not name the current state %s", err, catalog.StateAdmitted)
	}
	checkStored(t, m, admittedArtifact)
	checkEventCount(t, m, 2)
}

func testSetAdmissionNotFound(t *testing.T, m store) {
	mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	checkUnknown(t, "SetAdmission", slices.Concat(unknownArtifacts, []ref{{"", ""}}), func(t *testing.T, name, version string) error {
		_, err := m.SetAdmission(t.Context(), admin, name, version, catalog.StateQuarantined, admitted())
		return err
	})
	checkEventCount(t, m, 1)
}

func testSetAdmissionInvalid(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	tests := []struct {
		name   string
		from   catalog.ArtifactState
		mutate func(adm *catalog.Admission)
	}{
		{"unknown from", "pending", func(*catalog.Admission) {}},
		{"empty from", "", func(*catalog.Admission) {}},
		{"unknown state", catalog.StateQuarantined, func(adm *catalog.Admission) { adm.State = "pending" }},
		{"empty state", catalog.StateQuarantined, func(adm *catalog.Admission) { adm.State = "" }},
		{"negative policy version", catalog.StateQuarantined, func(adm *catalog.Admission) { adm.PolicyVersion = -1 }},
		{"malformed evidence digest", catalog.StateQuarantined, func(adm *catalog.Admission) {
			adm.Evidence = []digest.Digest{digest.FromString("ok"), "sha256:nope"}
		}},
		{"receipt not JSON", catalog.StateQuarantined, func(adm *catalog.Admission) { adm.Receipt = json.RawMessage(`{"payload":`) }},
		{"receipt not UTF-8", catalog.StateQuarantined, func(adm *catalog.Admission) { adm.Receipt = json.RawMessage("\"\xff\"") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adm := admitted()
			tc.mutate(&adm)
			_, err := m.SetAdmission(t.Context(), admin, a.Name, a.Version, tc.from, adm)
			checkErr(t, "SetAdmission", err, errdef.ErrInvalidInput)
		})
	}
	checkStored(t, m, a)
	checkEventCount(t, m, 1)
}

func testSetAdmissionDefaults(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	adm := admitted()
	adm.DecidedAt = time.Time{}
	before := time.Now()
	got := mustSetAdmission(t, m, a, catalog.StateQuarantined, adm)
	if got.Admission == nil {
		t.Fatal("Admission = nil after SetAdmission")
	}
	checkUTC(t, "DecidedAt", got.Admission.DecidedAt)
	if d := got.Admission.DecidedAt.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("DecidedAt = %v; want about %v", got.Admission.DecidedAt, before)
	}
	checkStored(t, m, got)
}
