package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/wire"
)

// edgeError is an error answer with its detail decoded into D.
func edgeError[D any](t *testing.T, raw json.RawMessage) (code, message string, detail D) {
	t.Helper()
	var eb wire.ErrorBody
	if err := json.Unmarshal(raw, &eb); err != nil || len(eb.Errors) != 1 {
		t.Fatalf("error body %s: %v", raw, err)
	}
	if len(eb.Errors[0].Detail) > 0 {
		if err := json.Unmarshal(eb.Errors[0].Detail, &detail); err != nil {
			t.Fatalf("detail %s: %v", eb.Errors[0].Detail, err)
		}
	}
	return eb.Errors[0].Code, eb.Errors[0].Message, detail
}

// Planning with an artifact in quarantine answers with a warning naming it
// and what it lacks; the build gate's refusal names it in its detail.
func TestPlanningAnswersWarnings(t *testing.T) {
	e := newRelEnv(t, false) // payments/api:1.4.2 quarantined
	name := e.nextName()
	var created wire.PlannedRelease
	if code := apiCall(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, createBody(name, nil), &created); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	wantWarning := func(what string, ws []wire.ArtifactStatus) {
		t.Helper()
		if len(ws) != 1 || ws[0].Name != "payments/api" || ws[0].Version != "1.4.2" || ws[0].State != "quarantined" ||
			len(ws[0].Unmet) == 0 || !strings.Contains(ws[0].Message, "payments/api:1.4.2") {
			t.Fatalf("%s warnings = %+v, want payments/api:1.4.2 quarantined with what it lacks", what, ws)
		}
	}
	wantWarning("create", created.Warnings)

	var set wire.PlannedRelease
	body, _ := json.Marshal(artifactsBody())
	if code := apiCall(t, http.MethodPut, e.releaseURL(name)+"/artifacts", e.rm, body, &set); code != http.StatusOK {
		t.Fatalf("set artifacts: %d", code)
	}
	wantWarning("set-artifacts", set.Warnings)

	e.approve(t, e.cab1, name, "plan")
	r := e.get(t, name)
	b, _ := json.Marshal(map[string]string{"gate": "build", "decision": "approve", "digest": r.gate(t, "build").ExpectedDigest})
	var raw json.RawMessage
	if code := apiCall(t, http.MethodPost, e.releaseURL(name)+"/approvals", e.cab1, b, &raw); code != http.StatusConflict {
		t.Fatalf("build gate: %d %s, want 409", code, raw)
	}
	code, msg, detail := edgeError[wire.BuildBlockedDetail](t, raw)
	if code != "BUILD_BLOCKED" || detail.Release != name || len(detail.Artifacts) != 1 || detail.Artifacts[0].Name != "payments/api" ||
		detail.Artifacts[0].State != "quarantined" || len(detail.Artifacts[0].Unmet) == 0 || !strings.Contains(msg, "payments/api:1.4.2") {
		t.Fatalf("build gate refusal %s %q %+v, want BUILD_BLOCKED naming payments/api:1.4.2 and what it lacks", code, msg, detail)
	}
}

// A rejected artifact is refused when a release names it, with a code and
// a detail that name it and its state.
func TestPlanningRefusesRejectedArtifact(t *testing.T) {
	e := newRelEnv(t, false)
	e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
	e.postBody(t, "attestations", fixture(t, "test-result-failed.dsse.json"))
	if a := e.artifact(t); a.State != "rejected" {
		t.Fatalf("artifact is %s, want rejected", a.State)
	}
	var raw json.RawMessage
	if code := apiCall(t, http.MethodPost, e.url+"/api/v1/releases", e.rm, createBody(e.nextName(), nil), &raw); code != http.StatusConflict {
		t.Fatalf("create with a rejected artifact: %d %s, want 409", code, raw)
	}
	code, msg, detail := edgeError[wire.ArtifactRefusedDetail](t, raw)
	if code != "ARTIFACT_REJECTED" || detail.Name != "payments/api" || detail.Version != "1.4.2" || detail.State != "rejected" ||
		!strings.Contains(msg, "payments/api:1.4.2 is rejected") {
		t.Fatalf("refusal %s %q %+v, want ARTIFACT_REJECTED naming payments/api:1.4.2", code, msg, detail)
	}
}

// A second approval by the same approver says it was already counted.
func TestRepeatedApprovalAnswersAlreadyCounted(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, map[string]any{"plan": map[string]int{"approvals": 2}})
	b, _ := json.Marshal(map[string]string{"gate": "plan", "decision": "approve", "digest": r.gate(t, "plan").ExpectedDigest})
	var first, again wire.DecidedRelease
	if code := apiCall(t, http.MethodPost, e.releaseURL(r.Name)+"/approvals", e.cab1, b, &first); code != http.StatusOK || first.AlreadyCounted {
		t.Fatalf("first approval: %d alreadyCounted=%v", code, first.AlreadyCounted)
	}
	var raw json.RawMessage
	if code := apiCall(t, http.MethodPost, e.releaseURL(r.Name)+"/approvals", e.cab1, b, &raw); code != http.StatusOK {
		t.Fatalf("repeated approval: %d %s", code, raw)
	}
	if err := json.Unmarshal(raw, &again); err != nil {
		t.Fatal(err)
	}
	if !again.AlreadyCounted || !strings.Contains(again.Message, "already counted") || again.Revision != first.Revision {
		t.Fatalf("repeated approval answered %s, want alreadyCounted with a message and the release unchanged", raw)
	}
}

