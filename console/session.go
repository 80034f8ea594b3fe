package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
)

// Cookie names. The session cookie holds the sealed session; the sign-in
// cookie the CSRF token of the sign-in form (there is no session yet);
// the flash cookie one message for the next page.
const (
	sessionCookie = "dml_session"
	signinCookie  = "dml_signin"
	flashCookie   = "dml_flash"
	csrfField     = "_csrf"
)

// session is what the sealed cookie holds: the token it was opened with,
// when it ends, and its CSRF token. The token is authenticated again on
// every request: revoking it ends the session.
type session struct {
	Token   string `json:"t"`
	Expires int64  `json:"e"`
	CSRF    string `json:"c"`
}

// sessions seals and opens session cookies with AES-GCM under a key
// derived from the server's key.
type sessions struct {
	aead cipher.AEAD
	ttl  time.Duration
	now  func() time.Time
}

var (
	errNoSession      = errors.New("not signed in")
	errSessionExpired = errors.New("the session expired")
)

func newSessions(key []byte, ttl time.Duration, now func() time.Time) (sessions, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return sessions{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sessions{}, err
	}
	return sessions{aead: aead, ttl: ttl, now: now}, nil
}

// seal makes the cookie value of a new session for token.
func (s sessions) seal(token string) (string, session, error) {
	sess := session{Token: token, Expires: s.now().Add(s.ttl).Unix(), CSRF: randomHex(16)}
	plain, err := json.Marshal(sess)
	if err != nil {
		return "", sess, err
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(sessionCookie))
	return base64.RawURLEncoding.EncodeToString(sealed), sess, nil
}

// open reads a cookie value: errNoSession when it is not one this server
// sealed, errSessionExpired when its time is over.
func (s sessions) open(value string) (session, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return session{}, errNoSession
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(sessionCookie))
	if err != nil {
		return session{}, errNoSession
	}
	var sess session
	if err := json.Unmarshal(plain, &sess); err != nil || sess.Token == "" || sess.CSRF == "" {
		return session{}, errNoSession
	}
	if !s.now().Before(time.Unix(sess.Expires, 0)) {
		return session{}, errSessionExpired
	}
	return sess, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// secure reports whether the request came over TLS, directly or through
// a proxy that says so: cookies are then Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setCookie sets a console cookie for maxAge (zero: until the browser
// closes), or deletes it when value is empty. The age is relative (Max-Age,
// not Expires), so the browser's clock and the server's need not agree.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{Name: name, Value: value, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)}
	if value == "" {
		ck.MaxAge = -1
	} else if maxAge > 0 {
		ck.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, ck)
}

// authenticate returns the principal and session of the request's
// session cookie.
func (c *Console) authenticate(r *http.Request) (access.Principal, session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return access.Principal{}, session{}, errNoSession
	}
	sess, err := c.sessions.open(ck.Value)
	if err != nil {
		return access.Principal{}, session{}, err
	}
	p, err := c.dml.Access.Authenticate(r.Context(), sess.Token)
	if err != nil {
		return access.Principal{}, session{}, err
	}
	return p, sess, nil
}

// signinPage shows the sign-in form, with a CSRF token of its own.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	token := randomHex(16)
	c.setCookie(w, r, signinCookie, token, 0)
	msg := ""
	switch r.URL.Query().Get("why") {
	case "expired":
		msg = "Your session expired. Sign in again."
	case "signedout":
		msg = "You are signed out."
	}
	next := safeNext(r.URL.Query().Get("next"))
	c.render(w, r, http.StatusOK, "signin", &page{Title: "Sign in", CSRF: token, Flash: msg, Data: signinData{Next: next, Providers: c.ssoButtons(next)}})
}

type signinData struct {
	Next  string
	Error string
	// Providers are the single sign-on providers (sso.go).
	Providers []ssoButton
}

// signin exchanges a token for a session.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	ck, err := r.Cookie(signinCookie)
	if err != nil || !hmac.Equal([]byte(ck.Value), []byte(r.PostFormValue(csrfField))) {
		c.render(w, r, http.StatusForbidden, "error", &page{Title: "Refused", Data: errorData{Status: http.StatusForbidden,
			Message: "The sign-in form was not the one this server sent (cookies off, or a forged form). Reload the sign-in page and try again."}})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if _, err := c.dml.Access.Authenticate(r.Context(), token); err != nil {
		fresh := randomHex(16)
		c.setCookie(w, r, signinCookie, fresh, 0)
		c.render(w, r, http.StatusUnauthorized, "signin", &page{Title: "Sign in", CSRF: fresh, Data: signinData{Next: next, Error: "That token is not valid: unknown, revoked or expired.", Providers: c.ssoButtons(next)}})
		return
	}
	value, _, err := c.sessions.seal(token)
	if err != nil {
		c.log.Error("console: sealing a session", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, r, signinCookie, "", 0)
	// The cookie outlives the session by a day, so that a page opened
	// after the session ended says it expired; the server enforces the
	// session's own end.
	c.setCookie(w, r, sessionCookie, value, c.sessions.ttl+24*time.Hour)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signout ends the session (its CSRF token is required: signing someone
// out is a change too).
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	if p, sess, err := c.authenticate(r); err == nil {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if r.ParseForm() != nil || !hmac.Equal([]byte(sess.CSRF), []byte(r.PostFormValue(csrfField))) {
			c.csrfRefused(w, r)
			return
		}
		// A single sign-on session ends with the sign-out (a pasted
		// token is the admin's to revoke, and outlives the console).
		if p.Issuer != "" {
			if err := c.dml.Access.EndSession(r.Context(), p); err != nil {
				c.log.Warn("console: ending a single sign-on session", "token", p.TokenID, "err", err)
			}
		}
	}
	c.setCookie(w, r, sessionCookie, "", 0)
	http.Redirect(w, r, Prefix+"signin?why=signedout", http.StatusSeeOther)
}

// safeNext keeps a redirect target inside the console.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.IsAbs() || u.Host != "" || !strings.HasPrefix(u.Path, Prefix) || strings.HasPrefix(next, "//") {
		return Prefix
	}
	return u.RequestURI()
}

func (c *Console) csrfRefused(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusForbidden, "error", &page{Title: "Refused", Data: errorData{Status: http.StatusForbidden,
		Message: "This form was not sent by this session (its CSRF token does not match). Nothing was changed. Reload the page and try again."}})
}
