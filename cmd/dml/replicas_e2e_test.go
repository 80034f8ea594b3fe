package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/pgtest"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store/storetest"
	"github.com/opencontainers/go-digest"
)

// TestReplicasUnderLoad (issue 11, item 5) runs the DML an organisation
// shares: three `dml serve` processes on one PostgreSQL database and one
// S3 bucket (versitygw), behind a load balancer that sends each request
// to the next replica. Bounded load: publishers push artifacts and their
// signatures (each request of a push at another replica), OCI clients
// upload blobs in chunks whose PATCHes alternate replicas, and halfway
// through ten approvers approve one gate at once, then the next, across
// replicas. Then one replica is killed with SIGKILL in the middle of a
// second round; clients whose operation failed retry it elsewhere.
//
// Afterwards: no request failed in the first round and no operation in
// the second after its retries; each gate was authorised once and the
// release sealed once; every acknowledged write is served by every
// replica still up; `dml audit verify` passes against each replica (one
// state file, so each verification also checks the log grew from what
// the previous replica served); and the replicas serve one checkpoint.
// It prints requests per replica, errors, quorum and seal counts, audit
// verification per replica, the kill's outcome and the rates.
// DML_REPLICA_LOAD sets the first round's length (10s; the second is half).
func TestReplicasUnderLoad(t *testing.T) {
	round := 10 * time.Second
	if v := os.Getenv("DML_REPLICA_LOAD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("DML_REPLICA_LOAD=%q: want a positive duration", v)
		}
		round = d
	}
	cl := newCluster(t, 3)
	ctx := t.Context()
	replicas, lb, op, w, rm, cab, auditorToken := cl.replicas, cl.lb, cl.op, cl.op.w, cl.rm, cl.cab, cl.auditor
	rel, err := cl.release(ctx, "rollout", 10)
	if err != nil {
		t.Fatal(err)
	}

	// Round 1: all replicas up; every request must succeed.
	approvalErrs := make(chan error, 2*len(cab))
	r1 := runLoad(ctx, round, 12, op, 0, func() {
		for _, gate := range []string{"plan", "build"} {
			approveAtOnce(ctx, cab, rel.Name, gate, approvalErrs)
		}
	}, nil)
	close(approvalErrs)
	for err := range approvalErrs {
		t.Errorf("approval: %v", err)
	}
	t.Logf("round 1 (%s, 3 replicas): %d pushes, %d chunked uploads, %d failed operations; %s",
		round, r1.pushes.Load(), r1.uploads.Load(), r1.failed.Load(), lb.report())
	t.Logf("round 1 rates: %.1f pushes/s (push + signature), %.1f chunked uploads/s",
		float64(r1.pushes.Load())/round.Seconds(), float64(r1.uploads.Load())/round.Seconds())
	if r1.failed.Load() != 0 {
		t.Errorf("round 1: %d operations failed with every replica up: %v", r1.failed.Load(), r1.firstErr())
	}

	got, err := rm.Releases().Get(ctx, rel.Name)
	if err != nil {
		t.Fatal(err)
	}
	authorized, sealed := sealCount(t, lb.client(t, auditorToken), rel.Name)
	onRecord := map[string]int{}
	for _, a := range got.Approvals {
		if !a.Discarded && a.Decision == "approve" {
			onRecord[a.Gate]++
		}
	}
	t.Logf("quorum: approvals on record %v, gates authorised %v, sealed %d time(s), release %s", onRecord, authorized, sealed, got.State)
	if got.State != "released" || got.ManifestDigest == "" || onRecord["plan"] != 10 || onRecord["build"] != 10 ||
		authorized["plan"] != 1 || authorized["build"] != 1 || sealed != 1 {
		t.Errorf("release %s (manifest %q), approvals %v, authorised %v, sealed %d; want released, 10 approvals per gate, each gate authorised once, one seal",
			got.State, got.ManifestDigest, onRecord, authorized, sealed)
	}
	w.checkPresent(t, lb, replicas, auditorToken)
	state := filepath.Join(t.TempDir(), "audit-state.json")
	verifyEach(t, replicas, auditorToken, state)
	sameCheckpoint(t, replicas, auditorToken)

	// Round 2: replica 2 is killed a third of the way through; the
	// balancer takes it out on its first failed request, and clients
	// retry a failed operation (from its start: pushes of the same bytes
	// are no-ops) on the replicas left.
	r2 := runLoad(ctx, round/2, 12, op, 3, nil, func() {
		replicas[2].kill9()
		t.Logf("replica 2 (%s) killed with SIGKILL", replicas[2].addr)
	})
	t.Logf("round 2 (%s, kill -9 of replica 2 after %s): %d pushes, %d chunked uploads, %d after the kill, %d operations retried elsewhere, %d failed after retries; %s",
		round/2, (round / 6).Round(100*time.Millisecond), r2.pushes.Load(), r2.uploads.Load(), r2.afterKill.Load(), r2.retried.Load(), r2.failed.Load(), lb.report())
	if r2.failed.Load() != 0 {
		t.Errorf("round 2: %d operations failed after retrying elsewhere: %v", r2.failed.Load(), r2.firstErr())
	}
	if r2.afterKill.Load() == 0 {
		t.Error("round 2: no operation completed after the kill: the replicas left did not keep serving")
	}
	live := replicas[:2]
	w.checkPresent(t, lb, live, auditorToken)
	verifyEach(t, live, auditorToken, state)
	sameCheckpoint(t, live, auditorToken)
}

