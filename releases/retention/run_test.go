package retention_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/retention"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	*domaintest.Env
	clock         *clock
	publisher, rm access.Principal
}

func newEnv(t *testing.T) *env {
	c := &clock{now: time.Now().UTC()}
	e := domaintest.NewEnv(t, func(cfg *releases.Config) { cfg.Clock = c.Now })
	return &env{Env: e, clock: c,
		publisher: e.Principal("pipeline", nil, access.RolePublisher),
		rm:        e.Principal("rm", nil, access.RoleReleaseManager)}
}

func (e *env) push(name, version string) catalog.Artifact {
	e.T.Helper()
	body := []byte(name + ":" + version)
	a, _, err := e.DML.Catalog.Push(e.Ctx, e.publisher, catalog.PushRequest{Name: name, Version: version, Size: int64(len(body)), Body: bytes.NewReader(body)})
	if err != nil {
		e.T.Fatalf("push %s:%s: %v", name, version, err)
	}
	return a
}

func (e *env) plan(release string, refs ...catalog.Artifact) error {
	req := lifecycle.CreateReleaseRequest{Name: release, PlanRequest: lifecycle.PlanRequest{
		ChangeRef: "CHG-1", Title: release, Environments: []string{"staging"},
		Plan: lifecycle.PlanDetails{Description: "d", BackoutPlan: "b", Risk: "low"},
	}}
	for _, a := range refs {
		req.Artifacts = append(req.Artifacts, lifecycle.ReleaseArtifactRef{Name: a.Name, Version: a.Version})
	}
	_, err := e.DML.Releases.CreateRelease(e.Ctx, e.rm, req)
	return err
}

// TestRunAgainstConcurrentReleases runs retention while releases are
// planned with the very versions it is deleting, a few rounds: whatever
// the interleaving, every version a release names is still there, every
// other old one is gone, and each deletion is in the audit log.
func TestRunAgainstConcurrentReleases(t *testing.T) {
	e := newEnv(t)
	if _, err := e.DML.Retention.SetPolicy(e.Ctx, e.Admin, retention.Policy{ID: "all", Pattern: "**", DeleteQuarantinedAfterDays: 1}); err != nil {
		t.Fatal(err)
	}
	const rounds, versions = 3, 12
	for round := range rounds {
		name := fmt.Sprintf("race/app%d", round)
		var all []catalog.Artifact
		for i := range versions {
			a := e.push(name, fmt.Sprint(i))
			if a.State != catalog.StateQuarantined {
				t.Fatalf("%s:%d is %s; the test needs quarantined pushes", name, i, a.State)
			}
			all = append(all, a)
		}
		e.clock.advance(48 * time.Hour)

		planned := make([]error, versions)
		var rep retention.Report
		var runErr error
		var wg sync.WaitGroup
		wg.Go(func() { rep, runErr = e.DML.Retention.Run(e.Ctx, e.Admin, false) })
		for i := range versions {
			if i%2 == 0 {
				wg.Go(func() { planned[i] = e.plan(fmt.Sprintf("r%d-%d", round, i), all[i]) })
			}
		}
		wg.Wait()
		if runErr != nil {
			t.Fatalf("round %d: run: %v", round, runErr)
		}
		for i, a := range all {
			_, getErr := e.DML.Catalog.Artifact(e.Ctx, a.Name, a.Version)
			inRelease, err := e.Meta.Releases().ReleasesContaining(e.Ctx, a.Name, a.Version)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case len(inRelease) > 0 && getErr != nil:
				t.Fatalf("round %d: %s:%s is in release %s but gone: %v", round, a.Name, a.Version, inRelease[0].Name, getErr)
			case i%2 == 0 && planned[i] == nil && len(inRelease) == 0:
				t.Fatalf("round %d: release of %s:%s was planned but does not name it", round, a.Name, a.Version)
			case i%2 == 0 && planned[i] != nil && !errors.Is(planned[i], errdef.ErrNotFound):
				t.Fatalf("round %d: planning %s:%s: %v; want success or not found (deleted first)", round, a.Name, a.Version, planned[i])
			case len(inRelease) == 0 && getErr == nil:
				t.Fatalf("round %d: %s:%s is in no release and still there after the run", round, a.Name, a.Version)
			}
		}
		var deleted, skipped int
		for _, o := range rep.Outcomes {
			if o.Name != name {
				continue
			}
			switch {
			case o.Deleted:
				deleted++
			case o.Skipped != "":
				skipped++
			}
		}
		evs, err := e.Meta.Audit().Events(e.Ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		recorded := 0
		for _, ev := range evs {
			if ev.Action == retention.ActionArtifactDeleted && len(ev.Subject) > len(name) && ev.Subject[:len(name)+1] == name+":" {
				recorded++
			}
		}
		if recorded != deleted {
			t.Fatalf("round %d: %d deletions, %d artifact.deleted events", round, deleted, recorded)
		}
		t.Logf("round %d: %d deleted, %d kept because a release took them during the run", round, deleted, skipped)
	}
}

// TestRunOneAtATime: a run refuses to start while another holds the
// lease (another replica's); a dry run needs no lease and deletes nothing.
func TestRunOneAtATime(t *testing.T) {
	e := newEnv(t)
	if _, err := e.DML.Retention.SetPolicy(e.Ctx, e.Admin, retention.Policy{ID: "all", Pattern: "**", DeleteQuarantinedAfterDays: 1}); err != nil {
		t.Fatal(err)
	}
	a := e.push("team/app", "1")
	e.clock.advance(48 * time.Hour)
	now := e.clock.Now()
	if ok, err := e.Meta.Retention().TryLease(e.Ctx, "retention.run", "another-replica", now, now.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("TryLease: %v %v", ok, err)
	}
	if _, err := e.DML.Retention.Run(e.Ctx, e.Admin, false); !errors.Is(err, retention.ErrRunning) {
		t.Fatalf("Run while another holds the lease = %v; want ErrRunning", err)
	}
	rep, err := e.DML.Retention.Run(e.Ctx, e.Admin, true)
	if err != nil || len(rep.Outcomes) != 1 || rep.Outcomes[0].Deleted || rep.Summary.Deleted != 0 {
		t.Fatalf("dry run = %+v, %v; want one version listed, none deleted", rep, err)
	}
	if _, err := e.DML.Catalog.Artifact(e.Ctx, a.Name, a.Version); err != nil {
		t.Fatalf("after a dry run: %v", err)
	}
	// The other replica's lease runs out; a run goes ahead.
	e.clock.advance(2 * time.Minute)
	if rep, err = e.DML.Retention.Run(e.Ctx, e.Admin, false); err != nil || rep.Summary.Deleted != 1 {
		t.Fatalf("run after the lease expired = %+v, %v; want one deleted", rep.Summary, err)
	}
	// Not an admin: refused.
	if _, err := e.DML.Retention.Run(e.Ctx, e.publisher, true); !errors.Is(err, errdef.ErrDenied) {
		t.Fatalf("run as a publisher = %v; want ErrDenied", err)
	}
}
