package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/pgtest"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/store"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/opencontainers/go-digest"
)

func TestPostgresErrorClasses(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("sqlstore: x: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name                         string
		err                          error
		unique, retry, down, badText bool
	}{
		{"unique violation", pg("23505"), true, false, false, false},
		{"deadlock", pg("40P01"), false, true, false, false},
		{"serialization failure", pg("40001"), false, true, false, false},
		{"admin shutdown", pg("57P01"), false, false, true, false},
		{"crash shutdown", pg("57P02"), false, false, true, false},
		{"starting up", pg("57P03"), false, false, true, false},
		{"too many connections", pg("53300"), false, false, true, false},
		{"connection failure", pg("08006"), false, false, true, false},
		{"NUL in text", pg("22021"), false, false, false, true},
		{"wrong password", pg("28P01"), false, false, false, false},
		{"foreign key", pg("23503"), false, false, false, false},
		{"refused", &pgconn.ConnectError{}, false, false, true, false},
		{"dropped connection", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), false, false, true, false},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false, false, true, false},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), false, false, false, false},
		{"cancelled on the network", &net.OpError{Op: "read", Err: context.DeadlineExceeded}, false, false, false, false},
	}
	d := postgresDialect
	for _, tc := range tests {
		got := [4]bool{d.isUniqueViolation(tc.err), d.mustRetry(tc.err), d.isUnavailable(tc.err), d.isBadText(tc.err)}
		if want := [4]bool{tc.unique, tc.retry, tc.down, tc.badText}; got != want {
			t.Errorf("%s: unique, retry, unavailable, bad text = %v; want %v", tc.name, got, want)
		}
	}
	db := &DB{dialect: postgresDialect}
	if err := db.translate(pg("57P01")); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "database unavailable") {
		t.Errorf("translate(admin shutdown) = %v; want store.ErrUnavailable, saying the database is", err)
	}
	if err := db.translate(pg("22021")); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("translate(NUL in text) = %v; want ErrInvalidInput", err)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://dml:s3cret@db.example:5432/dml?sslmode=require", "postgres://dml@db.example:5432/dml?sslmode=require"},
		{"postgresql://dml@db/dml?password=s3cret", "postgresql://dml@db/dml?password=xxxxx"},
		{"sqlite:/var/lib/dml/dml.db", "sqlite:/var/lib/dml/dml.db"},
		{"postgres://dml:s3cret@db:port/dml", "postgres://(unparsable URL)"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestOpenPostgresUnreachable: a server that is not there is
// store.ErrUnavailable (try again later, 503), and the password in the
// URL, in its user info or a parameter, is in no error message.
func TestOpenPostgresUnreachable(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	port := closedPort(t)
	for _, u := range []string{
		fmt.Sprintf("postgres://dml:%s@127.0.0.1:%d/dml?connect_timeout=5", secret, port),
		fmt.Sprintf("postgresql://dml@127.0.0.1:%d/dml?password=%s&connect_timeout=5", port, secret),
		fmt.Sprintf("postgres://dml:%s@127.0.0.1:%d/dml?connect_timeout=5&sslmode=nonsense", secret, port),
		fmt.Sprintf("postgres://dml:%s@127.0.0.1:port/dml", secret),
	} {
		db, err := OpenDatabase(t.Context(), u)
		if err == nil {
			db.Close()
			t.Fatalf("open %s succeeded", Redact(u))
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error carries the password: %v", err)
		}
		if !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("open %s: %v; want ErrUnavailable (unreachable) or ErrInvalidInput (malformed)", Redact(u), err)
		}
	}
}

// TestOpenPostgresWrongPassword: refused credentials are not "try again
// later", and the password tried is in no message.
func TestOpenPostgresWrongPassword(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	const wrong = "not-the-Pa55word"
	u.User = url.UserPassword(u.User.Username(), wrong)
	db, err := OpenPostgres(t.Context(), u.String())
	if err == nil {
		db.Close()
		t.Fatal("open with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), wrong) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("open with a wrong password: %v; want a refusal that is not ErrUnavailable and does not repeat the password", err)
	}
}

// proxy forwards loopback connections to a server until cut, which drops
// every connection and refuses new ones: the database going away.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestPostgresGoesAway: when the server becomes unreachable under a
// running store, reads and writes fail with store.ErrUnavailable (503),
// not as errors of the request, and a cancelled request stays cancelled.
func TestPostgresGoesAway(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "5")
	u.RawQuery = q.Encode()
	db := testDialect{dialect: postgresDialect, open: OpenPostgres}.openT(t, u.String())
	ctx := t.Context()
	if _, _, err := catalog.CreateArtifact(ctx, db.Catalog(), access.Actor{Name: "a"}, testArtifact("app")); err != nil {
		t.Fatal(err)
	}
	p.cut()
	checks := map[string]error{}
	checks["Ping"] = db.Ping(ctx)
	_, checks["GetArtifact"] = db.Catalog().GetArtifact(ctx, "app", "1.0.0")
	_, _, checks["CreateArtifact"] = catalog.CreateArtifact(ctx, db.Catalog(), access.Actor{Name: "a"}, testArtifact("other"))
	checks["SetTrustPolicy"] = func() error {
		_, err := db.Trust().SetTrustPolicy(ctx, access.Actor{Name: "a"}, []byte(`{}`))
		return err
	}()
	for what, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the database gone: %v; want store.ErrUnavailable", what, err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Catalog().GetArtifact(cancelled, "app", "1.0.0"); !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetArtifact with a cancelled context: %v; want context.Canceled only", err)
	}
}

