package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/defaults"
	"github.com/dmlproject/dml/releases/internal/keyed"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
)

// Service is the catalogue: artifacts pushed and read, their evidence,
// admission decided against the trust policy, retirement.
type Service struct {
	store       Store
	trust       trust.Store
	audit       audit.Store
	blobs       *blobs.Service
	signer      *signing.ServerSigner
	deployments Deployments
	quotas      *quota.Service
	log         *slog.Logger
	now         func() time.Time
	// admitting serialises the decisions about one artifact version in
	// this process: a push of a new version, its admission, an OCI tag
	// move (LockVersion). It saves work — two pieces of evidence arriving
	// together are evaluated once each, in turn, and a push refused for a
	// conflict writes no bytes — but correctness does not rest on it: the
	// decisions themselves run inside the store's transactions (a push
	// inserts only what does not exist; an admission is stored only if
	// the artifact is still quarantined with the bytes it was decided on;
	// a tag moves only if its artifact may change). Across replicas those
	// transactions are kept apart by the database: the artifact's row
	// lock and its name's advisory lock on PostgreSQL, the one writer on
	// SQLite (sqlstore; TestReplicas shows it with three replicas).
	admitting keyed.Mutex
	// presenting serialises the early check of an evidence claim's first
	// presentation with its recording, in this process. It saves work (a
	// presentation refused as a replay stores no bytes); the check that
	// counts runs again inside the transaction that records the evidence,
	// under the claims' advisory locks there (sqlstore AddEvidence), which
	// keep two replicas from both being first.
	presenting keyed.Mutex
	// trust is the policy parsed and the verifiers loaded at the latest
	// trust revision read, shared by every decision until the revision
	// changes (trust.Cache); the revision is read inside the transaction
	// of a decision, so a change made through another replica counts
	// from the next decision on.
	trustAt trust.Cache
}

// Config is what the catalogue is built from.
type Config struct {
	Store Store
	// Trust is read for the keys and the policy admission evaluates.
	Trust trust.Store
	// Audit is read by CheckAdmissions (fsck).
	Audit audit.Store
	Blobs *blobs.Service
	// Signer signs admission receipts.
	Signer      *signing.ServerSigner
	Deployments Deployments
	// Quotas are checked by every push of a new version.
	Quotas *quota.Service
	// Log nil: silent. Now nil: the wall clock.
	Log *slog.Logger
	Now func() time.Time
}

// New returns the catalogue.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Trust == nil || cfg.Audit == nil || cfg.Blobs == nil || cfg.Signer == nil || cfg.Deployments == nil || cfg.Quotas == nil {
		return nil, errors.New("catalog: a store, the trust and audit stores, the blob service, the server's signer, the deployments and the quotas are required")
	}
	return &Service{
		store: cfg.Store, trust: cfg.Trust, audit: cfg.Audit, blobs: cfg.Blobs, signer: cfg.Signer, deployments: cfg.Deployments, quotas: cfg.Quotas,
		log: defaults.Logger(cfg.Log), now: defaults.Clock(cfg.Now),
	}, nil
}

