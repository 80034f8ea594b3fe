package access_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/sqlstore"
)

// clock is a settable time for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// touchCounter is the real SQLite store, counting the writes of last use.
type touchCounter struct {
	access.Store
	touches atomic.Int64
}

func (m *touchCounter) TouchToken(ctx context.Context, id string, at time.Time) error {
	m.touches.Add(1)
	return m.Store.TouchToken(ctx, id, at)
}

type tokenEnv struct {
	meta  *touchCounter
	clock *clock
	svc   *access.Service
	admin access.Principal
}

func newTokenEnv(t *testing.T) *tokenEnv {
	t.Helper()
	db, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "dml.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &tokenEnv{meta: &touchCounter{Store: db.Tokens()}, clock: &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}}
	e.svc = e.restart()
	if _, err := e.svc.BootstrapAdmin(t.Context(), "bootstrap-secret-123456"); err != nil {
		t.Fatal(err)
	}
	if e.admin, err = e.svc.Authenticate(t.Context(), "bootstrap-secret-123456"); err != nil {
		t.Fatal(err)
	}
	return e
}

// restart is a new service (a new process) over the same store.
func (e *tokenEnv) restart() *access.Service {
	return access.New(e.meta, nil, e.clock.now)
}

func TestTokenExpiry(t *testing.T) {
	e := newTokenEnv(t)
	ctx := t.Context()
	issued, err := e.svc.IssueToken(ctx, e.admin, access.TokenRequest{Name: "ci", Roles: []access.Role{access.RolePublisher}, ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.now().Add(time.Hour); issued.Token.ExpiresAt == nil || !issued.Token.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt = %v; want %v", issued.Token.ExpiresAt, want)
	}
	e.clock.add(time.Hour - time.Second)
	if _, err := e.svc.Authenticate(ctx, issued.Secret); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	e.clock.add(time.Second)
	_, err = e.svc.Authenticate(ctx, issued.Secret)
	if !errors.Is(err, errdef.ErrUnauthorized) || !strings.Contains(err.Error(), "expired at 2026-11-25T11:00:00Z") || !strings.Contains(err.Error(), issued.Token.ID) {
		t.Fatalf("at expiry: %v; want ErrUnauthorized naming the token and its expiry", err)
	}

	t.Run("no expiry", func(t *testing.T) {
		issued, err := e.svc.IssueToken(ctx, e.admin, access.TokenRequest{Name: "forever", Roles: []access.Role{access.RoleAuditor}})
		if err != nil || issued.Token.ExpiresAt != nil {
			t.Fatalf("IssueToken = %+v, %v; want no expiry", issued.Token, err)
		}
		e.clock.add(50 * 365 * 24 * time.Hour)
		if _, err := e.svc.Authenticate(ctx, issued.Secret); err != nil {
			t.Fatalf("a token without expiry after 50 years: %v", err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, in := range []string{"0s", "-1h", "soon", "720", "87601h"} {
			_, err := e.svc.IssueToken(ctx, e.admin, access.TokenRequest{Name: "x", Roles: []access.Role{access.RoleAuditor}, ExpiresIn: in})
			if !errors.Is(err, errdef.ErrInvalidInput) {
				t.Errorf("expiresIn %q: %v; want ErrInvalidInput", in, err)
			}
		}
	})
}

// TestTokenLastUse: authentication records a token's last use, but writes
// it at most once a minute per token, also under concurrent requests and
// across a restart.
func TestTokenLastUse(t *testing.T) {
	e := newTokenEnv(t)
	ctx := t.Context()
	issued, err := e.svc.IssueToken(ctx, e.admin, access.TokenRequest{Name: "ci", Roles: []access.Role{access.RolePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	lastUse := func() *time.Time {
		t.Helper()
		list, err := e.svc.Tokens(ctx, e.admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range list {
			if tok.ID == issued.Token.ID {
				return tok.LastUsedAt
			}
		}
		t.Fatalf("token %s not listed", issued.Token.ID)
		return nil
	}
	if at := lastUse(); at != nil {
		t.Fatalf("a new token's last use = %v; want nil", at)
	}
	authenticate := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := e.svc.Authenticate(ctx, issued.Secret); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	start := e.clock.now()
	base := e.meta.touches.Load() // the admin's own authentication
	authenticate(50)
	if n := e.meta.touches.Load() - base; n != 1 {
		t.Fatalf("50 concurrent authentications wrote last use %d times; want 1", n)
	}
	if at := lastUse(); at == nil || !at.Equal(start) {
		t.Fatalf("last use = %v; want %v", at, start)
	}
	e.clock.add(59 * time.Second)
	authenticate(10)
	e.svc = e.restart() // a new process knows only what the database says
	authenticate(10)
	if n := e.meta.touches.Load() - base; n != 1 {
		t.Fatalf("within the minute (and after a restart): %d writes; want 1", n)
	}
	e.clock.add(time.Second)
	authenticate(10)
	if n := e.meta.touches.Load() - base; n != 2 {
		t.Fatalf("a minute later: %d writes; want 2", n)
	}
	if at, want := lastUse(), start.Add(time.Minute); at == nil || !at.Equal(want) {
		t.Fatalf("last use = %v; want %v", at, want)
	}
}

func TestTokensListedToAdminsOnly(t *testing.T) {
	e := newTokenEnv(t)
	ctx := t.Context()
	for _, role := range access.Roles {
		issued, err := e.svc.IssueToken(ctx, e.admin, access.TokenRequest{Name: "t-" + string(role), Roles: []access.Role{role}, Environments: envsFor(role)})
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.svc.Authenticate(ctx, issued.Secret)
		if err != nil {
			t.Fatal(err)
		}
		list, err := e.svc.Tokens(ctx, p)
		if role == access.RoleAdmin {
			if err != nil || len(list) < 2 {
				t.Errorf("admin listing: %d tokens, %v", len(list), err)
			}
			continue
		}
		if !errors.Is(err, errdef.ErrDenied) {
			t.Errorf("%s listing tokens: %v; want ErrDenied", role, err)
		}
	}
}

func envsFor(r access.Role) []string {
	if r == access.RoleDeployer {
		return []string{"staging"}
	}
	return nil
}

// TestRecoverAdmin: a recovery issues a new admin token, named for it and
// created by the host user, that authenticates as an admin; the tokens
// issued before stay valid; a recovery that names no host user is refused.
func TestRecoverAdmin(t *testing.T) {
	e := newTokenEnv(t)
	ctx := t.Context()
	issued, err := e.svc.RecoverAdmin(ctx, access.Recovery{HostUser: "ops", Host: "dml-1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Authenticate(ctx, issued.Secret)
	if err != nil || !p.Has(access.RoleAdmin) || p.Name != access.RecoveryTokenName || issued.Token.CreatedBy != "ops@dml-1" {
		t.Errorf("recovered token: principal %+v, %v; token %+v", p, err, issued.Token)
	}
	if _, err := e.svc.Authenticate(ctx, "bootstrap-secret-123456"); err != nil {
		t.Errorf("the earlier admin token after a recovery: %v", err)
	}
	if _, err := e.svc.RecoverAdmin(ctx, access.Recovery{Host: "dml-1"}); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("a recovery without a host user: %v; want ErrInvalidInput", err)
	}
}

// Revoking a token that does not exist suggests the tokens meant: the one
// named so (people type the name, the API wants the id), or ids close to
// the one given.
func TestRevokeUnknownTokenSuggests(t *testing.T) {
	e := newTokenEnv(t)
	issued, err := e.svc.IssueToken(t.Context(), e.admin, access.TokenRequest{Name: "ci-pipeline", Roles: []access.Role{access.RolePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	id := issued.Token.ID
	for _, asked := range []string{"ci-pipeline", id[:len(id)-1] + "x"} {
		err := e.svc.RevokeToken(t.Context(), e.admin, asked)
		var nf *errdef.NotFoundError
		if !errors.Is(err, errdef.ErrNotFound) || !errors.As(err, &nf) || len(nf.Suggestions) != 1 || nf.Suggestions[0] != id {
			t.Fatalf("revoke %s: %v (%+v), want not found suggesting %s", asked, err, nf, id)
		}
		if !strings.Contains(err.Error(), "token "+asked+" not found; did you mean "+id+"?") {
			t.Errorf("revoke %s: %q", asked, err)
		}
	}
}
