package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/stats"
	"github.com/prometheus/client_golang/prometheus"
)

// The domain metrics (docs/operations.md, "Metrics and alerts"). Three
// sources, none of which makes the domain import Prometheus:
//
//   - states (artifacts by state, open gates, stored blobs, the audit
//     log's size, the webhook outbox) are counted by the database when
//     scraped (stateCollector), cached for Config.StateMetricsTTL so that a scrape
//     storm does not load it;
//   - things that happen (admissions, approvals, deployments) are counted
//     from the audit events this process records, as they commit
//     (DML.ObserveEvents), so they cannot drift from the record; each
//     replica counts its own and Prometheus sums them;
//   - the blob store's and the database's operations are timed where
//     they happen (store.Store.Observe, DML.ObserveDatabase), and the
//     services' own counters (webhook attempts, audit verification) are
//     read at each scrape.
const (
	// DefaultStateMetricsTTL is how long one reading of the states serves
	// scrapes (Config.StateMetricsTTL).
	DefaultStateMetricsTTL = 5 * time.Second
	// stateTimeout bounds one reading: a scrape must not hang on a
	// database that does not answer.
	stateTimeout = 5 * time.Second
)

// Admission reasons, a fixed set (the decision's own reason is free
// text): what decided the outcome.
const (
	reasonPolicyMet     = "policy_met"
	reasonTestsFailed   = "tests_failed"
	reasonNoRule        = "no_matching_rule"
	reasonPolicyInvalid = "policy_invalid"
	reasonUnmet         = "requirements_unmet"
)

// domainMetrics are the counters derived from the audit events and the
// operation timings.
type domainMetrics struct {
	admissions  *prometheus.CounterVec
	approvals   *prometheus.CounterVec
	deployments *prometheus.CounterVec
	backendTime *prometheus.HistogramVec
	backendErrs *prometheus.CounterVec
	dbTime      *prometheus.HistogramVec
	dbErrs      *prometheus.CounterVec
}

// operationBuckets span a cached read (100µs) to a long upload (~100s).
var operationBuckets = prometheus.ExponentialBuckets(0.0001, 4, 11)

func registerDomainMetrics(reg prometheus.Registerer, d *releases.DML, log *slog.Logger, ttl time.Duration) error {
	if ttl == 0 {
		ttl = DefaultStateMetricsTTL
	}
	m := &domainMetrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dml_admissions_total",
			Help: "Admission decisions recorded by this process, by outcome and reason: admitted (policy_met), rejected (tests_failed), or quarantined again (no_matching_rule, policy_invalid, requirements_unmet). A version waiting in quarantine records no decision until one changes its state: see dml_artifacts.",
		}, []string{"outcome", "reason"}),
		approvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dml_approvals_total",
			Help: "Gate decisions recorded by this process, by gate and decision (approve, reject).",
		}, []string{"gate", "decision"}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dml_deployments_total",
			Help: "Deployments recorded by this process reaching a status, by environment and status (in_progress, succeeded, failed, rolled_back): a new deployment counts its first status, an update each status it moves to.",
		}, []string{"environment", "status"}),
		backendTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dml_backend_operation_duration_seconds",
			Help:    "Blob store backend operations by backend (fs, s3) and operation (put, get, stat, move, delete, list, ping): a get until the reader is returned, a put until the body is stored.",
			Buckets: operationBuckets,
		}, []string{"backend", "operation"}),
		backendErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dml_backend_operation_errors_total",
			Help: "Blob store backend operations that failed for the backend's sake (not a missing object, not a body that failed to arrive or verify), by backend and operation.",
		}, []string{"backend", "operation"}),
		dbTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dml_database_operation_duration_seconds",
			Help:    "Metadata database operations by operation: read (one query outside a write transaction, to its first row), write (one write transaction, retries included, or one writing statement outside one), ping.",
			Buckets: operationBuckets,
		}, []string{"operation"}),
		dbErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dml_database_operation_errors_total",
			Help: "Metadata database operations that failed for the database's sake (unreachable, contention beyond the retries, a deadline), by operation.",
		}, []string{"operation"}),
	}
	cs := []prometheus.Collector{m.admissions, m.approvals, m.deployments, m.backendTime, m.backendErrs, m.dbTime, m.dbErrs,
		&stateCollector{d: d, log: log, ttl: ttl}}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("api: domain metrics: %w", err)
		}
	}
	// Each label set is there from the start, at zero, so that rate()
	// and increase() see the first one.
	for _, o := range [][2]string{
		{string(catalog.StateAdmitted), reasonPolicyMet}, {string(catalog.StateRejected), reasonTestsFailed},
	} {
		m.admissions.WithLabelValues(o[0], o[1]).Add(0)
	}
	kind := d.Blobs.Store().Kind()
	d.Blobs.Store().Observe(func(op string, took time.Duration, failed bool) {
		m.backendTime.WithLabelValues(kind, op).Observe(took.Seconds())
		if failed {
			m.backendErrs.WithLabelValues(kind, op).Inc()
		} else {
			m.backendErrs.WithLabelValues(kind, op).Add(0)
		}
	})
	d.ObserveDatabase(func(op string, took time.Duration, failed bool) {
		m.dbTime.WithLabelValues(op).Observe(took.Seconds())
		if failed {
			m.dbErrs.WithLabelValues(op).Inc()
		} else {
			m.dbErrs.WithLabelValues(op).Add(0)
		}
	})
	d.ObserveEvents(m.count)
	return nil
}

