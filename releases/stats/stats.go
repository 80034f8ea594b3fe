package stats

import (
	"context"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// Inventory is what the metadata holds now, counted by the database in a
// few aggregate queries.
type Inventory struct {
	// Artifacts counts artifact versions by state; every state is
	// present, zero when none is in it.
	Artifacts map[catalog.ArtifactState]int64
	// OldestQuarantined is when the oldest version still quarantined was
	// pushed; zero when none is.
	OldestQuarantined time.Time
	// Blobs and BlobBytes count the distinct blobs artifacts, evidence
	// and the OCI registry (manifests, blob links) refer to, and their
	// bytes, each blob once.
	Blobs, BlobBytes int64
	// AuditRecords is the audit log's size.
	AuditRecords int64
	// OutboxPending counts webhook deliveries not yet delivered nor
	// failed; OldestPending is when the oldest of them was enqueued
	// (zero when none is).
	OutboxPending int64
	OldestPending time.Time
}

// Store counts. Its answer is one consistent reading or an error.
type Store interface {
	Inventory(ctx context.Context) (Inventory, error)
}

// Snapshot is an Inventory with the gates open now.
type Snapshot struct {
	Inventory
	// OpenGates lists every gate waiting for a decision, with since when.
	OpenGates []lifecycle.OpenGate
	// At is when the snapshot was taken.
	At time.Time
}

// Service takes snapshots.
type Service struct {
	store    Store
	releases *lifecycle.Service
	now      func() time.Time
}

// New returns the service over st, asking releases for the open gates.
func New(st Store, releases *lifecycle.Service, now func() time.Time) *Service {
	return &Service{store: st, releases: releases, now: now}
}

// Snapshot counts what is held now. It reads only, and is meant to be
// called every few seconds at most (a metrics scrape caches it).
func (s *Service) Snapshot(ctx context.Context) (Snapshot, error) {
	inv, err := s.store.Inventory(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats: inventory: %w", err)
	}
	gates, err := s.releases.OpenGates(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats: open gates: %w", err)
	}
	return Snapshot{Inventory: inv, OpenGates: gates, At: s.now()}, nil
}
