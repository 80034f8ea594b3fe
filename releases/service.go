package releases

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/keyed"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"golang.org/x/mod/sumdb/note"
)

// Service is the domain's entry point: the API layer calls it and nothing
// underneath it.
type Service struct {
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

	meta   Metadata
	blobs  *store.Store
	signer *signing.ServerSigner
	// logKey signs audit log checkpoints; logOrigin is their first line.
	logKey    *auditlog.LogKey
	logOrigin string
	log       *slog.Logger
	now       func() time.Time
	// registry is the OCI registry's persistence (registry.go); nil when
	// the metadata store has none.
	registry RegistryStore
	// uploading serialises the requests of one chunked upload.
	uploading keyed.Mutex
}

// ServiceOption configures a Service.
type ServiceOption func(*Service)

// WithSigner sets the server's own signer (admission receipts, sealed
// releases). Without it the service makes an ephemeral key, which is only
// fit for tests: receipts would not verify after a restart.
func WithSigner(s *signing.ServerSigner) ServiceOption { return func(svc *Service) { svc.signer = s } }

// WithClock sets the service's clock (token expiry, last use, retention),
// for tests that move time.
func WithClock(now func() time.Time) ServiceOption { return func(svc *Service) { svc.now = now } }

// NewService wires the domain to its metadata store and blob store. A nil
// logger keeps the service silent.
func NewService(meta Metadata, blobStore *store.Store, log *slog.Logger, opts ...ServiceOption) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{meta: meta, blobs: blobStore, log: log, now: func() time.Time { return time.Now().UTC() }}
	if r, ok := meta.(RegistryStore); ok {
		s.registry = r
	}
	for _, o := range opts {
		o(s)
	}
	if s.logKey == nil {
		skey, _, err := note.GenerateKey(rand.Reader, "dml-ephemeral")
		if err != nil {
			panic(fmt.Sprintf("generating an ephemeral log key: %v", err))
		}
		if s.logKey, err = auditlog.NewLogKey(skey); err != nil {
			panic(fmt.Sprintf("ephemeral log key: %v", err))
		}
		s.logOrigin = "dml-ephemeral"
	}
	if s.signer == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(fmt.Sprintf("generating an ephemeral server key: %v", err))
		}
		s.signer, err = signing.NewServerSigner(key)
		if err != nil {
			panic(fmt.Sprintf("ephemeral server key: %v", err))
		}
	}
	s.Access = access.New(meta.Tokens(), s.log, s.now)
	var err error
	if s.Audit, err = audit.New(meta.Audit(), meta.AccessLog(), s.logKey, s.logOrigin, s.log, s.now); err != nil {
		panic(err) // transitional: NewService becomes New(Config) (*DML, error)
	}
	if s.Blobs, err = blobs.New(meta.Blobs(), s.blobs, s.log, s.now); err != nil {
		panic(err) // transitional
	}
	if s.Catalog, err = catalog.New(catalog.Config{
		Store: meta.Catalog(), Trust: meta.Trust(), Audit: meta.Audit(), Blobs: s.Blobs,
		Signer: s.signer, Deployments: lifecycle.Deployments{Store: meta.Releases()}, Log: s.log, Now: s.now,
	}); err != nil {
		panic(err) // transitional
	}
	if s.Releases, err = lifecycle.New(lifecycle.Config{Store: meta.Releases(), Catalog: s.Catalog, Blobs: s.Blobs, Signer: s.signer, Log: s.log, Now: s.now}); err != nil {
		panic(err) // transitional
	}
	if s.Trust, err = trust.New(meta.Trust(), s.Catalog, s.log, s.now); err != nil {
		panic(err) // transitional
	}
	var uploads blobs.Uploads
	if s.registry != nil {
		uploads = uploadSessions{s}
	}
	if s.Maintenance, err = blobs.NewMaintenance(s.Blobs, s.Catalog, uploads); err != nil {
		panic(err) // transitional
	}
	return s
}

// WithLogKey sets the audit log's checkpoint signing key and origin line.
// Without it the service makes an ephemeral key (tests only).
func WithLogKey(k *auditlog.LogKey, origin string) ServiceOption {
	return func(s *Service) { s.logKey, s.logOrigin = k, origin }
}

// ServerPublicKeyPEM is the public half of the server's signing key.
func (s *Service) ServerPublicKeyPEM() []byte { return s.signer.PublicKeyPEM() }

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
func (s *Service) Readiness(ctx context.Context) Readiness {
	var r Readiness
	if err := s.meta.Ping(ctx); err != nil {
		r.Database = fmt.Errorf("database: %w", err)
	}
	if err := s.Blobs.Store().Backend().Ping(ctx); err != nil {
		r.BlobStore = fmt.Errorf("blob store: %w", err)
	}
	return r
}
