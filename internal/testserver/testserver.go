package testserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/gin-gonic/gin"
)

// AdminToken is the bootstrap admin secret of every test server.
const AdminToken = "bootstrap-secret-123456"

// Server is a running test server.
type Server struct {
	HTTP       *httptest.Server
	URL        string
	AdminToken string
	DML        *releases.DML
	closers    []func() error
	// stopDispatch stops the webhook dispatcher (WithDispatcher).
	stopDispatch func()
}

// Option configures a test server.
type Option func(*options)

type options struct {
	backend store.Backend
	log     *slog.Logger
	api     func(*api.Config)
	clock   func() time.Time
	// dispatch, when set, runs a webhook dispatcher with it.
	dispatch *events.DispatchConfig
	// metadata, when set, wraps the database the domain is built over.
	metadata func(*sqlstore.DB) releases.Metadata
	// wrap, when set, wraps the HTTP layer.
	wrap func(http.Handler) http.Handler
}

// WithMetadata builds the domain over wrap(db) rather than the SQLite
// database itself: a fault-injecting wrapper around the real one.
func WithMetadata(wrap func(*sqlstore.DB) releases.Metadata) Option {
	return func(o *options) { o.metadata = wrap }
}

// WithDispatcher runs a webhook dispatcher, as dml serve does, tuned by
// cfg (short backoffs for tests); Close stops it before the database
// closes.
func WithDispatcher(cfg events.DispatchConfig) Option { return func(o *options) { o.dispatch = &cfg } }

// WithBackend keeps the blobs in b (an S3 bucket, or a fault-injecting
// wrapper; the caller closes it) instead of a directory under the
// server's data directory.
func WithBackend(b store.Backend) Option { return func(o *options) { o.backend = b } }

// WithLogger gives the service and the HTTP layer a logger; without it
// they are silent.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithAPI adjusts the HTTP layer's configuration (Service and Logger are
// already set).
func WithAPI(f func(*api.Config)) Option { return func(o *options) { o.api = f } }

// WithHandler wraps the HTTP layer in wrap, for tests that watch every
// request and answer (the OpenAPI tests record them all).
func WithHandler(wrap func(http.Handler) http.Handler) Option {
	return func(o *options) { o.wrap = wrap }
}

// WithClock gives the domain a clock that tests move.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// Start starts a server keeping its data under dir. Close it when done.
// Tests use New; Start serves examples, which have no testing.T.
func Start(dir string, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ctx := context.Background()
	s := &Server{AdminToken: AdminToken}
	backend := o.backend
	if backend == nil {
		b, err := fs.New(filepath.Join(dir, "blobs"))
		if err != nil {
			return nil, fmt.Errorf("blob directory: %w", err)
		}
		s.closers = append(s.closers, b.Close)
		backend = b
	}
	meta, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "dml.db"))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	s.closers = append(s.closers, meta.Close)
	signer, logKey, err := testkeys.New()
	if err != nil {
		s.Close()
		return nil, err
	}
	var md releases.Metadata = meta
	if o.metadata != nil {
		md = o.metadata(meta)
	}
	s.DML, err = releases.New(releases.Config{
		Metadata: md, Blobs: store.New(backend), Signer: signer, LogKey: logKey, LogOrigin: testkeys.LogOrigin,
		Logger: o.log, Clock: o.clock,
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	if _, err := s.DML.Access.BootstrapAdmin(ctx, AdminToken); err != nil {
		s.Close()
		return nil, fmt.Errorf("bootstrap admin: %w", err)
	}
	if o.dispatch != nil {
		d, err := s.DML.Events.NewDispatcher(*o.dispatch)
		if err != nil {
			s.Close()
			return nil, err
		}
		dctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); d.Run(dctx) }()
		s.stopDispatch = func() { cancel(); <-done }
	}
	cfg := api.Config{DML: s.DML, Logger: o.log}
	if o.api != nil {
		o.api(&cfg)
	}
	// The test process runs gin as the server does (cmd/dml sets it).
	gin.SetMode(gin.ReleaseMode)
	h, err := api.New(cfg)
	if err != nil {
		s.Close()
		return nil, err
	}
	var handler http.Handler = h
	if o.wrap != nil {
		handler = o.wrap(h)
	}
	s.HTTP = httptest.NewServer(handler)
	s.URL = s.HTTP.URL
	return s, nil
}

// Close stops the HTTP server, then closes the database and the backend.
func (s *Server) Close() error {
	if s.DML != nil {
		// Long-polls of the event stream end, so the HTTP server can.
		s.DML.Events.StopWaiting()
	}
	if s.HTTP != nil {
		s.HTTP.Close()
	}
	if s.stopDispatch != nil {
		s.stopDispatch()
		s.stopDispatch = nil
	}
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// New starts a server whose data lives in t.TempDir and which is closed
// when the test ends. It returns the HTTP server, the admin token and the
// domain service (to look behind the API, e.g. at the blob store).
func New(t testing.TB, opts ...Option) (*httptest.Server, string, *releases.DML) {
	t.Helper()
	s, err := Start(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testserver close: %v", err)
		}
	})
	return s.HTTP, s.AdminToken, s.DML
}

// Token issues a token with the given name and roles through the service
// (as the bootstrap admin) and returns its secret. Deployer tokens get the
// environment "staging".
func Token(t testing.TB, svc *releases.DML, name string, roles ...access.Role) string {
	t.Helper()
	ctx := context.Background()
	admin, err := svc.Access.Authenticate(ctx, AdminToken)
	if err != nil {
		t.Fatalf("testserver: admin: %v", err)
	}
	req := access.TokenRequest{Name: name, Roles: roles}
	for _, r := range roles {
		if r == access.RoleDeployer {
			req.Environments = []string{"staging"}
		}
	}
	issued, err := svc.Access.IssueToken(ctx, admin, req)
	if err != nil {
		t.Fatalf("testserver: issue token %s: %v", name, err)
	}
	return issued.Secret
}
