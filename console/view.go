package console

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// page is what every template gets: the layout's parts and the page's
// own Data.
type page struct {
	Title     string
	Principal access.Principal
	SignedIn  bool
	CSRF      string
	Flash     string
	Nav       []navItem
	// Can reports whether the principal may call an API operation: pages
	// show an action only when it would be allowed.
	Can  func(operation string) bool
	Data any
}

type navItem struct {
	Label, Href string
	Current     bool
}

// errorData is the error page's.
type errorData struct {
	Status  int
	Code    string
	Message string
}

// nav is the console's navigation: a page is listed for a principal who
// may call the API operation that page reads.
var nav = []struct {
	label, href, operation string
}{
	{"Waiting for me", Prefix, ""},
	{"Releases", Prefix + "releases", "release_list"},
	{"Environments", Prefix + "environments", "release_list"},
	{"Catalogue", Prefix + "artifacts", "artifact_list"},
	{"Audit", Prefix + "audit", "audit_entries"},
	{"Admin", Prefix + "admin", "token_issue"},
}

// view is one request to a signed-in page.
type view struct {
	c    *Console
	w    http.ResponseWriter
	r    *http.Request
	p    access.Principal
	sess session
}

// page wraps a page handler: the session is required (else the sign-in
// page, coming back here after), a POST must carry the session's CSRF
// token, and an error the handler returns is shown as an error page.
func (c *Console) page(fn func(v *view) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, sess, err := c.authenticate(r)
		if err != nil && r.Header.Get(liveHeader) != "" {
			// A live region's refresh (static/console.js) is not a page:
			// it must not be answered with the sign-in page, which would
			// land inside the region. The script reloads the page instead.
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		if err != nil {
			why := ""
			if errors.Is(err, errSessionExpired) {
				why = "why=expired&"
				c.setCookie(w, r, sessionCookie, "", 0)
			}
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				next = r.Header.Get("Referer")
				if u, err := url.Parse(next); err == nil {
					next = u.RequestURI()
				}
			}
			http.Redirect(w, r, Prefix+"signin?"+why+"next="+url.QueryEscape(safeNext(next)), http.StatusSeeOther)
			return
		}
		v := &view{c: c, w: w, r: r, p: p, sess: sess}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := parseForm(r); err != nil {
				v.fail(fmt.Errorf("%w: %v", errdef.ErrInvalidInput, err))
				return
			}
			if !hmac.Equal([]byte(sess.CSRF), []byte(r.PostFormValue(csrfField))) {
				c.csrfRefused(w, r)
				return
			}
		}
		if err := fn(v); err != nil {
			v.fail(err)
		}
	}
}

// parseForm reads a POST's form, multipart (a file upload) or not, up to
// the 1 MiB the body is bounded to.
func parseForm(r *http.Request) error {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		return r.ParseMultipartForm(1 << 20)
	}
	return r.ParseForm()
}

// liveHeader marks the requests of static/console.js for live regions.
const liveHeader = "X-DML-Live"

// can reports whether the principal may call the API operation.
func (v *view) can(operation string) bool { return operation == "" || v.c.allows(operation, v.p) }

// require refuses the page unless the principal may call the operation.
func (v *view) require(operation string) error {
	if !v.can(operation) {
		return fmt.Errorf("%w: this page needs a role that may call %s", errdef.ErrDenied, operation)
	}
	return nil
}

// render writes the page.
func (v *view) render(status int, name, title string, data any) error {
	pg := &page{Title: title, Principal: v.p, SignedIn: true, CSRF: v.sess.CSRF, Can: v.can, Data: data}
	if ck, err := v.r.Cookie(flashCookie); err == nil {
		if msg, err := url.QueryUnescape(ck.Value); err == nil {
			pg.Flash = msg
		}
		v.c.setCookie(v.w, v.r, flashCookie, "", 0)
	}
	for _, n := range nav {
		if v.can(n.operation) {
			current := n.href == v.r.URL.Path || (n.href != Prefix && strings.HasPrefix(v.r.URL.Path, n.href))
			pg.Nav = append(pg.Nav, navItem{Label: n.label, Href: n.href, Current: current})
		}
	}
	v.c.render(v.w, v.r, status, name, pg)
	return nil
}

// redirect answers a POST: back to a page, with a message for it.
func (v *view) redirect(to, flash string) error {
	if flash != "" {
		v.c.setCookie(v.w, v.r, flashCookie, url.QueryEscape(flash), 0)
	}
	http.Redirect(v.w, v.r, to, http.StatusSeeOther)
	return nil
}

// fragment answers a live region (static/console.js): the template tmpl
// of page name alone, with an ETag of its bytes, and 304 Not Modified
// when the client has them already.
func (v *view) fragment(name, tmpl string, data any) error {
	t, ok := v.c.pages[name]
	if !ok {
		return fmt.Errorf("console: no page %s", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, &page{Principal: v.p, SignedIn: true, CSRF: v.sess.CSRF, Can: v.can, Data: data}); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h := v.w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if v.r.Header.Get("If-None-Match") == etag {
		v.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, err := buf.WriteTo(v.w)
	return err
}

func (v *view) notFound() error {
	return fmt.Errorf("%w: no page at %s", errdef.ErrNotFound, v.r.URL.Path)
}

// fail shows err as an error page with the status and code the API
// answers it with (its error table), and the error's own words: they say
// what to do (a stale digest, separation of duties, a quorum too low).
// Server errors are logged and not shown.
func (v *view) fail(err error) {
	status, code := v.c.describe(err)
	msg := err.Error()
	if status >= 500 {
		v.c.log.Error("console page failed", "path", v.r.URL.Path, "err", err)
		msg = "Something went wrong on the server; it was logged."
	}
	_ = v.render(status, "error", http.StatusText(status), errorData{Status: status, Code: code, Message: msg})
}

// render executes a page template into a buffer first, so that a
// template error sends a clean 500, not half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, pg *page) {
	t, ok := c.pages[name]
	if pg.Can == nil {
		pg.Can = func(string) bool { return false }
	}
	var buf bytes.Buffer
	if ok {
		if err := t.ExecuteTemplate(&buf, "layout", pg); err != nil {
			c.log.Error("console template", "page", name, "err", err)
			ok = false
		}
	} else {
		c.log.Error("console template missing", "page", name)
	}
	if !ok {
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// funcs are the helpers templates use.
var funcs = template.FuncMap{
	"short": func(d any) string {
		s := fmt.Sprint(d)
		if dd, err := digest.Parse(s); err == nil && len(dd.Encoded()) > 12 {
			return string(dd.Algorithm()) + ":" + dd.Encoded()[:12]
		}
		return s
	},
	"time": func(t any) string {
		switch t := t.(type) {
		case time.Time:
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if t == nil || t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		}
		return fmt.Sprint(t)
	},
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join":    strings.Join,
	"query":   url.QueryEscape,
	"upper":   strings.ToUpper,
	"roles": func(rs []access.Role) string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = string(r)
		}
		return strings.Join(out, ", ")
	},
}

// parseTemplates parses each page with the layout and the shared
// fragments (files named _*.html) into its own template set: every page
// defines "content", which the layout shows.
func parseTemplates() (map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	common := []string{"templates/layout.html"}
	for _, f := range files {
		if strings.HasPrefix(path.Base(f), "_") {
			common = append(common, f)
		}
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, append(slices.Clone(common), f)...)
		if err != nil {
			return nil, fmt.Errorf("console: %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}
