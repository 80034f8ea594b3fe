package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config holds what the HTTP layer needs.
type Config struct {
	Service *releases.Service
	// Logger receives one line per request and internal errors. Nil: silent.
	Logger *slog.Logger
	// Registry receives the HTTP metrics; nil creates a private one.
	Registry *prometheus.Registry
}

// Server is the HTTP API.
type Server struct {
	svc     *releases.Service
	log     *slog.Logger
	engine  *gin.Engine
	metrics *httpMetrics
}

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// New builds the HTTP handler.
func New(cfg Config) *Server {
	gin.SetMode(gin.ReleaseMode)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{svc: cfg.Service, log: log, engine: gin.New(), metrics: newHTTPMetrics(reg)}
	registerIntegrityMetrics(reg, cfg.Service)
	e := s.engine
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ContextWithFallback = true
	e.Use(s.recover, s.observe)
	e.NoRoute(func(c *gin.Context) {
		s.writeError(c, errNoRoute, map[string]string{"path": c.Request.URL.Path})
	})
	e.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, ErrorBody{Errors: []ErrorItem{{Code: "METHOD_NOT_ALLOWED", Message: c.Request.Method + " is not allowed on " + c.Request.URL.Path}}})
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	v1 := e.Group("/api/v1", s.authenticate)
	s.routeArtifacts(v1)
	s.routeTokens(v1)
	s.routeTrust(v1)
	s.routeReleases(v1)
	s.routeAudit(v1)
	s.routeSettings(v1)
	s.routeAdmin(v1)
	s.routeOCI(e)
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	if err := s.svc.Ready(c.Request.Context()); err != nil {
		s.log.Warn("not ready", "err", err)
		c.JSON(http.StatusServiceUnavailable, ErrorBody{Errors: []ErrorItem{{Code: "UNAVAILABLE", Message: err.Error()}}})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", v)
			if !c.Writer.Written() {
				c.AbortWithStatusJSON(http.StatusInternalServerError, ErrorBody{Errors: []ErrorItem{{Code: "INTERNAL", Message: "internal error"}}})
			}
		}
	}()
	c.Next()
}

// observe logs each request and feeds the metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	elapsed := time.Since(start)
	s.metrics.observe(c.Request.Method, route, c.Writer.Status(), elapsed)
	s.log.Debug("request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(), "bytes", c.Writer.Size(), "duration", elapsed)
}
