package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/wire"
)

func TestCLITokenExpiryAndList(t *testing.T) {
	_, admin := cliEnv(t)
	before := time.Now()
	out := mustRunCLI(t, "token", "create", "--name", "short-lived", "--role", "publisher", "--expires-in", "720h", "--output", "json")
	var issued wire.IssuedToken
	if err := json.Unmarshal([]byte(out), &issued); err != nil {
		t.Fatalf("token create json %q: %v", out, err)
	}
	if issued.ExpiresAt == nil || issued.ExpiresAt.Before(before.Add(720*time.Hour-time.Minute)) || issued.ExpiresAt.After(time.Now().Add(720*time.Hour+time.Minute)) {
		t.Fatalf("expiresAt = %v; want in 720h", issued.ExpiresAt)
	}
	if _, _, err := runCLI(t, "token", "create", "--name", "x", "--role", "auditor", "--expires-in", "-1h"); err == nil {
		t.Error("--expires-in -1h was accepted")
	}
	idle := mustRunCLI(t, "token", "create", "--name", "idle", "--role", "auditor", "--output", "json")
	mustRunCLI(t, "whoami", "--token", issued.Token)

	out = mustRunCLI(t, "token", "list", "--output", "json")
	var list []wire.Token
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("token list json %q: %v", out, err)
	}
	byName := map[string]wire.Token{}
	for _, tok := range list {
		byName[tok.Name] = tok
	}
	if tok := byName["short-lived"]; tok.ID != issued.ID || tok.ExpiresAt == nil || tok.LastUsedAt == nil || tok.RevokedAt != nil {
		t.Errorf("short-lived listed as %+v; want its expiry and a last use", tok)
	}
	if tok := byName["idle"]; tok.ExpiresAt != nil || tok.LastUsedAt != nil {
		t.Errorf("idle listed as %+v; want no expiry, never used", tok)
	}
	table := mustRunCLI(t, "token", "list")
	for _, want := range []string{"ID", "LAST USED", "EXPIRES", "REVOKED", issued.ID, "short-lived", "idle", "bootstrap-admin"} {
		if !strings.Contains(table, want) {
			t.Errorf("token list table lacks %q:\n%s", want, table)
		}
	}
	var idleTok wire.IssuedToken
	_ = json.Unmarshal([]byte(idle), &idleTok)
	for _, secret := range []string{issued.Token, idleTok.Token, admin} {
		if strings.Contains(out, secret) || strings.Contains(table, secret) {
			t.Fatal("token list shows a secret")
		}
	}
}

func TestCLIAuditAccess(t *testing.T) {
	cliEnv(t)
	if _, _, err := runCLI(t, "whoami", "--token", "dml_not-a-token"); err == nil {
		t.Fatal("an unknown token was accepted")
	}
	pub := mustRunCLI(t, "token", "create", "--name", "ci", "--role", "publisher", "--output", "json")
	var ci wire.IssuedToken
	if err := json.Unmarshal([]byte(pub), &ci); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "audit", "access", "--token", ci.Token); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("a publisher reading the access log: %v; want DENIED", err)
	}

	out := mustRunCLI(t, "audit", "access", "--all", "--output", "json", "--since", "1h")
	var page wire.AccessPage
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("audit access json %q: %v", out, err)
	}
	if len(page.Records) != 2 || page.Records[0].Outcome != "unauthorized" || page.Records[1].Outcome != "denied" ||
		page.Records[1].Principal != "ci" || page.Records[1].Route != "/api/v1/audit/access" {
		t.Fatalf("access records %+v; want the 401 and the publisher's 403", page.Records)
	}
	out = mustRunCLI(t, "audit", "access", "--principal", "ci", "--output", "json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Records) != 1 {
		t.Fatalf("--principal ci: %q %v", out, err)
	}
	out = mustRunCLI(t, "audit", "access", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "--output", "json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Records) != 0 {
		t.Fatalf("--since in an hour: %q %v", out, err)
	}
	table, stderr, err := runCLI(t, "audit", "access", "--limit", "1")
	if err != nil || !strings.Contains(table, "OUTCOME") || !strings.Contains(table, "unauthorized") || !strings.Contains(stderr, "--cursor") {
		t.Fatalf("table with --limit 1: %v\n%s\nstderr %s", err, table, stderr)
	}
	if _, _, err := runCLI(t, "audit", "access", "--since", "last tuesday"); err == nil {
		t.Error("--since 'last tuesday' was accepted")
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2026-11-01T00:00:00Z": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1h", "0s", "yesterday", "2026-11-01"} {
		if _, err := parseSince(in, now); err == nil {
			t.Errorf("parseSince(%q) accepted", in)
		}
	}
}