// LockVersion takes the lock of the decisions about name:version (see
// Service.admitting), for a change that must not interleave with an
// admission decision in this process; it returns the unlock function.
func (s *Service) LockVersion(name, version string) func() {
	return s.admitting.Lock(name + ":" + version)
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
func (s *Service) Push(ctx context.Context, p access.Principal, req PushRequest) (Artifact, bool, error) {
	if !p.Has(access.RolePublisher, access.RoleAdmin) {
		return Artifact{}, false, fmt.Errorf("%w: pushing needs the publisher or admin role", errdef.ErrDenied)
	}
	if err := names.ValidateName(req.Name); err != nil {
		return Artifact{}, false, err
	}
	if err := names.ValidateVersion(req.Version); err != nil {
		return Artifact{}, false, err
	}
	mt, err := names.ParseContentType(req.MediaType)
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
	existing, err := s.store.GetArtifact(ctx, req.Name, req.Version)
	switch {
	case err == nil:
		stored, created, err = s.comparePush(ctx, p, existing, req)
	case errors.Is(err, errdef.ErrNotFound):
		stored, created, err = s.pushNew(ctx, p, req)
	}
	if err != nil {
		return stored, false, err
	}
	if created {
		s.log.Info("artifact pushed", "name", stored.Name, "version", stored.Version, "digest", stored.Digest, "size", stored.Size, "by", p.Name)
		// A policy may need nothing this push lacks (or the push may be
		// re-admitting known evidence): decide right away.
		// What it decided is where admission stands now: the version is
		// new, so it has no decision time to keep (currentAdmission).
		admitted, err := s.Evaluate(ctx, p.Actor(), stored.Name, stored.Version)
		if err == nil {
			return admitted, true, nil
		}
		s.log.Warn("admission evaluation after push failed", "name", stored.Name, "version", stored.Version, "err", err)
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
func (s *Service) pushNew(ctx context.Context, p access.Principal, req PushRequest) (Artifact, bool, error) {
	unlock := s.LockVersion(req.Name, req.Version)
	defer unlock()
	existing, err := s.store.GetArtifact(ctx, req.Name, req.Version)
	switch {
	case err == nil:
		return s.comparePush(ctx, p, existing, req)
	case !errors.Is(err, errdef.ErrNotFound):
		return Artifact{}, false, err
	}
	// Quotas first, before a byte is stored: the declared size, or a
	// body cut off where the budget ends; then again in the transaction
	// that records the version (CreateArtifactWithinQuota).
	body, err := s.quotas.CheckPush(ctx, req.Name, req.Size, 1, req.Body)
	if err != nil {
		return Artifact{}, false, err
	}
	blob, release, err := s.blobs.Ingest(ctx, p.Actor(), body, store.IngestOptions{Digest: req.Digest, Size: req.Size})
	if err != nil {
		return Artifact{}, false, err
	}
	defer release()
	return CreateArtifactWithinQuota(ctx, s.store, p.Actor(), Artifact{
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
func (s *Service) comparePush(ctx context.Context, p access.Principal, existing Artifact, req PushRequest) (Artifact, bool, error) {
	conflict := fmt.Errorf("%w: %s:%s holds %s", ErrVersionExists, req.Name, req.Version, existing.Digest)
	if (req.Digest != "" && req.Digest != existing.Digest) || (req.Size >= 0 && req.Size != existing.Size) {
		return existing, false, conflict
	}
	_, release, err := s.blobs.Ingest(ctx, p.Actor(), req.Body, store.IngestOptions{Digest: existing.Digest, Size: req.Size})
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
	a, err := s.artifact(ctx, name, version)
	if err != nil {
		return Artifact{}, err
	}
	return s.currentAdmission(ctx, a)
}

// artifact is Artifact as stored, without where its admission stands now.
func (s *Service) artifact(ctx context.Context, name, version string) (Artifact, error) {
	if err := names.ValidateName(name); err != nil {
		return Artifact{}, err
	}
	if err := names.ValidateVersion(version); err != nil {
		return Artifact{}, err
	}
	a, err := s.store.GetArtifact(ctx, name, version)
	if errors.Is(err, errdef.ErrNotFound) {
		return Artifact{}, s.notFound(ctx, name, version)
	}
	return a, err
}

// notFound is the answer for name:version that does not exist: an
// *errdef.NotFoundError suggesting the close versions of name when it has
// any, else the close names (names.Suggest). A failure to find
// suggestions leaves them out: the answer is still "not found".
func (s *Service) notFound(ctx context.Context, name, version string) error {
	nf := &errdef.NotFoundError{What: "artifact", Name: name + ":" + version}
	versions, _, err := s.store.ListArtifacts(ctx, ArtifactFilter{Name: name, Limit: names.SuggestCandidates})
	switch {
	case err != nil:
	case len(versions) > 0:
		vs := make([]string, len(versions))
		for i, a := range versions {
			vs[i] = a.Version
		}
		for _, v := range names.Suggest(version, vs) {
			nf.Suggestions = append(nf.Suggestions, name+":"+v)
		}
	default:
		if candidates, err := s.store.ArtifactNames(ctx, names.SuggestPrefix(name), names.SuggestCandidates); err == nil {
			nf.Suggestions = names.Suggest(name, candidates)
		}
	}
	return nf
}

// currentAdmission fills a quarantined artifact's admission as of now:
// what is still missing depends on the current policy, keys and evidence.
// Admitted and rejected artifacts keep their recorded decision.
func (s *Service) currentAdmission(ctx context.Context, a Artifact) (Artifact, error) {
	if a.State != StateQuarantined {
		return a, nil
	}
	d, err := s.decide(ctx, a)
	if err != nil {
		return Artifact{}, err
	}
	adm := Admission{State: a.State, Rule: d.Rule, Unmet: nonNil(d.Unmet), Reason: d.Reason, PolicyVersion: d.policyVersion}
	if a.Admission != nil {
		adm.DecidedAt = a.Admission.DecidedAt
	}
	a.Admission = &adm
	return a, nil
}

// Artifacts lists artifacts, one page at a time.
func (s *Service) Artifacts(ctx context.Context, f ArtifactFilter) ([]Artifact, string, error) {
	if f.Name != "" {
		if err := names.ValidateName(f.Name); err != nil {
			return nil, "", err
		}
	}
	if f.State != "" && !f.State.Valid() {
		return nil, "", fmt.Errorf("%w: unknown state %q", errdef.ErrInvalidInput, f.State)
	}
	if f.Limit < 0 || f.Limit > names.MaxPageSize {
		return nil, "", fmt.Errorf("%w: limit must be between 1 and %d", errdef.ErrInvalidInput, names.MaxPageSize)
	}
	return s.store.ListArtifacts(ctx, f)
}

// Content is an artifact's bytes, ready to be served with Range support.
type Content struct {
	Artifact Artifact
	Reader   *blobs.BlobReader
}

// OpenContent authorises p to read the artifact's bytes and opens them
// (openBlob): the backend is reached, and a corrupt blob refused, before
// the caller starts a response. Content that is not admitted is served
// only to its publisher, admins and auditors.
func (s *Service) OpenContent(ctx context.Context, p access.Principal, name, version string) (Content, error) {
	a, err := s.Artifact(ctx, name, version)
	if err != nil {
		return Content{}, err
	}
	if err := s.AuthorizeRead(ctx, p, a); err != nil {
		return Content{}, err
	}
	r, err := s.blobs.Open(ctx, p.Actor(), a.Digest, a.Size)
	if err != nil {
		return Content{}, err
	}
	return Content{Artifact: a, Reader: r}, nil
}

// AuthorizeRead decides whether p may read the bytes of a: admins and
// auditors always; content not admitted only its publisher; admitted
// content publishers, release managers and approvers, and deployment
// agents only within a release authorised for one of their environments.
func (s *Service) AuthorizeRead(ctx context.Context, p access.Principal, a Artifact) error {
	if p.Has(access.RoleAdmin, access.RoleAuditor) {
		return nil
	}
	if a.State != StateAdmitted {
		if p.Has(access.RolePublisher) && a.CreatedBy == p.Name {
			return nil
		}
		return fmt.Errorf("%w: %s:%s is %s; only its publisher, admins and auditors may read it", ErrNotAdmitted, a.Name, a.Version, a.State)
	}
	if p.Has(access.RolePublisher, access.RoleReleaseManager, access.RoleApprover) {
		return nil
	}
	if p.Has(access.RoleDeployer) {
		// A deployment agent pulls only what a release authorised for one
		// of its environments contains.
		ok, err := s.deployments.DeployableTo(ctx, a.Name, a.Version, p.Environments)
		if err != nil || ok {
			return err
		}
		return fmt.Errorf("%w: %s:%s is in no release authorised for deployment to %s", access.ErrNotAuthorizedForEnv, a.Name, a.Version, strings.Join(p.Environments, ", "))
	}
	return fmt.Errorf("%w: reading content needs a role", errdef.ErrDenied)
}

// RetireArtifact retires an artifact version: nothing is deleted, but no
// new release may include it and open build gates refuse it.
func (s *Service) RetireArtifact(ctx context.Context, p access.Principal, name, version string) (Artifact, error) {
	if !p.Has(access.RoleAdmin, access.RoleReleaseManager) {
		return Artifact{}, fmt.Errorf("%w: retiring needs the admin or release-manager role", errdef.ErrDenied)
	}
	if _, err := s.Artifact(ctx, name, version); err != nil {
		return Artifact{}, err
	}
	return s.store.RetireArtifact(ctx, p.Actor(), name, version)
}
