package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/console"
	"github.com/dmlproject/dml/releases"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config holds what the HTTP layer needs.
type Config struct {
	DML *releases.DML
	// Logger receives one line per request and internal errors. Nil: silent.
	Logger *slog.Logger
	// AccessLogger receives the access log (refused requests, downloads);
	// nil: Logger with the attribute log=access.
	AccessLogger *slog.Logger
	// Registry receives the HTTP metrics; nil creates a private one.
	Registry *prometheus.Registry
	// A request body must deliver at least BodyMinBytes bytes in every
	// BodyTimeout of waiting, or the request fails with 408 and its
	// connection is closed (body.go). Zero values take the defaults
	// (DefaultBodyTimeout, DefaultBodyMinBytes).
	BodyTimeout  time.Duration
	BodyMinBytes int64
	// ConsoleSessionTTL is how long a web console sign-in lasts; zero:
	// console.DefaultSessionTTL.
	ConsoleSessionTTL time.Duration
	// SSO is the single sign-on providers (docs/sso.md); nil: none.
	SSO *sso.Providers
	// StateMetricsTTL is how long one reading of the state metrics
	// (artifacts by state, open gates…: metrics_domain.go) serves
	// scrapes; zero: DefaultStateMetricsTTL, negative: every scrape
	// reads the database.
	StateMetricsTTL time.Duration
}

// Server is the HTTP API.
type Server struct {
	dml     *releases.DML
	log     *slog.Logger
	access  *slog.Logger
	engine  *gin.Engine
	console *console.Console
	metrics *httpMetrics
	// rules is the access matrix by route (authz.go).
	rules        map[string]accessRule
	sso          *sso.Providers
	bodyTimeout  time.Duration
	bodyMinBytes int64
}

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// New builds the HTTP handler. gin's mode is a process-wide setting: the
// program sets it once (cmd/dml sets release mode), never a library.
func New(cfg Config) (*Server, error) {
	if cfg.DML == nil {
		return nil, errors.New("api: the domain is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("api: runtime metrics: %w", err)
			}
		}
	}
	metrics, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	rules, err := indexRules(accessMatrix)
	if err != nil {
		return nil, err
	}
	s := &Server{dml: cfg.DML, log: log, engine: gin.New(), metrics: metrics,
		rules: rules, access: accessLogger(cfg, log), sso: cfg.SSO,
		bodyTimeout: cfg.BodyTimeout, bodyMinBytes: cfg.BodyMinBytes}
	if s.bodyTimeout <= 0 {
		s.bodyTimeout = DefaultBodyTimeout
	}
	if s.bodyMinBytes <= 0 {
		s.bodyMinBytes = DefaultBodyMinBytes
	}
	if err := registerIntegrityMetrics(reg, cfg.DML.Blobs); err != nil {
		return nil, err
	}
	if err := registerDomainMetrics(reg, cfg.DML, log, cfg.StateMetricsTTL); err != nil {
		return nil, err
	}
	e := s.engine
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ContextWithFallback = true
	// guardBody bounds how long a body may stall (body.go); recordAccess
	// keeps the access log (accesslog.go); authorize enforces the access
	// matrix (authz.go) on every route, authenticating first, before any
	// handler runs.
	e.Use(s.recover, s.observe, s.guardBody, s.recordAccess, s.ociHeaders, s.authorize)
	e.NoRoute(func(c *gin.Context) {
		s.writeError(c, errNoRoute, map[string]string{"path": c.Request.URL.Path})
	})
	e.NoMethod(func(c *gin.Context) {
		s.writeError(c, methodNotAllowed(c), nil)
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	v1 := e.Group("/api/v1")
	s.routeArtifacts(v1)
	s.routeTokens(v1)
	s.routeTrust(v1)
	s.routeKeyless(v1)
	s.routeReleases(v1)
	s.routeAudit(v1)
	s.routeSettings(v1)
	s.routeAdmin(v1)
	s.routeRetention(v1)
	s.routeEvents(v1)
	s.routeSSO(v1)
	s.routeOpenAPI(v1)
	s.routeOCI(e)
	if s.console, err = console.New(console.Config{DML: cfg.DML, Allows: s.allowsOperation, Describe: restShape.answer,
		SessionTTL: cfg.ConsoleSessionTTL, SSO: cfg.SSO, Log: log, Now: cfg.DML.Now}); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP makes Server an http.Handler: the web console at / and
// /ui/, the API and the registry everywhere else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if console.Serves(r.URL.Path) {
		s.console.ServeHTTP(w, r)
		return
	}
	s.engine.ServeHTTP(w, r)
}

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyTimeout bounds a readiness check, whatever the dependencies do.
const readyTimeout = 10 * time.Second

// readyz says whether the database and the blob store answer, and which
// one does not. It is unauthenticated, so it names neither: their errors,
// which hold addresses, bucket names and paths, go to the log.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	r := s.dml.Readiness(ctx)
	state := func(err error) string {
		if err != nil {
			return "unavailable"
		}
		return "ok"
	}
	detail := gin.H{"database": state(r.Database), "blobStore": state(r.BlobStore)}
	if r.Ready() {
		c.JSON(http.StatusOK, gin.H{"status": "ready", "dependencies": detail})
		return
	}
	var down []string
	for _, d := range []struct {
		name string
		err  error
	}{{"the database", r.Database}, {"the blob store", r.BlobStore}} {
		if d.err != nil {
			s.log.Warn("not ready", "err", d.err)
			down = append(down, d.name)
		}
	}
	s.writeError(c, fmt.Errorf("%w: %s cannot be reached", errNotReady, strings.Join(down, " and ")), detail)
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			if c.Writer.Written() {
				s.log.Error("panic in handler after the response began", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", v)
				return
			}
			s.writeError(c, fmt.Errorf("%w: %v", errPanic, v), nil)
		}
	}()
	c.Next()
}

// observe logs each request and feeds the metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	s.metrics.observe(c.Request.Method, s.operationOf(c), c.Writer.Status(), elapsed)
	s.log.Debug("request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(), "bytes", c.Writer.Size(), "duration", elapsed)
}
