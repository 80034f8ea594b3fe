package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/atomicfile"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
)

// A person's CLI session (docs/sso.md): `dml login` signs in through a
// single sign-on provider with the loopback redirect of RFC 8252 (a
// listener on 127.0.0.1, PKCE, state, nonce) and keeps the short-lived
// session the server issues in the session file, which the client
// builder (cli.client) uses when no token is given.

// sessionFile is what `dml login` stores: never the provider's tokens,
// only the dml session.
type sessionFile struct {
	Server       string    `json:"server"`
	Token        string    `json:"token"`
	TokenID      string    `json:"tokenId"`
	ExpiresAt    time.Time `json:"expiresAt"`
	Provider     string    `json:"provider"`
	Issuer       string    `json:"issuer"`
	Subject      string    `json:"subject"`
	Name         string    `json:"name"`
	Roles        []string  `json:"roles"`
	Environments []string  `json:"environments"`
}

// sessionPath is $XDG_CONFIG_HOME/dml/session.json (os.UserConfigDir).
func sessionPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("session file: %w", err)
	}
	return filepath.Join(dir, "dml", "session.json"), nil
}

// loadSession reads the session file; fs.ErrNotExist when there is none.
func loadSession() (sessionFile, string, error) {
	path, err := sessionPath()
	if err != nil {
		return sessionFile{}, "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return sessionFile{}, path, err
	}
	var s sessionFile
	if err := json.Unmarshal(b, &s); err != nil || s.Token == "" || s.Server == "" {
		return sessionFile{}, path, fmt.Errorf("session file %s is damaged; run dml login again", path)
	}
	return s, path, nil
}

// saveSession writes the session file atomically, readable by its owner
// only, in a directory only its owner can enter.
func saveSession(s sessionFile) (string, error) {
	path, err := sessionPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("session file: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Replace(path, 0o600, atomicfile.Bytes(append(b, '\n'))); err != nil {
		return "", fmt.Errorf("session file: %w", err)
	}
	return path, nil
}

// sessionSummary is what login and logout print: the session without
// its secret.
type sessionSummary struct {
	Server       string    `json:"server"`
	Name         string    `json:"name"`
	Provider     string    `json:"provider"`
	Issuer       string    `json:"issuer"`
	Subject      string    `json:"subject"`
	Roles        []string  `json:"roles"`
	Environments []string  `json:"environments"`
	ExpiresAt    time.Time `json:"expiresAt"`
	TokenID      string    `json:"tokenId"`
	File         string    `json:"file"`
}

