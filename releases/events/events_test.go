package events_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// world is the domain over real storage with one admitted artifact and
// the principals a release needs.
type world struct {
	*domaintest.Env
	pipeline, rm, cab, cab2, staging, prod access.Principal
}

func newWorld(t *testing.T) *world {
	t.Helper()
	env := domaintest.NewEnv(t)
	w := &world{Env: env}
	w.pipeline = env.Principal("pipeline", nil, access.RolePublisher)
	w.rm = env.Principal("rm", nil, access.RoleReleaseManager)
	w.cab = env.Principal("cab-1", nil, access.RoleApprover)
	w.cab2 = env.Principal("cab-2", nil, access.RoleApprover)
	w.staging = env.Principal("deploy-staging", []string{"staging"}, access.RoleDeployer)
	w.prod = env.Principal("deploy-prod", []string{"production"}, access.RoleDeployer)
	env.TrustCI()
	content := domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz")
	if _, _, err := env.DML.Catalog.Push(env.Ctx, w.pipeline, catalog.PushRequest{Name: "payments/api", Version: "1.4.2",
		MediaType: "application/gzip", Size: int64(len(content)), Body: bytes.NewReader(content)}); err != nil {
		t.Fatal(err)
	}
	sig := `{"keyId":"ci","signature":"` + strings.TrimSpace(string(domaintest.Fixture(t, "cosign/payments-api-1.4.2.tar.gz.sig"))) + `"}`
	if _, _, err := env.DML.Catalog.AddEvidence(env.Ctx, w.pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "1.4.2",
		Kind: catalog.EvidenceSignature, Body: []byte(sig)}); err != nil {
		t.Fatal(err)
	}
	if _, a, err := env.DML.Catalog.AddEvidence(env.Ctx, w.pipeline, catalog.EvidenceRequest{Name: "payments/api", Version: "1.4.2",
		Kind: catalog.EvidenceAttestation, Body: domaintest.Fixture(t, "cosign/test-result-passed.dsse.json")}); err != nil || a.State != catalog.StateAdmitted {
		t.Fatalf("admission: %v, %v", a.State, err)
	}
	return w
}

func (w *world) approve(p access.Principal, name, gate string) {
	w.T.Helper()
	r, err := w.DML.Releases.Release(w.Ctx, name)
	if err != nil {
		w.T.Fatal(err)
	}
	d, err := w.DML.Releases.ExpectedDigest(w.Ctx, r, gate)
	if err != nil {
		w.T.Fatal(err)
	}
	if _, err := w.DML.Releases.Decide(w.Ctx, p, name, lifecycle.ApprovalRequest{Gate: gate, Decision: lifecycle.DecisionApprove, Digest: d, Comment: "ok"}); err != nil {
		w.T.Fatalf("approve %s of %s: %v", gate, name, err)
	}
}

// runRelease takes release name from creation to closed, staging then
// production, one approval per gate but two for the plan.
func (w *world) runRelease(name string) {
	t := w.T
	t.Helper()
	ctx, svc := w.Ctx, w.DML.Releases
	if _, err := svc.CreateRelease(ctx, w.rm, lifecycle.CreateReleaseRequest{Name: name,
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-1", Title: "t", Environments: []string{"staging", "production"},
			Plan: lifecycle.PlanDetails{Description: "d", BackoutPlan: "b", Risk: "low"}},
		Gates:     map[string]lifecycle.GateSetting{lifecycle.GatePlan: {Approvals: 2}},
		Artifacts: []lifecycle.ReleaseArtifactRef{{Name: "payments/api", Version: "1.4.2"}}}); err != nil {
		t.Fatal(err)
	}
	w.approve(w.cab, name, lifecycle.GatePlan)
	w.approve(w.cab2, name, lifecycle.GatePlan)
	w.approve(w.cab, name, lifecycle.GateBuild)
	w.approve(w.cab, name, lifecycle.DeployGate("staging"))
	if _, _, err := svc.RecordDeployment(ctx, w.staging, name, lifecycle.DeploymentRequest{Environment: "staging", Target: "k8s", Status: lifecycle.DeploymentInProgress}); err != nil {
		t.Fatal(err)
	}
	r, _ := svc.Release(ctx, name)
	if _, _, err := svc.UpdateDeployment(ctx, w.staging, name, r.Deployments[0].ID, lifecycle.DeploymentUpdate{Status: lifecycle.DeploymentSucceeded}); err != nil {
		t.Fatal(err)
	}
	w.approve(w.cab, name, lifecycle.DeployGate("production"))
	if _, _, err := svc.RecordDeployment(ctx, w.prod, name, lifecycle.DeploymentRequest{Environment: "production", Target: "k8s", Status: lifecycle.DeploymentSucceeded}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.FileReview(ctx, w.rm, name, lifecycle.ReviewRequest{Outcome: "successful", Summary: "fine", ObjectivesMet: true}); err != nil {
		t.Fatal(err)
	}
	w.approve(w.cab, name, lifecycle.GateClose)
}