// cluster is n `dml serve` replicas on a new PostgreSQL database and a new
// bucket of the S3 server the tests use, behind a balancer, with a trusted
// key "ci" (required on load/*: a signature admits) and the principals of
// the load: a publisher (op), a release manager, ten approvers, an
// auditor.
type cluster struct {
	replicas []*serverProc
	lb       *balancer
	op       *loadOp
	rm       *client.Client
	cab      []*client.Client
	auditor  string
}

func newCluster(t testing.TB, n int) *cluster {
	t.Helper()
	database := pgtest.NewDatabase(t)
	endpoint, accessKey, secretKey := storetest.S3FromEnv(t)
	const adminToken = "replicas-admin-token-0123456789"
	bucket := fmt.Sprintf("dml-replicas-%d", time.Now().UnixNano())
	keys := t.TempDir()
	env := []string{"DML_BOOTSTRAP_TOKEN=" + adminToken, "DML_DATABASE=" + database,
		"DML_S3_ACCESS_KEY=" + accessKey, "DML_S3_SECRET_KEY=" + secretKey}
	cl := &cluster{}
	for i := range n {
		dir := keys // the first replica makes the keys; the others are given them
		if i > 0 {
			dir = t.TempDir()
		}
		cl.replicas = append(cl.replicas, startServer(t, env, "--data-dir", dir,
			"--server-key", filepath.Join(keys, "server-key.pem"), "--log-key", filepath.Join(keys, "log-key"),
			"--s3-endpoint", endpoint, "--s3-bucket", bucket, "--s3-insecure"))
	}
	cl.lb = newBalancer(cl.replicas)
	ctx := context.Background()
	admin := cl.lb.client(t, adminToken)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := signing.NewServerSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "ci", PublicKey: string(ci.PublicKeyPEM())}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Trust().SetPolicy(ctx, []byte(`{"rules":[{"match":"load/*","signatures":{"keys":["ci"]}}]}`)); err != nil {
		t.Fatal(err)
	}
	token := func(name string, roles ...string) string {
		issued, err := admin.Tokens().Create(ctx, wire.TokenRequest{Name: name, Roles: roles})
		if err != nil {
			t.Fatal(err)
		}
		return issued.Token
	}
	cl.op = (&loadOp{pipelineToken: token("pipeline", "publisher"), ci: ci, token: token("oci-pipeline", "publisher"), lb: cl.lb, w: &writes{}}).fork()
	cl.auditor = token("auditor", "auditor")
	cl.rm = cl.lb.client(t, token("rm", "release-manager"))
	for i := range 10 {
		cl.cab = append(cl.cab, cl.lb.client(t, token(fmt.Sprint("cab-", i), "approver")))
	}
	return cl
}

// release creates a release of one admitted artifact whose plan and
// build gates each need quorum approvals.
func (cl *cluster) release(ctx context.Context, name string, quorum int) (wire.Release, error) {
	if err := cl.op.push(ctx, "load/"+name, "1.0.0", []byte("the one artifact of "+name)); err != nil {
		return wire.Release{}, err
	}
	return cl.rm.Releases().Create(ctx, wire.CreateReleaseRequest{Name: name,
		PlanRequest: wire.PlanRequest{ChangeRef: "CHG-" + name, Title: "Replicas", Environments: []string{"production"},
			Plan: wire.PlanDetails{Description: "Roll out", BackoutPlan: "Roll back", Risk: "low"}},
		Artifacts: []wire.ReleaseArtifactRef{{Name: "load/" + name, Version: "1.0.0"}},
		Gates:     map[string]wire.GateSetting{"plan": {Approvals: quorum}, "build": {Approvals: quorum}}})
}