// count counts one recorded event.
func (m *domainMetrics) count(e audit.Event) {
	switch e.Action {
	case catalog.ActionAdmissionDecided:
		var d struct {
			State  catalog.ArtifactState `json:"state"`
			Rule   string                `json:"rule"`
			Reason string                `json:"reason"`
		}
		if json.Unmarshal(e.Details, &d) == nil && d.State != "" {
			m.admissions.WithLabelValues(string(d.State), reasonOf(d.State, d.Rule, d.Reason)).Inc()
		}
	case lifecycle.ActionReleaseApproval:
		var d struct {
			Gate     string `json:"gate"`
			Decision string `json:"decision"`
		}
		if json.Unmarshal(e.Details, &d) == nil && d.Gate != "" {
			m.approvals.WithLabelValues(d.Gate, d.Decision).Inc()
		}
	case lifecycle.ActionReleaseDeployment:
		var d struct {
			Environment string  `json:"environment"`
			Status      string  `json:"status"`
			Target      *string `json:"target"`
			From        string  `json:"from"`
		}
		// A new deployment carries its target; an update counts only
		// when it moved the status (it then says from what).
		if json.Unmarshal(e.Details, &d) == nil && d.Status != "" && (d.Target != nil || d.From != "") {
			m.deployments.WithLabelValues(d.Environment, d.Status).Inc()
		}
	}
}

// reasonOf names what decided an admission, from the decision's rule and
// reason (signing.Evaluate's wording).
func reasonOf(state catalog.ArtifactState, rule, reason string) string {
	switch {
	case state == catalog.StateAdmitted:
		return reasonPolicyMet
	case state == catalog.StateRejected:
		return reasonTestsFailed
	case rule == "" && strings.HasPrefix(reason, "trust policy is invalid"):
		return reasonPolicyInvalid
	case rule == "":
		return reasonNoRule
	}
	return reasonUnmet
}

// stateCollector reads the states at scrape time, through one cached
// stats.Snapshot, and the services' own counters.
type stateCollector struct {
	d   *releases.DML
	log *slog.Logger
	ttl time.Duration

	mu    sync.Mutex
	snap  stats.Snapshot
	err   error
	taken time.Time
}