// stream reads every event f selects, page by page.
func (w *world) stream(f events.Filter) []events.Event {
	w.T.Helper()
	var out []events.Event
	q := events.Query{Filter: f, Limit: 7}
	for range 1000 {
		page, err := w.DML.Events.Events(w.Ctx, w.rm, q)
		if err != nil {
			w.T.Fatal(err)
		}
		out = append(out, page.Events...)
		if len(page.Events) == 0 {
			return out
		}
		q.Since = page.Next
	}
	w.T.Fatal("stream did not end")
	return nil
}

// describe is "type gate" per event, for comparisons.
func describe(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		var d struct {
			Gate string `json:"gate"`
		}
		_ = json.Unmarshal(e.Data, &d)
		out[i] = strings.TrimSpace(e.Type + " " + d.Gate)
	}
	return out
}

// A release's life gives the friendly events the issue names, in order:
// gates opened, approved and passed, the seal and the close that the
// audit log records inside approvals.
func TestReleaseLifeAsEvents(t *testing.T) {
	w := newWorld(t)
	w.runRelease("r1")
	got := describe(w.stream(events.Filter{Match: []string{"r1"}}))
	want := []string{
		"release.created", "gate.opened plan",
		"gate.approved plan",
		"gate.approved plan", "gate.passed plan", "gate.opened build",
		"gate.approved build", "gate.passed build", "release.sealed build", "gate.opened deploy:staging", "gate.opened deploy:production",
		"gate.approved deploy:staging", "gate.passed deploy:staging",
		"deployment.recorded", "deployment.updated",
		"gate.approved deploy:production", "gate.passed deploy:production",
		"deployment.recorded",
		"review.filed", "gate.opened close",
		"gate.approved close", "gate.passed close", "release.closed close",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events of release r1:\n got %q\nwant %q", got, want)
	}
}

// Every public event keeps the audit event's time, subject and actor, has
// an ID SEQ.N in stream order, and data naming what it concerns.
func TestEventsCarryTheAuditRecord(t *testing.T) {
	w := newWorld(t)
	w.runRelease("r1")
	all := w.stream(events.Filter{})
	var audited []audit.Event
	var after int64
	for range 1000 { // bounded: the test records far fewer pages
		page, err := w.Meta.Audit().Events(w.Ctx, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		audited = append(audited, page...)
		after = page[len(page)-1].Seq
	}
	i := 0
	for _, ae := range audited {
		n := 0
		for ; i < len(all) && all[i].Position.Seq == ae.Seq; i++ {
			e := all[i]
			if e.ID != fmt.Sprintf("%d.%d", ae.Seq, n) {
				t.Errorf("event %d of seq %d has id %s", n, ae.Seq, e.ID)
			}
			if !e.Time.Equal(ae.Time) || e.Subject != ae.Subject || e.Principal.Name != ae.Actor.Name || e.Principal.TokenID != ae.Actor.TokenID {
				t.Errorf("event %s = %+v; audit event %+v", e.ID, e, ae)
			}
			n++
		}
		if n == 0 {
			t.Errorf("audit event %d (%s) gave no public event", ae.Seq, ae.Action)
		}
	}
	if i != len(all) {
		t.Errorf("%d events do not follow the audit log", len(all)-i)
	}
	for _, e := range all {
		var d map[string]any
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("event %s data %s: %v", e.ID, e.Data, err)
		}
		switch {
		case strings.HasPrefix(e.Subject, "release:"):
			if d["release"] != strings.TrimPrefix(e.Subject, "release:") {
				t.Errorf("event %s %s: data.release = %v", e.ID, e.Type, d["release"])
			}
		case strings.HasPrefix(e.Type, "artifact.") || strings.HasPrefix(e.Type, "evidence."):
			if d["name"] != "payments/api" || d["version"] != "1.4.2" {
				t.Errorf("event %s %s: data name/version = %v/%v", e.ID, e.Type, d["name"], d["version"])
			}
		}
	}
	// The seal names the manifest the release records.
	r, _ := w.DML.Releases.Release(w.Ctx, "r1")
	sealed := w.stream(events.Filter{Types: []string{events.TypeReleaseSealed}})
	if len(sealed) != 1 || !strings.Contains(string(sealed[0].Data), `"manifestDigest":"`+r.ManifestDigest.String()+`"`) {
		t.Errorf("release.sealed = %s; want manifestDigest %s", describeData(sealed), r.ManifestDigest)
	}
}

