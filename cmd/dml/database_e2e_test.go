package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/pgtest"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/store/storetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestServeOnPostgres runs two `dml serve` processes on one PostgreSQL
// database, named by --database and by DML_DATABASE: both start (the
// second finds the schema migrated), share the metadata (the admin token
// the first bootstrapped works on the second, and the second bootstraps
// none of its own), and neither logs the URL's password. The second signs
// with the first's keys (--server-key, DML_LOG_KEY); a third with keys of
// its own refuses to start, saying why and showing no private key. An
// older dml — the database's schema newer than it knows — refuses to
// start, saying why, and so does a database of no known kind.
func TestServeOnPostgres(t *testing.T) {
	database := pgtest.NewDatabase(t)
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	const first, second = "first-replica-admin-token-0123", "second-replica-admin-token-0123"
	keys := t.TempDir()
	a := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + first}, "--data-dir", keys, "--database", database)
	b := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + second, "DML_DATABASE=" + database, "DML_LOG_KEY=" + filepath.Join(keys, "log-key")},
		"--data-dir", t.TempDir(), "--server-key", filepath.Join(keys, "server-key.pem"))
	out, err := exec.Command(dmlBinary(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--database", database).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "signing keys differ from the ones pinned") || strings.Contains(string(out), "PRIVATE") {
		t.Errorf("a replica with keys of its own: %v\n%s\nwant a refusal saying its signing keys differ, without a private key", err, out)
	}
	for _, tc := range []struct {
		srv   *serverProc
		token string
		want  int
	}{
		{a, first, http.StatusOK},
		{b, first, http.StatusOK},
		{b, second, http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.srv.url()+"/api/v1/tokens", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /api/v1/tokens on %s with %s: %s; want %d", tc.srv.addr, tc.token, resp.Status, tc.want)
		}
	}
	for _, srv := range []*serverProc{a, b} {
		logs := srv.logs.String()
		if password == "" || strings.Contains(logs, password) {
			t.Errorf("the log carries the database password (or the test has none):\n%s", logs)
		}
		if want := `database="` + sqlstore.Redact(database) + `"`; !strings.Contains(logs, want) {
			t.Errorf("the log does not name the database as %s:\n%s", want, logs)
		}
	}
	a.stop()
	b.stop()

	db, err := sql.Open("pgx", database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ database, want string }{
		{database, "schema version 9999 is newer than this program's"},
		{"mysql://dml@localhost/dml", "must be sqlite:PATH or a postgres:// URL"},
	} {
		out, err := exec.Command(dmlBinary(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--database", tc.database).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) || (password != "" && strings.Contains(string(out), password)) {
			t.Errorf("dml serve --database %s: %v\n%s\nwant a refusal saying %q, without the password", sqlstore.Redact(tc.database), err, out, tc.want)
		}
	}
}

// TestMigrateMetadata grows an embedded DML into a shared one: writes on
// SQLite, an audit state saved by `dml audit verify`, the server stopped;
// `dml admin migrate-metadata` copies the metadata into a new PostgreSQL
// database, and the blobs are copied into a bucket as docs/operations.md
// says (the tree under DATA_DIR/blobs/ as it is, here with minio-go for
// `aws s3 cp --recursive`). A server on that database and bucket (the same
// key files) then passes `dml audit verify` with the state saved before —
// the log is the same log — serves what was pushed, passes `dml fsck`,
// takes new writes after the copied ones, and still verifies. A second
// copy into the now non-empty database is refused, without printing the
// password.
func TestMigrateMetadata(t *testing.T) {
	database := pgtest.NewDatabase(t)
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	const admin = "migrate-admin-token-0123456789"
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "audit-state.json")
	body := []byte("bytes pushed before the move")
	srv := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + admin}, "--data-dir", dir)
	c, err := client.New(srv.url(), admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pub, err := c.Tokens().Create(ctx, wire.TokenRequest{Name: "pipeline", Roles: []string{"publisher"}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := client.New(srv.url(), pub.Token)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.0.1"} {
		if _, _, err := pc.Artifacts().Push(ctx, client.PushRequest{Name: "moving/app", Version: v, Size: int64(len(body)), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(srv *serverProc) string {
		t.Helper()
		cmd := exec.Command(dmlBinary(t), "audit", "verify", "--server", srv.url(), "--token", admin, "--state-file", state)
		cmd.Env = append(cleanEnv(), "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dml audit verify against %s: %v\n%s", srv.addr, err, out)
		}
		return string(out)
	}
	verify(srv)
	srv.stop()

	migrate := func() (string, error) {
		cmd := exec.Command(dmlBinary(t), "admin", "migrate-metadata", "--from", "sqlite:"+filepath.Join(dir, "dml.db"), "--to", database)
		cmd.Env = append(cleanEnv(), "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := migrate()
	if err != nil || !strings.Contains(out, "audit_records") || (password != "" && strings.Contains(out, password)) {
		t.Fatalf("dml admin migrate-metadata: %v\n%s", err, out)
	}
	t.Logf("dml admin migrate-metadata:\n%s", out)

	endpoint, accessKey, secretKey := storetest.S3FromEnv(t)
	bucket := fmt.Sprintf("dml-migrated-%d", time.Now().UnixNano())
	mc, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	copiedBlobs := 0
	root := filepath.Join(dir, "blobs")
	if err := filepath.WalkDir(filepath.Join(root, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		copiedBlobs++
		_, err = mc.FPutObject(ctx, bucket, filepath.ToSlash(rel), path, minio.PutObjectOptions{})
		return err
	}); err != nil || copiedBlobs == 0 {
		t.Fatalf("copying %d blobs into the bucket: %v", copiedBlobs, err)
	}

	pg := startServer(t, []string{"DML_DATABASE=" + database, "DML_S3_ACCESS_KEY=" + accessKey, "DML_S3_SECRET_KEY=" + secretKey},
		"--data-dir", t.TempDir(), "--server-key", filepath.Join(dir, "server-key.pem"), "--log-key", filepath.Join(dir, "log-key"),
		"--s3-endpoint", endpoint, "--s3-bucket", bucket, "--s3-insecure")
	if got := verify(pg); !strings.Contains(got, "consistent with the checkpoint saved earlier") {
		t.Errorf("dml audit verify after the move does not say it extends the state saved before:\n%s", got)
	}
	pc, err = client.New(pg.url(), pub.Token)
	if err != nil {
		t.Fatal(err)
	}
	content, err := pc.Artifacts().Pull(ctx, "moving/app", "1.0.1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(content.Body)
	content.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("pull after the move: %q, %v; want %q", got, err, body)
	}
	fsck := exec.Command(dmlBinary(t), "fsck", "--server", pg.url(), "--token", admin)
	fsck.Env = append(cleanEnv(), "XDG_CONFIG_HOME="+t.TempDir())
	if out, err := fsck.CombinedOutput(); err != nil {
		t.Errorf("dml fsck after the move: %v\n%s", err, out)
	}
	if _, _, err := pc.Artifacts().Push(ctx, client.PushRequest{Name: "moving/app", Version: "2.0.0", Size: 5, Body: strings.NewReader("after")}); err != nil {
		t.Fatalf("a push after the move: %v", err)
	}
	if got := verify(pg); !strings.Contains(got, "consistent with the checkpoint saved earlier") {
		t.Errorf("dml audit verify after a new write:\n%s", got)
	}
	pg.stop()

	out, err = migrate()
	if err == nil || !strings.Contains(out, "not empty") || (password != "" && strings.Contains(out, password)) {
		t.Errorf("a second copy into the same database: %v\n%s\nwant a refusal saying it is not empty, without the password", err, out)
	}
}
