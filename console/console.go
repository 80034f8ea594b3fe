package console

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/ui/"

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 8 * time.Hour

// Config is what the console is built from.
type Config struct {
	DML *releases.DML
	// Allows reports whether the API's access matrix lets p call the API
	// operation named (e.g. "release_approval"). Required.
	Allows func(operation string, p access.Principal) bool
	// Describe gives an error's HTTP status and code, as the API answers
	// it (its one error table). Required.
	Describe func(err error) (status int, code string)
	// SessionTTL is how long a sign-in lasts; zero: DefaultSessionTTL.
	SessionTTL time.Duration
	// SSO is the single sign-on providers the sign-in page offers; nil:
	// none (sso.go).
	SSO *sso.Providers
	// Log nil: silent. Now nil: the wall clock.
	Log *slog.Logger
	Now func() time.Time
}

// Console is the web console, an http.Handler for "/" and Prefix.
type Console struct {
	dml      *releases.DML
	allows   func(string, access.Principal) bool
	describe func(error) (int, string)
	sessions sessions
	sso      *sso.Providers
	pages    map[string]*template.Template
	static   http.Handler
	mux      *http.ServeMux
	log      *slog.Logger
	now      func() time.Time
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.DML == nil || cfg.Allows == nil || cfg.Describe == nil {
		return nil, errors.New("console: the domain, the access matrix and the error table are required")
	}
	c := &Console{dml: cfg.DML, allows: cfg.Allows, describe: cfg.Describe, sso: cfg.SSO, log: cfg.Log, now: cfg.Now}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	ttl := cfg.SessionTTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	var err error
	if c.sessions, err = newSessions(cfg.DML.ServerSecret("dml console session v1"), ttl, c.clock); err != nil {
		return nil, err
	}
	if c.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	c.mux = http.NewServeMux()
	c.routes()
	return c, nil
}

func (c *Console) clock() time.Time { return c.now() }

// Serves reports whether the console answers the path: "/" and
// everything under Prefix.
func Serves(path string) bool {
	return path == "/" || path == Prefix[:len(Prefix)-1] || len(path) >= len(Prefix) && path[:len(Prefix)] == Prefix
}

// ServeHTTP serves the console with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

// routes registers every page. Each area registers its own.
func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Prefix, http.StatusFound) })
	m.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Prefix, http.StatusFound) })
	m.Handle("GET "+Prefix+"static/", c.static)
	m.HandleFunc("GET "+Prefix+"signin", c.signinPage)
	m.HandleFunc("POST "+Prefix+"signin", c.signin)
	m.HandleFunc("POST "+Prefix+"signout", c.signout)
	c.routeSSO(m)
	m.HandleFunc(Prefix, c.page(func(v *view) error { return v.notFound() }))
	c.routeInbox(m)
	c.routeReleases(m)
	c.routeCatalog(m)
	c.routeAudit(m)
	c.routeAdmin(m)
}
