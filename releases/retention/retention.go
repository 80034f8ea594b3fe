package retention

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// Collector frees the blobs whose last reference a run removed
// (blobs.Maintenance.Collect: gc's deletion protocol).
type Collector interface {
	Collect(ctx context.Context, p access.Principal, digests []digest.Digest) (blobs.CollectSummary, error)
}

// Service keeps the policies and runs them.
type Service struct {
	store   Store
	collect Collector
	log     *slog.Logger
	now     func() time.Time
}

// New returns the retention service; every argument is required.
func New(st Store, collect Collector, log *slog.Logger, now func() time.Time) (*Service, error) {
	if st == nil || collect == nil || log == nil || now == nil {
		return nil, errors.New("retention: a store, a collector, a logger and a clock are required")
	}
	return &Service{store: st, collect: collect, log: log, now: now}, nil
}

func needAdmin(p access.Principal, what string) error {
	if !p.Has(access.RoleAdmin) {
		return fmt.Errorf("%w: %s needs the admin role", errdef.ErrDenied, what)
	}
	return nil
}

// Policies lists the policies (admins).
func (s *Service) Policies(ctx context.Context, p access.Principal) ([]Policy, error) {
	if err := needAdmin(p, "reading retention policies"); err != nil {
		return nil, err
	}
	return s.store.ListPolicies(ctx)
}

// Policy returns policy id (admins); errdef.ErrNotFound if there is none.
func (s *Service) Policy(ctx context.Context, p access.Principal, id string) (Policy, error) {
	list, err := s.Policies(ctx, p)
	if err != nil {
		return Policy{}, err
	}
	for _, pol := range list {
		if pol.ID == id {
			return pol, nil
		}
	}
	return Policy{}, fmt.Errorf("retention policy %q: %w", id, errdef.ErrNotFound)
}

// SetPolicy creates or replaces a policy (admins), audited.
func (s *Service) SetPolicy(ctx context.Context, p access.Principal, pol Policy) (Policy, error) {
	if err := needAdmin(p, "setting a retention policy"); err != nil {
		return Policy{}, err
	}
	if err := pol.Validate(); err != nil {
		return Policy{}, err
	}
	pol.UpdatedBy, pol.UpdatedAt = p.Name, s.now()
	stored, err := s.store.PutPolicy(ctx, p.Actor(), pol)
	if err == nil {
		s.log.Info("retention policy set", "id", pol.ID, "pattern", pol.Pattern, "by", p.Name)
	}
	return stored, err
}

// DeletePolicy deletes a policy (admins), audited.
func (s *Service) DeletePolicy(ctx context.Context, p access.Principal, id string) error {
	if err := needAdmin(p, "deleting a retention policy"); err != nil {
		return err
	}
	if err := s.store.DeletePolicy(ctx, p.Actor(), id); err != nil {
		return err
	}
	s.log.Info("retention policy deleted", "id", id, "by", p.Name)
	return nil
}

// Outcome is what a run did with one version its plan chose.
type Outcome struct {
	Decision
	// Deleted is set once the version is gone (never in a dry run).
	Deleted bool
	// Skipped says why a version the plan chose was kept after all: a
	// release took it, or it changed, since the plan.
	Skipped string
}

// Summary is a run's totals.
type Summary struct {
	DryRun bool
	// Versions: the versions looked at. Planned: those the plan chose,
	// PlannedBytes their sizes. Deleted/DeletedBytes: those deleted.
	// Skipped: chosen, then kept (Outcome.Skipped).
	Versions     int64
	Planned      int64
	PlannedBytes int64
	Deleted      int64
	DeletedBytes int64
	Skipped      int64
	// BlobsCollected, BytesCollected: the stored blobs freed (a blob
	// still referenced elsewhere stays).
	BlobsCollected int64
	BytesCollected int64
	Duration       string
}

// Report is one run: every version chosen, and the totals.
type Report struct {
	Outcomes []Outcome
	Summary  Summary
}

// leaseName is the lease one run at a time holds, across replicas.
const leaseName = "retention.run"

// leaseTTL is how long a run's lease lasts without renewal; a run renews
// it with every page, so only a replica that died leaves it to expire.
const leaseTTL = 10 * time.Minute

// page is how many versions a run reads at once.
const page = 500

// ErrRunning: another run holds the lease.
var ErrRunning = fmt.Errorf("%w: a retention run is already under way", errdef.ErrConflict)

