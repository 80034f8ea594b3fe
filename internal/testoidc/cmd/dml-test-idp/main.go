// Command dml-test-idp is a real OpenID Connect provider for dml's single
// sign-on tests, on loopback: zitadel/oidc's example provider (its
// exampleop and storage packages, imported, not copied) with what the
// tests need and the example lacks:
//
//   - users read from JSON files in a directory, read again at every
//     lookup, so a test changes a person's groups by rewriting its file;
//     each test writes its own file, so tests running at the same time do
//     not overwrite each other's people;
//   - a "groups" claim, in the ID token (when the groups scope is asked
//     for) and at the userinfo endpoint;
//   - clients for dml: the console's confidential web client, whose
//     redirect URIs are patterns (the test servers listen on random
//     ports), the CLI's public native client (loopback redirect, any
//     port: RFC 8252), and another web client, whose tokens dml must
//     refuse.
//
// It prints "issuer http://127.0.0.1:PORT/" once it listens.
//
//	dml-test-idp -listen 127.0.0.1:0 -users DIR [-console-secret S]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Client ids the tests use.
const (
	ConsoleClient = "dml-console"
	CLIClient     = "dml-cli"
	OtherClient   = "other-app"
	OtherSecret   = "other-secret"
)

// person is one user in a users file.
type person struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Password      string   `json:"password"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"emailVerified"`
	FirstName     string   `json:"firstName"`
	LastName      string   `json:"lastName"`
	Groups        []string `json:"groups"`
}

// users reads every *.json file of dir (each a JSON array of people) at
// every lookup.
type users struct {
	dir string
	log *slog.Logger
}

func (u users) all() []person {
	files, _ := filepath.Glob(filepath.Join(u.dir, "*.json"))
	var out []person
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var ps []person
		if err := json.Unmarshal(b, &ps); err != nil {
			u.log.Warn("users file unreadable", "file", f, "err", err)
			continue
		}
		out = append(out, ps...)
	}
	return out
}

func (u users) find(match func(person) bool) (person, bool) {
	for _, p := range u.all() {
		if match(p) {
			return p, true
		}
	}
	return person{}, false
}

func (p person) user() *storage.User {
	return &storage.User{ID: p.ID, Username: p.Username, Password: p.Password, FirstName: p.FirstName, LastName: p.LastName,
		Email: p.Email, EmailVerified: p.EmailVerified, PreferredLanguage: language.English}
}

// GetUserByID, GetUserByUsername and ExampleClientID make users a
// storage.UserStore.
func (u users) GetUserByID(id string) *storage.User {
	if p, ok := u.find(func(p person) bool { return p.ID == id }); ok {
		return p.user()
	}
	return nil
}

func (u users) GetUserByUsername(name string) *storage.User {
	if p, ok := u.find(func(p person) bool { return p.Username == name }); ok {
		return p.user()
	}
	return nil
}

func (u users) ExampleClientID() string { return storage.ServiceUserID }

// store is the example's storage with the groups claim and dml's clients.
type store struct {
	*storage.Storage
	users   users
	clients map[string]op.Client
}

const groupsScope = "groups"

func (s *store) groups(subject string) []string {
	p, _ := s.users.find(func(p person) bool { return p.ID == subject })
	if p.Groups == nil {
		return []string{}
	}
	return p.Groups
}

// SetUserinfoFromRequest fills the ID token's claims: the example's, and
// the groups when the groups scope was asked for.
func (s *store) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	if slices.Contains(scopes, groupsScope) {
		info.AppendClaims(groupsScope, s.groups(req.GetSubject()))
	}
	return nil
}

// SetUserinfoFromToken answers the userinfo endpoint: the example's
// claims, and the groups.
func (s *store) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	if info.Subject != "" {
		info.AppendClaims(groupsScope, s.groups(info.Subject))
	}
	return nil
}

// GetClientByClientID answers dml's clients.
func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("client %q not found", id)
}

// client is an example client that allows the groups scope and, for web
// clients, redirect URI patterns.
type client struct {
	op.Client
	globs []string
}

func (c client) IsScopeAllowed(scope string) bool {
	return scope == groupsScope || c.Client.IsScopeAllowed(scope)
}
func (c client) RedirectURIGlobs() []string           { return c.globs }
func (c client) PostLogoutRedirectURIGlobs() []string { return nil }

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dml-test-idp:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen        = flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
		usersDir      = flag.String("users", "", "directory of users files (*.json: arrays of {id, username, password, email, emailVerified, groups})")
		consoleSecret = flag.String("console-secret", "dml-console-secret", "client secret of the console's client "+ConsoleClient)
		redirects     listFlag
	)
	flag.Var(&redirects, "console-redirect", "redirect URI pattern of the console's client (repeatable; default http://127.0.0.1:*/ui/sso/*/callback)")
	flag.Parse()
	if *usersDir == "" {
		return errors.New("-users DIR is required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || (host != "127.0.0.1" && host != "::1" && host != "localhost") {
		return fmt.Errorf("-listen %q: a loopback address is required", *listen)
	}
	if len(redirects) == 0 {
		redirects = listFlag{"http://127.0.0.1:*/ui/sso/*/callback"}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	issuer := fmt.Sprintf("http://%s/", ln.Addr().String())

	u := users{dir: *usersDir, log: log}
	console := storage.WebClient(ConsoleClient, *consoleSecret, "http://127.0.0.1/ui/sso/none/callback")
	other := storage.WebClient(OtherClient, OtherSecret, "http://127.0.0.1/callback")
	native := storage.NativeClient(CLIClient, "http://127.0.0.1/callback")
	raw := map[string]*storage.Client{ConsoleClient: console, OtherClient: other, CLIClient: native}
	st := &store{
		Storage: storage.NewStorageWithClients(u, raw),
		users:   u,
		clients: map[string]op.Client{
			ConsoleClient: client{Client: console, globs: redirects},
			OtherClient:   client{Client: other, globs: []string{"http://127.0.0.1:*/callback"}},
			CLIClient:     client{Client: native},
		},
	}
	router := exampleop.SetupServer(issuer, st, log, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("issuer %s\n", issuer)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
