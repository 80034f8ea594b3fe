package releases

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
	"golang.org/x/mod/sumdb/note"
)

// Service is the domain's entry point: the API layer calls it and nothing
// underneath it.
type Service struct {
	meta   Metadata
	blobs  *store.Store
	signer *signing.ServerSigner
	// logKey signs audit log checkpoints; logOrigin is their first line.
	logKey    *auditlog.LogKey
	logOrigin string
	log       *slog.Logger
	now       func() time.Time
	// admitting serialises admission decisions per artifact version, so
	// two pieces of evidence arriving together are evaluated one after the
	// other and the second sees the first.
	admitting keyedMutex
	// registry is the OCI registry's persistence (registry.go); nil when
	// the metadata store has none.
	registry RegistryStore
	// uploading serialises the requests of one chunked upload.
	uploading keyedMutex
	// verifying serialises the verifications of one blob before a Range
	// read (integrity.go), so concurrent requests read it once.
	verifying keyedMutex
	// integrity counts corrupt blobs found and repaired (integrity.go).
	integrity integrityCounters
	// maintenance is held by a running fsck or gc: one at a time.
	maintenance sync.Mutex
}

// ServiceOption configures a Service.
type ServiceOption func(*Service)

// WithSigner sets the server's own signer (admission receipts, sealed
// releases). Without it the service makes an ephemeral key, which is only
// fit for tests: receipts would not verify after a restart.
func WithSigner(s *signing.ServerSigner) ServiceOption { return func(svc *Service) { svc.signer = s } }

// NewService wires the domain to its metadata store and blob store. A nil
// logger keeps the service silent.
func NewService(meta Metadata, blobs *store.Store, log *slog.Logger, opts ...ServiceOption) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{meta: meta, blobs: blobs, log: log, now: func() time.Time { return time.Now().UTC() }}
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
	return s
}

// ServerPublicKeyPEM is the public half of the server's signing key.
func (s *Service) ServerPublicKeyPEM() []byte { return s.signer.PublicKeyPEM() }

// Blobs returns the blob store (for readiness checks and sweeps).
func (s *Service) Blobs() *store.Store { return s.blobs }

// Ready reports whether the database and the blob backend answer.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.meta.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := s.blobs.Backend().Ping(ctx); err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	return nil
}

// PushRequest is one artifact upload.
type PushRequest struct {
	Name      string
	Version   string
	MediaType string
	// Digest, when known (X-Checksum-Sha256), is verified while streaming.
	Digest digest.Digest
	// Size is the body length, or -1.
	Size int64
	Body io.Reader
}

// DefaultMediaType is used when a push names none.
const DefaultMediaType = "application/octet-stream"

// Push stores an artifact version. Re-pushing identical bytes is a no-op
// (created=false); different bytes for an existing version is
// ErrVersionExists. A body that does not match its declared digest stores
// nothing: no blob and no catalogue row.
func (s *Service) Push(ctx context.Context, p Principal, req PushRequest) (Artifact, bool, error) {
	if !p.Has(RolePublisher, RoleAdmin) {
		return Artifact{}, false, fmt.Errorf("%w: pushing needs the publisher or admin role", ErrDenied)
	}
	if err := ValidateName(req.Name); err != nil {
		return Artifact{}, false, err
	}
	if err := ValidateVersion(req.Version); err != nil {
		return Artifact{}, false, err
	}
	if req.MediaType == "" {
		req.MediaType = DefaultMediaType
	}
	if req.Digest != "" {
		if err := store.ValidateDigest(req.Digest); err != nil {
			return Artifact{}, false, err
		}
		// Refuse a known conflict before reading a byte of the body.
		existing, err := s.meta.GetArtifact(ctx, req.Name, req.Version)
		switch {
		case err == nil && existing.Digest != req.Digest:
			return existing, false, fmt.Errorf("%w: %s:%s holds %s", ErrVersionExists, req.Name, req.Version, existing.Digest)
		case err != nil && !errors.Is(err, ErrNotFound):
			return Artifact{}, false, err
		}
	}
	blob, release, err := s.ingest(ctx, p.Actor(), req.Body, store.IngestOptions{Digest: req.Digest, Size: req.Size})
	if err != nil {
		return Artifact{}, false, err
	}
	defer release()
	a := Artifact{
		Name:      req.Name,
		Version:   req.Version,
		Digest:    blob.Digest,
		Size:      blob.Size,
		MediaType: req.MediaType,
		State:     StateQuarantined,
		CreatedBy: p.Name,
		CreatedAt: s.now(),
	}
	stored, created, err := s.meta.CreateArtifact(ctx, p.Actor(), a)
	if err != nil {
		if errors.Is(err, ErrVersionExists) {
			// The blob stays: it is content-addressed and may be shared;
			// an unreferenced blob is only garbage, never wrong data.
			return stored, false, err
		}
		return Artifact{}, false, err
	}
	if created {
		s.log.Info("artifact pushed", "name", a.Name, "version", a.Version, "digest", a.Digest, "size", a.Size, "by", p.Name)
		// A policy may need nothing this push lacks (or the push may be
		// re-admitting known evidence): decide right away.
		if admitted, err := s.evaluate(ctx, p.Actor(), stored.Name, stored.Version); err != nil {
			s.log.Warn("admission evaluation after push failed", "name", a.Name, "version", a.Version, "err", err)
		} else {
			stored = admitted
		}
	}
	return stored, created, nil
}

