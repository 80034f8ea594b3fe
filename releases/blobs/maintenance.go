package blobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// fsck and gc (fsck.go, gc.go) are admin operations that walk the whole
// blob store and catalogue. Both stream: they hold one blob, one page of
// references or one audit record at a time, never a set of everything
// seen, so their memory does not grow with the store. They report as they
// go through a callback, one MaintenanceEvent at a time (the API sends
// each as a line of NDJSON), and end with a summary.

// MaintenanceEvent is one report of a running fsck or gc: Type says which
// of the embedded parts is set. S is the summary type (FsckSummary or
// GCSummary). The API sends each in its wire form (api/wire), where a
// stream that fails after it began ends with an "error" event.
type MaintenanceEvent[S any] struct {
	// Type is "progress", "finding" or "summary".
	Type string
	*Progress
	*Finding
	Summary *S
}

// Progress says where a run stands: its phase and how much of it is done.
type Progress struct {
	Phase string
	Items int64
	Bytes int64
}

// Finding kinds.
const (
	// FindingCorrupt: a blob does not hash to its digest (marked corrupt).
	FindingCorrupt = "corrupt"
	// FindingMissing: the catalogue refers to a blob that is not stored.
	FindingMissing = "missing"
	// FindingSize: the catalogue records a size the stored blob does not have.
	FindingSize = "size"
	// FindingUnexpected: an object under the blob area that names no digest.
	FindingUnexpected = "unexpected"
	// FindingCatalogue: the audit log and the catalogue disagree about
	// admitted content.
	FindingCatalogue = "catalogue"
	// FindingUnreadable: a blob could not be read to be checked.
	FindingUnreadable = "unreadable"
	// FindingOrphan: a stored blob nothing refers to (fsck reports it; gc
	// deletes it once it is older than the grace period).
	FindingOrphan = "orphan"
	// FindingRepaired: a blob marked corrupt verified again (fsck).
	FindingRepaired = "repaired"
	// FindingUpload: an abandoned upload (a session, a staging object or
	// the chunks of an upload) gc removes.
	FindingUpload = "upload"
)

// Finding is one thing a run found (fsck) or removed (gc).
type Finding struct {
	Kind   string
	Digest digest.Digest
	// Key is the backend key, for objects that name no digest and for
	// uploads (or the upload session's ID).
	Key string
	// Holders are (up to maxHolders) catalogue entries that refer to the
	// blob: what a corrupt or missing blob breaks.
	Holders []string
	Detail  string
	// Problem is set for damage (corrupt, missing, size, unexpected,
	// catalogue, unreadable), not for garbage or good news.
	Problem bool
}

// maxHolders bounds the holders a finding names.
const maxHolders = 10

// progressInterval is how often a run reports progress.
const progressInterval = 500 * time.Millisecond

// reporter sends a run's events and keeps its progress.
type reporter[S any] struct {
	emit     func(MaintenanceEvent[S]) error
	progress Progress
	last     time.Time
}

// phase starts a phase and reports it.
func (r *reporter[S]) phase(name string) error {
	r.progress = Progress{Phase: name}
	return r.flush()
}

// step counts one item (of n bytes) and reports progress when it is due.
func (r *reporter[S]) step(n int64) error {
	r.progress.Items++
	r.progress.Bytes += n
	if time.Since(r.last) < progressInterval {
		return nil
	}
	return r.flush()
}

func (r *reporter[S]) flush() error {
	r.last = time.Now()
	p := r.progress
	return r.emit(MaintenanceEvent[S]{Type: "progress", Progress: &p})
}

func (r *reporter[S]) finding(f Finding) error {
	return r.emit(MaintenanceEvent[S]{Type: "finding", Finding: &f})
}

func (r *reporter[S]) summary(sum S) error {
	return r.emit(MaintenanceEvent[S]{Type: "summary", Summary: &sum})
}

// Maintenance runs fsck and gc over the blobs of a Service. Both reach
// beyond the blob store into what refers to blobs, through two hooks the
// composition root wires: the catalogue's own check against the audit log
// (AdmissionChecker, fsck's last phase) and the registry's upload sessions
// (Uploads, gc's first phases).
type Maintenance struct {
	svc        *Service
	admissions AdmissionChecker
	uploads    Uploads
	// running is held by a running fsck or gc: one at a time per server.
	// It saves work (and an operator's confusion); gc's correctness
	// against writers rests on the claims and deletion marks in the
	// database (gc.go), taken under each blob's lock there, which is what
	// several replicas share: gc on two replicas at once deletes nothing a
	// writer claimed (TestReplicas/GCAgainstPushes).
	running sync.Mutex
}

// AdmissionChecker checks the catalogue against every admission the audit
// log records (catalog.Service implements it): admitted is called once per
// admission checked, find once per disagreement.
type AdmissionChecker interface {
	CheckAdmissions(ctx context.Context, admitted func() error, find func(Finding) error) error
}

// Upload is an upload session as gc sees it.
type Upload struct {
	ID         string
	Repository string
	Offset     int64
	UpdatedAt  time.Time
}

// Uploads is what gc asks of the registry's chunked upload sessions
// (registry.Service implements it).
type Uploads interface {
	// StaleUploads lists up to limit sessions last updated before before.
	StaleUploads(ctx context.Context, before time.Time, limit int) ([]Upload, error)
	// ExpireUpload removes a session and its chunks unless it was updated
	// at or after cutoff; it reports whether it removed it.
	ExpireUpload(ctx context.Context, id string, cutoff time.Time) bool
	// UploadExists reports whether a session is under way.
	UploadExists(ctx context.Context, id string) (bool, error)
}

// NewMaintenance returns fsck and gc over svc. A nil uploads skips the
// upload sessions (a server without the OCI registry).
func NewMaintenance(svc *Service, admissions AdmissionChecker, uploads Uploads) (*Maintenance, error) {
	if svc == nil || admissions == nil {
		return nil, errors.New("blobs: maintenance needs the blob service and an admission checker")
	}
	return &Maintenance{svc: svc, admissions: admissions, uploads: uploads}, nil
}

// start checks that p may run fsck or gc and that no other run is under
// way; call the returned function when done (again: it does nothing). A
// run calls it before it reports its summary, so that a client which
// starts the next run once it has read the summary finds the server free.
func (m *Maintenance) start(p access.Principal, what string) (func(), error) {
	if !p.Has(access.RoleAdmin) {
		return nil, fmt.Errorf("%w: %s needs the admin role", errdef.ErrDenied, what)
	}
	if !m.running.TryLock() {
		return nil, fmt.Errorf("%w: an fsck or gc is already running on this server", errdef.ErrConflict)
	}
	m.svc.log.Info(what+" started", "by", p.Name)
	return sync.OnceFunc(m.running.Unlock), nil
}

// holderNames names (up to maxHolders of) the catalogue entries that refer
// to d.
func (s *Service) holderNames(ctx context.Context, d digest.Digest) []string {
	hs, err := s.store.BlobHolders(ctx, d, maxHolders)
	if err != nil {
		return []string{"(holders unknown: " + err.Error() + ")"}
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}
