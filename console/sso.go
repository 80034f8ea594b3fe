package console

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/releases/access"
)

// Signing in through a single sign-on provider (docs/sso.md): the
// sign-in page links to /ui/sso/NAME/start, which sends the browser to the
// provider with an authorization code request (PKCE, state, nonce); the
// provider sends it back to /ui/sso/NAME/callback, which redeems the code,
// verifies the ID token, and starts a session (releases/access SignIn)
// that the console's session cookie then holds, as a pasted token would.

// ssoCookie holds the flow between start and callback, sealed like a
// session. It is SameSite=Lax, unlike the console's other cookies: the
// callback is a navigation from the provider's site, on which a Strict
// cookie is not sent.
const ssoCookie = "dml_sso"

// ssoFlowTTL bounds how long a person may take at the provider.
const ssoFlowTTL = 10 * time.Minute

// ssoFlow is what the flow cookie holds.
type ssoFlow struct {
	Provider string   `json:"p"`
	Flow     sso.Flow `json:"f"`
	Next     string   `json:"n"`
	Expires  int64    `json:"e"`
}

// ssoButton is one "Sign in with" link of the sign-in page.
type ssoButton struct {
	DisplayName string
	URL         string
}

func (c *Console) routeSSO(m *http.ServeMux) {
	m.HandleFunc("GET "+Prefix+"sso/{provider}/start", c.ssoStart)
	m.HandleFunc("GET "+Prefix+"sso/{provider}/callback", c.ssoCallback)
}

// ssoButtons lists the providers for the sign-in page.
func (c *Console) ssoButtons(next string) []ssoButton {
	var out []ssoButton
	for _, p := range c.sso.List() {
		out = append(out, ssoButton{DisplayName: p.DisplayName,
			URL: Prefix + "sso/" + url.PathEscape(p.Name) + "/start?" + url.Values{"next": {next}}.Encode()})
	}
	return out
}

// callbackURL is the redirect URI registered at the provider for the
// console's client: this server's own address, as the browser reached it.
func callbackURL(r *http.Request, provider string) string {
	scheme := "http"
	if secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + Prefix + "sso/" + url.PathEscape(provider) + "/callback"
}

func (c *Console) ssoStart(w http.ResponseWriter, r *http.Request) {
	p, err := c.sso.Get(r.PathValue("provider"))
	if err != nil {
		c.ssoFailed(w, r, http.StatusNotFound, "There is no single sign-on provider of that name.", Prefix)
		return
	}
	next := safeNext(r.URL.Query().Get("next"))
	f := ssoFlow{Provider: p.Name, Flow: sso.NewFlow(), Next: next, Expires: c.now().Add(ssoFlowTTL).Unix()}
	to, err := p.AuthCodeURL(r.Context(), callbackURL(r, p.Name), f.Flow)
	if err != nil {
		c.log.Warn("console: single sign-on start", "provider", p.Name, "err", err)
		c.ssoFailed(w, r, http.StatusBadGateway, p.DisplayName+" cannot be reached right now. Try again, or sign in with a token.", next)
		return
	}
	value, err := c.sessions.sealValue(ssoCookie, f)
	if err != nil {
		c.log.Error("console: sealing a sign-in", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: value, Path: Prefix + "sso/", MaxAge: int(ssoFlowTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r)})
	http.Redirect(w, r, to, http.StatusFound)
}

func (c *Console) ssoCallback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	// The flow cookie is used once, whatever the outcome.
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Path: Prefix + "sso/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r)})
	var f ssoFlow
	ck, err := r.Cookie(ssoCookie)
	if err == nil {
		err = c.sessions.openValue(ssoCookie, ck.Value, &f)
	}
	if err != nil || f.Provider != name || !c.now().Before(time.Unix(f.Expires, 0)) {
		c.ssoFailed(w, r, http.StatusBadRequest, "This sign-in was not started here, or took too long (its cookie is missing or expired). Start again.", Prefix)
		return
	}
	p, err := c.sso.Get(name)
	if err != nil {
		c.ssoFailed(w, r, http.StatusNotFound, "There is no single sign-on provider of that name.", f.Next)
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		msg := p.DisplayName + " refused the sign-in (" + e
		if d := q.Get("error_description"); d != "" {
			msg += ": " + d
		}
		c.ssoFailed(w, r, http.StatusUnauthorized, msg+").", f.Next)
		return
	}
	if !hmac.Equal([]byte(q.Get("state")), []byte(f.Flow.State)) {
		c.ssoFailed(w, r, http.StatusBadRequest, "The answer from "+p.DisplayName+" does not belong to this sign-in (state mismatch). Nothing was signed in. Start again.", f.Next)
		return
	}
	id, err := p.Exchange(r.Context(), callbackURL(r, p.Name), q.Get("code"), f.Flow)
	if err != nil {
		c.log.Warn("console: single sign-on", "provider", p.Name, "err", err)
		status, code := c.describe(err)
		c.ssoFailed(w, r, status, "Signing in with "+p.DisplayName+" failed ("+code+"): "+err.Error(), f.Next)
		return
	}
	session, err := c.dml.Access.SignIn(r.Context(), access.SignInRequest{Identity: id, Mapping: p.Mapping, TTL: p.TTL})
	if errors.Is(err, access.ErrNoRoleGranted) {
		c.ssoFailed(w, r, http.StatusForbidden, "Signed in at "+p.DisplayName+" as "+access.SessionName(id)+", but no dml role is granted to you (NO_ROLE_GRANTED). Ask an admin to add you to a group that "+p.DisplayName+" maps to a role.", f.Next)
		return
	}
	if err != nil {
		c.log.Error("console: starting a session", "provider", p.Name, "err", err)
		status, code := c.describe(err)
		c.ssoFailed(w, r, status, "Signing in failed ("+code+").", f.Next)
		return
	}
	value, _, err := c.sessions.seal(session.Secret)
	if err != nil {
		c.log.Error("console: sealing a session", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, r, signinCookie, "", 0)
	c.setCookie(w, r, sessionCookie, value, c.sessions.ttl+24*time.Hour)
	// A page, not a redirect: this response ends a navigation that came
	// from the provider's site, and the browser would not send the Strict
	// session cookie on a redirect of it. The page's own navigation is
	// same-site.
	c.render(w, r, http.StatusOK, "sso-done", &page{Title: "Signed in", Data: f.Next})
}

// ssoFailed shows the sign-in page with what went wrong.
func (c *Console) ssoFailed(w http.ResponseWriter, r *http.Request, status int, msg, next string) {
	token := randomHex(16)
	c.setCookie(w, r, signinCookie, token, 0)
	c.render(w, r, status, "signin", &page{Title: "Sign in", CSRF: token,
		Data: signinData{Next: next, Error: msg, Providers: c.ssoButtons(next)}})
}

// sealValue seals v for a cookie named name (the name is the AEAD's
// additional data: a value sealed for one cookie does not open as another).
func (s sessions) sealValue(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// openValue opens what sealValue sealed for the cookie name into v.
func (s sessions) openValue(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return errNoSession
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(name))
	if err != nil {
		return errNoSession
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return errNoSession
	}
	return nil
}
