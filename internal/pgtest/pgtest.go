// Package pgtest gives tests a new, empty PostgreSQL database of their
// own, on the server named by DML_TEST_POSTGRES_URL (scripts/test.sh
// starts a throwaway cluster and sets it). Without the variable a test is
// skipped, unless CI is set: there it fails, because a CI run that
// silently skips the PostgreSQL tests proves nothing about PostgreSQL.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	// Registers the "pgx" database/sql driver.
	_ "github.com/jackc/pgx/v5/stdlib"
)

// EnvURL names the server: a postgres:// URL of a database on it whose
// role may create databases (CREATEDB).
const EnvURL = "DML_TEST_POSTGRES_URL"

// Require skips t, or fails it in CI, when no server is named, and
// returns the server's URL.
func Require(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests against a real server (./scripts/test.sh starts one)", EnvURL)
		}
		t.Skipf("%s is not set; ./scripts/test.sh starts a throwaway PostgreSQL and sets it", EnvURL)
	}
	return u
}

// admin is the connection that creates and drops the tests' databases,
// one per test process.
var admin struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// NewDatabase creates an empty database and returns its URL; the
// database is dropped when t ends (after t's other cleanups, which run
// first and close what the test opened).
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := Require(t)
	admin.once.Do(func() {
		admin.db, admin.err = sql.Open("pgx", server)
		if admin.err == nil {
			admin.db.SetMaxOpenConns(4)
		}
	})
	if admin.err != nil {
		t.Fatalf("pgtest: %v", admin.err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "dmltest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { drop(t, name) })
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// drop drops a test's database. FORCE ends what the test left connected;
// it cannot end a server process (autovacuum, which scripts/test.sh turns
// off), so a drop that fails is tried again a few times, then left to the
// throwaway cluster: a database left behind fails no test.
func drop(t testing.TB, name string) {
	var err error
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err = admin.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		cancel()
		if err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("pgtest: database %s left behind: %v", name, err)
}
