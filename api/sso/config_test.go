package sso_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/releases/access"
)

const good = `{"providers": [{"name": "corp", "issuer": "https://idp.example.com/", "clientId": "dml", "clientSecret": "s3cret",
  "cliClientId": "dml-cli", "claim": "groups", "roles": {"ops": ["deployer"], "cab": ["approver", "auditor"]},
  "environments": {"ops": ["prod"]}, "sessionTTL": "2h"}]}`

func TestParseConfig(t *testing.T) {
	got, err := sso.ParseConfig([]byte(good), "sso.json")
	if err != nil {
		t.Fatal(err)
	}
	p := got[0]
	if p.Name != "corp" || p.DisplayName != "corp" || p.ClientSecret != "s3cret" || p.TTL != 2*time.Hour ||
		!slices.Equal(p.Scopes, []string{"openid", "email", "profile", "groups"}) ||
		!slices.Equal(p.Mapping.Roles["cab"], []access.Role{access.RoleApprover, access.RoleAuditor}) {
		t.Errorf("settings = %+v", p)
	}

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte("from-file\n"), 0o600)
	got, err = sso.ParseConfig([]byte(`{"providers": [{"name": "mail", "issuer": "http://127.0.0.1:5556/dex", "clientId": "dml",
	  "clientSecretFile": `+quote(secretFile)+`, "claim": "email", "roles": {"a@example.com": ["admin"]}, "scopes": ["email"]}]}`), "sso.json")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].ClientSecret != "from-file" || got[0].TTL != access.DefaultSessionTTL || !slices.Equal(got[0].Scopes, []string{"openid", "email"}) {
		t.Errorf("settings = %+v", got[0])
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }

// TestParseConfigRefuses: every mistake is refused with the provider and
// the field named.
func TestParseConfigRefuses(t *testing.T) {
	provider := func(fields string) string {
		return `{"providers": [{"name": "corp", "issuer": "https://idp.example.com/", "clientId": "dml", "claim": "groups", ` + fields + `}]}`
	}
	for name, tc := range map[string]struct{ config, want string }{
		"not JSON":          {`{"providers": [`, "sso.json"},
		"trailing data":     {good + `{}`, "sso.json"},
		"repeated key":      {`{"providers": [], "providers": []}`, "providers"},
		"unknown top field": {`{"provider": []}`, `unknown field "provider"`},
		"wrong case":        {provider(`"clientSecret": "s", "Roles": {"g": ["auditor"]}`), `unknown field "providers[0].Roles"`},
		"no providers":      {`{"providers": []}`, "at least one provider"},
		"bad name":          {`{"providers": [{"name": "Corp SSO"}]}`, "provider Corp SSO: name"},
		"no name":           {`{"providers": [{"issuer": "https://x"}]}`, "provider #1: name"},
		"plain http issuer": {strings.Replace(provider(`"clientSecret": "s", "roles": {"g": ["auditor"]}`), "https://idp.example.com/", "http://idp.example.com/", 1), "issuer"},
		"no client":         {strings.Replace(provider(`"clientSecret": "s", "roles": {"g": ["auditor"]}`), `"clientId": "dml",`, "", 1), "clientId: required"},
		"no secret":         {provider(`"roles": {"g": ["auditor"]}`), "clientSecret or clientSecretFile: required"},
		"two secrets":       {provider(`"clientSecret": "s", "clientSecretFile": "/x", "roles": {"g": ["auditor"]}`), "set one, not both"},
		"missing file":      {provider(`"clientSecretFile": "/nonexistent/secret", "roles": {"g": ["auditor"]}`), "clientSecretFile"},
		"cli is console":    {provider(`"clientSecret": "s", "cliClientId": "dml", "roles": {"g": ["auditor"]}`), "cliClientId: must be a client of its own"},
		"no roles":          {provider(`"clientSecret": "s"`), "roles must map"},
		"unknown role":      {provider(`"clientSecret": "s", "roles": {"g": ["root"]}`), `roles["g"]: unknown role "root"`},
		"empty role list":   {provider(`"clientSecret": "s", "roles": {"g": []}`), `roles["g"] grants no role`},
		"bad environment":   {provider(`"clientSecret": "s", "roles": {"g": ["deployer"]}, "environments": {"g": ["Prod!"]}`), `environments["g"]`},
		"bad TTL":           {provider(`"clientSecret": "s", "roles": {"g": ["auditor"]}, "sessionTTL": "2 days"`), "sessionTTL"},
		"TTL over a day":    {provider(`"clientSecret": "s", "roles": {"g": ["auditor"]}, "sessionTTL": "25h"`), "at most 24h"},
		"provider twice":    {`{"providers": [` + good[15:len(good)-2] + `, ` + good[15:len(good)-2] + `]}`, "provider corp: name: configured twice"},
		"roles not a list":  {provider(`"clientSecret": "s", "roles": {"g": "auditor"}`), "sso.json"},
		"no claim":          {strings.Replace(provider(`"clientSecret": "s", "roles": {"g": ["auditor"]}`), `"claim": "groups",`, "", 1), "claim must name"},
	} {
		_, err := sso.ParseConfig([]byte(tc.config), "sso.json")
		if !errors.Is(err, sso.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrConfig containing %q", name, err, tc.want)
		}
	}
}
