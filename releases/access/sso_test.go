package access_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/sqlstore"
)

var corpMapping = access.Mapping{
	Claim: "groups",
	Roles: map[string][]access.Role{
		"dml-approvers": {access.RoleApprover},
		"dml-auditors":  {access.RoleAuditor},
		"dml-deployers": {access.RoleDeployer},
		"dml-admins":    {access.RoleAdmin, access.RoleAuditor},
	},
	Environments: map[string][]string{"dml-deployers": {"staging"}, "prod-oncall": {"prod"}},
}

func TestMappingGrant(t *testing.T) {
	for _, tc := range []struct {
		values []string
		roles  []access.Role
		envs   []string
	}{
		{nil, []access.Role{}, []string{}},
		{[]string{"unknown"}, []access.Role{}, []string{}},
		{[]string{"dml-approvers"}, []access.Role{access.RoleApprover}, []string{}},
		{[]string{"dml-admins", "dml-auditors"}, []access.Role{access.RoleAdmin, access.RoleAuditor}, []string{}},
		{[]string{"dml-deployers", "prod-oncall"}, []access.Role{access.RoleDeployer}, []string{"prod", "staging"}},
		// Environments alone grant no role.
		{[]string{"prod-oncall"}, []access.Role{}, []string{"prod"}},
	} {
		roles, envs := corpMapping.Grant(tc.values)
		if !slices.Equal(roles, tc.roles) || !slices.Equal(envs, tc.envs) {
			t.Errorf("Grant(%v) = %v %v; want %v %v", tc.values, roles, envs, tc.roles, tc.envs)
		}
	}
	// A deployer with nowhere to deploy is no deployer.
	m := access.Mapping{Claim: "groups", Roles: map[string][]access.Role{"ops": {access.RoleDeployer, access.RoleAuditor}}}
	if roles, _ := m.Grant([]string{"ops"}); !slices.Equal(roles, []access.Role{access.RoleAuditor}) {
		t.Errorf("deployer without environments: roles %v; want [auditor]", roles)
	}
}

func TestMappingValidate(t *testing.T) {
	if err := corpMapping.Validate(); err != nil {
		t.Fatalf("valid mapping: %v", err)
	}
	for name, tc := range map[string]struct {
		m    access.Mapping
		want string
	}{
		"no claim":     {access.Mapping{Roles: corpMapping.Roles}, "claim must name"},
		"no roles":     {access.Mapping{Claim: "groups"}, "roles must map"},
		"unknown role": {access.Mapping{Claim: "groups", Roles: map[string][]access.Role{"ops": {"root"}}}, `roles["ops"]: unknown role "root"`},
		"empty roles":  {access.Mapping{Claim: "groups", Roles: map[string][]access.Role{"ops": {}}}, `roles["ops"] grants no role`},
		"bad env": {access.Mapping{Claim: "groups", Roles: corpMapping.Roles,
			Environments: map[string][]string{"ops": {"Prod Env"}}}, `environments["ops"]`},
	} {
		err := tc.m.Validate()
		if !errors.Is(err, errdef.ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v; want ErrInvalidInput containing %q", name, err, tc.want)
		}
	}
}

func TestSessionName(t *testing.T) {
	id := access.Identity{Provider: "corp", Issuer: "https://idp/", Subject: "248289761001", Email: "pat@example.com", Username: "pat"}
	if n := access.SessionName(id); n != "pat@example.com" {
		t.Errorf("SessionName = %q; want the e-mail", n)
	}
	// Without a verified address, the user name at the provider: never a
	// bare name, which a machine's token could have.
	id.Email = ""
	if n := access.SessionName(id); n != "pat@corp" {
		t.Errorf("SessionName = %q; want pat@corp", n)
	}
	id.Username = "pipeline"
	if n := access.SessionName(id); n != "pipeline@corp" {
		t.Errorf("SessionName = %q; want pipeline@corp", n)
	}
	id.Username = "has space"
	if n := access.SessionName(id); n != "248289761001@corp" {
		t.Errorf("SessionName = %q; want the subject at the provider", n)
	}
	id.Username, id.Subject = "", "a subject with spaces"
	n := access.SessionName(id)
	if !strings.HasPrefix(n, "sso-") || n != access.SessionName(id) {
		t.Errorf("SessionName = %q; want a stable sso- name", n)
	}
}

type ssoEnv struct {
	svc   *access.Service
	db    *sqlstore.DB
	clock *clock
}

func newSSOEnv(t *testing.T) *ssoEnv {
	t.Helper()
	db, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "dml.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	return &ssoEnv{svc: access.New(db.Tokens(), nil, c.now), db: db, clock: c}
}

func pat(groups ...string) access.Identity {
	return access.Identity{Provider: "corp", Issuer: "https://idp.example.com/", Subject: "u-pat", Email: "pat@example.com", Values: groups}
}