// balancer is the load balancer in front of the replicas: each client's
// requests go round the replicas that are up, one after the other (route),
// so that the requests of one operation — a push and its signature, the
// PATCHes of one upload — reach different replicas; a replica that fails
// to answer is taken out.
type balancer struct {
	replicas []*serverProc
	down     []atomic.Bool
	served   []atomic.Int64
	clients  atomic.Uint64
}

func newBalancer(replicas []*serverProc) *balancer {
	return &balancer{replicas: replicas, down: make([]atomic.Bool, len(replicas)), served: make([]atomic.Int64, len(replicas))}
}

// route is one client's way through the balancer, an http.RoundTripper;
// clients start at different replicas.
type route struct {
	b    *balancer
	next atomic.Uint64
}

func (rt *route) RoundTrip(req *http.Request) (*http.Response, error) {
	b := rt.b
	i := -1
	for range len(b.replicas) {
		n := int(rt.next.Add(1) % uint64(len(b.replicas)))
		if !b.down[n].Load() {
			i = n
			break
		}
	}
	if i < 0 {
		return nil, errors.New("balancer: no replica is up")
	}
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = "http", b.replicas[i].addr, ""
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		b.down[i].Store(true)
		return nil, fmt.Errorf("replica %d: %w", i, err)
	}
	b.served[i].Add(1)
	return resp, nil
}