func (s sessionFile) summary(file string) sessionSummary {
	return sessionSummary{Server: s.Server, Name: s.Name, Provider: s.Provider, Issuer: s.Issuer, Subject: s.Subject,
		Roles: nonNilList(s.Roles), Environments: nonNilList(s.Environments), ExpiresAt: s.ExpiresAt.UTC(), TokenID: s.TokenID, File: file}
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func newLoginCmd(app *cli) *cobra.Command {
	var (
		provider  string
		noBrowser bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in through the organisation's identity provider (single sign-on)",
		Long: `Sign in to the dml server (--server) as a person, through a single sign-on provider the
server is configured with (docs/sso.md).

dml login opens the provider's sign-in page in a browser (or prints its URL: --no-browser)
and waits for the provider to send the browser back to a listener on 127.0.0.1 (RFC 8252,
with PKCE, state and nonce). The server verifies the ID token, maps its claims to roles and
issues a short-lived session, kept in $XDG_CONFIG_HOME/dml/session.json (mode 0600). Every
command given no --token or DML_TOKEN then uses it, until it expires or dml logout ends it.
With several providers, --provider names the one to use.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			s, err := app.login(ctx, cmd.ErrOrStderr(), provider, noBrowser)
			if err != nil {
				return err
			}
			path, err := saveSession(s)
			if err != nil {
				return err
			}
			sum := s.summary(path)
			return app.emit(cmd.OutOrStdout(), sum, func(w io.Writer) error {
				return printFields(w, [][2]string{
					{"signed in as", sum.Name},
					{"server", sum.Server},
					{"provider", sum.Provider + " (" + sum.Issuer + ")"},
					{"subject", sum.Subject},
					{"roles", listOrNone(sum.Roles)},
					{"environments", listOrNone(sum.Environments)},
					{"expires", formatTime(sum.ExpiresAt)},
					{"session file", sum.File},
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&provider, "provider", "", "provider to sign in with (default: the server's only provider with a CLI client)")
	f.BoolVar(&noBrowser, "no-browser", false, "only print the sign-in URL; do not try to open a browser")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the sign-in to complete")
	return cmd
}

// login runs the loopback redirect flow and exchanges its ID token for
// a dml session.
func (a *cli) login(ctx context.Context, stderr io.Writer, name string, noBrowser bool) (sessionFile, error) {
	c, err := a.anonymousClient()
	if err != nil {
		return sessionFile{}, err
	}
	providers, err := c.SSO().Providers(ctx)
	if err != nil {
		return sessionFile{}, fmt.Errorf("listing the server's single sign-on providers: %w", err)
	}
	p, err := pickProvider(providers, name)
	if err != nil {
		return sessionFile{}, err
	}
	// The provider's discovery and token endpoints trust what the dml
	// server's do (--ca-cert): an organisation's CA often signs both.
	h, err := a.httpClient(nil)
	if err != nil {
		return sessionFile{}, err
	}
	ctx = oidc.ClientContext(ctx, h)
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		return sessionFile{}, fmt.Errorf("provider %s: discovery at %s: %w", p.Name, p.Issuer, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sessionFile{}, fmt.Errorf("loopback listener: %w", err)
	}
	defer ln.Close()
	conf := &oauth2.Config{ClientID: p.CLIClientID, Endpoint: op.Endpoint(), Scopes: p.Scopes,
		RedirectURL: "http://" + ln.Addr().String() + "/callback"}
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))

	codes := make(chan string, 1)
	failures := make(chan error, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var err error
		switch {
		case q.Get("error") != "":
			err = fmt.Errorf("provider %s refused the sign-in: %s %s", p.Name, q.Get("error"), q.Get("error_description"))
		case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1:
			// Not this sign-in's answer: keep waiting for the right one.
			http.Error(w, "this answer does not belong to the sign-in dml login is waiting for (state mismatch)", http.StatusBadRequest)
			return
		case q.Get("code") == "":
			err = fmt.Errorf("provider %s answered without a code", p.Name)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			select {
			case failures <- err:
			default:
			}
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>dml login</title><p>Signed in with %s. You may close this window and return to the terminal.</p>", html.EscapeString(p.DisplayName))
		select {
		case codes <- q.Get("code"):
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	fmt.Fprintf(stderr, "Sign in with %s at:\n\n  %s\n\nWaiting for the browser to come back to %s ...\n", p.DisplayName, authURL, conf.RedirectURL)
	if !noBrowser {
		openBrowser(authURL)
	}
	var code string
	select {
	case code = <-codes:
	case err := <-failures:
		return sessionFile{}, err
	case <-ctx.Done():
		return sessionFile{}, fmt.Errorf("no sign-in completed: %w", ctx.Err())
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return sessionFile{}, fmt.Errorf("provider %s: redeeming the code: %w", p.Name, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return sessionFile{}, fmt.Errorf("provider %s answered without an ID token", p.Name)
	}
	s, err := c.SSO().SignIn(ctx, wire.SSOSessionRequest{Provider: p.Name, IDToken: raw, AccessToken: tok.AccessToken, Nonce: nonce})
	if err != nil {
		return sessionFile{}, err
	}
	return sessionFile{Server: a.server, Token: s.Token, TokenID: s.TokenID, ExpiresAt: s.ExpiresAt, Provider: s.Provider,
		Issuer: s.Issuer, Subject: s.Subject, Name: s.Name, Roles: s.Roles, Environments: s.Environments}, nil
}

func pickProvider(list []wire.SSOProvider, name string) (wire.SSOProvider, error) {
	var usable []string
	for _, p := range list {
		if name != "" && p.Name == name {
			if p.CLIClientID == "" {
				return p, fmt.Errorf("provider %s has no client for the CLI (cliClientId) on this server", name)
			}
			return p, nil
		}
		if p.CLIClientID != "" {
			usable = append(usable, p.Name)
		}
	}
	switch {
	case name != "":
		return wire.SSOProvider{}, fmt.Errorf("the server has no single sign-on provider %q (it has: %s)", name, listOrNone(usable))
	case len(usable) == 0:
		return wire.SSOProvider{}, errors.New("the server has no single sign-on provider the CLI can use; sign in with a token (DML_TOKEN)")
	case len(usable) > 1:
		return wire.SSOProvider{}, fmt.Errorf("the server has several single sign-on providers (%s): choose one with --provider", strings.Join(usable, ", "))
	}
	for _, p := range list {
		if p.Name == usable[0] {
			return p, nil
		}
	}
	panic("unreachable")
}

// openBrowser tries to open url in the person's browser; failing is
// fine, the URL is printed.
func openBrowser(url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}

func newLogoutCmd(app *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the single sign-on session of dml login and remove its file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, path, err := loadSession()
			if errors.Is(err, fs.ErrNotExist) {
				return errors.New("not signed in: there is no session file (dml login creates one)")
			}
			if err != nil {
				return err
			}
			ended := "ended"
			c, err := app.clientFor(s.Server, s.Token)
			if err != nil {
				return err
			}
			var apiErr *client.Error
			if err := c.SSO().SignOut(cmd.Context()); errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
				// Expired or ended already: nothing left to end.
				ended = "already ended"
			} else if err != nil {
				return fmt.Errorf("ending the session at %s: %w (the session file is kept)", s.Server, err)
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			sum := s.summary(path)
			return app.emit(cmd.OutOrStdout(), struct {
				sessionSummary
				Session string `json:"session"`
			}{sum, ended}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "signed out: session %s of %s %s, %s removed\n", s.TokenID, s.Name, ended, path)
				return err
			})
		},
	}
}