func describeData(evs []events.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s %s\n", e.ID, e.Type, e.Data)
	}
	return b.String()
}

// Admission decisions are artifact.quarantined, .admitted and .rejected;
// other actions pass through under their own name.
func TestArtifactAndPassThroughEvents(t *testing.T) {
	w := newWorld(t)
	got := describe(w.stream(events.Filter{Match: []string{"payments/*"}}))
	// Admission is recorded when it changes the state: here, when the
	// attestation completes the policy.
	want := []string{"artifact.pushed", "evidence.added", "evidence.added", "artifact.admitted"}
	if !slices.Equal(got, want) {
		t.Errorf("artifact events:\n got %q\nwant %q", got, want)
	}
	trust := describe(w.stream(events.Filter{Types: []string{"trust.*"}}))
	if !slices.Equal(trust, []string{"trust.key.added", "trust.policy.set"}) {
		t.Errorf("trust events = %q", trust)
	}
	tokens := w.stream(events.Filter{Types: []string{"token.issued"}})
	if len(tokens) != 7 {
		t.Errorf("%d token.issued events; want 7 (the bootstrap admin's and one per principal)", len(tokens))
	}

	// A rejection.
	rejected := audit.Event{Seq: 9, Action: catalog.ActionAdmissionDecided, Subject: "payments/api:2.0.0", Details: json.RawMessage(`{"state":"rejected","unmet":["x"]}`)}
	if evs := events.Public(rejected); len(evs) != 1 || evs[0].Type != events.TypeArtifactRejected || !strings.Contains(string(evs[0].Data), `"unmet":["x"]`) {
		t.Errorf("Public(rejected admission) = %s", describeData(evs))
	}
	// Details that are not an object are kept whole, under "details".
	set := audit.Event{Seq: 10, Action: lifecycle.ActionSettingSet, Subject: "gates", Details: json.RawMessage(`[1,2]`)}
	if evs := events.Public(set); len(evs) != 1 || evs[0].Type != "settings.set" || string(evs[0].Data) != `{"details":[1,2]}` {
		t.Errorf("Public(settings.set) = %s", describeData(evs))
	}
	// A person's single sign-on identity travels with the event.
	signedIn := audit.Event{Seq: 12, Action: lifecycle.ActionReleaseCancelled, Subject: "release:r9",
		Actor: access.Actor{TokenID: "tok_1", Name: "fay@example.com", Issuer: "https://idp.example.com/", Subject: "u-fay"}}
	if evs := events.Public(signedIn); len(evs) != 1 || evs[0].Principal != (events.Principal{Name: "fay@example.com", TokenID: "tok_1", Issuer: "https://idp.example.com/", Subject: "u-fay"}) {
		t.Errorf("Public(event of a signed-in person) = %+v", evs)
	}
	// An action nobody mapped yet is published as it is.
	other := audit.Event{Seq: 11, Action: "retention.deleted", Subject: "payments/api:0.1.0"}
	if evs := events.Public(other); len(evs) != 1 || evs[0].Type != "retention.deleted" || evs[0].ID != "11.0" {
		t.Errorf("Public(unknown action) = %s", describeData(evs))
	}
}

