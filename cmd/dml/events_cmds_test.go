package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/events"
)

// describeReceipts is "type gate/environment" per acknowledged request.
func describeReceipts(t *testing.T, rs []receipt) []string {
	var out []string
	for _, r := range rs {
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Gate        string `json:"gate"`
				Environment string `json:"environment"`
				Name        string `json:"name"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(ev.Type+" "+ev.Data.Gate+ev.Data.Environment+ev.Data.Name))
	}
	return out
}

// TestWebhookFilters: each webhook receives exactly the events its types,
// name patterns and environments select, the same the stream gives a
// poller with that filter.
func TestWebhookFilters(t *testing.T) {
	const secret = "filters-secret-0123456789abcdef"
	serverURL, admin, svc := cliEnvDML(t, testserver.WithDispatcher(events.DispatchConfig{Poll: 20 * time.Millisecond, Backoff: 10 * time.Millisecond}))
	c, err := client.New(serverURL, admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name string
		req  wire.WebhookRequest
		want []string
	}{
		{"gates", wire.WebhookRequest{Events: []string{"gate.*"}, Match: []string{"2026.*"}}, []string{
			"gate.opened plan", "gate.approved plan", "gate.passed plan", "gate.opened build",
			"gate.approved build", "gate.passed build", "gate.opened deploy:staging", "gate.opened deploy:production",
			"gate.approved deploy:staging", "gate.passed deploy:staging",
			"gate.approved deploy:production", "gate.approved deploy:production", "gate.passed deploy:production",
			"gate.opened close", "gate.approved close", "gate.passed close",
		}},
		{"artifacts", wire.WebhookRequest{Match: []string{"payments/*"}}, []string{
			"artifact.pushed payments/api", "evidence.added payments/api", "evidence.added payments/api", "artifact.admitted payments/api",
		}},
		{"staging", wire.WebhookRequest{Environments: []string{"staging"}}, []string{
			"gate.opened deploy:staging", "gate.approved deploy:staging", "gate.passed deploy:staging", "deployment.recorded staging",
		}},
		{"release milestones", wire.WebhookRequest{Events: []string{"release.sealed", "release.closed"}}, []string{
			"release.sealed build", "release.closed close",
		}},
	}
	receivers := make([]*receiver, len(cases))
	hooks := make([]wire.Webhook, len(cases))
	for i, tc := range cases {
		receivers[i] = newReceiver(t, secret, http.StatusOK)
		tc.req.URL, tc.req.Secret = receivers[i].srv.URL, secret
		if hooks[i], err = c.Webhooks().Create(ctx, tc.req); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	testserver.FullLifecycle(t, svc)
	for i, tc := range cases {
		got := describeReceipts(t, receivers[i].waitFor(tc.name, func(rs []receipt) bool { return len(rs) >= len(tc.want) }))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s received:\n %q\nwant\n %q", tc.name, got, tc.want)
		}
		// The poller with the same filter reads the same events.
		page, err := c.Events().List(ctx, client.EventQuery{Types: tc.req.Events, Match: tc.req.Match, Environments: tc.req.Environments, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var polled []string
		for _, e := range page.Events {
			polled = append(polled, e.ID)
		}
		var received []string
		for _, r := range receivers[i].got {
			received = append(received, r.eventID)
		}
		if !slices.Equal(polled, received) {
			t.Errorf("%s: the stream gives %v, the webhook got %v", tc.name, polled, received)
		}
	}
	// The webhooks' own creation reaches the stream, and no filter above
	// selected it.
	page, err := c.Events().List(ctx, client.EventQuery{Types: []string{"webhook.created"}})
	if err != nil || len(page.Events) != len(cases) {
		t.Errorf("webhook.created events: %+v, %v", page.Events, err)
	}
}

// TestEventsPollAndLongPoll: ?since= pages through the stream; a
// long-poll answers when the next event is written; any role reads it.
func TestEventsPollAndLongPoll(t *testing.T) {
	serverURL, admin, svc := cliEnvDML(t)
	auditorToken := testserver.Token(t, svc, "reader", "auditor")
	c, _ := client.New(serverURL, auditorToken)
	ctx := context.Background()
	all := streamAfter(t, c, "")
	if len(all) == 0 || all[0].Type != "token.issued" {
		t.Fatalf("stream = %+v", all)
	}
	// Paging by one gives the same events.
	var paged []wire.Event
	since := ""
	for range 100 {
		page, err := c.Events().List(ctx, client.EventQuery{Since: since, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		paged = append(paged, page.Events...)
		since = page.Next
	}
	if len(paged) != len(all) || paged[len(paged)-1].ID != all[len(all)-1].ID {
		t.Errorf("paging by one gave %d events; want %d", len(paged), len(all))
	}

	latest, err := c.Events().List(ctx, client.EventQuery{Since: "latest"})
	if err != nil || len(latest.Events) != 0 || latest.Next != all[len(all)-1].ID[:strings.Index(all[len(all)-1].ID, ".")] {
		t.Fatalf("since=latest = %+v, %v", latest, err)
	}
	polled := make(chan wire.EventPage, 1)
	go func() {
		page, err := c.Events().List(ctx, client.EventQuery{Since: latest.Next, Wait: 5 * time.Minute, Types: []string{"token.*"}})
		if err != nil {
			t.Error(err)
		}
		polled <- page
	}()
	adminClient, _ := client.New(serverURL, admin)
	issued, err := adminClient.Tokens().Create(ctx, wire.TokenRequest{Name: "late", Roles: []string{"auditor"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case page := <-polled:
		if len(page.Events) != 1 || page.Events[0].Type != "token.issued" || page.Events[0].Subject != issued.ID {
			t.Errorf("long-poll answered %+v", page.Events)
		}
	case <-time.After(6 * time.Minute):
		t.Fatal("the long-poll never answered")
	}

	for _, bad := range []client.EventQuery{{Since: "x"}, {Types: []string{"Bad Type"}}, {Wait: 10 * time.Minute}} {
		_, err := c.Events().List(ctx, bad)
		if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
			t.Errorf("query %+v: %v; want 400", bad, err)
		}
	}
	// Webhooks are the admins'.
	if _, err := c.Webhooks().List(ctx); err == nil {
		t.Error("an auditor listed webhooks")
	}
	if _, err := adminClient.Webhooks().Create(ctx, wire.WebhookRequest{URL: "http://hooks.example.com/", Secret: "0123456789abcdef0"}); err == nil ||
		!strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain http to a remote host: %v; want refused, naming loopback", err)
	}
}

// TestWaitingCommands: push --wait-admitted and release wait block until
// the state comes, fail at once when it cannot, and time out.
func TestWaitingCommands(t *testing.T) {
	serverURL, admin, svc := cliEnvDML(t)
	t.Setenv("COSIGN_PASSWORD", "")
	pkg, key, pub := fixturePath(fixtureArtifact), fixturePath("cosign.key"), fixturePath("cosign.pub")
	mustRunCLI(t, "trust", "key", "add", "ci", pub)
	mustRunCLI(t, "trust", "policy", "set", writeTemp(t, "policy.yaml", ciPolicyYAML))
	publisher := testserver.Token(t, svc, "pipeline", "publisher")
	ctx := context.Background()
	adminClient, _ := client.New(serverURL, admin)

	// Admitted while waiting: the evidence comes from another step.
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	start, err := adminClient.Events().List(ctx, client.EventQuery{Since: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		out, _, err := runCLI(t, "push", "payments/api", "1.4.2", pkg, "--token", publisher, "--wait-admitted", "--timeout", "5m")
		done <- result{out, err}
	}()
	// Once the push is recorded, the pipeline's next step signs it.
	if page, err := adminClient.Events().List(ctx, client.EventQuery{Since: start.Next, Types: []string{"artifact.pushed"}, Wait: 5 * time.Minute}); err != nil || len(page.Events) != 1 {
		t.Fatalf("waiting for the push: %+v, %v", page, err)
	}
	mustRunCLI(t, "evidence", "add", "payments/api", "1.4.2", fixturePath(fixtureArtifact+".sig"), "--token", publisher)
	select {
	case r := <-done:
		t.Fatalf("push --wait-admitted returned before the attestation: %v\n%s", r.err, r.out)
	default:
	}
	attestation := filepath.Join(t.TempDir(), "att.json")
	mustRunCLI(t, "attest", pkg, "--key", key, "--predicate", fixturePath("test-result-passed.json"), "--type", testResultType, "--output-file", attestation)
	mustRunCLI(t, "evidence", "add", "payments/api", "1.4.2", attestation, "--token", publisher)
	r := <-done
	if r.err != nil || !strings.Contains(r.out, "payments/api:1.4.2 admitted") {
		t.Errorf("push --wait-admitted = %v\n%s", r.err, r.out)
	}

	// Rejected: a failing test result.
	out, _, err := runCLI(t, "push", "payments/api", "1.5.0", pkg, "--token", publisher, "--sign-key", key,
		"--attest", fixturePath("test-result-failed.json"), "--type", testResultType, "--wait-admitted", "--timeout", "5m")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUnreachable || !strings.Contains(out, "payments/api:1.5.0 rejected") {
		t.Errorf("push --wait-admitted of a failing build = %v\n%s", err, out)
	}
	// Timed out: nobody signs it; what it still needs is printed.
	out, _, err = runCLI(t, "push", "payments/api", "1.6.0", pkg, "--token", publisher, "--wait-admitted", "--timeout", "1s")
	if !errors.As(err, &ee) || ee.code != exitTimedOut || !strings.Contains(out, "still needed") {
		t.Errorf("push --wait-admitted without evidence = %v\n%s", err, out)
	}

	// release wait.
	rm := testserver.Token(t, svc, "rm", "release-manager")
	approver := testserver.Token(t, svc, "cab", "approver")
	mustRunCLI(t, "release", "create", "r1", "--change-ref", "CHG-1", "--title", "one", "--env", "staging",
		"--artifact", "payments/api:1.4.2", "--token", rm)
	waited := make(chan result, 1)
	go func() {
		out, _, err := runCLI(t, "release", "wait", "r1", "--state", "building", "--timeout", "5m")
		waited <- result{out, err}
	}()
	mustRunCLI(t, "release", "approve", "r1", "--gate", "plan", "--token", approver)
	if r := <-waited; r.err != nil || !strings.Contains(r.out, "release r1 is building") {
		t.Errorf("release wait --state building = %v\n%s", r.err, r.out)
	}
	// Already past it, or cancelled: unreachable at once.
	if _, _, err := runCLI(t, "release", "wait", "r1", "--state", "planning", "--timeout", "5m"); !errors.As(err, &ee) || ee.code != exitUnreachable {
		t.Errorf("release wait for a state behind = %v; want exit %d", err, exitUnreachable)
	}
	mustRunCLI(t, "release", "cancel", "r1", "--reason", "superseded", "--token", rm)
	if _, _, err := runCLI(t, "release", "wait", "r1", "--state", "released", "--timeout", "5m"); !errors.As(err, &ee) || ee.code != exitUnreachable || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("release wait on a cancelled release = %v; want exit %d", err, exitUnreachable)
	}
	if _, _, err := runCLI(t, "release", "wait", "r1", "--state", "cancelled"); err != nil {
		t.Errorf("release wait for the state it is in = %v", err)
	}
	mustRunCLI(t, "release", "create", "r2", "--change-ref", "CHG-2", "--title", "two", "--env", "staging", "--token", rm)
	if _, _, err := runCLI(t, "release", "wait", "r2", "--state", "released", "--timeout", "1s"); !errors.As(err, &ee) || ee.code != exitTimedOut {
		t.Errorf("release wait that times out = %v; want exit %d", err, exitTimedOut)
	}
	if _, _, err := runCLI(t, "release", "wait", "r2", "--state", "nowhere"); err == nil {
		t.Error("release wait --state nowhere succeeded")
	}
}