// client is an API client of the DML behind the balancer.
func (b *balancer) client(t testing.TB, token string) *client.Client {
	t.Helper()
	c, err := client.New("http://dml.lb", token, client.WithHTTPClient(b.http()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// http is a new client's HTTP client through the balancer.
func (b *balancer) http() *http.Client {
	rt := &route{b: b}
	rt.next.Store(b.clients.Add(1))
	return &http.Client{Transport: rt, Timeout: time.Minute}
}

func (b *balancer) report() string {
	var parts []string
	for i := range b.replicas {
		state := "up"
		if b.down[i].Load() {
			state = "down"
		}
		parts = append(parts, fmt.Sprintf("replica %d (%s): %d requests", i, state, b.served[i].Load()))
	}
	return "requests answered per replica so far: " + strings.Join(parts, ", ")
}

// writes are the acknowledged writes: artifacts (admitted: their
// signature was acknowledged too) and OCI blobs.
type writes struct {
	mu        sync.Mutex
	artifacts map[string]digest.Digest // name:version
	blobs     map[string]digest.Digest // repo@digest
}

func (w *writes) artifact(name, version string, d digest.Digest) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.artifacts == nil {
		w.artifacts = map[string]digest.Digest{}
	}
	w.artifacts[name+":"+version] = d
}

func (w *writes) blob(repo string, d digest.Digest) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.blobs == nil {
		w.blobs = map[string]digest.Digest{}
	}
	w.blobs[repo+"@"+d.String()] = d
}

// checkPresent asks every replica for every acknowledged write.
func (w *writes) checkPresent(t *testing.T, lb *balancer, replicas []*serverProc, token string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx := t.Context()
	missing := 0
	for _, r := range replicas {
		c, err := client.New(r.url(), token)
		if err != nil {
			t.Fatal(err)
		}
		for ref, d := range w.artifacts {
			name, version, _ := strings.Cut(ref, ":")
			a, err := c.Artifacts().Get(ctx, name, version)
			if err != nil || a.Digest != d || a.State != "admitted" {
				missing++
				t.Errorf("%s on %s: %s %s (%v); want admitted %s", ref, r.addr, a.State, a.Digest, err, d)
			}
		}
		for ref := range w.blobs {
			repo, d, _ := strings.Cut(ref, "@")
			resp := ociRequest(t, http.MethodHead, r.url()+"/v2/"+repo+"/blobs/"+d, token, nil, -1, nil)
			if resp.StatusCode != http.StatusOK {
				missing++
				t.Errorf("blob %s on %s: %s", ref, r.addr, resp.Status)
			}
		}
	}
	t.Logf("acknowledged writes: %d artifacts (admitted), %d OCI blobs; missing on %d replicas: %d", len(w.artifacts), len(w.blobs), len(replicas), missing)
}

// loadOp is one load client: what its operations need, and its own way
// through the balancer (fork).
type loadOp struct {
	pipelineToken string
	ci            *signing.ServerSigner
	token         string // the OCI publisher's
	lb            *balancer
	w             *writes
	// hc and pipeline (a REST client over it) are this client's.
	hc       *http.Client
	pipeline *client.Client
}

// fork is a new load client like o, with its own route.
func (o *loadOp) fork() *loadOp {
	c := *o
	c.hc = o.lb.http()
	var err error
	if c.pipeline, err = client.New("http://dml.lb", o.pipelineToken, client.WithHTTPClient(c.hc)); err != nil {
		panic(err) // a constant, valid URL
	}
	return &c
}

// push pushes body as name:version, then its signature: two requests,
// two replicas. Both acknowledged, the artifact is admitted. Pushed
// again (a retry), the same bytes are a no-op.
func (o *loadOp) push(ctx context.Context, name, version string, body []byte) error {
	d := digest.FromBytes(body)
	if _, _, err := o.pipeline.Artifacts().Push(ctx, client.PushRequest{Name: name, Version: version, Digest: d, Size: int64(len(body)), Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("push %s:%s: %w", name, version, err)
	}
	sig, err := o.ci.SignBlob(body)
	if err != nil {
		return err
	}
	_, a, err := o.pipeline.Evidence().AddSignature(ctx, name, version, []byte(`{"keyId":"ci","signature":"`+sig+`"}`))
	if err != nil {
		return fmt.Errorf("signature of %s:%s: %w", name, version, err)
	}
	if a.State != "admitted" {
		return fmt.Errorf("%s:%s is %s after its signature, want admitted", name, version, a.State)
	}
	o.w.artifact(name, version, d)
	return nil
}

// upload sends body to repo as an OCI chunked upload: POST, three
// PATCHes, PUT — each to the next replica.
func (o *loadOp) upload(ctx context.Context, repo string, body []byte) error {
	d := digest.FromBytes(body)
	hc := o.hc
	send := func(method, target string, chunk []byte, headers map[string]string, want int) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, "http://dml.lb"+target, bytes.NewReader(chunk))
		if err != nil {
			return nil, err
		}
		req.ContentLength = int64(len(chunk))
		req.SetBasicAuth("oci", o.token)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return nil, fmt.Errorf("%s %s: %s", method, target, resp.Status)
		}
		return resp, nil
	}
	resp, err := send(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	location := func(resp *http.Response) (string, error) {
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || u.Path == "" {
			return "", fmt.Errorf("upload location %q: %v", resp.Header.Get("Location"), err)
		}
		return u.RequestURI(), nil
	}
	at, err := location(resp)
	if err != nil {
		return err
	}
	const chunks = 3
	step := len(body) / chunks
	for i := range chunks {
		start, end := i*step, (i+1)*step
		if i == chunks-1 {
			end = len(body)
		}
		resp, err := send(http.MethodPatch, at, body[start:end], map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", start, end-1)}, http.StatusAccepted)
		if err != nil {
			return fmt.Errorf("PATCH %d: %w", i, err)
		}
		if at, err = location(resp); err != nil {
			return err
		}
	}
	sep := "?"
	if strings.Contains(at, "?") {
		sep = "&"
	}
	if _, err := send(http.MethodPut, at+sep+"digest="+url.QueryEscape(d.String()), nil, nil, http.StatusCreated); err != nil {
		return err
	}
	o.w.blob(repo, d)
	return nil
}

// loadResult counts one round.
type loadResult struct {
	pushes, uploads, failed, retried, afterKill atomic.Int64
	mu                                          sync.Mutex
	errs                                        []error
}

func (r *loadResult) fail(err error) {
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *loadResult) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs[0]
}

// roundSeq tells the rounds' artifact versions apart.
var roundSeq atomic.Int64

// runLoad runs clients for d: half push, half upload in chunks, each
// operation tried up to 1+retries times. Halfway through it calls
// halfway, a third of the way kill (either may be nil). Every loop is
// bounded by the time and by a count.
func runLoad(ctx context.Context, d time.Duration, clients int, o *loadOp, retries int, halfway, kill func()) *loadResult {
	res := &loadResult{}
	round := roundSeq.Add(1)
	deadline := time.Now().Add(d)
	var killed atomic.Bool
	var wg sync.WaitGroup
	for c := range clients {
		o := o.fork()
		wg.Go(func() {
			for n := 0; n < 100_000 && time.Now().Before(deadline); n++ {
				// A retry sends the same bytes again.
				body := make([]byte, 4<<10+(c%2)*20<<10)
				if _, err := rand.Read(body); err != nil {
					res.fail(err)
					continue
				}
				var err error
				for attempt := 0; attempt <= retries; attempt++ {
					if attempt > 0 {
						res.retried.Add(1)
					}
					if c%2 == 0 {
						err = o.push(ctx, fmt.Sprintf("load/app-%d", c), fmt.Sprintf("%d.%d.%d", round, c, n), body)
					} else {
						err = o.upload(ctx, fmt.Sprintf("load/oci-%d", c), body)
					}
					if err == nil {
						break
					}
				}
				switch {
				case err != nil:
					res.fail(err)
				case c%2 == 0:
					res.pushes.Add(1)
				default:
					res.uploads.Add(1)
				}
				if err == nil && killed.Load() {
					res.afterKill.Add(1)
				}
			}
		})
	}
	if kill != nil {
		wg.Go(func() {
			time.Sleep(d / 3)
			kill()
			killed.Store(true)
		})
	}
	if halfway != nil {
		wg.Go(func() {
			time.Sleep(d / 2)
			halfway()
		})
	}
	wg.Wait()
	return res
}