// A rejected gate is gate.rejected, and nothing passes.
func TestRejectionEvent(t *testing.T) {
	w := newWorld(t)
	if _, err := w.DML.Releases.CreateRelease(w.Ctx, w.rm, lifecycle.CreateReleaseRequest{Name: "r2",
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-2", Title: "t", Environments: []string{"staging"},
			Plan: lifecycle.PlanDetails{Description: "d", BackoutPlan: "b", Risk: "low"}},
		Artifacts: []lifecycle.ReleaseArtifactRef{{Name: "payments/api", Version: "1.4.2"}}}); err != nil {
		t.Fatal(err)
	}
	r, _ := w.DML.Releases.Release(w.Ctx, "r2")
	if _, err := w.DML.Releases.Decide(w.Ctx, w.cab, "r2", lifecycle.ApprovalRequest{Gate: lifecycle.GatePlan, Decision: lifecycle.DecisionReject, Digest: r.PlanDigest, Comment: "no"}); err != nil {
		t.Fatal(err)
	}
	got := describe(w.stream(events.Filter{Match: []string{"r2"}}))
	if want := []string{"release.created", "gate.opened plan", "gate.rejected plan"}; !slices.Equal(got, want) {
		t.Errorf("events = %q; want %q", got, want)
	}
}

func TestFilter(t *testing.T) {
	deploy := events.Event{Type: "deployment.recorded", Names: []string{"r1"}, Environments: []string{"production"}}
	token := events.Event{Type: "token.issued"}
	artifact := events.Event{Type: "artifact.admitted", Names: []string{"payments/api"}}
	tests := []struct {
		name string
		f    events.Filter
		want []bool // deploy, token, artifact
	}{
		{"everything", events.Filter{}, []bool{true, true, true}},
		{"star", events.Filter{Types: []string{"*"}}, []bool{true, true, true}},
		{"exact type", events.Filter{Types: []string{"token.issued"}}, []bool{false, true, false}},
		{"prefix", events.Filter{Types: []string{"artifact.*", "deployment.*"}}, []bool{true, false, true}},
		{"prefix is whole words", events.Filter{Types: []string{"art.*"}}, []bool{false, false, false}},
		{"name pattern", events.Filter{Match: []string{"payments/*"}}, []bool{false, false, true}},
		{"name doublestar", events.Filter{Match: []string{"payments/**"}}, []bool{false, false, true}},
		{"release name", events.Filter{Match: []string{"r*"}}, []bool{true, false, false}},
		{"environment", events.Filter{Environments: []string{"production"}}, []bool{true, false, false}},
		{"other environment", events.Filter{Environments: []string{"staging"}}, []bool{false, false, false}},
		{"all must hold", events.Filter{Types: []string{"deployment.*"}, Environments: []string{"staging"}}, []bool{false, false, false}},
	}
	for _, tc := range tests {
		for i, e := range []events.Event{deploy, token, artifact} {
			if got := tc.f.Matches(e); got != tc.want[i] {
				t.Errorf("%s: Matches(%s) = %v; want %v", tc.name, e.Type, got, tc.want[i])
			}
		}
	}
	for _, bad := range []events.Filter{
		{Types: []string{""}}, {Types: []string{"Gate.Opened"}}, {Types: []string{"gate.*.x"}}, {Types: []string{"gate*"}},
		{Match: []string{"a//b"}}, {Match: []string{"[a"}}, {Match: []string{"a**"}},
		{Environments: []string{" prod"}}, {Environments: []string{"pr*d"}}, {Types: slices.Repeat([]string{"x"}, 65)},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", bad)
		}
	}
	if err := (events.Filter{Types: []string{"gate.*", "*", "trust.key.added"}, Match: []string{"payments/**"}, Environments: []string{"prod-eu"}}).Validate(); err != nil {
		t.Errorf("Validate(valid) = %v", err)
	}
}