// TestPostgresDeadlockRetried: two releases created at once, each locking
// the other's artifacts in the opposite order, deadlock; PostgreSQL
// aborts one, and the store runs it again, whole, after the other
// commits. Both are created, and the aborted one's build ran twice.
func TestPostgresDeadlockRetried(t *testing.T) {
	db := testDialect{dialect: postgresDialect, newStorage: func(t *testing.T) string { return pgtest.NewDatabase(t) }, open: OpenPostgres}.handles(t, 1)[0]
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	actor := access.Actor{Name: "rm"}
	arts := map[string]catalog.Artifact{}
	for _, name := range []string{"a", "b"} {
		a, _, err := catalog.CreateArtifact(ctx, db.Catalog(), actor, testArtifact(name))
		if err != nil {
			t.Fatal(err)
		}
		arts[name] = a
	}
	var builds atomic.Int32
	holding := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	build := func(i int, first, second string) func(lifecycle.ReleaseTx) (lifecycle.Release, error) {
		var runs int
		return func(tx lifecycle.ReleaseTx) (lifecycle.Release, error) {
			builds.Add(1)
			runs++
			r := lifecycle.Release{Name: fmt.Sprint("r", i), State: lifecycle.ReleasePlanning}
			for n, name := range []string{first, second} {
				a, err := tx.GetArtifact(ctx, name, "1.0.0")
				if err != nil {
					return lifecycle.Release{}, err
				}
				r.Artifacts = append(r.Artifacts, lifecycle.ReleaseArtifact{Name: a.Name, Version: a.Version, Digest: a.Digest})
				if n == 0 && runs == 1 {
					// Both hold their first artifact before either asks
					// for its second.
					close(holding[i])
					<-holding[1-i]
				}
			}
			return r, nil
		}
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { _, errs[0] = db.Releases().CreateRelease(ctx, actor, build(0, "a", "b")) })
	wg.Go(func() { _, errs[1] = db.Releases().CreateRelease(ctx, actor, build(1, "b", "a")) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("release %d: %v", i, err)
		}
	}
	if n := builds.Load(); n != 3 {
		t.Errorf("%d builds; want 3 (one run again after the deadlock)", n)
	}
	for _, name := range []string{"r0", "r1"} {
		if r, err := db.Releases().GetRelease(ctx, name); err != nil || len(r.Artifacts) != 2 {
			t.Errorf("GetRelease(%s) = %+v, %v; want it with both artifacts", name, r, err)
		}
	}
	checkAuditRows(t, db, 4)
}

