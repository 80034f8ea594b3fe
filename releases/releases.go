package releases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/changesystem"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/internal/defaults"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/provenance"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/releases/retention"
	"github.com/dmlproject/dml/releases/stats"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
)

// Metadata is one adapter of the domain's persistence: a store per
// concept, all over one database, so that a change and its audit record
// share a transaction. releases/sqlstore implements it;
// releases/metadatatest is the conformance suite every implementation
// runs.
type Metadata interface {
	Tokens() access.Store
	Trust() trust.Store
	Catalog() catalog.Store
	Releases() lifecycle.Store
	// The OCI registry: blob links, manifests and tags, upload sessions.
	Links() registry.BlobLinkStore
	Manifests() registry.ManifestStore
	Uploads() registry.UploadStore
	// The audit log over the recorded events, and the access log.
	Audit() audit.Store
	AccessLog() audit.AccessStore
	// Blob integrity and gc coordination.
	Blobs() blobs.Store
	// Retention policies, deletions and the run's lease.
	Retention() retention.Store
	// Quotas per artifact name prefix, and their usage.
	Quotas() quota.Store
	// Webhooks and their outbox of deliveries.
	Webhooks() events.Store
	// Counts for monitoring (releases/stats).
	Stats() stats.Store

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Config is what the domain is built from.
type Config struct {
	Metadata Metadata
	Blobs    *store.Store
	// Signer is the server's own signer: admission receipts, sealed
	// release manifests. Its key must outlive the process, or receipts
	// stop verifying after a restart.
	Signer *signing.ServerSigner
	// LogKey signs audit log checkpoints; LogOrigin is their first line.
	LogKey    *auditlog.LogKey
	LogOrigin string
	// Logger nil: silent. Clock nil: the wall clock in UTC (token expiry,
	// last use, retention); tests move it.
	Logger *slog.Logger
	Clock  func() time.Time
	// ChangeSystem asks the external change system the admin configures
	// (lifecycle.ChangePolicy); nil: over HTTP (changesystem.New).
	ChangeSystem lifecycle.ChangeSystem
}

// DML is the domain, composed: one service per concept, built over one
// metadata adapter and one blob store, with the few hooks that point from
// a lower concept to a higher one wired here. The API layer calls these
// services and nothing underneath them.
type DML struct {
	// Access issues and authenticates tokens.
	Access *access.Service
	// Audit reads the audit log and keeps the access log.
	Audit *audit.Service
	// Blobs reads, ingests and holds stored bytes; Maintenance runs fsck
	// and gc over them.
	Blobs       *blobs.Service
	Maintenance *blobs.Maintenance
	// Trust manages the trusted keys and the trust policy.
	Trust *trust.Service
	// Catalog keeps artifacts, their evidence and admission.
	Catalog *catalog.Service
	// Releases runs the release lifecycle.
	Releases *lifecycle.Service
	// Registry is the OCI registry.
	Registry *registry.Service
	// Provenance gathers what provenance documents are built from.
	Provenance *provenance.Service
	// Retention keeps the retention policies and runs them.
	Retention *retention.Service
	// Quotas keeps the quotas pushes are checked against.
	Quotas *quota.Service
	// Events publishes the audit log as events: webhooks, pollers.
	Events *events.Service
	// Stats counts what is held now, for monitoring.
	Stats *stats.Service

	meta   Metadata
	signer *signing.ServerSigner
	logKey *auditlog.LogKey
	now    func() time.Time
	// observers see every event this process records, once committed
	// (ObserveEvents).
	observersMu sync.Mutex
	observers   []func(audit.Event)
}

// New builds the domain. Every dependency is required: there are no
// stand-in keys, and nothing is generated here.
//
// The order is the dependency order, bottom up. Three questions point
// upwards and are wired here: the catalogue asks the releases whether one
// authorised for a deployer's environment includes an artifact
// (lifecycle.Deployments, which needs only the releases' store, so the
// catalogue gets it before the lifecycle exists); trust asks the
// catalogue to re-evaluate the quarantined artifacts after a change; and
// fsck and gc (blobs.Maintenance) reach the catalogue and the registry's
// upload sessions, so they are built last.
func New(cfg Config) (*DML, error) {
	switch {
	case cfg.Metadata == nil || cfg.Blobs == nil:
		return nil, errors.New("releases: a metadata store and a blob store are required")
	case cfg.Signer == nil:
		return nil, errors.New("releases: the server's signer is required")
	case cfg.LogKey == nil || cfg.LogOrigin == "":
		return nil, errors.New("releases: the audit log's key and origin are required")
	}
	meta, log, now := cfg.Metadata, defaults.Logger(cfg.Logger), defaults.Clock(cfg.Clock)
	d := &DML{meta: meta, signer: cfg.Signer, logKey: cfg.LogKey, now: now}
	var err error
	d.Access = access.New(meta.Tokens(), log, now)
	if d.Audit, err = audit.New(meta.Audit(), meta.AccessLog(), cfg.LogKey, cfg.LogOrigin, log, now); err != nil {
		return nil, err
	}
	if d.Blobs, err = blobs.New(meta.Blobs(), cfg.Blobs, log, now); err != nil {
		return nil, err
	}
	if d.Quotas, err = quota.New(meta.Quotas(), log, now); err != nil {
		return nil, err
	}
	if d.Catalog, err = catalog.New(catalog.Config{
		Store: meta.Catalog(), Trust: meta.Trust(), Audit: meta.Audit(), Blobs: d.Blobs, Signer: cfg.Signer,
		Deployments: lifecycle.Deployments{Store: meta.Releases()}, Quotas: d.Quotas, Log: log, Now: now,
	}); err != nil {
		return nil, err
	}
	if d.Trust, err = trust.New(meta.Trust(), d.Catalog, log, now); err != nil {
		return nil, err
	}
	if d.Releases, err = lifecycle.New(lifecycle.Config{
		Store: meta.Releases(), Catalog: d.Catalog, Blobs: d.Blobs, Signer: cfg.Signer, Log: log, Now: now,
		ChangeSystem: changeSystem(cfg.ChangeSystem),
	}); err != nil {
		return nil, err
	}
	if d.Registry, err = registry.New(registry.Config{
		Links: meta.Links(), Manifests: meta.Manifests(), Uploads: meta.Uploads(),
		Catalog: d.Catalog, CatalogStore: meta.Catalog(), Releases: meta.Releases(), Blobs: d.Blobs, Quotas: d.Quotas, Log: log, Now: now,
	}); err != nil {
		return nil, err
	}
	if d.Maintenance, err = blobs.NewMaintenance(d.Blobs, d.Catalog, d.Registry.Sessions()); err != nil {
		return nil, err
	}
	if d.Provenance, err = provenance.New(provenance.Config{
		Catalog: d.Catalog, CatalogStore: meta.Catalog(), Trust: meta.Trust(), Releases: d.Releases, ReleaseStore: meta.Releases(),
		Audit: d.Audit, AuditStore: meta.Audit(), Blobs: d.Blobs,
	}); err != nil {
		return nil, err
	}
	if d.Retention, err = retention.New(meta.Retention(), d.Maintenance, log, now); err != nil {
		return nil, err
	}
	if d.Events, err = events.New(events.Config{
		Store: meta.Webhooks(), Audit: meta.Audit(), SecretKey: cfg.Signer.DeriveKey(events.SecretKeyPurpose), Log: log, Now: now,
	}); err != nil {
		return nil, err
	}
	// Waiters for new events wake on every local commit (the adapter's
	// optional hook); other replicas' writes are seen by re-reading.
	if h, ok := meta.(interface{ OnCommit(func()) }); ok {
		h.OnCommit(d.Events.Notify)
	}
	d.Stats = stats.New(meta.Stats(), d.Releases, now)
	if h, ok := meta.(interface{ OnRecorded(func([]audit.Event)) }); ok {
		h.OnRecorded(d.recorded)
	}
	return d, nil
}

// ObserveEvents makes fn see every event this process records, in order,
// once its transaction committed: monitoring derives its counters
// (admissions, approvals, deployments) from the record itself, so they
// cannot drift from it. Other replicas' events are theirs to count. fn
// must not block. Without an adapter that hands events over (OnRecorded),
// fn sees nothing.
func (d *DML) ObserveEvents(fn func(audit.Event)) {
	d.observersMu.Lock()
	defer d.observersMu.Unlock()
	d.observers = append(d.observers, fn)
}

func (d *DML) recorded(evs []audit.Event) {
	d.observersMu.Lock()
	obs := d.observers
	d.observersMu.Unlock()
	for _, e := range evs {
		for _, fn := range obs {
			fn(e)
		}
	}
}

// ObserveDatabase makes fn see every database operation, timed, when the
// metadata adapter can (sqlstore.DB.Observe); it reports whether it can.
func (d *DML) ObserveDatabase(fn func(op string, took time.Duration, failed bool)) bool {
	o, ok := d.meta.(interface {
		Observe(func(op string, took time.Duration, failed bool))
	})
	if ok {
		o.Observe(fn)
	}
	return ok
}

// changeSystem is cs, or the HTTP client of change systems.
func changeSystem(cs lifecycle.ChangeSystem) lifecycle.ChangeSystem {
	if cs == nil {
		return changesystem.New(0, nil)
	}
	return cs
}

// ServerPublicKeyPEM is the public half of the server's signing key.
func (d *DML) ServerPublicKeyPEM() []byte { return d.signer.PublicKeyPEM() }

// Now is the domain's clock (Config.Clock): the web console times its
// sessions with it, as tokens are timed.
func (d *DML) Now() time.Time { return d.now() }

// ServerSecret is a secret key for purpose derived from the server's key
// (signing.ServerSigner.DeriveKey): the web console seals its session
// cookies with one, so that replicas sharing the server key accept each
// other's sessions.
func (d *DML) ServerSecret(purpose string) []byte { return d.signer.DeriveKey(purpose) }

// Readiness says whether each dependency answered; a nil error is up.
// The errors name addresses and are for logs, not for clients.
type Readiness struct {
	Database  error
	BlobStore error
}

// Ready reports whether every dependency answered.
func (r Readiness) Ready() bool { return r.Database == nil && r.BlobStore == nil }

// Readiness asks the database and the blob backend whether they answer.
// Both are asked, so that the answer says which one is down.
func (d *DML) Readiness(ctx context.Context) Readiness {
	var r Readiness
	if err := d.meta.Ping(ctx); err != nil {
		r.Database = fmt.Errorf("database: %w", err)
	}
	if err := d.Blobs.Store().Backend().Ping(ctx); err != nil {
		r.BlobStore = fmt.Errorf("blob store: %w", err)
	}
	return r
}