func TestSignature(t *testing.T) {
	secret, body := []byte("s3cret-s3cret-s3cret"), []byte(`{"id":"1.0"}`)
	at := time.Unix(1700000000, 0)
	h := events.Sign(secret, body, at)
	if !strings.HasPrefix(h, "t=1700000000,v1=") || len(h) != len("t=1700000000,v1=")+64 {
		t.Fatalf("Sign = %q", h)
	}
	if err := events.Verify(h, secret, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("Verify(own signature) = %v", err)
	}
	for name, check := range map[string]error{
		"other body":   events.Verify(h, secret, []byte(`{"id":"2.0"}`), at, 0),
		"other secret": events.Verify(h, []byte("other-secret-other"), body, at, 0),
		"too old":      events.Verify(h, secret, body, at.Add(time.Hour), 5*time.Minute),
		"other time":   events.Verify(strings.Replace(h, "t=1700000000", "t=1700000001", 1), secret, body, at, 0),
		"malformed":    events.Verify("v1=abc", secret, body, at, 0),
	} {
		if check == nil {
			t.Errorf("Verify with %s = nil; want an error", name)
		}
	}
}

func TestPosition(t *testing.T) {
	for in, want := range map[string]string{"": "0", "12": "12", "12.0": "12.0", "12.3": "12.3"} {
		p, err := events.ParsePosition(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePosition(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"x", "-1", "1.x", "1.-1", "1.2.3", "evt-1"} {
		if _, err := events.ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) succeeded", bad)
		}
	}
	a, _ := events.ParsePosition("12.1")
	b, _ := events.ParsePosition("12")
	if !b.After(a) || a.After(b) {
		t.Errorf("12 should come after 12.1")
	}
}

