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
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/internal/keyed"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
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
	// other and the second sees the first; pushes of a new version and
	// tag moves take it too, to decide about the version before writing.
	admitting keyed.Mutex
	// registry is the OCI registry's persistence (registry.go); nil when
	// the metadata store has none.
	registry RegistryStore
	// uploading serialises the requests of one chunked upload.
	uploading keyed.Mutex
	// presenting serialises the check and the recording of an evidence
	// claim's first presentation (admission.go).
	presenting keyed.Mutex
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
	var uploads blobs.Uploads
	if s.registry != nil {
		uploads = uploadSessions{s}
	}
	if s.Maintenance, err = blobs.NewMaintenance(s.Blobs, s, uploads); err != nil {
		panic(err) // transitional
	}
	if s.Trust, err = trust.New(meta.Trust(), s, s.log, s.now); err != nil {
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

// PushRequest is one artifact upload.
type PushRequest struct {
	Name    string
	Version string
	// MediaType is the Content-Type the client sent: its parameters are
	// dropped, the rest must be an RFC 6838 media type
	// (ErrMediaTypeInvalid), and "" means DefaultMediaType.
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
	mt, err := ParseContentType(req.MediaType)
	if err != nil {
		return Artifact{}, false, err
	}
	if req.MediaType = mt; mt == "" {
		req.MediaType = DefaultMediaType
	}
	if req.Digest != "" {
		if err := store.ValidateDigest(req.Digest); err != nil {
			return Artifact{}, false, err
		}
	}
	// A version that exists is only compared with the body, never written
	// to: nothing a refused push sends stays on disk.
	var stored Artifact
	var created bool
	existing, err := s.meta.GetArtifact(ctx, req.Name, req.Version)
	switch {
	case err == nil:
		stored, created, err = s.comparePush(ctx, p, existing, req)
	case errors.Is(err, ErrNotFound):
		stored, created, err = s.pushNew(ctx, p, req)
	}
	if err != nil {
		return stored, false, err
	}
	if created {
		s.log.Info("artifact pushed", "name", stored.Name, "version", stored.Version, "digest", stored.Digest, "size", stored.Size, "by", p.Name)
		// A policy may need nothing this push lacks (or the push may be
		// re-admitting known evidence): decide right away.
		if admitted, err := s.evaluate(ctx, p.Actor(), stored.Name, stored.Version); err != nil {
			s.log.Warn("admission evaluation after push failed", "name", stored.Name, "version", stored.Version, "err", err)
		} else {
			stored = admitted
		}
	}
	// The first push and a push again answer what a GET answers: where
	// admission stands now, with what is still needed and why.
	view, err := s.currentAdmission(ctx, stored)
	if err != nil {
		s.log.Warn("admission view after push failed", "name", stored.Name, "version", stored.Version, "err", err)
		return stored, created, nil
	}
	return view, created, nil
}

// pushNew stores a version that did not exist when Push looked. The
// version's lock (the one admission decisions and OCI tag pushes of the
// same name:version take) is held from the second look until the version
// is recorded, so of two pushes of one new version only the first writes
// its bytes; the other waits, finds the version and compares
// (comparePush), writing nothing.
//
// A refused push therefore never leaves bytes behind, and nothing is ever
// deleted here: once a blob is visible, a concurrent push of the same
// bytes under another name, an OCI blob push or a mount may already count
// on it (its Ingest found the blob and did not write it), and no lock
// taken here could tell. Only another process sharing the database could
// still record the version between the look and CreateArtifact; what
// this push stored is then unreferenced garbage, never wrong data.
func (s *Service) pushNew(ctx context.Context, p Principal, req PushRequest) (Artifact, bool, error) {
	unlock := s.admitting.Lock(req.Name + ":" + req.Version)
	defer unlock()
	existing, err := s.meta.GetArtifact(ctx, req.Name, req.Version)
	switch {
	case err == nil:
		return s.comparePush(ctx, p, existing, req)
	case !errors.Is(err, ErrNotFound):
		return Artifact{}, false, err
	}
	blob, release, err := s.Blobs.Ingest(ctx, p.Actor(), req.Body, store.IngestOptions{Digest: req.Digest, Size: req.Size})
	if err != nil {
		return Artifact{}, false, err
	}
	defer release()
	return s.meta.CreateArtifact(ctx, p.Actor(), Artifact{
		Name:      req.Name,
		Version:   req.Version,
		Digest:    blob.Digest,
		Size:      blob.Size,
		MediaType: req.MediaType,
		State:     StateQuarantined,
		CreatedBy: p.Name,
		CreatedAt: s.now(),
	})
}

// comparePush answers a push of a version that exists: identical bytes
// are an idempotent no-op (created=false), other bytes are
// ErrVersionExists. The body is streamed through a reader that verifies
// it against the stored digest; nothing is written unless the stored blob
// has gone missing, is marked corrupt or changed since it was verified
// (the repair: see ingest), and then only these very bytes. A declared
// digest or length that differs from the stored one conflicts before any
// byte is read.
func (s *Service) comparePush(ctx context.Context, p Principal, existing Artifact, req PushRequest) (Artifact, bool, error) {
	conflict := fmt.Errorf("%w: %s:%s holds %s", ErrVersionExists, req.Name, req.Version, existing.Digest)
	if (req.Digest != "" && req.Digest != existing.Digest) || (req.Size >= 0 && req.Size != existing.Size) {
		return existing, false, conflict
	}
	_, release, err := s.Blobs.Ingest(ctx, p.Actor(), req.Body, store.IngestOptions{Digest: existing.Digest, Size: req.Size})
	switch {
	case err == nil:
		release()
		return existing, false, nil
	case req.Digest == "" && errors.Is(err, store.ErrDigestMismatch):
		// Other bytes, not a body that contradicts its own checksum.
		return existing, false, conflict
	}
	return Artifact{}, false, err
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
	return s.currentAdmission(ctx, a)
}

// currentAdmission fills a quarantined artifact's admission as of now:
// what is still missing depends on the current policy, keys and evidence.
// Admitted and rejected artifacts keep their recorded decision.
func (s *Service) currentAdmission(ctx context.Context, a Artifact) (Artifact, error) {
	if a.State != StateQuarantined {
		return a, nil
	}
	d, policyVersion, err := s.decide(ctx, a)
	if err != nil {
		return Artifact{}, err
	}
	adm := Admission{State: a.State, Rule: d.Rule, Unmet: nonNil(d.Unmet), Reason: d.Reason, PolicyVersion: policyVersion}
	if a.Admission != nil {
		adm.DecidedAt = a.Admission.DecidedAt
	}
	a.Admission = &adm
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

// Content is an artifact's bytes, ready to be served with Range support.
type Content struct {
	Artifact Artifact
	Reader   *BlobReader
}

// OpenContent authorises p to read the artifact's bytes and opens them
// (openBlob): the backend is reached, and a corrupt blob refused, before
// the caller starts a response. Content that is not admitted is served
// only to its publisher, admins and auditors.
func (s *Service) OpenContent(ctx context.Context, p Principal, name, version string) (Content, error) {
	a, err := s.Artifact(ctx, name, version)
	if err != nil {
		return Content{}, err
	}
	if err := s.authorizeRead(ctx, p, a); err != nil {
		return Content{}, err
	}
	r, err := s.Blobs.Open(ctx, p.Actor(), a.Digest, a.Size)
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