var (
	descArtifacts = prometheus.NewDesc("dml_artifacts",
		"Artifact versions by admission state (quarantined, admitted, rejected); quarantined is the quarantine backlog.", []string{"state"}, nil)
	descQuarantineAge = prometheus.NewDesc("dml_quarantine_oldest_age_seconds",
		"Age of the oldest artifact version still quarantined (since its push); 0 when none is.", nil, nil)
	descGatesOpen = prometheus.NewDesc("dml_gates_open",
		"Gates waiting for a decision, by gate (plan, build, deploy:ENV, emergency, close).", []string{"gate"}, nil)
	descGateAge = prometheus.NewDesc("dml_gate_oldest_open_age_seconds",
		"How long the longest-waiting open gate has waited, by gate.", []string{"gate"}, nil)
	descBlobs = prometheus.NewDesc("dml_stored_blobs",
		"Distinct blobs the metadata refers to (artifacts, evidence, OCI manifests and blobs), by backend.", []string{"backend"}, nil)
	descBytes = prometheus.NewDesc("dml_stored_bytes",
		"Bytes of the distinct blobs the metadata refers to, each counted once, by backend.", []string{"backend"}, nil)
	descAuditRecords = prometheus.NewDesc("dml_audit_records",
		"Records in the audit log.", nil, nil)
	descOutbox = prometheus.NewDesc("dml_webhook_outbox_pending",
		"Webhook deliveries waiting to be delivered (pending), all webhooks.", nil, nil)
	descOutboxAge = prometheus.NewDesc("dml_webhook_outbox_oldest_age_seconds",
		"Age of the oldest pending webhook delivery; 0 when none is.", nil, nil)
	descStateOK = prometheus.NewDesc("dml_state_metrics_ok",
		"1 when the last reading of the states above (from the database) succeeded, 0 when it failed (they are then left out).", nil, nil)
	descCheckpointAge = prometheus.NewDesc("dml_audit_checkpoint_age_seconds",
		"Seconds since this process last signed an audit log checkpoint (each verification signs one); absent before the first.", nil, nil)
	descVerifyOK = prometheus.NewDesc("dml_audit_verification_ok",
		"1 when this process's latest verification of the audit log passed, 0 when it failed; absent before the first (dml serve --audit-verify-interval).", nil, nil)
	descVerifyTime = prometheus.NewDesc("dml_audit_verification_timestamp_seconds",
		"Unix time of this process's latest verification of the audit log.", nil, nil)
	descVerifications = prometheus.NewDesc("dml_audit_verifications_total",
		"Verifications of the audit log this process ran, by result (ok, failed).", []string{"result"}, nil)
	descDeliveries = prometheus.NewDesc("dml_webhook_deliveries_total",
		"Webhook delivery attempts this process recorded, by outcome (delivered, retrying, failed: the last attempt failed, interrupted: cut by a shutdown).", []string{"outcome"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descArtifacts, descQuarantineAge, descGatesOpen, descGateAge, descBlobs, descBytes,
		descAuditRecords, descOutbox, descOutboxAge, descStateOK, descCheckpointAge, descVerifyOK, descVerifyTime, descVerifications, descDeliveries} {
		ch <- d
	}
}

// snapshot is the cached reading, taken again when older than
// ttl. Concurrent scrapes wait for one reading.
func (c *stateCollector) snapshot() (stats.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.taken.IsZero() || time.Since(c.taken) >= c.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		c.snap, c.err = c.d.Stats.Snapshot(ctx)
		c.taken = time.Now()
		if c.err != nil {
			c.log.Warn("metrics: reading the states failed", "err", c.err)
		}
	}
	return c.snap, c.err
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// age is now - t in seconds, 0 for a zero t (nothing waits).
func age(now, t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(now.Sub(t).Seconds(), 0)
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.d.Now()
	snap, err := c.snapshot()
	if err != nil {
		gauge(ch, descStateOK, 0)
	} else {
		gauge(ch, descStateOK, 1)
		for st, n := range snap.Artifacts {
			gauge(ch, descArtifacts, float64(n), string(st))
		}
		gauge(ch, descQuarantineAge, age(now, snap.OldestQuarantined))
		open, oldest := map[string]int{}, map[string]time.Time{}
		for _, g := range []string{lifecycle.GatePlan, lifecycle.GateBuild, lifecycle.GateClose} {
			open[g] = 0
		}
		for _, g := range snap.OpenGates {
			open[g.Gate]++
			if o, ok := oldest[g.Gate]; !ok || g.Since.Before(o) {
				oldest[g.Gate] = g.Since
			}
		}
		for g, n := range open {
			gauge(ch, descGatesOpen, float64(n), g)
			gauge(ch, descGateAge, age(now, oldest[g]), g)
		}
		kind := c.d.Blobs.Store().Kind()
		gauge(ch, descBlobs, float64(snap.Blobs), kind)
		gauge(ch, descBytes, float64(snap.BlobBytes), kind)
		gauge(ch, descAuditRecords, float64(snap.AuditRecords))
		gauge(ch, descOutbox, float64(snap.OutboxPending))
		gauge(ch, descOutboxAge, age(now, snap.OldestPending))
	}
	if t := c.d.Audit.LastCheckpoint(); !t.IsZero() {
		gauge(ch, descCheckpointAge, age(now, t))
	}
	v := c.d.Audit.Verification()
	if v.Runs > 0 {
		ok := 0.0
		if v.OK {
			ok = 1
		}
		gauge(ch, descVerifyOK, ok)
		gauge(ch, descVerifyTime, float64(v.At.UnixNano())/1e9)
	}
	counter(ch, descVerifications, float64(v.Runs-v.Failures), "ok")
	counter(ch, descVerifications, float64(v.Failures), "failed")
	for _, o := range events.DeliveryOutcomes {
		counter(ch, descDeliveries, float64(c.d.Events.DeliveryAttempts(o)), o)
	}
}
