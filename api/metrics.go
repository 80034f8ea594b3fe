package api

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dml_http_requests_total",
			Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dml_http_request_duration_seconds",
			Help:    "HTTP request duration by method and route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: HTTP metrics: %w", err)
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

// integritySources name where a corrupt blob can be found.
var integritySources = []string{"read", "fsck"}

// registerIntegrityMetrics exports the service's counts of corrupt blobs
// found and repaired. They are the service's own counters (the domain
// knows nothing of Prometheus), read at each scrape.
func registerIntegrityMetrics(reg prometheus.Registerer, svc interface {
	CorruptionsFound(source string) int64
	BlobsRepaired() int64
}) error {
	for _, source := range integritySources {
		err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "dml_blob_corruption_detected_total",
			Help:        "Stored blobs found corrupt and marked (refused until repaired), by how they were found: read (a download) or fsck.",
			ConstLabels: prometheus.Labels{"source": source},
		}, func() float64 { return float64(svc.CorruptionsFound(source)) }))
		if err != nil {
			return fmt.Errorf("api: integrity metrics: %w", err)
		}
	}
	err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "dml_blob_repaired_total",
		Help: "Corrupt blobs repaired: the same bytes pushed again, or verified again by fsck.",
	}, func() float64 { return float64(svc.BlobsRepaired()) }))
	if err != nil {
		return fmt.Errorf("api: integrity metrics: %w", err)
	}
	return nil
}