// Artifact returns one artifact. Any authenticated principal may read metadata.
func (s *Service) Artifact(ctx context.Context, name, version string) (Artifact, error) {
	if err := ValidateName(name); err != nil {
		return Artifact{}, err
	}
	if err := ValidateVersion(version); err != nil {
		return Artifact{}, err
	}
	a, err := s.meta.GetArtifact(ctx, name, version)
	if err != nil {
		return Artifact{}, err
	}
	if a.State == StateQuarantined {
		// What is still missing depends on the current policy, keys and
		// evidence: say it as of now.
		d, policyVersion, err := s.decide(ctx, a)
		if err != nil {
			return Artifact{}, err
		}
		adm := Admission{State: a.State, Rule: d.Rule, Unmet: nonNil(d.Unmet), Reason: d.Reason, PolicyVersion: policyVersion}
		if a.Admission != nil {
			adm.DecidedAt = a.Admission.DecidedAt
		}
		a.Admission = &adm
	}
	return a, nil
}

// Artifacts lists artifacts, one page at a time.
func (s *Service) Artifacts(ctx context.Context, f ArtifactFilter) ([]Artifact, string, error) {
	if f.Name != "" {
		if err := ValidateName(f.Name); err != nil {
			return nil, "", err
		}
	}
	if f.State != "" && !f.State.Valid() {
		return nil, "", fmt.Errorf("%w: unknown state %q", ErrInvalidInput, f.State)
	}
	if f.Limit < 0 || f.Limit > MaxPageSize {
		return nil, "", fmt.Errorf("%w: limit must be between 1 and %d", ErrInvalidInput, MaxPageSize)
	}
	return s.meta.ListArtifacts(ctx, f)
}

// MaxPageSize bounds list pages.
const MaxPageSize = 1000

// Content is an artifact's bytes, ready to be served with Range support.
type Content struct {
	Artifact Artifact
	Reader   *BlobReader
}

// OpenContent authorises p to read the artifact's bytes and opens them
// lazily. Content that is not admitted is served only to its publisher,
// admins and auditors.
func (s *Service) OpenContent(ctx context.Context, p Principal, name, version string) (Content, error) {
	a, err := s.Artifact(ctx, name, version)
	if err != nil {
		return Content{}, err
	}
	if err := s.authorizeRead(ctx, p, a); err != nil {
		return Content{}, err
	}
	r, err := s.openBlob(ctx, p, a.Digest, a.Size)
	if err != nil {
		return Content{}, err
	}
	return Content{Artifact: a, Reader: r}, nil
}

// ErrNotAdmitted refuses content that has not passed admission.
var ErrNotAdmitted = errors.New("not admitted")

func (s *Service) authorizeRead(ctx context.Context, p Principal, a Artifact) error {
	if p.Has(RoleAdmin, RoleAuditor) {
		return nil
	}
	if a.State != StateAdmitted {
		if p.Has(RolePublisher) && a.CreatedBy == p.Name {
			return nil
		}
		return fmt.Errorf("%w: %s:%s is %s; only its publisher, admins and auditors may read it", ErrNotAdmitted, a.Name, a.Version, a.State)
	}
	if p.Has(RolePublisher, RoleReleaseManager, RoleApprover) {
		return nil
	}
	if p.Has(RoleDeployer) {
		// A deployment agent pulls only what a release authorised for one
		// of its environments contains.
		rels, err := s.meta.ReleasesContaining(ctx, a.Name, a.Version)
		if err != nil {
			return err
		}
		for _, r := range rels {
			if r.State == ReleaseCancelled {
				continue
			}
			for _, env := range p.Environments {
				if r.DeployAuthorized(env) {
					return nil
				}
			}
		}
		return fmt.Errorf("%w: %s:%s is in no release authorised for deployment to %s", ErrNotAuthorizedForEnv, a.Name, a.Version, strings.Join(p.Environments, ", "))
	}
	return fmt.Errorf("%w: reading content needs a role", ErrDenied)
}

// CleanStaging removes what crashed uploads left behind.
func (s *Service) CleanStaging(ctx context.Context, maxAge time.Duration) (int, error) {
	return s.blobs.CleanStaging(ctx, maxAge)
}