// A refusal for want of a role names the caller's roles and the ones that
// would do, in the message and the detail.
func TestRoleRefusalNamesHaveAndNeed(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, nil)
	b, _ := json.Marshal(map[string]string{"gate": "plan", "decision": "approve", "digest": r.gate(t, "plan").ExpectedDigest})
	var raw json.RawMessage
	if code := apiCall(t, http.MethodPost, e.releaseURL(r.Name)+"/approvals", e.publisher, b, &raw); code != http.StatusForbidden {
		t.Fatalf("publisher approving: %d %s, want 403", code, raw)
	}
	code, msg, detail := edgeError[wire.RoleDetail](t, raw)
	if code != "DENIED" || !slices.Equal(detail.Have, []string{"publisher"}) || !slices.Equal(detail.Need, []string{"approver"}) {
		t.Fatalf("refusal %s %q %+v, want DENIED with have [publisher] need [approver]", code, msg, detail)
	}
	if want := "needs the approver role; your token has: publisher"; !strings.Contains(msg, want) {
		t.Errorf("message %q lacks %q", msg, want)
	}
}

// A name that is not found is answered with the close names that are.
func TestNotFoundSuggestsCloseNames(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, nil) // rel-1
	for _, tc := range []struct{ url, want string }{
		{e.url + "/api/v1/artifacts/payments/ap/versions/1.4.2", "payments/api"},
		{e.url + "/api/v1/artifacts/payments/api/versions/1.4.3", "payments/api:1.4.2"},
		{e.releaseURL("rel-l"), r.Name},
	} {
		var raw json.RawMessage
		if code := apiCall(t, http.MethodGet, tc.url, e.rm, nil, &raw); code != http.StatusNotFound {
			t.Fatalf("GET %s: %d %s, want 404", tc.url, code, raw)
		}
		code, msg, detail := edgeError[wire.NotFoundDetail](t, raw)
		if code != "NOT_FOUND" || !slices.Contains(detail.Suggestions, tc.want) || !strings.Contains(msg, "did you mean "+tc.want+"?") {
			t.Errorf("GET %s: %s %q %+v, want a suggestion of %s", tc.url, code, msg, detail, tc.want)
		}
	}
}

// Revoking a token by its name, or a key by a misspelt id, is answered
// with the id meant.
func TestRevokeUnknownSuggests(t *testing.T) {
	e := newRelEnv(t, true) // trusts key "ci"; a token is named "rm"
	for _, tc := range []struct{ method, url, want string }{
		{http.MethodDelete, e.url + "/api/v1/tokens/rm", "tok_"},
		{http.MethodPost, e.url + "/api/v1/trust/keys/cj/revoke", "ci"},
	} {
		var raw json.RawMessage
		if code := apiCall(t, tc.method, tc.url, e.admin, nil, &raw); code != http.StatusNotFound {
			t.Fatalf("%s %s: %d %s, want 404", tc.method, tc.url, code, raw)
		}
		code, msg, detail := edgeError[wire.NotFoundDetail](t, raw)
		if code != "NOT_FOUND" || len(detail.Suggestions) != 1 || !strings.HasPrefix(detail.Suggestions[0], tc.want) ||
			!strings.Contains(msg, "did you mean "+detail.Suggestions[0]+"?") {
			t.Errorf("%s %s: %s %q %+v, want a suggestion starting %q", tc.method, tc.url, code, msg, detail, tc.want)
		}
	}
}

// Cancelling without a reason is refused; the reason is kept.
func TestCancelWithoutReasonRefused(t *testing.T) {
	e := newRelEnv(t, true)
	r := e.create(t, nil)
	for _, body := range [][]byte{nil, []byte(`{}`), []byte(`{"reason":"  "}`)} {
		var raw json.RawMessage
		if code := apiCall(t, http.MethodPost, e.releaseURL(r.Name)+"/cancel", e.rm, body, &raw); code != http.StatusBadRequest {
			t.Fatalf("cancel with body %q: %d %s, want 400", body, code, raw)
		}
		if code, msg, _ := edgeError[struct{}](t, raw); code != "REASON_REQUIRED" || !strings.Contains(msg, "reason") {
			t.Errorf("cancel with body %q: %s %q, want REASON_REQUIRED", body, code, msg)
		}
	}
	wantState(t, "after refused cancels", e.get(t, r.Name), "planning")
	code, got, ev := e.cancel(t, r.Name)
	if code != http.StatusOK {
		t.Fatalf("cancel with a reason: %d %+v", code, ev)
	}
	wantState(t, "cancel", got, "cancelled")
}
