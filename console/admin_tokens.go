package console

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
)

// The tokens page: every token with its roles, environments, expiry, last
// use and state; the form that issues one (its secret shown once); revoke.

func (c *Console) routeAdminTokens(m *http.ServeMux) {
	m.HandleFunc("GET "+Prefix+"admin/tokens", c.page(func(v *view) error {
		if err := v.require("token_list"); err != nil {
			return err
		}
		if err := v.require("token_issue"); err != nil {
			return err
		}
		return v.tokensPage(tokenForm{}, nil)
	}))
	m.HandleFunc("POST "+Prefix+"admin/tokens", c.page(func(v *view) error {
		if err := v.require("token_issue"); err != nil {
			return err
		}
		f := readTokenForm(v.r)
		issued, err := v.c.dml.Access.IssueToken(v.r.Context(), v.p, f.request())
		if err != nil {
			if p := adminFormProblem(err); p != nil {
				return v.tokensPage(f, p)
			}
			return err
		}
		if err := v.keepIssuedSecret(issued); err != nil {
			return err
		}
		return v.redirect(Prefix+"admin/tokens", "Token "+issued.Token.Name+" ("+issued.Token.ID+") issued.")
	}))
	m.HandleFunc("POST "+Prefix+"admin/tokens/revoke", c.page(func(v *view) error {
		if err := v.require("token_revoke"); err != nil {
			return err
		}
		id := v.r.PostFormValue("id")
		if err := v.c.dml.Access.RevokeToken(v.r.Context(), v.p, id); err != nil {
			return err
		}
		return v.redirect(Prefix+"admin/tokens", "Token "+id+" revoked: it no longer authenticates, and its sessions have ended.")
	}))
}

// expiryChoices are the lifetimes the form offers (the API takes any Go
// duration up to access.MaxTokenLifetime; these cover what people ask
// for, and "" issues a token that does not expire).
var expiryChoices = []struct{ Value, Label string }{
	{"24h", "1 day"},
	{"168h", "7 days"},
	{"720h", "30 days"},
	{"2160h", "90 days"},
	{"8760h", "1 year"},
	{"", "never"},
}

// tokenForm is the issue form as typed.
type tokenForm struct {
	Name         string
	Roles        []string
	Environments string
	ExpiresIn    string
}

func readTokenForm(r *http.Request) tokenForm {
	return tokenForm{
		Name:         strings.TrimSpace(r.PostFormValue("name")),
		Roles:        r.PostForm["role"],
		Environments: r.PostFormValue("environments"),
		ExpiresIn:    r.PostFormValue("expires"),
	}
}

// request is the form as the domain takes it; the domain checks it.
func (f tokenForm) request() access.TokenRequest {
	req := access.TokenRequest{Name: f.Name, ExpiresIn: f.ExpiresIn}
	for _, r := range f.Roles {
		req.Roles = append(req.Roles, access.Role(r))
	}
	req.Environments = strings.FieldsFunc(f.Environments, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	return req
}

// Has reports whether the form has role checked.
func (f tokenForm) Has(role access.Role) bool { return slices.Contains(f.Roles, string(role)) }

type tokensData struct {
	Tabs    []navItem
	Tokens  []tokenRow
	Issued  *issuedSecret
	Form    tokenForm
	Problem *adminProblem
	Roles   []access.Role
	Expiry  []struct{ Value, Label string }
	// ExpiryDefault is what the form selects when nothing was typed.
	ExpiryDefault string
}

// tokenRow is a token as listed, with its state now.
type tokenRow struct {
	access.Token
	State string // active, expired or revoked
	// Mine marks the token of this session: revoking it signs out.
	Mine bool
}

func (v *view) tokensPage(f tokenForm, p *adminProblem) error {
	list, err := v.c.dml.Access.Tokens(v.r.Context(), v.p)
	if err != nil {
		return err
	}
	now := v.c.now()
	d := tokensData{Tabs: v.adminTabs(), Form: f, Problem: p, Roles: access.Roles, Expiry: expiryChoices, ExpiryDefault: "720h"}
	if p != nil {
		d.ExpiryDefault = f.ExpiresIn
	}
	// Newest first: the token just issued is at the top.
	for i := len(list) - 1; i >= 0; i-- {
		t := list[i]
		row := tokenRow{Token: t, State: "active", Mine: t.ID == v.p.TokenID}
		switch {
		case t.RevokedAt != nil:
			row.State = "revoked"
		case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
			row.State = "expired"
		}
		d.Tokens = append(d.Tokens, row)
	}
	if p == nil {
		d.Issued = v.takeIssuedSecret()
	}
	return v.render(adminStatus(p), "admin_tokens", "Tokens", d)
}

// A new token's secret is shown once, on the page the issue form
// redirects to (POST-redirect-GET: reloading never issues a second
// token). It travels there in a cookie sealed like the session, bound
// to this session's CSRF token so that no other session can open it,
// valid for a few minutes, scoped to the tokens page, and deleted as soon
// as the page has shown it. dml itself keeps only the secret's hash.
const (
	issuedCookie = "dml_issued"
	issuedPath   = Prefix + "admin/tokens"
	issuedTTL    = 5 * time.Minute
)

// issuedSecret is what the tokens page shows once.
type issuedSecret struct {
	ID      string `json:"id"`
	Name    string `json:"n"`
	Secret  string `json:"s"`
	Expires int64  `json:"e"`
}

func (v *view) issuedAD() []byte { return []byte(issuedCookie + " " + v.sess.CSRF) }

func (v *view) keepIssuedSecret(t access.IssuedToken) error {
	plain, err := json.Marshal(issuedSecret{ID: t.Token.ID, Name: t.Token.Name, Secret: t.Secret, Expires: v.c.now().Add(issuedTTL).Unix()})
	if err != nil {
		return err
	}
	aead := v.c.sessions.aead
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand never fails on supported platforms
	sealed := aead.Seal(nonce, nonce, plain, v.issuedAD())
	http.SetCookie(v.w, &http.Cookie{Name: issuedCookie, Value: base64.RawURLEncoding.EncodeToString(sealed), Path: issuedPath,
		MaxAge: int(issuedTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(v.r)})
	return nil
}

// takeIssuedSecret opens and deletes the cookie; nil when there is none
// this session may read.
func (v *view) takeIssuedSecret() *issuedSecret {
	ck, err := v.r.Cookie(issuedCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(v.w, &http.Cookie{Name: issuedCookie, Path: issuedPath, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(v.r)})
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	aead := v.c.sessions.aead
	if err != nil || len(raw) < aead.NonceSize() {
		return nil
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], v.issuedAD())
	if err != nil {
		return nil
	}
	var s issuedSecret
	if json.Unmarshal(plain, &s) != nil || s.Secret == "" || !v.c.now().Before(time.Unix(s.Expires, 0)) {
		return nil
	}
	return &s
}
