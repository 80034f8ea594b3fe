package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// Requests are counted by operation: the name the access matrix gives the
// request's route (accessRule.Operation), so the catch-alls
// (/api/v1/artifacts/*path, /v2/*path) count as the operations their
// dispatchers serve ("artifact_push", "blob_upload_patch",
// "manifest_put"…). The labels take a fixed set of values, never a name,
// tag or digest of the request: the operations of the matrix, the upload
// start's three, opUnmatched for a request no route takes, the standard
// methods and otherMethod.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Operations that are not a row of the matrix.
const (
	// opUnmatched: no route takes the request (404, 405).
	opUnmatched = "unmatched"
	// POST /v2/NAME/blobs/uploads/ is one route and three operations,
	// told apart by the query as ociStartUpload tells them: a
	// cross-repository mount (?mount=) and a whole blob in one request
	// (?digest=); otherwise it starts an upload session (the matrix's
	// "blob_upload_start").
	opBlobMount            = "blob_mount"
	opBlobUploadMonolithic = "blob_upload_monolithic"
)

// otherMethod counts the requests of a method HTTP does not define:
// clients may send any token as a method.
const otherMethod = "OTHER"

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dml_http_requests_total",
			Help: "HTTP requests by method, operation and status code.",
		}, []string{"method", "operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dml_http_request_duration_seconds",
			Help:    "HTTP request duration by method and operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"method", "operation"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: HTTP metrics: %w", err)
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(method, operation string, status int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		method = otherMethod
	}
	m.requests.WithLabelValues(method, operation, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, operation).Observe(d.Seconds())
}

// operationOf names the request's operation for the metrics.
func (s *Server) operationOf(c *gin.Context) string {
	key, ok := s.routeOf(c)
	rule, ruled := s.rules[key]
	if !ok || !ruled {
		return opUnmatched
	}
	if key == http.MethodPost+" "+ociTemplates["upload-start"] {
		switch {
		case c.Query("mount") != "":
			return opBlobMount
		case c.Query("digest") != "":
			return opBlobUploadMonolithic
		}
	}
	return rule.Operation
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