// approveAtOnce has every approver approve gate of release name at the
// same moment, each request through the balancer (so across replicas).
func approveAtOnce(ctx context.Context, cab []*client.Client, name, gate string, errs chan<- error) {
	rel, err := cab[0].Releases().Get(ctx, name)
	if err != nil {
		errs <- err
		return
	}
	var expected digest.Digest
	for _, g := range rel.Gates {
		if g.Gate == gate {
			expected = g.ExpectedDigest
		}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range cab {
		wg.Go(func() {
			<-start
			if _, err := c.Releases().Decide(ctx, name, wire.ApprovalRequest{Gate: gate, Decision: "approve", Digest: expected, Comment: "ok"}); err != nil {
				errs <- fmt.Errorf("cab-%d approving %s: %w", i, gate, err)
			}
		})
	}
	close(start)
	wg.Wait()
}

// sealCount reads the audit log for the release's approvals: how many
// authorised each gate, and how many sealed the release.
func sealCount(t *testing.T, c *client.Client, name string) (authorized map[string]int, sealed int) {
	t.Helper()
	authorized = map[string]int{}
	var start int64
	for range 10_000 { // bounded: pages of 1000 records
		rc, err := c.Audit().Entries(t.Context(), start, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			n++
			var rec struct {
				Action  string `json:"action"`
				Subject string `json:"subject"`
				Details struct {
					Gate       string `json:"gate"`
					Authorized bool   `json:"authorized"`
					Sealed     string `json:"sealed"`
				} `json:"details"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Action != "release.approval" || rec.Subject != "release:"+name {
				continue
			}
			if rec.Details.Authorized {
				authorized[rec.Details.Gate]++
			}
			if rec.Details.Sealed != "" {
				sealed++
			}
		}
		rc.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if n < 1000 {
			return authorized, sealed
		}
		start += int64(n)
	}
	t.Fatal("the audit log did not end")
	return nil, 0
}

// verifyEach runs `dml audit verify` against each replica in turn, with
// one state file: each verification checks the log served now extends
// the one the previous replica served.
func verifyEach(t *testing.T, replicas []*serverProc, token, state string) {
	t.Helper()
	for i, r := range replicas {
		cmd := exec.Command(dmlBinary(t), "audit", "verify", "--server", r.url(), "--token", token, "--state-file", state)
		cmd.Env = append(cleanEnv(), "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("dml audit verify against replica %d (%s): %v\n%s", i, r.addr, err, out)
			continue
		}
		t.Logf("dml audit verify against replica %d (%s): %s", i, r.addr, strings.Join(strings.Fields(string(out)), " "))
	}
}

// cleanEnv is the environment without DML_ variables, so that the CLI
// takes only its flags.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DML_") {
			out = append(out, kv)
		}
	}
	return out
}

// sameCheckpoint checks that every replica serves the same checkpoint.
func sameCheckpoint(t *testing.T, replicas []*serverProc, token string) {
	t.Helper()
	var first []byte
	for i, r := range replicas {
		c, err := client.New(r.url(), token)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Audit().Checkpoint(t.Context())
		if err != nil {
			t.Fatalf("checkpoint of replica %d: %v", i, err)
		}
		if i == 0 {
			first = b
			lines := strings.SplitN(string(b), "\n", 3)
			t.Logf("checkpoint: origin %s, %s records, served alike by %d replicas", lines[0], lines[1], len(replicas))
			continue
		}
		if !bytes.Equal(b, first) {
			t.Errorf("replica %d serves another checkpoint:\n%s\nreplica 0:\n%s", i, b, first)
		}
	}
}