// Run plans (dryRun: only plans) and deletes what the policies let go,
// as an admin, one run at a time across replicas. Each deletion is its
// own transaction that checks again that no release names the version
// and that it is what the plan decided on (a release planned meanwhile
// wins: the version is skipped); the blobs freed are then collected.
func (s *Service) Run(ctx context.Context, p access.Principal, dryRun bool) (Report, error) {
	if err := needAdmin(p, "a retention run"); err != nil {
		return Report{}, err
	}
	start, began := s.now(), time.Now()
	holder := rand.Text()
	if !dryRun {
		ok, err := s.store.TryLease(ctx, leaseName, holder, start, start.Add(leaseTTL))
		if err != nil {
			return Report{}, err
		}
		if !ok {
			return Report{}, ErrRunning
		}
		defer func() {
			if err := s.store.DropLease(context.WithoutCancel(ctx), leaseName, holder); err != nil {
				s.log.Warn("giving up the retention lease failed; it expires", "err", err)
			}
		}()
	}
	policies, err := s.store.ListPolicies(ctx)
	if err != nil {
		return Report{}, err
	}
	r := &run{s: s, p: p, dryRun: dryRun, policies: policies, now: start}
	r.rep.Summary.DryRun = dryRun
	var group []Version
	afterName, afterVersion := "", ""
	for {
		vs, err := s.store.Versions(ctx, afterName, afterVersion, page)
		if err != nil {
			return r.rep, err
		}
		for _, v := range vs {
			r.rep.Summary.Versions++
			if len(group) > 0 && group[0].Name != v.Name {
				if err := r.decide(ctx, group); err != nil {
					return r.rep, err
				}
				group = group[:0]
			}
			group = append(group, v)
		}
		if len(vs) < page {
			break
		}
		afterName, afterVersion = vs[len(vs)-1].Name, vs[len(vs)-1].Version
		if !dryRun {
			if ok, err := s.store.TryLease(ctx, leaseName, holder, s.now(), s.now().Add(leaseTTL)); err != nil || !ok {
				return r.rep, errors.Join(ErrRunning, err)
			}
		}
	}
	if len(group) > 0 {
		if err := r.decide(ctx, group); err != nil {
			return r.rep, err
		}
	}
	if len(r.freed) > 0 {
		c, err := s.collect.Collect(ctx, p, r.freed)
		r.rep.Summary.BlobsCollected, r.rep.Summary.BytesCollected = c.DeletedBlobs, c.DeletedBytes
		if err != nil {
			return r.rep, fmt.Errorf("retention: collecting the freed blobs (dml gc collects what is left): %w", err)
		}
	}
	r.rep.Summary.Duration = time.Since(began).Round(time.Millisecond).String()
	sum := r.rep.Summary
	s.log.Info("retention run done", "by", p.Name, "dryRun", dryRun, "versions", sum.Versions, "planned", sum.Planned,
		"deleted", sum.Deleted, "deletedBytes", sum.DeletedBytes, "skipped", sum.Skipped, "blobsCollected", sum.BlobsCollected)
	return r.rep, nil
}

// run is one Run.
type run struct {
	s        *Service
	p        access.Principal
	dryRun   bool
	policies []Policy
	now      time.Time
	rep      Report
	freed    []digest.Digest
}

// decide plans one name's versions and, unless dry, deletes.
func (r *run) decide(ctx context.Context, versions []Version) error {
	for _, d := range Plan(PolicyFor(r.policies, versions[0].Name), versions, r.now) {
		r.rep.Summary.Planned++
		r.rep.Summary.PlannedBytes += d.Size
		o := Outcome{Decision: d}
		if !r.dryRun {
			evidence, err := r.s.store.DeleteVersion(ctx, r.p.Actor(), d.Name, d.Version.Version, func(v Version) (audit.Change, error) {
				return deletion(d, v)
			})
			switch {
			case err == nil:
				o.Deleted = true
				r.rep.Summary.Deleted++
				r.rep.Summary.DeletedBytes += d.Size
				r.freed = append(append(r.freed, d.Digest), evidence...)
				r.s.log.Info("artifact deleted", "name", d.Name, "version", d.Version.Version, "digest", d.Digest, "policy", d.Policy, "reason", d.Reason, "by", r.p.Name)
			case errors.Is(err, ErrReferenced), errors.Is(err, ErrChanged), errors.Is(err, errdef.ErrNotFound):
				o.Skipped = err.Error()
				r.rep.Summary.Skipped++
			default:
				return fmt.Errorf("retention: deleting %s: %w", d.Ref(), err)
			}
		}
		r.rep.Outcomes = append(r.rep.Outcomes, o)
	}
	return nil
}

// deletion is the rule run in the deleting transaction: the version as
// stored must be what the plan decided on, and no release may name it.
func deletion(d Decision, v Version) (audit.Change, error) {
	switch {
	case v.InRelease:
		return audit.Change{}, fmt.Errorf("%s: %w", d.Ref(), ErrReferenced)
	case v.OCITag || v.Digest != d.Digest || v.State != d.State || v.Retired != d.Retired:
		return audit.Change{}, fmt.Errorf("%s: %w", d.Ref(), ErrChanged)
	}
	b, err := json.Marshal(struct {
		Name    string        `json:"name"`
		Version string        `json:"version"`
		Digest  digest.Digest `json:"digest"`
		Size    int64         `json:"size"`
		State   string        `json:"state"`
		Policy  string        `json:"policy"`
		Reason  string        `json:"reason"`
	}{d.Name, d.Version.Version, d.Digest, d.Size, string(d.State), d.Policy, d.Reason})
	if err != nil {
		return audit.Change{}, err
	}
	return audit.Change{Action: ActionArtifactDeleted, Details: b}, nil
}

// Schedule runs the policies every interval until ctx ends, as p (an
// admin principal naming the scheduler in the audit log). A run another
// replica holds is skipped, quietly; other failures are logged.
func (s *Service) Schedule(ctx context.Context, p access.Principal, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := s.Run(ctx, p, false)
		switch {
		case errors.Is(err, ErrRunning):
			s.log.Info("scheduled retention run skipped: another one is under way")
		case err != nil && ctx.Err() == nil:
			s.log.Error("scheduled retention run failed", "err", err)
		}
	}
}
