package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/releases/sqlstore/sqlstoretest"
	"github.com/prometheus/client_golang/prometheus"
)

// advance moves a movingClock (changecontrol_test.go) on by d.
func (c *movingClock) advance(d time.Duration) { c.set(c.now().Add(d)) }

// sample reads one sample of /metrics as a number; absent is -1.
func sample(t *testing.T, url, name string) float64 {
	t.Helper()
	v := metric(t, url, name)
	if v == "" {
		return -1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, v, err)
	}
	return f
}

// wantSamples checks samples of /metrics against their expected values.
func wantSamples(t *testing.T, url, when string, want map[string]float64) {
	t.Helper()
	for name, v := range want {
		if got := sample(t, url, name); got != v {
			t.Errorf("%s: %s = %v; want %v", when, name, got, v)
		}
	}
}

// TestDomainMetrics drives the real flows — pushes admitted, quarantined
// and rejected, a release from plan to close, a rejected plan — and reads
// /metrics after each: the state gauges (read from the database at
// scrape time), the counters derived from the recorded events, the
// timings of the blob store and the database, and the audit log's.
func TestDomainMetrics(t *testing.T) {
	clock := &movingClock{t: time.Now().UTC().Truncate(time.Second)}
	reg := prometheus.NewRegistry()
	e := newRelEnv(t, false, testserver.WithClock(clock.now),
		testserver.WithAPI(func(c *api.Config) { c.Registry = reg; c.StateMetricsTTL = -1 }))

	wantSamples(t, e.url, "after the push", map[string]float64{
		`dml_artifacts{state="quarantined"}`:                           1,
		`dml_artifacts{state="admitted"}`:                              0,
		`dml_artifacts{state="rejected"}`:                              0,
		`dml_quarantine_oldest_age_seconds`:                            0,
		`dml_admissions_total{outcome="admitted",reason="policy_met"}`: 0,
		`dml_gates_open{gate="plan"}`:                                  0,
		`dml_state_metrics_ok`:                                         1,
		`dml_audit_checkpoint_age_seconds`:                             -1,
		`dml_audit_verification_ok`:                                    -1,
	})
	clock.advance(90 * time.Second)
	wantSamples(t, e.url, "90s later", map[string]float64{`dml_quarantine_oldest_age_seconds`: 90})
	bytesBefore := sample(t, e.url, `dml_stored_bytes{backend="fs"}`)
	blobsBefore := sample(t, e.url, `dml_stored_blobs{backend="fs"}`)

	// Signed (still quarantined: no decision is recorded), then tested:
	// admitted.
	e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
	e.postBody(t, "attestations", fixture(t, "test-result-passed.dsse.json"))
	att := fixture(t, "test-result-passed.dsse.json")
	wantSamples(t, e.url, "after admission", map[string]float64{
		`dml_artifacts{state="quarantined"}`:                           0,
		`dml_artifacts{state="admitted"}`:                              1,
		`dml_quarantine_oldest_age_seconds`:                            0,
		`dml_admissions_total{outcome="admitted",reason="policy_met"}`: 1,
		`dml_stored_blobs{backend="fs"}`:                               blobsBefore + 2,
	})
	if got := sample(t, e.url, `dml_stored_bytes{backend="fs"}`); got <= bytesBefore+float64(len(att)) {
		t.Errorf("dml_stored_bytes = %v after two pieces of evidence; want more than %v", got, bytesBefore+float64(len(att)))
	}

	// The same bytes as another version, with a failing test result:
	// rejected. A name no rule matches: quarantined (a push decides
	// nothing: it starts there).
	pushed := func(url string, body []byte) {
		t.Helper()
		if code := apiCall(t, http.MethodPut, url, e.publisher, body, nil); code != http.StatusCreated {
			t.Fatalf("push %s: %d", url, code)
		}
	}
	rejected := strings.Replace(e.artifactURL, "1.4.2", "1.4.3", 1)
	pushed(rejected, fixture(t, "payments-api-1.4.2.tar.gz"))
	if code := apiCall(t, http.MethodPost, rejected+"/attestations", e.publisher, fixture(t, "test-result-failed.dsse.json"), nil); code != http.StatusCreated {
		t.Fatalf("failed test result: %d", code)
	}
	pushed(e.url+"/api/v1/artifacts/tools/lint/versions/1.0", []byte("no rule matches this name"))
	wantSamples(t, e.url, "after a rejection", map[string]float64{
		`dml_artifacts{state="rejected"}`:                                1,
		`dml_artifacts{state="quarantined"}`:                             1,
		`dml_admissions_total{outcome="rejected",reason="tests_failed"}`: 1,
	})

	// A release driven to the end, and one whose plan is rejected.
	e.driveTo(t, "closed")
	wantSamples(t, e.url, "after a release closed", map[string]float64{
		`dml_approvals_total{decision="approve",gate="plan"}`:                1,
		`dml_approvals_total{decision="approve",gate="build"}`:               1,
		`dml_approvals_total{decision="approve",gate="deploy:staging"}`:      1,
		`dml_approvals_total{decision="approve",gate="deploy:production"}`:   1,
		`dml_approvals_total{decision="approve",gate="close"}`:               1,
		`dml_deployments_total{environment="staging",status="in_progress"}`:  1,
		`dml_deployments_total{environment="staging",status="succeeded"}`:    1,
		`dml_deployments_total{environment="production",status="succeeded"}`: 1,
		`dml_gates_open{gate="plan"}`:                                        0,
		`dml_gates_open{gate="close"}`:                                       0,
	})
	r := e.create(t, nil)
	clock.advance(10 * time.Minute)
	wantSamples(t, e.url, "a plan waiting 10 minutes", map[string]float64{
		`dml_gates_open{gate="plan"}`:                   1,
		`dml_gate_oldest_open_age_seconds{gate="plan"}`: 600,
	})
	if code, _, ev := e.decide(t, e.cab1, r.Name, "plan", "reject"); code != http.StatusOK {
		t.Fatalf("reject plan: %d %+v", code, ev)
	}
	clock.advance(time.Minute)
	wantSamples(t, e.url, "a rejected plan", map[string]float64{
		`dml_approvals_total{decision="reject",gate="plan"}`: 1,
		`dml_gates_open{gate="plan"}`:                        1,
		// Open again since the rejection.
		`dml_gate_oldest_open_age_seconds{gate="plan"}`: 60,
	})

	// The audit log: its size, and the server's verification of it.
	_, cp, err := e.svc.Audit.SignCheckpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Audit.VerifyLog(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.advance(5 * time.Minute)
	wantSamples(t, e.url, "after a verification", map[string]float64{
		`dml_audit_records`:                              float64(cp.Size),
		`dml_audit_verification_ok`:                      1,
		`dml_audit_verifications_total{result="ok"}`:     1,
		`dml_audit_verifications_total{result="failed"}`: 0,
		`dml_audit_checkpoint_age_seconds`:               300,
		`dml_audit_verification_timestamp_seconds`:       float64(clock.now().Add(-5 * time.Minute).Unix()),
	})

	// The blob store and the database were timed, and nothing failed.
	if code, _, _ := fetch(t, e.artifactURL+"/content", e.publisher); code != http.StatusOK {
		t.Fatalf("download: %d", code)
	}
	for _, name := range []string{
		`dml_backend_operation_duration_seconds_count{backend="fs",operation="put"}`,
		`dml_backend_operation_duration_seconds_count{backend="fs",operation="get"}`,
		`dml_database_operation_duration_seconds_count{operation="read"}`,
		`dml_database_operation_duration_seconds_count{operation="write"}`,
	} {
		if got := sample(t, e.url, name); got < 1 {
			t.Errorf("%s = %v; want operations counted", name, got)
		}
	}
	wantSamples(t, e.url, "errors", map[string]float64{
		`dml_backend_operation_errors_total{backend="fs",operation="put"}`: 0,
		`dml_database_operation_errors_total{operation="write"}`:           0,
	})
}

// The states are read once per StateMetricsTTL, however many scrapes
// come: a push between two scrapes is not seen until the reading expires.
func TestStateMetricsCached(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, ciPolicy, testserver.WithAPI(func(c *api.Config) { c.Registry = reg; c.StateMetricsTTL = time.Hour }))
	const q = `dml_artifacts{state="quarantined"}`
	wantSamples(t, e.url, "first scrape", map[string]float64{q: 1})
	if code := apiCall(t, http.MethodPut, e.url+"/api/v1/artifacts/payments/api/versions/2.0", e.publisher, []byte("two"), nil); code != http.StatusCreated {
		t.Fatalf("push: %d", code)
	}
	wantSamples(t, e.url, "second scrape, within the TTL", map[string]float64{q: 1})
	// The counters derived from events are not cached.
	e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
	e.postBody(t, "attestations", fixture(t, "test-result-passed.dsse.json"))
	wantSamples(t, e.url, "third scrape", map[string]float64{
		`dml_admissions_total{outcome="admitted",reason="policy_met"}`: 1,
		q: 1,
	})
}