// TestSignIn: a sign-in issues a session that authenticates as the
// person, with their provider identity and the mapped roles, and expires
// after the provider's TTL.
func TestSignIn(t *testing.T) {
	e := newSSOEnv(t)
	ctx := t.Context()
	s, err := e.svc.SignIn(ctx, access.SignInRequest{Identity: pat("dml-approvers", "dml-deployers"), Mapping: corpMapping, TTL: time.Hour})
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	p, err := e.svc.Authenticate(ctx, s.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "pat@example.com" || p.Issuer != "https://idp.example.com/" || p.Subject != "u-pat" ||
		!slices.Equal(p.Roles, []access.Role{access.RoleApprover, access.RoleDeployer}) || !slices.Equal(p.Environments, []string{"staging"}) {
		t.Errorf("principal = %+v", p)
	}
	if a := p.Actor(); a.Issuer != p.Issuer || a.Subject != p.Subject || a.TokenID != s.Token.ID {
		t.Errorf("actor = %+v; want the identity and the session", a)
	}
	e.clock.add(time.Hour)
	if _, err := e.svc.Authenticate(ctx, s.Secret); !errors.Is(err, errdef.ErrUnauthorized) {
		t.Errorf("after the TTL: %v; want ErrUnauthorized", err)
	}
	for _, ttl := range []time.Duration{-time.Second, 25 * time.Hour} {
		if _, err := e.svc.SignIn(ctx, access.SignInRequest{Identity: pat("dml-auditors"), Mapping: corpMapping, TTL: ttl}); !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("TTL %s: %v; want ErrInvalidInput", ttl, err)
		}
	}
}

// TestSignInNoRole: claims that map to no role are refused, and the
// refusal is recorded with the identity; no token is issued.
func TestSignInNoRole(t *testing.T) {
	e := newSSOEnv(t)
	_, err := e.svc.SignIn(t.Context(), access.SignInRequest{Identity: pat("interns"), Mapping: corpMapping})
	if !errors.Is(err, access.ErrNoRoleGranted) || !strings.Contains(err.Error(), "interns") {
		t.Fatalf("SignIn = %v; want ErrNoRoleGranted naming the values", err)
	}
	evs, err := e.db.Audit().Events(t.Context(), 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Action != access.ActionSignInRefused || evs[0].Actor.Subject != "u-pat" {
		t.Fatalf("events = %+v, %v; want one %s by u-pat", evs, err, access.ActionSignInRefused)
	}
	if n, _ := e.db.Tokens().CountTokens(t.Context()); n != 0 {
		t.Errorf("%d tokens issued; want none", n)
	}
}

// TestSignInGroupChange: a sign-in whose claims no longer grant a role
// ends the person's earlier sessions that hold it; sessions the new
// grant covers, and other people's, stay.
func TestSignInGroupChange(t *testing.T) {
	e := newSSOEnv(t)
	ctx := t.Context()
	sign := func(id access.Identity) access.IssuedToken {
		t.Helper()
		s, err := e.svc.SignIn(ctx, access.SignInRequest{Identity: id, Mapping: corpMapping})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	approver := sign(pat("dml-approvers", "dml-auditors"))
	auditor := sign(pat("dml-auditors"))
	other := access.Identity{Provider: "corp", Issuer: "https://idp.example.com/", Subject: "u-sam", Values: []string{"dml-approvers"}}
	sam := sign(other)
	// Signing in with fewer groups ended the approver session, not the
	// auditor one it covers, nor Sam's.
	if _, err := e.svc.Authenticate(ctx, approver.Secret); !errors.Is(err, errdef.ErrUnauthorized) {
		t.Errorf("earlier approver session: %v; want ended (ErrUnauthorized)", err)
	}
	for _, s := range []access.IssuedToken{auditor, sam} {
		if _, err := e.svc.Authenticate(ctx, s.Secret); err != nil {
			t.Errorf("session %s: %v; want still valid", s.Token.ID, err)
		}
	}
	later := sign(pat("dml-auditors", "dml-approvers"))
	if _, err := e.svc.Authenticate(ctx, auditor.Secret); err != nil {
		t.Errorf("a sign-in granting more ended %s: %v", auditor.Token.ID, err)
	}
	// Environments count too: a deployer moved off prod.
	dep := sign(pat("dml-deployers", "prod-oncall"))
	sign(pat("dml-deployers"))
	if _, err := e.svc.Authenticate(ctx, dep.Secret); !errors.Is(err, errdef.ErrUnauthorized) {
		t.Errorf("deployer session with prod after losing prod: %v; want ended", err)
	}
	_ = later
}

// TestEndSession: a person signs out; a machine's token is not a session.
func TestEndSession(t *testing.T) {
	e := newSSOEnv(t)
	ctx := t.Context()
	s, err := e.svc.SignIn(ctx, access.SignInRequest{Identity: pat("dml-auditors"), Mapping: corpMapping})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.svc.Authenticate(ctx, s.Secret)
	if err := e.svc.EndSession(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, s.Secret); !errors.Is(err, errdef.ErrUnauthorized) {
		t.Errorf("after EndSession: %v; want ErrUnauthorized", err)
	}
	if err := e.svc.EndSession(ctx, access.Principal{TokenID: "tok_ci", Name: "ci"}); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("EndSession(machine) = %v; want ErrInvalidInput", err)
	}
}
