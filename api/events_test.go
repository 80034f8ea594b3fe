package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/events"
)

// TestWebhookRoutes: bad input is refused with what is wrong, the secret
// never comes back, unknown webhooks and deliveries are 404, a pending
// delivery cannot be redelivered (409).
func TestWebhookRoutes(t *testing.T) {
	// The receiver fails and the next attempt is an hour away: its
	// delivery stays pending.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer receiver.Close()
	srv, admin, svc := testserver.New(t, testserver.WithDispatcher(events.DispatchConfig{Poll: 20 * time.Millisecond, Backoff: time.Hour}))
	call := func(method, path, body string) (int, wire.ErrorBody, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var eb wire.ErrorBody
		_ = json.Unmarshal(b, &eb)
		return resp.StatusCode, eb, b
	}
	const secret = "route-secret-0123456789"
	for _, tc := range []struct{ body, says string }{
		{`{"url":"http://hooks.example.com/","secret":"` + secret + `"}`, "loopback"},
		{`{"url":"https://hooks.example.com/","secret":"short"}`, "secret must be"},
		{`{"url":"https://hooks.example.com/","secret":"` + secret + `","events":["Gate Opened"]}`, "events"},
		{`{"url":"https://hooks.example.com/","secret":"` + secret + `","match":["a//b"]}`, "match"},
		{`{"url":"https://hooks.example.com/","secret":"` + secret + `","environments":["pr*d"]}`, "environments"},
		{`{"url":"https://u:p@hooks.example.com/","secret":"` + secret + `"}`, "credentials"},
		{`{"url":"https://hooks.example.com/","secret":"` + secret + `","typo":1}`, "typo"},
	} {
		status, eb, raw := call("POST", "/api/v1/webhooks", tc.body)
		if status != http.StatusBadRequest || len(eb.Errors) != 1 || !strings.Contains(eb.Errors[0].Message, tc.says) {
			t.Errorf("POST %s = %d %s; want 400 saying %q", tc.body, status, raw, tc.says)
		}
	}
	status, _, raw := call("POST", "/api/v1/webhooks", `{"url":"`+receiver.URL+`","secret":"`+secret+`","events":["gate.*"]}`)
	var hook wire.Webhook
	if err := json.Unmarshal(raw, &hook); status != http.StatusCreated || err != nil || !strings.HasPrefix(hook.ID, "wh_") {
		t.Fatalf("POST webhook = %d %s", status, raw)
	}
	for _, path := range []string{"/api/v1/webhooks", "/api/v1/webhooks/" + hook.ID} {
		if status, _, raw := call("GET", path, ""); status != http.StatusOK || strings.Contains(string(raw), secret) || strings.Contains(string(raw), "ecret") {
			t.Errorf("GET %s = %d %s; want the webhook without its secret", path, status, raw)
		}
	}
	if strings.Contains(string(raw), "ecret") {
		t.Errorf("POST answered %s; want no secret", raw)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/webhooks/wh_missing"},
		{"DELETE", "/api/v1/webhooks/wh_missing"},
		{"GET", "/api/v1/webhooks/wh_missing/deliveries"},
		{"POST", "/api/v1/webhooks/" + hook.ID + "/deliveries/x/redeliver"},
		{"POST", "/api/v1/webhooks/" + hook.ID + "/deliveries/99/redeliver"},
	} {
		if status, eb, raw := call(tc.method, tc.path, ""); status != http.StatusNotFound || len(eb.Errors) != 1 || eb.Errors[0].Code != "NOT_FOUND" {
			t.Errorf("%s %s = %d %s; want 404 NOT_FOUND", tc.method, tc.path, status, raw)
		}
	}
	testserver.FullLifecycle(t, svc)
	var list wire.DeliveryList
	for range 1000 {
		status, _, raw = call("GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", "")
		list = wire.DeliveryList{}
		if err := json.Unmarshal(raw, &list); status != http.StatusOK || err != nil {
			t.Fatalf("deliveries = %d %s", status, raw)
		}
		if len(list.Deliveries) > 0 && list.Deliveries[len(list.Deliveries)-1].Attempts > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(list.Deliveries) == 0 {
		t.Fatal("no delivery was enqueued")
	}
	d := list.Deliveries[len(list.Deliveries)-1]
	if d.State != "pending" || d.Attempts != 1 || d.LastStatus != http.StatusInternalServerError || d.NextAttemptAt == nil {
		t.Errorf("first delivery = %+v; want pending after one attempt answered 500", d)
	}
	if status, eb, raw := call("POST", "/api/v1/webhooks/"+hook.ID+"/deliveries/"+strconv.FormatInt(d.ID, 10)+"/redeliver", ""); status != http.StatusConflict || len(eb.Errors) != 1 || eb.Errors[0].Code != "CONFLICT" {
		t.Errorf("redeliver a pending delivery = %d %s; want 409", status, raw)
	}
	if status, _, _ := call("DELETE", "/api/v1/webhooks/"+hook.ID, ""); status != http.StatusNoContent {
		t.Errorf("DELETE = %d", status)
	}
}