// Webhook deliveries are counted by outcome, and the outbox's backlog is
// read from the database.
func TestWebhookMetrics(t *testing.T) {
	var mu sync.Mutex
	failing := true
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer receiver.Close()
	reg := prometheus.NewRegistry()
	srv, admin, _ := testserver.New(t, testserver.WithDispatcher(events.DispatchConfig{Poll: 10 * time.Millisecond, Attempts: 2, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}),
		testserver.WithAPI(func(c *api.Config) { c.Registry = reg; c.StateMetricsTTL = -1 }))
	body := fmt.Sprintf(`{"url":%q,"secret":"metrics-secret-0123456789","events":["token.issued"]}`, receiver.URL)
	if code := apiCall(t, http.MethodPost, srv.URL+"/api/v1/webhooks", admin, []byte(body), nil); code != http.StatusCreated {
		t.Fatalf("POST webhook: %d", code)
	}
	issue := func(name string) {
		t.Helper()
		b := []byte(`{"name":"` + name + `","roles":["auditor"]}`)
		if code := apiCall(t, http.MethodPost, srv.URL+"/api/v1/tokens", admin, bytes.Clone(b), nil); code != http.StatusCreated {
			t.Fatalf("issue token: %d", code)
		}
	}
	// waitFor polls /metrics until sample reaches want (bounded).
	waitFor := func(name string, want float64) {
		t.Helper()
		for range 1000 {
			if sample(t, srv.URL, name) >= want {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s never reached %v (now %v)", name, want, sample(t, srv.URL, name))
	}
	issue("first")
	// Two attempts, both refused: one retrying, then failed.
	waitFor(`dml_webhook_deliveries_total{outcome="failed"}`, 1)
	wantSamples(t, srv.URL, "after the first delivery failed", map[string]float64{
		`dml_webhook_deliveries_total{outcome="retrying"}`:  1,
		`dml_webhook_deliveries_total{outcome="delivered"}`: 0,
		`dml_webhook_outbox_pending`:                        0,
	})
	mu.Lock()
	failing = false
	mu.Unlock()
	issue("second")
	waitFor(`dml_webhook_deliveries_total{outcome="delivered"}`, 1)
	wantSamples(t, srv.URL, "after the second was delivered", map[string]float64{
		`dml_webhook_deliveries_total{outcome="failed"}`: 1,
		`dml_webhook_outbox_pending`:                     0,
	})
}

// A verification of the audit log that fails sets
// dml_audit_verification_ok to 0 — what DMLAuditVerificationFailing
// fires on — and counts the failed run.
func TestAuditVerificationMetric(t *testing.T) {
	forge := &atomic.Bool{}
	reg := prometheus.NewRegistry()
	srv, admin, svc := testserver.New(t, testserver.WithMetadata(func(db *sqlstore.DB) releases.Metadata {
		return sqlstoretest.ForgedAudit{DB: db, Forge: forge, Old: `"tok_`, New: `"tak_`}
	}),
		testserver.WithAPI(func(c *api.Config) { c.Registry = reg }))
	if code := apiCall(t, http.MethodPost, srv.URL+"/api/v1/tokens", admin, []byte(`{"name":"ops","roles":["auditor"]}`), nil); code != http.StatusCreated {
		t.Fatalf("issue token: %d", code)
	}
	if err := svc.Audit.VerifyLog(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantSamples(t, srv.URL, "an honest log", map[string]float64{
		`dml_audit_verification_ok`:                      1,
		`dml_audit_verifications_total{result="ok"}`:     1,
		`dml_audit_verifications_total{result="failed"}`: 0,
	})
	forge.Store(true)
	if err := svc.Audit.VerifyLog(t.Context()); err == nil {
		t.Fatal("VerifyLog of a rewritten record: no error")
	}
	wantSamples(t, srv.URL, "a rewritten record", map[string]float64{
		`dml_audit_verification_ok`:                      0,
		`dml_audit_verifications_total{result="ok"}`:     1,
		`dml_audit_verifications_total{result="failed"}`: 1,
	})
}