func TestValidateURL(t *testing.T) {
	for _, ok := range []string{"https://hooks.example.com/dml", "http://127.0.0.1:9000/x", "http://[::1]/x", "http://localhost:1/"} {
		if err := events.ValidateURL(ok); err != nil {
			t.Errorf("ValidateURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "hooks.example.com", "http://hooks.example.com/", "ftp://x/", "https://user:pw@x/", "https:///x", "https://x/#f", "https://x/\n"} {
		if err := events.ValidateURL(bad); err == nil {
			t.Errorf("ValidateURL(%q) = nil; want an error", bad)
		}
	}
}

// Only admins manage webhooks; the secret is stored sealed; bad input is
// refused with what is wrong.
func TestWebhookAdministration(t *testing.T) {
	w := newWorld(t)
	req := events.WebhookRequest{URL: "https://hooks.example.com/dml", Secret: "0123456789abcdef-secret", Filter: events.Filter{Types: []string{"gate.*"}}}
	if _, err := w.DML.Events.CreateWebhook(w.Ctx, w.rm, req); err == nil {
		t.Fatal("a release manager created a webhook")
	}
	hook, err := w.DML.Events.CreateWebhook(w.Ctx, w.Admin, req)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(hook.SealedSecret, []byte(req.Secret)) || len(hook.SealedSecret) == 0 {
		t.Error("the stored secret holds the plain secret")
	}
	stored, err := w.Meta.Webhooks().Webhook(w.Ctx, hook.ID)
	if err != nil || bytes.Contains(stored.SealedSecret, []byte(req.Secret)) {
		t.Errorf("stored webhook: %v (secret sealed: %v)", err, !bytes.Contains(stored.SealedSecret, []byte(req.Secret)))
	}
	for name, bad := range map[string]events.WebhookRequest{
		"short secret":   {URL: req.URL, Secret: "short"},
		"plain http":     {URL: "http://hooks.example.com/", Secret: req.Secret},
		"bad event type": {URL: req.URL, Secret: req.Secret, Filter: events.Filter{Types: []string{"Gate"}}},
	} {
		if _, err := w.DML.Events.CreateWebhook(w.Ctx, w.Admin, bad); err == nil {
			t.Errorf("%s: created", name)
		}
	}
	created := w.stream(events.Filter{Types: []string{"webhook.*"}})
	if len(created) != 1 || created[0].Subject != hook.ID || strings.Contains(string(created[0].Data), req.Secret) {
		t.Errorf("webhook events = %s", describeData(created))
	}
	if err := w.DML.Events.DeleteWebhook(w.Ctx, w.Admin, hook.ID); err != nil {
		t.Fatal(err)
	}
	if got := describe(w.stream(events.Filter{Types: []string{"webhook.*"}})); !slices.Equal(got, []string{"webhook.created", "webhook.deleted"}) {
		t.Errorf("webhook events = %q", got)
	}
}

// A long-poll answers as soon as an event is written, and an empty page
// with the position reached when the wait ends.
func TestLongPoll(t *testing.T) {
	w := newWorld(t)
	latest, err := w.DML.Events.Events(w.Ctx, w.rm, events.Query{Latest: true})
	if err != nil || len(latest.Events) != 0 {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	got := make(chan events.Page, 1)
	go func() {
		page, err := w.DML.Events.Events(w.Ctx, w.rm, events.Query{Since: latest.Next, Wait: events.MaxWait, Filter: events.Filter{Types: []string{"token.*"}}})
		if err != nil {
			t.Error(err)
		}
		got <- page
	}()
	w.Principal("late", nil, access.RoleAuditor)
	select {
	case page := <-got:
		if len(page.Events) != 1 || page.Events[0].Type != access.ActionTokenIssued {
			t.Errorf("long-poll = %s", describeData(page.Events))
		}
	case <-time.After(events.MaxWait + time.Minute):
		t.Fatal("the long-poll did not answer")
	}
	// Nothing after the last: the wait ends empty, at the same place.
	end, err := w.DML.Events.Events(w.Ctx, w.rm, events.Query{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	page, err := w.DML.Events.Events(w.Ctx, w.rm, events.Query{Since: end.Next, Wait: time.Millisecond})
	if err != nil || len(page.Events) != 0 || page.Next != end.Next {
		t.Errorf("empty wait = %+v, %v; want nothing at %s", page, err, end.Next)
	}
	if _, err := w.DML.Events.Events(w.Ctx, w.rm, events.Query{Wait: events.MaxWait + time.Second}); err == nil {
		t.Error("a wait above the maximum was accepted")
	}
}

// A filtered read does not stop at the first page of the log that holds
// no match: an empty answer means nothing after since matches.
func TestFilteredReadScansPastEmptyPages(t *testing.T) {
	w := newWorld(t)
	for i := range 600 {
		if _, err := w.DML.Access.IssueToken(w.Ctx, w.Admin, access.TokenRequest{Name: fmt.Sprintf("t-%d", i), Roles: []access.Role{access.RoleAuditor}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.DML.Events.CreateWebhook(w.Ctx, w.Admin, events.WebhookRequest{URL: "https://hooks.example.com/", Secret: "0123456789abcdef-x"}); err != nil {
		t.Fatal(err)
	}
	page, err := w.DML.Events.Events(w.Ctx, w.rm, events.Query{Filter: events.Filter{Types: []string{events.ActionWebhookCreated}}})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("first read = %s, %v; want the webhook's creation, 600 events in", describeData(page.Events), err)
	}
	next, err := w.DML.Events.Events(w.Ctx, w.rm, events.Query{Since: page.Next, Filter: events.Filter{Types: []string{events.ActionWebhookCreated}}})
	if err != nil || len(next.Events) != 0 || next.Next != page.Next {
		t.Errorf("read after it = %+v, %v; want nothing, at the same place", next, err)
	}
}

// TestSignByHand: the signature (of webhook deliveries and of questions to
// the change system) is t=UNIX,v1=hex(HMAC-SHA256(secret, UNIX.body)),
// what a receiver computes with nothing but the standard library.
func TestSignByHand(t *testing.T) {
	at := time.Unix(1764460800, 0)
	body := []byte(`{"changeRef":"CHG1"}`)
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write([]byte("1764460800." + string(body)))
	want := "t=1764460800,v1=" + hex.EncodeToString(mac.Sum(nil))
	if got := events.Sign([]byte("k"), body, at); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}