// TestPostgresLocksSerialise: on PostgreSQL a decision about something
// that has no row to lock yet — a blob's claims and deletion, a claim's
// first presentation, a version about to be created — is kept still by an
// advisory lock, held to the commit. Each case holds one transaction in
// the middle of its decision, on one handle; a second one about the same
// thing, on another handle (another replica), waits for the lock, and
// once the first commits it decides on what the first wrote.
func TestPostgresLocksSerialise(t *testing.T) {
	pgtest.Require(t)
	d := digest.FromString("a blob")
	actor := access.Actor{Name: "w"}
	evidenceOf := func(a catalog.Artifact, by string) catalog.Evidence {
		return catalog.Evidence{Digest: digest.FromString("sig of " + a.Name), ArtifactName: a.Name, ArtifactVersion: a.Version,
			ArtifactDigest: a.Digest, Kind: catalog.EvidenceSignature, Format: "signature", KeyID: "ci", CreatedBy: by,
			Claims: []digest.Digest{digest.FromString("one claim")}}
	}
	tests := []struct {
		name string
		// first runs a change, calling hold in the middle of its decision.
		first func(ctx context.Context, db *DB, hold func()) error
		// second runs the same kind of change and reports what it saw.
		second func(ctx context.Context, db *DB) (string, error)
		// want is what second sees, once first committed.
		want string
	}{
		{"a claim, then gc", func(ctx context.Context, db *DB, hold func()) error {
			return db.Blobs().ClaimBlob(ctx, "writer", d, time.Time{}, func(*time.Time) error { hold(); return nil })
		}, func(ctx context.Context, db *DB) (string, error) {
			var saw string
			_, err := db.Blobs().BeginBlobDeletion(ctx, d, time.Time{}, func(_ bool, claims []time.Time) bool {
				saw = fmt.Sprint(len(claims), " claims")
				return len(claims) == 0
			})
			return saw, err
		}, "1 claims"},
		{"gc, then a claim", func(ctx context.Context, db *DB, hold func()) error {
			_, err := db.Blobs().BeginBlobDeletion(ctx, d, time.Time{}, func(bool, []time.Time) bool { hold(); return true })
			return err
		}, func(ctx context.Context, db *DB) (string, error) {
			var saw string
			err := db.Blobs().ClaimBlob(ctx, "writer", d, time.Time{}, func(started *time.Time) error {
				saw = fmt.Sprint("deletion under way: ", started != nil)
				return nil
			})
			return saw, err
		}, "deletion under way: true"},
		{"a claim's first presentation", func(ctx context.Context, db *DB, hold func()) error {
			a, err := db.Catalog().GetArtifact(ctx, "first", "1.0.0")
			if err != nil {
				return err
			}
			_, _, err = db.Catalog().AddEvidence(ctx, actor, evidenceOf(a, "alice"), func(catalog.ClaimReader, catalog.Artifact) error { hold(); return nil }, nil)
			return err
		}, func(ctx context.Context, db *DB) (string, error) {
			a, err := db.Catalog().GetArtifact(ctx, "second", "1.0.0")
			if err != nil {
				return "", err
			}
			var saw string
			_, _, err = db.Catalog().AddEvidence(ctx, actor, evidenceOf(a, "bob"), func(tx catalog.ClaimReader, _ catalog.Artifact) error {
				first, err := tx.ClaimPresentation(ctx, digest.FromString("one claim"))
				saw = fmt.Sprint("first presented for ", first.ArtifactName, " by ", first.PresentedBy, " ", err)
				return nil
			}, nil)
			return saw, err
		}, "first presented for first by alice <nil>"},
		{"a version, by OCI tag then REST push", func(ctx context.Context, db *DB, hold func()) error {
			m := registry.Manifest{Repository: "app", Digest: digest.FromString("manifest"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 8, CreatedBy: "w"}
			_, err := db.Manifests().PutManifest(ctx, actor, m, "2.0", func(_ registry.TagTx, _ registry.Tag, a *catalog.Artifact) (registry.TagWrite, error) {
				hold()
				if a != nil {
					return registry.TagWrite{}, errors.New("the version exists already")
				}
				return registry.TagWrite{Op: registry.TagCreate, Change: audit.Change{Action: catalog.ActionArtifactPushed},
					Artifact: catalog.Artifact{Name: "app", Version: "2.0", Digest: m.Digest, Size: m.Size, MediaType: m.MediaType, State: catalog.StateQuarantined, CreatedBy: "w"}}, nil
			})
			return err
		}, func(ctx context.Context, db *DB) (string, error) {
			stored, created, err := db.Catalog().InsertArtifact(ctx, actor, catalog.Artifact{Name: "app", Version: "2.0", Digest: digest.FromString("REST bytes"), Size: 10, State: catalog.StateQuarantined, CreatedBy: "w"})
			return fmt.Sprint("created ", created, ", stored ", stored.Digest == digest.FromString("manifest")), err
		}, "created false, stored true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			handles := testDialect{dialect: postgresDialect, newStorage: func(t *testing.T) string { return pgtest.NewDatabase(t) }, open: OpenPostgres}.handles(t, 2)
			for _, name := range []string{"first", "second"} {
				if _, _, err := catalog.CreateArtifact(ctx, handles[0].Catalog(), actor, testArtifact(name)); err != nil {
					t.Fatal(err)
				}
			}
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			firstDone := make(chan error, 1)
			go func() {
				firstDone <- tc.first(ctx, handles[0], func() { once.Do(func() { close(held) }); <-release })
			}()
			<-held
			type result struct {
				saw string
				err error
			}
			secondDone := make(chan result, 1)
			go func() {
				saw, err := tc.second(ctx, handles[1])
				secondDone <- result{saw, err}
			}()
			// The second waits for a lock: PostgreSQL says so. Had it not
			// waited, it would have finished on what the first had not
			// committed yet.
			waiting := false
			for range 1000 {
				select {
				case r := <-secondDone:
					close(release)
					t.Fatalf("the second decided while the first was holding: saw %q, %v", r.saw, r.err)
				default:
				}
				var n int
				if err := handles[0].sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if waiting = n > 0; waiting {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			close(release)
			if err := <-firstDone; err != nil {
				t.Fatalf("first: %v", err)
			}
			r := <-secondDone
			if !waiting || r.err != nil || r.saw != tc.want {
				t.Errorf("second waited %v, saw %q, %v; want it to wait, then see %q", waiting, r.saw, r.err, tc.want)
			}
		})
	}
}
